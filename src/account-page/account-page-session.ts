/**
 * The account page's own state in the browser: two cookies, each holding only a random 256-bit name
 * of a record in the token store (keyed by its digest, like every record there, with a TTL):
 * - the sign-in in progress (state, nonce, PKCE verifier), for the callback; ten minutes;
 * - the page session once signed in (the account, the provider session it came from, the CSRF token of
 *   its forms). It is only as alive as that provider session: every request checks that the session
 *   still exists (see AccountPage.signedIn), so ending the session anywhere (here, another browser,
 *   an admin, a sign-out) ends the page at once.
 * Beside the page session, keyed by the same name: the challenge of the passkey registration its
 * page has asked the browser for (five minutes, used once).
 * The cookies are HttpOnly, SameSite=Lax, Secure when the issuer is https, and scoped to /account.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { AdapterPayload } from 'oidc-provider';
import type { TokenStore } from '../tokens/token-store.js';
import { ACCOUNT_PAGE_PATH } from './account-page-client.js';

const SIGN_IN_COOKIE = 'account_sign_in';
const SESSION_COOKIE = 'account_session';
/** The token store models of the two records (the provider never reads them). */
const SIGN_IN_MODEL = 'AccountPageSignIn';
const SESSION_MODEL = 'AccountPageSession';
const PASSKEY_CHALLENGE_MODEL = 'AccountPagePasskeyChallenge';
/** How long a person has to finish signing in to the account page. */
const SIGN_IN_TTL_SECONDS = 10 * 60;
/** The longest a page session lives; the provider session (12 hours) bounds it anyway. */
const PAGE_SESSION_TTL_SECONDS = 12 * 60 * 60;
/** How long a person has to answer their device when adding a passkey (the WebAuthn timeout is shorter). */
const PASSKEY_CHALLENGE_TTL_SECONDS = 5 * 60;

