/**
 * The factor services: enrolling, using and removing the second factors of an account (TOTP, passkeys,
 * recovery codes). The sign-in pages (src/interactions/) and the self-service account page call these;
 * the admin API lists and resets. Every change is one transaction with its audit entry, then the
 * account's other sessions end (like a password change: whoever held only the old factors is signed
 * out), then a change event. Secrets never leave this module but in the answers meant to show them once.
 *
 * WebAuthn challenges are made here and checked here, but kept by the caller (bound to its sign-in
 * interaction or page session) and given back once: a challenge is single-use because the caller
 * forgets it before calling a `finish`/`verify` function.
 */
import { randomUUID } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { AccountChangeContext } from '../accounts/account-service.js';
import { updateAccount as updateAccountRow } from '../accounts/account-repository.js';
import { recordAudit } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { amrFor, type Amr } from '../issuer/authentication-policy.js';
import { decryptWithKek, encryptWithKek, keyEncryptionKeysById, type KeyEncryptionKey } from '../keys/key-encryption.js';
import { ConflictError, found, NotFoundError } from '../shared/errors.js';
import { FactorRejectedError, type AccountFactors, type PasskeySummary } from './factor.js';
import {
  deletePasskeyRow,
  deletePasskeys,
  deleteRecoveryCodes,
  deleteTotp,
  insertPasskey,
  recordPasskeyUse,
  renamePasskeyRow,
  replaceRecoveryCodes,
  selectFactors,
  selectPasskeyByCredentialId,
  selectPasskeys,
  resealTotp,
  selectSealedTotp,
  selectTotpSealedUnderOtherKeys,
  upsertPendingTotp,
  useRecoveryCode,
  useTotpStep,
} from './factor-repository.js';
import { newRecoveryCodes, normaliseRecoveryCode, recoveryCodeDigest } from './recovery-codes.js';
import { newTotpSecret, qrCodeSvg, totpStepOf, totpUri } from './totp.js';

/**
 * @simplewebauthn/server, imported on the first passkey ceremony rather than at start: with its ASN.1
 * and X.509 parsers it holds about 5 MiB of heap that the token hot paths never use (docs/performance.md, Memory).
 */
const webauthn = () => import('@simplewebauthn/server');

/** What the factor services need besides an audited change context. */
export interface FactorSettings {
  /** The issuer URL: its host is the WebAuthn RP ID, its origin the only origin accepted. */
  readonly issuer: string;
  /** Key-encryption keys: the first seals TOTP secrets, any opens them. */
  readonly keyEncryptionKeys: readonly [KeyEncryptionKey, ...KeyEncryptionKey[]];
  /** The name people see in their authenticator app and passkey manager. */
  readonly serviceName: string;
}

/** What a factor change needs: the audited account change context and the settings. */
export interface FactorChangeContext extends AccountChangeContext {
  readonly settings: FactorSettings;
}

/** What verifying a factor at sign-in needs (no audit: a sign-in is not a change). */
export interface FactorCheckContext {
  readonly db: Db;
  readonly settings: FactorSettings;
}

/** The account a factor belongs to, as the services need it. */
export interface FactorAccount {
  readonly id: string;
  readonly email: string;
  readonly name: string;
}

/** A TOTP enrolment waiting for its first code: show all three (the secret as text too). */
export interface TotpEnrolment {
  /** Base32 secret, for typing into an app. */
  readonly secret: string;
  /** The `otpauth://totp/...` URI. */
  readonly uri: string;
  /** SVG markup of the URI as a QR code (drawn here, safe to embed). */
  readonly qrSvg: string;
}

/** A factor proven at sign-in: who, and the RFC 8176 methods it adds. */
export interface ProvenFactor {
  readonly accountId: string;
  readonly methods: readonly Amr[];
  /** The factor used: a recovery code is worth telling the person about (fewer remain). */
  readonly kind: 'totp' | 'recovery_code' | 'passkey';
}

const totpAssociatedData = (accountId: string, kekId: string) => `totp:${accountId}:${kekId}`;

/**
 * Reseals every TOTP secret (confirmed or pending) under key-encryption key `to`, in one transaction:
 * `npm run keys:rewrap` calls it, so that KEY_ENCRYPTION_KEY_PREVIOUS can be dropped afterwards. A
 * secret sealed under a key not in `keks` stops the whole rewrap (nothing is half done).
 * @returns how many secrets were resealed.
 */
