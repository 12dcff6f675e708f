/** PostgreSQL access for second factors. Functions take the database (or a transaction) first. */
import type { Db } from '../db/database.js';
import type { AccountFactors, PasskeySummary } from './factor.js';

/** A stored TOTP secret, still sealed. */
export interface SealedTotp {
  readonly sealedSecret: string;
  readonly kekId: string;
  readonly confirmed: boolean;
  readonly lastUsedStep: number | null;
}

/** A stored passkey with what verifying an assertion needs. */
export interface StoredPasskey extends PasskeySummary {
  readonly accountId: string;
  readonly credentialId: string;
  readonly publicKey: string;
  readonly signCount: number;
  readonly transports: readonly string[];
}

/** Everything the account has, without secrets. */
export async function selectFactors(db: Db, accountId: string): Promise<AccountFactors> {
  const [totp, passkeys, codes] = await Promise.all([
    db.selectFrom('totp_factors').select(['confirmed_at', 'last_used_at', 'created_at']).where('account_id', '=', accountId).executeTakeFirst(),
    selectPasskeys(db, accountId),
    db.selectFrom('recovery_codes').select(['used_at', 'created_at']).where('account_id', '=', accountId).execute(),
  ]);
  return {
    totp: totp ? { confirmedAt: totp.confirmed_at, lastUsedAt: totp.last_used_at, createdAt: totp.created_at } : null,
    passkeys,
    recoveryCodes:
      codes.length === 0 ? null : { remaining: codes.filter((c) => c.used_at === null).length, total: codes.length, createdAt: codes[0].created_at },
  };
}

/** The sealed TOTP secret of the account, confirmed or pending. */
export async function selectSealedTotp(db: Db, accountId: string): Promise<SealedTotp | undefined> {
  const row = await db
    .selectFrom('totp_factors')
    .select(['sealed_secret', 'kek_id', 'confirmed_at', 'last_used_step'])
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  return (
    row && {
      sealedSecret: row.sealed_secret,
      kekId: row.kek_id,
      confirmed: row.confirmed_at !== null,
      lastUsedStep: row.last_used_step === null ? null : Number(row.last_used_step),
    }
  );
}

