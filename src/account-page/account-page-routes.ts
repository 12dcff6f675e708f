/**
 * The account page (`/account`): a person's own view of their account. They sign in to it through
 * the server's own OpenID Connect flow like any app (account-page-sign-in.ts), then see where they
 * are signed in and which apps hold access, end any of those, and change their password. Every
 * change is audited with the person as the actor (`account:<id>`).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountRegistry } from '../accounts/account-registry.js';
import { selectAccountForSignIn } from '../accounts/account-repository.js';
import { setPassword } from '../accounts/account-service.js';
import type { Account } from '../accounts/account.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, verifyPassword } from '../accounts/password.js';
import { recordAudit } from '../audit/audit.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { readFormBody } from '../interactions/form-body.js';
import { sendPageFailure } from '../interactions/page-failure.js';
import { setPageHeaders } from '../interactions/page-headers.js';
import type { SignInLimiter } from '../interactions/sign-in-limiter.js';
import { notifyEndedSignIns, sessionsWithBackchannelLogout } from '../issuer/backchannel-logout.js';
import type { JwksDocument } from '../issuer/jwks-endpoint.js';
import type { Logger } from '../observability/logger.js';
import { requestContext, setRoute } from '../shared/request-context.js';
import { isPossibleDigest } from '../tokens/token-keys.js';
import type { AccountRecords, AdapterPayload, TokenStore } from '../tokens/token-store.js';
import { ACCOUNT_CALLBACK_PATH, ACCOUNT_PAGE_PATH, accountCallbackUrl, accountPageClientId } from './account-page-client.js';
import { AccountPageSessions, sameToken, type PageSession } from './account-page-session.js';
import { AccountSignInError, authorizationUrl, exchangeCode } from './account-page-sign-in.js';
import {
  ACCOUNT_ACTIONS,
  addPasskeyPage,
  FACTOR_ACTIONS,
  overviewPage,
  passwordPage,
  recoveryCodesPage,
  signedOutPage,
  signInMethodsSection,
  totpPage,
  type AppItem,
  type SessionItem,
} from './account-page-views.js';
import type { AccountSessions } from '../accounts/account-service.js';
import { FactorRejectedError } from '../factors/factor.js';
import {
  confirmTotpEnrolment,
  finishPasskeyRegistration,
  listFactors,
  pendingTotpEnrolment,
  regenerateRecoveryCodes,
  removePasskey,
  removeTotp,
  renamePasskey,
  startPasskeyRegistration,
  startTotpEnrolment,
  type FactorChangeContext,
  type FactorSettings,
} from '../factors/factor-service.js';
import { PASSKEY_SCRIPT, passkeyResponseOf } from '../interactions/factor-pages.js';
import { SafeHtml } from '../interactions/html.js';
import { ConflictError, NotFoundError } from '../shared/errors.js';

/** What the account page works with. */
export interface AccountPageDependencies {
  readonly issuer: string;
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly tokenStore: TokenStore;
  readonly accounts: AccountRegistry;
  readonly clients: ClientRegistry;
  readonly limiter: SignInLimiter;
  readonly currentProvider: () => Provider;
  readonly currentJwks: () => JwksDocument;
  readonly factorSettings: FactorSettings;
  readonly logger: Logger;
}

/** Whether a path is the account page's. */
export const isAccountPagePath = (path: string): boolean => path === ACCOUNT_PAGE_PATH || path.startsWith(`${ACCOUNT_PAGE_PATH}/`);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const SIGNED_OUT_PATH = `${ACCOUNT_PAGE_PATH}/signed-out`;

/** The notices a redirect back to the overview may show (by name: nothing from the URL is shown as is). */
const NOTICES: Record<string, string> = {
  'session-ended': 'The session has ended.',
  'app-removed': "The app's access is removed.",
  'password-changed': 'Your password is changed. Every other session is signed out.',
  'totp-added': 'The authenticator app is set up. Every other session is signed out.',
  'totp-removed': 'The authenticator app is removed. Every other session is signed out.',
  'passkey-added': 'The passkey is added. Every other session is signed out.',
  'passkey-renamed': 'The passkey is renamed.',
  'passkey-removed': 'The passkey is removed. Every other session is signed out.',
  gone: 'That was already gone.',
};