export async function rewrapTotpSecrets(db: Db, keks: ReadonlyMap<string, KeyEncryptionKey>, to: KeyEncryptionKey): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const sealed = await selectTotpSealedUnderOtherKeys(trx, to.id);
    for (const row of sealed) {
      const from = keks.get(row.kekId);
      if (!from) throw new Error(`the TOTP secret of account ${row.accountId} was sealed by key-encryption key ${row.kekId}, which is not configured`);
      const secret = decryptWithKek(from, row.sealedSecret, totpAssociatedData(row.accountId, from.id));
      await resealTotp(trx, row.accountId, encryptWithKek(to, secret, totpAssociatedData(row.accountId, to.id)), to.id);
    }
    return sealed.length;
  });
}

/**
 * Ends the account's sessions and grants and marks its earlier tokens dead: what every factor change
 * does, as a password change does, so whoever signed in before the change must sign in again.
 */
async function endSessions(change: AccountChangeContext, accountId: string): Promise<void> {
  await change.bus.publish({ kind: 'account', id: accountId });
  await change.sessions.revokeAccount(accountId);
}

/** Runs `work` in one transaction with its audit entry, marks the account's tokens revoked, then ends its sessions. */
async function auditedFactorChange<T>(
  change: AccountChangeContext,
  accountId: string,
  action: string,
  details: Record<string, unknown>,
  work: (trx: Db) => Promise<T>,
): Promise<T> {
  const result = await change.db.transaction().execute(async (trx) => {
    const value = await work(trx);
    found(await updateAccountRow(trx, accountId, { tokensRevokedAt: new Date() }), `account ${accountId}`);
    await recordAudit(trx, { actor: change.actor, action, target: accountId, details });
    return value;
  });
  await endSessions(change, accountId);
  return result;
}

/** The factors of an account, without any secret (the account page and the admin API list these). */
export async function listFactors(db: Db, accountId: string): Promise<AccountFactors> {
  return selectFactors(db, accountId);
}

/**
 * Starts enrolling an authenticator app: a new secret, sealed and stored as pending (it counts as a
 * factor only once {@link confirmTotpEnrolment} has seen a right code). Replaces an earlier pending one.
 * @throws ConflictError when the account already has a confirmed app (remove it first).
 */
export async function startTotpEnrolment(context: FactorCheckContext, account: FactorAccount): Promise<TotpEnrolment> {
  const secret = newTotpSecret();
  const [kek] = context.settings.keyEncryptionKeys;
  const sealed = encryptWithKek(kek, secret, totpAssociatedData(account.id, kek.id));
  if (!(await upsertPendingTotp(context.db, account.id, sealed, kek.id))) {
    throw new ConflictError('an authenticator app is already set up; remove it before setting up another');
  }
  return pendingEnrolment(context, account, secret);
}

/** The pending enrolment of the account again (a page shown a second time), or `undefined` when none is pending. */
export async function pendingTotpEnrolment(context: FactorCheckContext, account: FactorAccount): Promise<TotpEnrolment | undefined> {
  const sealed = await selectSealedTotp(context.db, account.id);
  if (!sealed || sealed.confirmed) return undefined;
  return pendingEnrolment(context, account, openSecret(context.settings, account.id, sealed));
}

function pendingEnrolment(context: FactorCheckContext, account: FactorAccount, secret: string): TotpEnrolment {
  const uri = totpUri(secret, context.settings.serviceName, account.email);
  return { secret, uri, qrSvg: qrCodeSvg(uri, 'QR code of the authenticator app secret') };
}

function openSecret(settings: FactorSettings, accountId: string, sealed: { sealedSecret: string; kekId: string }): string {
  const kek = keyEncryptionKeysById(settings.keyEncryptionKeys).get(sealed.kekId);
  if (!kek) throw new Error(`the TOTP secret of account ${accountId} is sealed under an unknown key-encryption key ${sealed.kekId}`);
  return decryptWithKek(kek, sealed.sealedSecret, totpAssociatedData(accountId, sealed.kekId));
}