const randomValue = (): string => randomBytes(32).toString('base64url');
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** A sign-in to the account page in progress: what the callback checks. */
export interface SignInTransaction {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** A signed-in page session. */
export interface PageSession {
  /** The account (the ID token's `sub`). */
  readonly accountId: string;
  /** The uid of the provider session the person signed in with (the one marked "this browser"). */
  readonly sessionUid: string;
  /** The anti-forgery token every form of the page carries. */
  readonly csrf: string;
}

/** Whether `presented` is `expected`, in time that does not depend on where they differ. */
export function sameToken(presented: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The account page's cookies and the records behind them. */
export class AccountPageSessions {
  readonly #signIns;
  readonly #sessions;
  readonly #passkeyChallenges;

  /**
   * @param store - where the records live (shared by every instance).
   * @param secureCookies - the issuer is https (the server behind a TLS-terminating proxy).
   */
  constructor(
    private readonly store: TokenStore,
    private readonly secureCookies: boolean,
  ) {
    this.#signIns = store.adapter(SIGN_IN_MODEL);
    this.#sessions = store.adapter(SESSION_MODEL);
    this.#passkeyChallenges = store.adapter(PASSKEY_CHALLENGE_MODEL);
  }

  /** Starts a sign-in: a new transaction, remembered in this browser. */
  async startSignIn(ctx: Context): Promise<SignInTransaction> {
    const id = randomValue();
    const transaction: SignInTransaction = { state: randomValue(), nonce: randomValue(), codeVerifier: randomValue() };
    // `state` is a field of the provider's own payloads (an object there): kept under another name.
    const payload: AdapterPayload = { expectedState: transaction.state, nonce: transaction.nonce, codeVerifier: transaction.codeVerifier };
    await this.#signIns.upsert(id, payload, SIGN_IN_TTL_SECONDS);
    this.#setCookie(ctx, SIGN_IN_COOKIE, id, SIGN_IN_TTL_SECONDS);
    return transaction;
  }

  /** The browser's sign-in in progress, used up: it can serve one callback only. */
  async takeSignIn(ctx: Context): Promise<SignInTransaction | undefined> {
    const id = this.#cookie(ctx, SIGN_IN_COOKIE);
    this.#clearCookie(ctx, SIGN_IN_COOKIE);
    if (id === undefined) return undefined;
    const payload = await this.store.take(SIGN_IN_MODEL, id);
    const { expectedState: state, nonce, codeVerifier } = payload ?? {};
    return typeof state === 'string' && typeof nonce === 'string' && typeof codeVerifier === 'string' ? { state, nonce, codeVerifier } : undefined;
  }

  /** Opens a page session for the account signed in with the provider session `sessionUid`. */
  async open(ctx: Context, accountId: string, sessionUid: string): Promise<void> {
    const id = randomValue();
    const session: PageSession = { accountId, sessionUid, csrf: randomValue() };
    await this.#sessions.upsert(id, { ...session }, PAGE_SESSION_TTL_SECONDS);
    this.#setCookie(ctx, SESSION_COOKIE, id, PAGE_SESSION_TTL_SECONDS);
  }

  /** The browser's page session, if it has one (whether its provider session lives is checked by the caller). */
  async current(ctx: Context): Promise<PageSession | undefined> {
    const id = this.#cookie(ctx, SESSION_COOKIE);
    if (id === undefined) return undefined;
    const { accountId, sessionUid, csrf } = (await this.#sessions.find(id)) ?? {};
    return typeof accountId === 'string' && typeof sessionUid === 'string' && typeof csrf === 'string' ? { accountId, sessionUid, csrf } : undefined;
  }

  /** Remembers the challenge of the passkey registration the browser's page session has just asked for (replacing any earlier one). */
  async rememberPasskeyChallenge(ctx: Context, challenge: string): Promise<void> {
    const id = this.#cookie(ctx, SESSION_COOKIE);
    if (id === undefined) throw new Error('no page session to bind the passkey challenge to');
    await this.#passkeyChallenges.upsert(id, { challenge }, PASSKEY_CHALLENGE_TTL_SECONDS);
  }

  /** The challenge the browser's page session asked for, used up: one answer per challenge. */
  async takePasskeyChallenge(ctx: Context): Promise<string | undefined> {
    const id = this.#cookie(ctx, SESSION_COOKIE);
    if (id === undefined) return undefined;
    const { challenge } = (await this.store.take(PASSKEY_CHALLENGE_MODEL, id)) ?? {};
    return typeof challenge === 'string' ? challenge : undefined;
  }

  /** Ends the browser's page session. */
  async close(ctx: Context): Promise<void> {
    const id = this.#cookie(ctx, SESSION_COOKIE);
    this.#clearCookie(ctx, SESSION_COOKIE);
    if (id !== undefined) await Promise.all([this.#sessions.destroy(id), this.#passkeyChallenges.destroy(id)]);
  }

  #cookie(ctx: Context, name: string): string | undefined {
    const value = ctx.cookies.get(name);
    return value !== undefined && COOKIE_VALUE.test(value) ? value : undefined;
  }

  // Written by hand rather than through ctx.cookies: behind a TLS-terminating proxy the connection is
  // plain HTTP (Koa's `secure` is false), yet the cookie must be Secure when the issuer is https.
  #setCookie(ctx: Context, name: string, value: string, maxAgeSeconds: number): void {
    const attributes = [`${name}=${value}`, `Path=${ACCOUNT_PAGE_PATH}`, `Max-Age=${maxAgeSeconds}`, 'HttpOnly', 'SameSite=Lax'];
    if (this.secureCookies) attributes.push('Secure');
    ctx.append('Set-Cookie', attributes.join('; '));
  }

  #clearCookie(ctx: Context, name: string): void {
    if (ctx.cookies.get(name) === undefined) return;
    const attributes = [`${name}=`, `Path=${ACCOUNT_PAGE_PATH}`, 'Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'HttpOnly', 'SameSite=Lax'];
    if (this.secureCookies) attributes.push('Secure');
    ctx.append('Set-Cookie', attributes.join('; '));
  }
}