/** A request the account page refuses, shown on the error page. */
class AccountPageError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

/** A person signed in to the account page, and what the store holds of them. */
interface SignedIn {
  readonly page: PageSession;
  readonly account: Account;
  readonly records: AccountRecords;
  /** The digest of the provider session this browser signed in with. */
  readonly currentSession: string;
}

/** Who the audit trail names for a person's own change. */
const personActor = (accountId: string): string => `account:${accountId}`;

function sendPage(ctx: Context, status: number, markup: string, inlineScripts?: readonly string[]): void {
  // The forms post to this origin only, and every redirect after them stays on it.
  setPageHeaders(ctx, { formTargets: [], inlineScripts });
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = markup;
}

function seeOther(ctx: Context, location: string): void {
  ctx.status = 303;
  ctx.redirect(location);
  ctx.set('Cache-Control', 'no-store');
}

/** Scopes a Grant payload allows: its OpenID scopes and those of each API. */
function grantedScopes(grant: AdapterPayload): string[] {
  const openid = (grant.openid as { scope?: unknown } | undefined)?.scope;
  const resources = Object.values((grant.resources as Record<string, unknown> | undefined) ?? {});
  return [openid, ...resources].flatMap((scope) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []));
}

const epochDate = (seconds: unknown): Date => new Date((typeof seconds === 'number' ? seconds : 0) * 1000);