/**
 * Confirms the pending enrolment with a code from the app. Audited (`account.factor.totp.add`); the
 * account's sessions end. When the account has no recovery codes yet, a set is made and returned:
 * show it once.
 * @throws FactorRejectedError `wrong_code` when the code is not right; NotFoundError when nothing is pending.
 */
export async function confirmTotpEnrolment(change: FactorChangeContext, accountId: string, code: string): Promise<{ recoveryCodes?: string[] }> {
  const sealed = await selectSealedTotp(change.db, accountId);
  if (!sealed || sealed.confirmed) throw new NotFoundError('no authenticator app enrolment is waiting for a code');
  const step = totpStepOf(openSecret(change.settings, accountId, sealed), code, Date.now());
  if (step === undefined) throw new FactorRejectedError('wrong_code', 'the code is not right');
  const hasCodes = (await selectFactors(change.db, accountId)).recoveryCodes !== null;
  const codes = hasCodes ? undefined : newRecoveryCodes();
  await auditedFactorChange(change, accountId, 'account.factor.totp.add', {}, async (trx) => {
    if (!(await useTotpStep(trx, accountId, step, true))) throw new FactorRejectedError('replayed_code', 'the code was already used');
    if (codes)
      await replaceRecoveryCodes(
        trx,
        accountId,
        codes.map((c) => recoveryCodeDigest(normaliseRecoveryCode(c)!)),
      );
  });
  return codes ? { recoveryCodes: codes } : {};
}

/** Removes the authenticator app. Audited (`account.factor.totp.remove`); the sessions end. NotFoundError when there is none. */
export async function removeTotp(change: AccountChangeContext, accountId: string): Promise<void> {
  await auditedFactorChange(change, accountId, 'account.factor.totp.remove', {}, async (trx) => {
    if (!(await deleteTotp(trx, accountId))) throw new NotFoundError('no authenticator app is set up');
  });
}

/**
 * A new set of ten recovery codes, replacing the old set (its codes stop working). Audited
 * (`account.factor.recovery_codes.regenerate`); the sessions end. Show the codes once: only digests are kept.
 */
export async function regenerateRecoveryCodes(change: AccountChangeContext, accountId: string): Promise<string[]> {
  const codes = newRecoveryCodes();
  await auditedFactorChange(change, accountId, 'account.factor.recovery_codes.regenerate', {}, (trx) =>
    replaceRecoveryCodes(
      trx,
      accountId,
      codes.map((c) => recoveryCodeDigest(normaliseRecoveryCode(c)!)),
    ),
  );
  return codes;
}

/**
 * Checks a one-time code typed at sign-in: a TOTP code (refused if its time step, or a later one, was
 * already used) or a recovery code (used up by this call).
 * @throws FactorRejectedError `wrong_code` or `replayed_code`.
 */
export async function verifyOneTimeCode(context: FactorCheckContext, accountId: string, input: string): Promise<ProvenFactor> {
  const sealed = await selectSealedTotp(context.db, accountId);
  if (sealed?.confirmed) {
    const step = totpStepOf(openSecret(context.settings, accountId, sealed), input, Date.now());
    if (step !== undefined) {
      if (!(await useTotpStep(context.db, accountId, step, false))) throw new FactorRejectedError('replayed_code', 'this code was already used');
      return { accountId, methods: ['otp'], kind: 'totp' };
    }
  }
  const recovery = normaliseRecoveryCode(input);
  if (recovery !== undefined && (await useRecoveryCode(context.db, accountId, recoveryCodeDigest(recovery)))) {
    return { accountId, methods: ['otp'], kind: 'recovery_code' };
  }
  throw new FactorRejectedError('wrong_code', 'the code is not right');
}

/** The WebAuthn relying party of this server: RP ID the issuer's host, the one origin the issuer's. */
export function relyingParty(settings: FactorSettings): { id: string; origin: string; name: string } {
  const url = new URL(settings.issuer);
  return { id: url.hostname, origin: url.origin, name: settings.serviceName };
}

/** Options for `navigator.credentials.create()`, and the challenge to keep (once) for {@link finishPasskeyRegistration}. */
export interface PasskeyRegistration {
  readonly options: PublicKeyCredentialCreationOptionsJSON;
  readonly challenge: string;
}

/**
 * Starts registering a passkey: a discoverable credential with user verification, none of the
 * account's existing ones again.
 */