/** Stores a pending (unconfirmed) secret, replacing a pending one; never a confirmed one (false then). */
export async function upsertPendingTotp(db: Db, accountId: string, sealedSecret: string, kekId: string): Promise<boolean> {
  const result = await db
    .insertInto('totp_factors')
    .values({ account_id: accountId, sealed_secret: sealedSecret, kek_id: kekId })
    .onConflict((oc) => oc.column('account_id').doUpdateSet({ sealed_secret: sealedSecret, kek_id: kekId }).where('totp_factors.confirmed_at', 'is', null))
    .executeTakeFirst();
  return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

/**
 * Records `step` as used, if it is later than the last one used: the one atomic step that makes a
 * code single-use even when two sign-ins present it at once. `confirm` also confirms a pending secret.
 * @returns whether the step was accepted.
 */
export async function useTotpStep(db: Db, accountId: string, step: number, confirm: boolean): Promise<boolean> {
  const now = new Date();
  const result = await db
    .updateTable('totp_factors')
    .set({ last_used_step: step, last_used_at: now, ...(confirm ? { confirmed_at: now } : {}) })
    .where('account_id', '=', accountId)
    .where((eb) => (confirm ? eb('confirmed_at', 'is', null) : eb('confirmed_at', 'is not', null)))
    .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', String(step))]))
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Deletes the account's TOTP factor; whether there was one. */
export async function deleteTotp(db: Db, accountId: string): Promise<boolean> {
  const result = await db.deleteFrom('totp_factors').where('account_id', '=', accountId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Replaces the account's recovery codes with these digests. */
export async function replaceRecoveryCodes(db: Db, accountId: string, digests: readonly string[]): Promise<void> {
  await db.deleteFrom('recovery_codes').where('account_id', '=', accountId).execute();
  const now = new Date();
  await db
    .insertInto('recovery_codes')
    .values(digests.map((digest) => ({ account_id: accountId, digest, created_at: now })))
    .execute();
}

/** Marks an unused code as used, atomically: whether it was one (a code works once). */
export async function useRecoveryCode(db: Db, accountId: string, digest: string): Promise<boolean> {
  const result = await db
    .updateTable('recovery_codes')
    .set({ used_at: new Date() })
    .where('account_id', '=', accountId)
    .where('digest', '=', digest)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Deletes the account's recovery codes. */
export async function deleteRecoveryCodes(db: Db, accountId: string): Promise<boolean> {
  const result = await db.deleteFrom('recovery_codes').where('account_id', '=', accountId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

type PasskeyRow = {
  id: string;
  account_id: string;
  credential_id: string;
  public_key: string;
  sign_count: string;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  name: string;
  last_used_at: Date | null;
  created_at: Date;
};

const toPasskey = (row: PasskeyRow): StoredPasskey => ({
  id: row.id,
  accountId: row.account_id,
  credentialId: row.credential_id,
  publicKey: row.public_key,
  signCount: Number(row.sign_count),
  transports: row.transports,
  deviceType: row.device_type,
  backedUp: row.backed_up,
  name: row.name,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

/** The account's passkeys, oldest first. */
export async function selectPasskeys(db: Db, accountId: string): Promise<StoredPasskey[]> {
  const rows = await db.selectFrom('passkeys').selectAll().where('account_id', '=', accountId).orderBy('created_at').orderBy('id').execute();
  return rows.map(toPasskey);
}

/** The passkey with this WebAuthn credential id (base64url), whoever has it. */
export async function selectPasskeyByCredentialId(db: Db, credentialId: string): Promise<StoredPasskey | undefined> {
  const row = await db.selectFrom('passkeys').selectAll().where('credential_id', '=', credentialId).executeTakeFirst();
  return row && toPasskey(row);
}

/** What a new passkey row needs. */
export interface NewPasskey {
  readonly id: string;
  readonly accountId: string;
  readonly credentialId: string;
  readonly publicKey: string;
  readonly signCount: number;
  readonly transports: readonly string[];
  readonly deviceType: 'singleDevice' | 'multiDevice';
  readonly backedUp: boolean;
  readonly name: string;
}

/** Inserts a passkey. */
export async function insertPasskey(db: Db, passkey: NewPasskey): Promise<StoredPasskey> {
  const row = await db
    .insertInto('passkeys')
    .values({
      id: passkey.id,
      account_id: passkey.accountId,
      credential_id: passkey.credentialId,
      public_key: passkey.publicKey,
      sign_count: passkey.signCount,
      transports: JSON.stringify(passkey.transports),
      device_type: passkey.deviceType,
      backed_up: passkey.backedUp,
      name: passkey.name,
      created_at: new Date(),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toPasskey(row);
}

/**
 * Records a use of the passkey with its new signature counter, only if the counter still is what was
 * read (`expectedCount`): two assertions verified at once cannot both move it.
 */
export async function recordPasskeyUse(db: Db, id: string, expectedCount: number, newCount: number, backedUp: boolean): Promise<boolean> {
  const result = await db
    .updateTable('passkeys')
    .set({ sign_count: newCount, backed_up: backedUp, last_used_at: new Date() })
    .where('id', '=', id)
    .where('sign_count', '=', String(expectedCount))
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Renames one of the account's passkeys; whether it exists. */
export async function renamePasskeyRow(db: Db, accountId: string, id: string, name: string): Promise<boolean> {
  const result = await db.updateTable('passkeys').set({ name }).where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Deletes one of the account's passkeys; whether it existed. */
export async function deletePasskeyRow(db: Db, accountId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('passkeys').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Deletes every passkey of the account; how many. */
export async function deletePasskeys(db: Db, accountId: string): Promise<number> {
  const result = await db.deleteFrom('passkeys').where('account_id', '=', accountId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** The TOTP secrets not sealed under key-encryption key `kekId`, locked until the transaction ends. */
export async function selectTotpSealedUnderOtherKeys(db: Db, kekId: string): Promise<{ accountId: string; sealedSecret: string; kekId: string }[]> {
  const rows = await db.selectFrom('totp_factors').select(['account_id', 'sealed_secret', 'kek_id']).where('kek_id', '!=', kekId).forUpdate().execute();
  return rows.map((row) => ({ accountId: row.account_id, sealedSecret: row.sealed_secret, kekId: row.kek_id }));
}

/** Replaces the sealed TOTP secret of the account (same secret, sealed again), keeping its state. */
export async function resealTotp(db: Db, accountId: string, sealedSecret: string, kekId: string): Promise<void> {
  await db.updateTable('totp_factors').set({ sealed_secret: sealedSecret, kek_id: kekId }).where('account_id', '=', accountId).execute();
}