/** The account page's routes. */
export function accountPageRoutes(deps: AccountPageDependencies): Router {
  const router = new Router();
  const clientId = accountPageClientId(deps.issuer);
  const redirectUri = accountCallbackUrl(deps.issuer);
  const issuerOrigin = new URL(deps.issuer).origin;
  const sessions = new AccountPageSessions(deps.tokenStore, new URL(deps.issuer).protocol === 'https:');
  const accountSessions = sessionsWithBackchannelLogout(deps.tokenStore, deps.currentProvider, deps.logger);

  const clientName = async (id: string) => (await deps.clients.get(id))?.clientName ?? id;

  /** The person signed in to this browser's page session, if its provider session still lives. */
  async function signedIn(ctx: Context): Promise<SignedIn | undefined> {
    const page = await sessions.current(ctx);
    if (!page) return undefined;
    const [records, account] = await Promise.all([deps.tokenStore.listAccount(page.accountId), deps.accounts.getActive(page.accountId)]);
    const current = records.sessions.find((session) => session.payload.uid === page.sessionUid);
    if (!current || !account) {
      // Its session ended (here, elsewhere, by an admin) or the account is gone: sign in again.
      await sessions.close(ctx);
      return undefined;
    }
    return { page, account, records, currentSession: current.digest };
  }

  async function startSignIn(ctx: Context): Promise<void> {
    const transaction = await sessions.startSignIn(ctx);
    seeOther(ctx, authorizationUrl(deps.issuer, clientId, redirectUri, transaction));
  }

  async function overview(ctx: Context): Promise<void> {
    const me = await signedIn(ctx);
    if (!me) return startSignIn(ctx);
    const sessionItems: SessionItem[] = await Promise.all(
      me.records.sessions.map(async ({ digest, payload }) => ({
        id: digest,
        current: digest === me.currentSession,
        signedInAt: epochDate(payload.loginTs ?? payload.iat),
        apps: await Promise.all(Object.keys((payload.authorizations as Record<string, unknown> | undefined) ?? {}).map(clientName)),
      })),
    );
    // This browser first, then the latest sign-in first.
    sessionItems.sort((a, b) => Number(b.current) - Number(a.current) || b.signedInAt.getTime() - a.signedInAt.getTime());
    const byClient = new Map<string, AdapterPayload[]>();
    for (const { payload } of me.records.grants) {
      // The page's own grant is how this page is open, not an app to remove.
      if (typeof payload.clientId !== 'string' || payload.clientId === clientId) continue;
      byClient.set(payload.clientId, [...(byClient.get(payload.clientId) ?? []), payload]);
    }
    const apps: AppItem[] = await Promise.all(
      [...byClient].map(async ([id, grants]) => ({
        clientId: id,
        name: await clientName(id),
        scopes: [...new Set(grants.flatMap(grantedScopes))],
        grantedAt: epochDate(Math.min(...grants.map((grant) => (typeof grant.iat === 'number' ? grant.iat : Infinity)))),
      })),
    );
    apps.sort((a, b) => a.name.localeCompare(b.name));
    const notice = typeof ctx.query.done === 'string' ? NOTICES[ctx.query.done] : undefined;
    const signInMethods = signInMethodsSection(await listFactors(deps.db, me.account.id), me.page.csrf);
    sendPage(
      ctx,
      200,
      overviewPage({ name: me.account.name, email: me.account.email, csrf: me.page.csrf, sessions: sessionItems, apps, notice, signInMethods }),
    );
  }

  async function callback(ctx: Context): Promise<void> {
    const transaction = await sessions.takeSignIn(ctx);
    const { state, code, error, iss } = ctx.query;
    if (!transaction || typeof state !== 'string' || !sameToken(state, transaction.state)) {
      throw new AccountPageError(400, 'session_not_found', 'This sign-in expired or was started in another browser. Open your account page again.');
    }
    if (iss !== undefined && iss !== deps.issuer) throw new AccountPageError(400, 'invalid_request', 'the answer came from another issuer');
    if (typeof error === 'string') throw new AccountPageError(400, 'access_denied', 'The sign-in did not complete. Open your account page again.');
    if (typeof code !== 'string' || code.length > 512) throw new AccountPageError(400, 'invalid_request', 'the answer holds no code');
    // The code's record says which provider session it came from (the ID token would only say so to
    // clients with back-channel logout): the page session lives as long as that session does.
    const record = await deps.tokenStore.adapter('AuthorizationCode').find(code);
    if (record?.clientId !== clientId || typeof record.sessionUid !== 'string' || typeof record.accountId !== 'string') {
      throw new AccountPageError(400, 'invalid_grant', 'The sign-in expired. Open your account page again.');
    }
    let accountId: string;
    try {
      ({ accountId } = await exchangeCode(ctx, { issuer: deps.issuer, clientId, redirectUri, jwks: deps.currentJwks() }, code, transaction));
    } catch (failure) {
      if (failure instanceof AccountSignInError) throw new AccountPageError(400, 'invalid_grant', failure.message);
      throw failure;
    }
    if (accountId !== record.accountId) throw new AccountPageError(400, 'invalid_grant', 'the ID token is not for this sign-in');
    await sessions.open(ctx, accountId, record.sessionUid);
    seeOther(ctx, ACCOUNT_PAGE_PATH);
  }

  /**
   * A form of the page: from this origin (when the browser says), by a signed-in person, with the page
   * session's anti-forgery token. Answers undefined (and sends the browser to sign in) when nobody is.
   */
  async function form(ctx: Context): Promise<{ me: SignedIn; fields: Map<string, string> } | undefined> {
    // Defence in depth beside the token: what the browser says of where the form came from. Pages
    // here send no referrer, so browsers send `Origin: null` even for this origin's own forms;
    // Sec-Fetch-Site says it regardless.
    const origin = ctx.get('origin');
    const site = ctx.get('sec-fetch-site');
    if ((origin !== '' && origin !== 'null' && origin !== issuerOrigin) || (site !== '' && site !== 'same-origin')) {
      throw new AccountPageError(403, 'access_denied', 'This form was sent from another site.');
    }
    const fields = await readFormBody(ctx);
    const me = await signedIn(ctx);
    if (!me) {
      seeOther(ctx, ACCOUNT_PAGE_PATH);
      return undefined;
    }
    if (!sameToken(fields.get('csrf') ?? '', me.page.csrf)) {
      throw new AccountPageError(403, 'access_denied', 'This form is out of date. Go back to your account page and try again.');
    }
    return { me, fields };
  }

  /** Ends one of the person's sessions as a sign-out does, tells its apps, and audits it. */
  async function endSession(me: SignedIn, digest: string): Promise<boolean> {
    const ended = await deps.tokenStore.endSession(me.account.id, digest);
    if (ended === undefined) return false;
    await recordAudit(deps.db, { actor: personActor(me.account.id), action: 'account.session.end', target: me.account.id, details: { session: digest } });
    await notifyEndedSignIns(deps.currentProvider(), me.account.id, ended, deps.logger);
    return true;
  }

  async function endSessionForm(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    const digest = submitted.fields.get('session') ?? '';
    if (!isPossibleDigest(digest)) throw new AccountPageError(400, 'invalid_request', 'no session was named');
    const ended = await endSession(submitted.me, digest);
    if (digest === submitted.me.currentSession) {
      await sessions.close(ctx);
      return seeOther(ctx, SIGNED_OUT_PATH);
    }
    seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=${ended ? 'session-ended' : 'gone'}`);
  }

  async function removeAppForm(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    const { me, fields } = submitted;
    const appId = fields.get('client_id') ?? '';
    const grants = appId === clientId ? [] : me.records.grants.filter((grant) => grant.payload.clientId === appId);
    // Each grant goes as the admin's revocation makes it go: its record and every token of it, at once.
    const revoked = (await Promise.all(grants.map((grant) => deps.tokenStore.revokeGrant(me.account.id, grant.digest)))).filter(Boolean).length;
    if (revoked > 0) {
      await recordAudit(deps.db, {
        actor: personActor(me.account.id),
        action: 'account.grant.revoke',
        target: me.account.id,
        details: { client_id: appId, grants: revoked },
      });
    }
    seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=${revoked > 0 ? 'app-removed' : 'gone'}`);
  }

  async function passwordForm(ctx: Context): Promise<void> {
    const me = await signedIn(ctx);
    if (!me) return startSignIn(ctx);
    sendPage(ctx, 200, passwordPage({ email: me.account.email, csrf: me.page.csrf }));
  }

  async function changePassword(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    const { me, fields } = submitted;
    const refuse = (status: number, alert: string) => sendPage(ctx, status, passwordPage({ email: me.account.email, csrf: me.page.csrf, alert }));
    const current = fields.get('current_password') ?? '';
    const next = fields.get('new_password') ?? '';
    if ([...next].length < MIN_PASSWORD_LENGTH || next.length > MAX_PASSWORD_LENGTH) {
      return refuse(400, `The new password needs at least ${MIN_PASSWORD_LENGTH} characters (and at most ${MAX_PASSWORD_LENGTH}).`);
    }
    if (next !== fields.get('repeat_password')) return refuse(400, 'The two new passwords are not the same.');

    // Throttled as signing in is, on the same counters: the current password is a password guess.
    const address = requestContext.getStore()?.ip ?? 'unknown';
    const retryAfter = await deps.limiter.begin(me.account.email, address);
    if (retryAfter > 0) {
      ctx.set('Retry-After', String(retryAfter));
      const minutes = Math.ceil(retryAfter / 60);
      return refuse(429, `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`);
    }
    const stored = await selectAccountForSignIn(deps.db, me.account.email);
    if (stored?.account.id !== me.account.id || !(await verifyPassword(stored.passwordHash, current))) {
      return refuse(400, 'The current password is not right.');
    }
    await deps.limiter.succeeded(me.account.email, address);
    await setPassword({ db: deps.db, bus: deps.bus, sessions: accountSessions, actor: personActor(me.account.id) }, me.account.id, next, {
      keepSession: me.currentSession,
    });
    seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=password-changed`);
  }

  async function signOut(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    await endSession(submitted.me, submitted.me.currentSession);
    await sessions.close(ctx);
    seeOther(ctx, SIGNED_OUT_PATH);
  }

  /**
   * The change context of a person's own factor change: audited as theirs, and ending every session
   * but this browser's (the factor services end the account's sessions, as a password change does).
   */
  function factorChange(me: SignedIn): FactorChangeContext {
    const keepingThisBrowser: AccountSessions = { revokeAccount: (accountId) => accountSessions.revokeAccount(accountId, { keepSession: me.currentSession }) };
    return { db: deps.db, bus: deps.bus, sessions: keepingThisBrowser, actor: personActor(me.account.id), settings: deps.factorSettings };
  }

  async function showTotp(ctx: Context, me: SignedIn, status: number, alert?: string): Promise<void> {
    const check = { db: deps.db, settings: deps.factorSettings };
    const enrolment = (await pendingTotpEnrolment(check, me.account)) ?? (await startTotpEnrolment(check, me.account));
    // The QR code is SVG markup drawn by the factor service from the enrolment URI, nothing of the request.
    sendPage(ctx, status, totpPage({ csrf: me.page.csrf, secret: enrolment.secret, qrSvg: new SafeHtml(enrolment.qrSvg), alert }));
  }

  async function totpForm(ctx: Context): Promise<void> {
    const me = await signedIn(ctx);
    if (!me) return startSignIn(ctx);
    try {
      await showTotp(ctx, me, 200);
    } catch (error) {
      // Already set up: the overview says so.
      if (error instanceof ConflictError) return seeOther(ctx, ACCOUNT_PAGE_PATH);
      throw error;
    }
  }

  async function confirmTotp(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    try {
      const { recoveryCodes } = await confirmTotpEnrolment(factorChange(submitted.me), submitted.me.account.id, submitted.fields.get('code') ?? '');
      if (recoveryCodes) return sendPage(ctx, 200, recoveryCodesPage(recoveryCodes));
      seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=totp-added`);
    } catch (error) {
      if (error instanceof FactorRejectedError) return showTotp(ctx, submitted.me, 400, 'That code is not right. Enter the code the app shows now.');
      if (error instanceof NotFoundError) return seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=gone`);
      throw error;
    }
  }

  /** A factor change that may find its factor already gone (another tab): then the overview says so. */
  const unlessGone = async (ctx: Context, change: () => Promise<unknown>, done: string) => {
    try {
      await change();
      seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=${done}`);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=gone`);
    }
  };

  async function removeTotpForm(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    await unlessGone(ctx, () => removeTotp(factorChange(submitted.me), submitted.me.account.id), 'totp-removed');
  }

  async function regenerateCodes(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    sendPage(ctx, 200, recoveryCodesPage(await regenerateRecoveryCodes(factorChange(submitted.me), submitted.me.account.id)));
  }

  /** The page that adds a passkey, with a new registration challenge bound to this page session. */
  async function showAddPasskey(ctx: Context, me: SignedIn, status: number, alert?: string): Promise<void> {
    const { options, challenge } = await startPasskeyRegistration({ db: deps.db, settings: deps.factorSettings }, me.account);
    await sessions.rememberPasskeyChallenge(ctx, challenge);
    // The sign-in pages' passkey script, allowed by its hash: the page's only script.
    sendPage(ctx, status, addPasskeyPage({ csrf: me.page.csrf, options, alert }), [PASSKEY_SCRIPT]);
  }

  async function addPasskeyForm(ctx: Context): Promise<void> {
    const me = await signedIn(ctx);
    if (!me) return startSignIn(ctx);
    await showAddPasskey(ctx, me, 200);
  }

  async function addPasskey(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    const { me, fields } = submitted;
    // Taken before anything is checked: a challenge answers once, whatever the outcome.
    const challenge = await sessions.takePasskeyChallenge(ctx);
    const response = passkeyResponseOf(fields.get('response'));
    try {
      if (!challenge || !response) throw new FactorRejectedError('wrong_challenge', 'this passkey request is no longer valid; try again');
      await finishPasskeyRegistration(factorChange(me), me.account.id, challenge, response as never);
    } catch (error) {
      if (error instanceof ConflictError) return showAddPasskey(ctx, me, 409, 'This passkey is already registered.');
      if (!(error instanceof FactorRejectedError)) throw error;
      // The reason and whom it concerned; never the browser's answer.
      deps.logger.warn({ accountId: me.account.id, reason: error.reason }, 'account page: passkey registration refused');
      return showAddPasskey(ctx, me, 400, `The passkey was refused: ${error.message}.`);
    }
    seeOther(ctx, `${ACCOUNT_PAGE_PATH}?done=passkey-added`);
  }

  /** The passkey a form names: its id is a UUID, so no other value is looked up. */
  const passkeyOf = (fields: Map<string, string>): string => {
    const id = fields.get('passkey') ?? '';
    if (!UUID.test(id)) throw new AccountPageError(400, 'invalid_request', 'no passkey was named');
    return id;
  };

  async function renamePasskeyForm(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    const { me, fields } = submitted;
    const passkey = passkeyOf(fields);
    try {
      await unlessGone(ctx, () => renamePasskey(factorChange(me), me.account.id, passkey, fields.get('name') ?? ''), 'passkey-renamed');
    } catch (error) {
      // An empty name: nothing to do.
      if (!(error instanceof ConflictError)) throw error;
      seeOther(ctx, ACCOUNT_PAGE_PATH);
    }
  }

  async function removePasskeyForm(ctx: Context): Promise<void> {
    const submitted = await form(ctx);
    if (!submitted) return;
    const { me, fields } = submitted;
    await unlessGone(ctx, () => removePasskey(factorChange(me), me.account.id, passkeyOf(fields)), 'passkey-removed');
  }

  /** Every failure becomes the error page; only expected errors show their description. */
  const guarded = (handler: (ctx: Context) => Promise<void>) => async (ctx: Context) => {
    setRoute('account');
    try {
      await handler(ctx);
    } catch (error) {
      sendPageFailure(ctx, error, error instanceof AccountPageError ? error : undefined, deps.logger, 'account page');
    }
  };

  router.get(ACCOUNT_PAGE_PATH, guarded(overview));
  router.get(ACCOUNT_CALLBACK_PATH, guarded(callback));
  router.post(ACCOUNT_ACTIONS.endSession, guarded(endSessionForm));
  router.post(ACCOUNT_ACTIONS.removeApp, guarded(removeAppForm));
  router.get(ACCOUNT_ACTIONS.password, guarded(passwordForm));
  router.post(ACCOUNT_ACTIONS.password, guarded(changePassword));
  router.post(ACCOUNT_ACTIONS.signOut, guarded(signOut));
  router.get(FACTOR_ACTIONS.totp, guarded(totpForm));
  router.post(FACTOR_ACTIONS.totp, guarded(confirmTotp));
  router.post(FACTOR_ACTIONS.removeTotp, guarded(removeTotpForm));
  router.post(FACTOR_ACTIONS.recoveryCodes, guarded(regenerateCodes));
  router.get(FACTOR_ACTIONS.addPasskey, guarded(addPasskeyForm));
  router.post(FACTOR_ACTIONS.addPasskey, guarded(addPasskey));
  router.post(FACTOR_ACTIONS.renamePasskey, guarded(renamePasskeyForm));
  router.post(FACTOR_ACTIONS.removePasskey, guarded(removePasskeyForm));
  router.get(SIGNED_OUT_PATH, (ctx) => {
    setRoute('account');
    sendPage(ctx, 200, signedOutPage());
  });
  return router;
}