export async function startPasskeyRegistration(context: FactorCheckContext, account: FactorAccount): Promise<PasskeyRegistration> {
  const rp = relyingParty(context.settings);
  const existing = await selectPasskeys(context.db, account.id);
  const { generateRegistrationOptions } = await webauthn();
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: account.email,
    userDisplayName: account.name,
    // The account id is the user handle, so a passkey alone names its account at sign-in.
    userID: new TextEncoder().encode(account.id),
    attestationType: 'none',
    excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: [...p.transports] })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
  });
  return { options, challenge: options.challenge };
}

/** Maps what the WebAuthn library refused to a reason people and logs can use. */
function refusalOf(error: unknown): FactorRejectedError {
  if (error instanceof FactorRejectedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/origin/i.test(message)) return new FactorRejectedError('wrong_origin', 'the passkey answered for another site');
  if (/RP ID/i.test(message)) return new FactorRejectedError('wrong_rp_id', 'the passkey belongs to another site');
  if (/challenge/i.test(message)) return new FactorRejectedError('wrong_challenge', 'the passkey answered an old or foreign request');
  if (/counter/i.test(message)) return new FactorRejectedError('cloned_authenticator', 'the passkey looks copied (its counter went back)');
  if (/user.*verif/i.test(message)) return new FactorRejectedError('user_not_verified', 'the passkey did not verify you (PIN or biometrics)');
  return new FactorRejectedError('invalid_response', 'the passkey answer is not valid');
}

const trimmedName = (name: string | undefined, fallback: string) => {
  // Control characters would only hide a name's real text in lists.
  const clean = (name ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .slice(0, 100);
  return clean === '' ? fallback : clean;
};

/**
 * Finishes registering a passkey from the browser's answer and the challenge kept from
 * {@link startPasskeyRegistration} (forget it before calling). Audited (`account.factor.passkey.add`);
 * the sessions end.
 * @throws FactorRejectedError when the answer does not verify (wrong origin, RP ID, challenge...).
 */
export async function finishPasskeyRegistration(
  change: FactorChangeContext,
  accountId: string,
  expectedChallenge: string,
  response: RegistrationResponseJSON,
  name?: string,
): Promise<PasskeySummary> {
  const rp = relyingParty(change.settings);
  let verified;
  try {
    const { verifyRegistrationResponse } = await webauthn();
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: true,
    });
  } catch (error) {
    throw refusalOf(error);
  }
  if (!verified.verified) throw new FactorRejectedError('invalid_response', 'the passkey answer is not valid');
  const { credential, credentialDeviceType, credentialBackedUp } = verified.registrationInfo;
  if (await selectPasskeyByCredentialId(change.db, credential.id)) throw new ConflictError('this passkey is already registered');
  const count = (await selectPasskeys(change.db, accountId)).length;
  const passkeyName = trimmedName(name, `Passkey ${count + 1}`);
  return auditedFactorChange(change, accountId, 'account.factor.passkey.add', { name: passkeyName }, (trx) =>
    insertPasskey(trx, {
      id: randomUUID(),
      accountId,
      credentialId: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      signCount: credential.counter,
      transports: credential.transports ?? [],
      deviceType: credentialDeviceType,
      backedUp: credentialBackedUp,
      name: passkeyName,
    }),
  );
}

/** Renames a passkey. Audited (`account.factor.passkey.rename`); no session ends. NotFoundError when the account has no such passkey. */
export async function renamePasskey(change: AccountChangeContext, accountId: string, passkeyId: string, name: string): Promise<void> {
  const clean = trimmedName(name, '');
  if (clean === '') throw new ConflictError('a passkey needs a name');
  await change.db.transaction().execute(async (trx) => {
    if (!(await renamePasskeyRow(trx, accountId, passkeyId, clean))) throw new NotFoundError(`no passkey ${passkeyId}`);
    await recordAudit(trx, { actor: change.actor, action: 'account.factor.passkey.rename', target: accountId, details: { passkey: passkeyId, name: clean } });
  });
}

/** Removes a passkey. Audited (`account.factor.passkey.remove`); the sessions end. NotFoundError when the account has no such passkey. */
export async function removePasskey(change: AccountChangeContext, accountId: string, passkeyId: string): Promise<void> {
  await auditedFactorChange(change, accountId, 'account.factor.passkey.remove', { passkey: passkeyId }, async (trx) => {
    if (!(await deletePasskeyRow(trx, accountId, passkeyId))) throw new NotFoundError(`no passkey ${passkeyId}`);
  });
}

/** Options for `navigator.credentials.get()`, and the challenge to keep (once) for {@link verifyPasskey}. */
export interface PasskeyChallenge {
  readonly options: PublicKeyCredentialRequestOptionsJSON;
  readonly challenge: string;
}

/**
 * Starts a passkey sign-in: for a known account (second factor) its passkeys are listed; without one
 * (passkey alone, conditional UI) the browser offers any discoverable passkey of this site.
 */
export async function startPasskeyAuthentication(context: FactorCheckContext, accountId?: string): Promise<PasskeyChallenge> {
  const rp = relyingParty(context.settings);
  const allow =
    accountId === undefined ? undefined : (await selectPasskeys(context.db, accountId)).map((p) => ({ id: p.credentialId, transports: [...p.transports] }));
  const { generateAuthenticationOptions } = await webauthn();
  const options = await generateAuthenticationOptions({ rpID: rp.id, userVerification: 'required', ...(allow ? { allowCredentials: allow } : {}) });
  return { options, challenge: options.challenge };
}

/**
 * Verifies a passkey assertion against the challenge kept from {@link startPasskeyAuthentication}
 * (forget it before calling, so no assertion is accepted twice). With `accountId` the passkey must be
 * that account's. The signature counter must move forward (when the authenticator keeps one): one
 * that goes back is a cloned authenticator.
 * @returns the account and the methods proven: `hwk` (device-bound) or `swk` (synced), and `user`
 *   when the authenticator verified the person.
 * @throws FactorRejectedError with the reason.
 */
export async function verifyPasskey(
  context: FactorCheckContext,
  expectedChallenge: string,
  response: AuthenticationResponseJSON,
  accountId?: string,
): Promise<ProvenFactor> {
  const rp = relyingParty(context.settings);
  const passkey = typeof response?.id === 'string' ? await selectPasskeyByCredentialId(context.db, response.id) : undefined;
  if (!passkey || (accountId !== undefined && passkey.accountId !== accountId)) {
    throw new FactorRejectedError('unknown_credential', 'this passkey is not registered here');
  }
  let verified;
  try {
    const { verifyAuthenticationResponse } = await webauthn();
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: {
        id: passkey.credentialId,
        publicKey: Buffer.from(passkey.publicKey, 'base64url'),
        counter: passkey.signCount,
        transports: [...passkey.transports],
      },
      requireUserVerification: true,
    });
  } catch (error) {
    throw refusalOf(error);
  }
  if (!verified.verified) throw new FactorRejectedError('invalid_response', 'the passkey answer is not valid');
  const info = verified.authenticationInfo;
  if (!(await recordPasskeyUse(context.db, passkey.id, passkey.signCount, info.newCounter, info.credentialBackedUp))) {
    // Another assertion moved the counter in between: one of them is a copy.
    throw new FactorRejectedError('cloned_authenticator', 'the passkey looks copied (its counter went back)');
  }
  const key: Amr = passkey.deviceType === 'multiDevice' ? 'swk' : 'hwk';
  return { accountId: passkey.accountId, methods: info.userVerified ? [key, 'user'] : [key], kind: 'passkey' };
}

/**
 * Removes every factor of the account (an administrator's reset, after a lost phone). Audited
 * (`account.factors.reset`); the sessions end. If the account must use MFA, the person enrols again at
 * the next sign-in.
 */
export async function resetFactors(change: AccountChangeContext, accountId: string): Promise<void> {
  await auditedFactorChange(change, accountId, 'account.factors.reset', {}, async (trx) => {
    await deleteTotp(trx, accountId);
    await deletePasskeys(trx, accountId);
    await deleteRecoveryCodes(trx, accountId);
  });
}

/** The `amr` of a sign-in made of a password and these proven factors (or a passkey alone). */
export function signInMethods(password: boolean, proven: readonly ProvenFactor[]): Amr[] {
  return amrFor([...(password ? (['pwd'] as const) : []), ...proven.flatMap((p) => p.methods)]);
}
