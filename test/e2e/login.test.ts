/**
 * The people side end to end: sign-in and consent pages, the authorization code flow with PKCE,
 * refresh tokens, ID tokens, userinfo, logout, sign-in limits, and the token policy for user tokens.
 * A browser-like fetch client walks the pages; oauth4webapi is the relying party.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type Page, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
// Never contacted: the browser stops at the client's redirect URI and the test reads the code from it.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const SIGNED_OUT_URI = 'http://127.0.0.1:9/signed-out';

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let orders: { identifier: string; introspection: { client_id: string; client_secret: string } };
let webApp: TestClient & { client_secret: string };
let partner: TestClient;

beforeAll(async () => {
  server = await startServer({ env: { TRUST_PROXY: 'true' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  orders = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('orders'),
    name: 'Orders',
    scopes: ['orders:read', 'orders:refund'],
    sensitive_scopes: ['orders:refund'],
  });
  const common = {
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [SIGNED_OUT_URI],
    resources: [orders.identifier],
  };
  const web = await registerClient(server.issuer, admin, {
    ...common,
    client_name: 'Intranet',
    trust: 'internal',
    scope: 'openid profile email offline_access orders:read orders:refund',
  });
  webApp = { ...web, redirect_uri: REDIRECT_URI };
  const spa = await registerClient(server.issuer, admin, {
    ...common,
    client_name: 'Partner <Portal>',
    trust: 'external',
    token_endpoint_auth_method: 'none',
    scope: 'openid profile email offline_access orders:read',
  });
  partner = { client_id: spa.client_id, redirect_uri: REDIRECT_URI };
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const authOf = (client: TestClient) => (client.client_secret ? oauth.ClientSecretBasic(client.client_secret) : oauth.None());

/** Signs `account` in to `client` through the pages, approving consent when asked; the callback URL. */
async function signInThrough(browser: Browser, client: TestClient, account: { email: string; password: string }, params: Record<string, string> = {}) {
  const start = await authorizationUrl(as, client, params);
  const loginPage = await browser.navigate(start.url);
  expect(loginPage.status).toBe(200);
  let after = await signIn(browser, loginPage, account.email, account.password);
  if (after.status === 200 && after.body.includes('>Allow</button>')) after = await browser.navigate(formAction(after, 'Allow'), { form: {} });
  expect(after.url).toMatch(new RegExp(`^${REDIRECT_URI}`));
  return { start, callback: new URL(after.url) };
}

/** Exchanges the code of `callback`; `resource` names an API, without it the token is for userinfo. */
async function exchange(client: TestClient, start: { verifier: string; state: string; nonce: string }, callback: URL, resource?: string) {
  const params = oauth.validateAuthResponse(as, client, callback, start.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, authOf(client), params, client.redirect_uri, start.verifier, {
    ...insecure,
    ...(resource ? { additionalParameters: { resource } } : {}),
  });
  return oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: start.nonce, requireIdToken: true });
}

async function refresh(client: TestClient, refreshToken: string, resource?: string) {
  const response = await oauth.refreshTokenGrantRequest(as, client, authOf(client), refreshToken, {
    ...insecure,
    ...(resource ? { additionalParameters: { resource } } : {}),
  });
  return oauth.processRefreshTokenResponse(as, client, response);
}

/** A token for userinfo: a refresh asking for OpenID scopes only. */
async function refreshForUserinfo(client: TestClient, refreshToken: string, scope = 'openid profile email') {
  const response = await oauth.refreshTokenGrantRequest(as, client, authOf(client), refreshToken, {
    ...insecure,
    additionalParameters: { scope },
  });
  return oauth.processRefreshTokenResponse(as, client, response);
}

/** The OAuth error code a rejected call fails with. */
async function oauthError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { error?: string }).error ?? String(error);
  }
  throw new Error('expected an OAuth error');
}

async function userinfoStatus(accessToken: string): Promise<number> {
  const response = await fetch(as.userinfo_endpoint!, { headers: { authorization: `Bearer ${accessToken}` } });
  await response.arrayBuffer();
  return response.status;
}

const isJwt = (token: string) => token.split('.').length === 3;

describe('an internal web app (confidential client)', () => {
  it('signs a person in without a consent page; ID token, userinfo, and a JWT for its internal API', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Grace Hopper' });
    const browser = new Browser(REDIRECT_URI);
    const { start, callback } = await signInThrough(browser, webApp, account, { scope: 'openid profile email offline_access orders:read', prompt: 'consent' });

    // It asked for its API's scope: the code exchange's token is for the API (no `resource` needed),
    // and the ID token carries the person's claims.
    const tokens = await exchange(webApp, start, callback);
    const idToken = oauth.getValidatedIdTokenClaims(tokens)!;
    expect(idToken).toMatchObject({
      iss: server.issuer,
      sub: account.id,
      aud: webApp.client_id,
      nonce: start.nonce,
      email: account.email,
      name: 'Grace Hopper',
    });
    expect(isJwt(tokens.access_token)).toBe(true);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, tokens.access_token)).toMatchObject({
      active: true,
      aud: orders.identifier,
    });

    const forUserinfo = await refreshForUserinfo(webApp, tokens.refresh_token!);
    expect(isJwt(forUserinfo.access_token)).toBe(false);
    const userinfo = await oauth.processUserInfoResponse(as, webApp, account.id, await oauth.userInfoRequest(as, webApp, forUserinfo.access_token, insecure));
    expect(userinfo).toEqual({ sub: account.id, email: account.email, email_verified: false, name: 'Grace Hopper' });

    // Internal client, JWT audience, no sensitive scope: a JWT that verifies against the JWKS.
    const api = await refresh(webApp, forUserinfo.refresh_token ?? tokens.refresh_token!, orders.identifier);
    expect(isJwt(api.access_token)).toBe(true);
    expect(decodeProtectedHeader(api.access_token).typ).toBe('at+jwt');
    const { payload } = await jwtVerify(api.access_token, createRemoteJWKSet(new URL(as.jwks_uri!)), { issuer: server.issuer, audience: orders.identifier });
    expect(payload).toMatchObject({ sub: account.id, client_id: webApp.client_id, scope: 'orders:read' });
    expect(api.expires_in).toBe(300);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, api.access_token)).toMatchObject({
      active: true,
      sub: account.id,
    });
  });

  it('revoking its refresh token revokes the grant: the JWT access tokens of it introspect inactive at once', async () => {
    const account = await createAccount(server.issuer, admin);
    const { start, callback } = await signInThrough(new Browser(REDIRECT_URI), webApp, account, {
      scope: 'openid offline_access orders:read',
      prompt: 'consent',
    });
    const tokens = await exchange(webApp, start, callback);
    const api = await refresh(webApp, tokens.refresh_token!, orders.identifier);
    expect(isJwt(api.access_token)).toBe(true);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, api.access_token)).toMatchObject({ active: true });

    const revocation = await oauth.revocationRequest(as, webApp, authOf(webApp), api.refresh_token ?? tokens.refresh_token!, insecure);
    expect(revocation.status).toBe(200);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, api.access_token)).toEqual({ active: false });
    expect(await oauthError(refresh(webApp, api.refresh_token ?? tokens.refresh_token!, orders.identifier))).toBe('invalid_grant');
  });

  it('gets an opaque token when it asks its API for a sensitive scope', async () => {
    const account = await createAccount(server.issuer, admin);
    const { start, callback } = await signInThrough(new Browser(REDIRECT_URI), webApp, account, { scope: 'openid orders:refund' });
    const tokens = await exchange(webApp, start, callback, orders.identifier);
    expect(isJwt(tokens.access_token)).toBe(false);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, tokens.access_token)).toMatchObject({
      active: true,
      sub: account.id,
      scope: 'orders:refund',
    });
  });

  it('issues no refresh token without offline_access', async () => {
    const account = await createAccount(server.issuer, admin);
    const { start, callback } = await signInThrough(new Browser(REDIRECT_URI), webApp, account, { scope: 'openid email' });
    const tokens = await exchange(webApp, start, callback);
    expect(tokens.refresh_token).toBeUndefined();
  });
});

describe('an external app (public client, PKCE)', () => {
  it('must use PKCE: without a code challenge the request is refused', async () => {
    const start = await authorizationUrl(as, partner, {}, { pkce: false });
    const answer = await new Browser(REDIRECT_URI).navigate(start.url);
    const callback = new URL(answer.url);
    expect(callback.href).toMatch(new RegExp(`^${REDIRECT_URI}`));
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('rejects a code exchange with the wrong code verifier', async () => {
    const account = await createAccount(server.issuer, admin);
    const { start, callback } = await signInThrough(new Browser(REDIRECT_URI), partner, account);
    expect(await oauthError(exchange(partner, { ...start, verifier: oauth.generateRandomCodeVerifier() }, callback))).toBe('invalid_grant');
  });

  it('shows the consent page with the client name and what it asks for in words; approving gives an opaque token', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const start = await authorizationUrl(as, partner, { scope: 'openid email orders:read' });
    const consent = await signIn(browser, await browser.navigate(start.url), account.email, account.password);
    expect(consent.status).toBe(200);
    expect(consent.body).toContain('Partner &#60;Portal&#62;');
    expect(consent.body).not.toContain('Partner <Portal>');
    expect(consent.body).toContain('See your email address');
    expect(consent.body).toContain('Use Orders for you');
    expect(consent.body).toContain(account.email);
    expect(consent.body.match(/<button[^>]*type="submit"/g)).toHaveLength(2);

    const approved = await browser.navigate(formAction(consent, 'Allow'), { form: {} });
    const tokens = await exchange(partner, start, new URL(approved.url), orders.identifier);
    // External client: opaque, whatever the audience's format.
    expect(isJwt(tokens.access_token)).toBe(false);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, tokens.access_token)).toMatchObject({
      active: true,
      sub: account.id,
      client_id: partner.client_id,
      scope: 'orders:read',
    });
  });

  it('denying consent sends the client access_denied', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const start = await authorizationUrl(as, partner, { scope: 'openid email' });
    const consent = await signIn(browser, await browser.navigate(start.url), account.email, account.password);
    const denied = await browser.navigate(formAction(consent, 'Deny'), { form: {} });
    const callback = new URL(denied.url);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(start.state);
    expect(callback.searchParams.get('code')).toBeNull();
  });

  it('rotates its refresh token on every use; reusing a spent one revokes the whole grant', async () => {
    const account = await createAccount(server.issuer, admin);
    const { start, callback } = await signInThrough(new Browser(REDIRECT_URI), partner, account, {
      scope: 'openid offline_access orders:read',
      prompt: 'consent',
    });
    const first = await exchange(partner, start, callback);
    const second = await refresh(partner, first.refresh_token!, orders.identifier);
    expect(second.refresh_token).toBeDefined();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    const third = await refresh(partner, second.refresh_token!, orders.identifier);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, third.access_token)).toMatchObject({ active: true });

    // The spent first token comes back (stolen, say): the grant dies, with every token of it.
    expect(await oauthError(refresh(partner, first.refresh_token!))).toBe('invalid_grant');
    expect(await oauthError(refresh(partner, third.refresh_token!))).toBe('invalid_grant');
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, third.access_token)).toEqual({ active: false });
  });
});

describe('a disabled account', () => {
  it('loses its sessions, grants and tokens at once, and cannot sign in', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { start, callback } = await signInThrough(browser, webApp, account, { scope: 'openid email offline_access orders:read', prompt: 'consent' });
    const tokens = await exchange(webApp, start, callback);
    const jwt = await refresh(webApp, tokens.refresh_token!, orders.identifier);
    const sensitive = await refresh(webApp, tokens.refresh_token!, orders.identifier);
    const forUserinfo = await refreshForUserinfo(webApp, tokens.refresh_token!, 'openid email');
    expect(await userinfoStatus(forUserinfo.access_token)).toBe(200);

    const patched = await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { disabled: true });
    expect(patched.status).toBe(200);
    expect(patched.body.disabled).toBe(true);

    expect(await oauthError(refresh(webApp, tokens.refresh_token!))).toBe('invalid_grant');
    expect(await userinfoStatus(forUserinfo.access_token)).toBe(401);
    for (const token of [jwt.access_token, sensitive.access_token]) {
      expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, token)).toEqual({ active: false });
    }
    // The session is gone: the next authorization request asks for a sign-in, which fails.
    const again = await browser.navigate((await authorizationUrl(as, webApp)).url);
    expect(again.body).toContain('name="password"');
    const refused = await signIn(browser, again, account.email, account.password);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('The email or password is not right.');

    // Enabled again, it signs in anew, but the tokens from before stay dead.
    expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { disabled: false })).status).toBe(200);
    expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, jwt.access_token)).toEqual({ active: false });
    // No pause: a sign-in in the same second as the disabling waits for the next one itself.
    const { start: restart, callback: recallback } = await signInThrough(new Browser(REDIRECT_URI), webApp, account);
    expect((await exchange(webApp, restart, recallback)).access_token).toEqual(expect.any(String));
  });
});

describe('a new password', () => {
  it('signing in with it at once, in the same second as the change, gives working tokens; the old ones are dead', async () => {
    const account = await createAccount(server.issuer, admin);
    const before = await signInThrough(new Browser(REDIRECT_URI), webApp, account, { scope: 'openid offline_access' });
    const old = await exchange(webApp, before.start, before.callback);
    // Start at the top of a second, so that the change and the next sign-in share it: tokens carry
    // their issue time in whole seconds, and the change revokes everything issued up to its second.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000)));
    const password = `new-${account.password}`;
    expect((await adminCall(server.issuer, admin, 'POST', `/accounts/${account.id}/password`, { password })).status).toBe(204);
    const after = await signInThrough(new Browser(REDIRECT_URI), webApp, { email: account.email, password }, { scope: 'openid offline_access' });
    const fresh = await exchange(webApp, after.start, after.callback);
    expect(await oauthError(refresh(webApp, old.refresh_token!))).toBe('invalid_grant');
    expect((await refresh(webApp, fresh.refresh_token!)).access_token).toEqual(expect.any(String));
  });
});

describe('sign-in protection', () => {
  /** Submits the sign-in form once with a fresh authorization request; the page and its duration. */
  async function attempt(browser: Browser, email: string, password: string): Promise<{ page: Page; ms: number }> {
    const loginPage = await browser.navigate((await authorizationUrl(as, webApp)).url);
    const started = performance.now();
    const page = await signIn(browser, loginPage, email, password);
    return { page, ms: performance.now() - started };
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

  it('answers an unknown email and a wrong password alike: status, page and timing', async () => {
    const account = await createAccount(server.issuer, admin);
    const unknownEmail = `nobody-${Date.now()}@example.test`;
    const browser = new Browser(REDIRECT_URI);
    const unknown: number[] = [];
    const wrong: number[] = [];
    let unknownPage: Page | undefined;
    let wrongPage: Page | undefined;
    for (let i = 0; i < 7; i++) {
      const a = await attempt(browser, unknownEmail, 'not-the-password-at-all');
      const b = await attempt(browser, account.email, 'not-the-password-at-all');
      unknown.push(a.ms);
      wrong.push(b.ms);
      [unknownPage, wrongPage] = [a.page, b.page];
    }
    expect(unknownPage!.status).toBe(wrongPage!.status);
    const normalise = (page: Page, email: string) =>
      page.body
        .replaceAll(email, 'EMAIL')
        .replace(/\/interaction\/[^/"]+/g, '/interaction/UID')
        .replace(/"challenge":"[^"]+"/, '"challenge":"CHALLENGE"');
    expect(normalise(unknownPage!, unknownEmail)).toBe(normalise(wrongPage!, account.email));
    const [u, w] = [median(unknown), median(wrong)];
    console.log(`sign-in failure timing (median of 7): unknown email ${u.toFixed(1)} ms, wrong password ${w.toFixed(1)} ms`);
    // Both do one argon2id verification. Without the dummy hash an unknown email would answer in a
    // tenth of the time; the margin leaves room for a busy machine.
    expect(Math.min(u, w)).toBeGreaterThan(Math.max(u, w) * 0.35);
  });

  it('the 10th failure in a row for one email is the last one checked; the next attempt answers 429 with Retry-After, even for the right password', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    for (let i = 0; i < 10; i++) expect((await attempt(browser, account.email.toUpperCase(), 'wrong-password-guess')).page.status).toBe(400);
    const blocked = await attempt(browser, account.email, account.password);
    expect(blocked.page.status).toBe(429);
    const retryAfter = Number(blocked.page.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(blocked.page.body).toContain('Too many failed attempts');
    // Another email from the same address still signs in.
    const other = await createAccount(server.issuer, admin);
    await signInThrough(browser, webApp, other);
  });

  it('14 wrong passwords for one email in parallel: exactly 10 are checked, the other 4 answer 429; then the right password answers 429', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const action = formAction(await browser.navigate((await authorizationUrl(as, webApp)).url));
    const pages = await Promise.all(
      Array.from({ length: 14 }, (_, i) => browser.navigate(action, { form: { email: account.email, password: `parallel-guess-${i}` } })),
    );
    expect(pages.filter((page) => page.status === 400)).toHaveLength(10);
    const refused = pages.filter((page) => page.status === 429);
    expect(refused).toHaveLength(4);
    for (const page of refused) expect(Number(page.headers.get('retry-after'))).toBeGreaterThan(0);
    const blocked = await browser.navigate(action, { form: { email: account.email, password: account.password } });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('the 50th failure from one address is the last one checked; the next attempt answers 429', async () => {
    const browser = new Browser(REDIRECT_URI);
    const loginPage = await browser.navigate((await authorizationUrl(as, webApp)).url);
    const action = formAction(loginPage);
    for (let i = 0; i < 50; i++) {
      const page = await browser.navigate(action, { form: { email: `spray-${i}-${Date.now()}@example.test`, password: 'Winter2026!!' } });
      expect(page.status).toBe(400);
    }
    const blocked = await browser.navigate(action, { form: { email: `spray-last@example.test`, password: 'Winter2026!!' } });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // A person at another address is not affected.
    await signInThrough(new Browser(REDIRECT_URI), webApp, await createAccount(server.issuer, admin));
  });

  it('55 attempts from one address in parallel, each for another email: exactly 50 are checked, the other 5 answer 429', async () => {
    const browser = new Browser(REDIRECT_URI);
    const action = formAction(await browser.navigate((await authorizationUrl(as, webApp)).url));
    const pages = await Promise.all(
      Array.from({ length: 55 }, (_, i) =>
        browser.navigate(action, { form: { email: `parallel-spray-${i}-${Date.now()}@example.test`, password: 'Winter2026!!' } }),
      ),
    );
    expect(pages.filter((page) => page.status === 400)).toHaveLength(50);
    expect(pages.filter((page) => page.status === 429)).toHaveLength(5);
  }, 60_000);

  it('an email no account can have (a NUL, undecodable UTF-8, too long) is a failed sign-in: the form again, with its error', async () => {
    const browser = new Browser(REDIRECT_URI);
    const action = formAction(await browser.navigate((await authorizationUrl(as, webApp)).url));
    const emails = ['person\0@example.test', '\0', `${'a'.repeat(400)}@example.test`];
    for (const email of emails) {
      const page = await browser.navigate(action, { form: { email, password: 'wrong-password-guess' } });
      expect({ email, status: page.status }).toEqual({ email, status: 400 });
      expect(page.body).toContain('The email or password is not right.');
      expect(page.body).toContain('name="password"');
    }
    // Raw bytes that are not UTF-8, in the email and in the password.
    for (const rawForm of ['email=person%FF%FE%40example.test&password=x', 'email=%C0%80%40example.test&password=%FF']) {
      const page = await browser.navigate(action, { rawForm });
      expect({ rawForm, status: page.status }).toEqual({ rawForm, status: 400 });
      expect(page.body).toContain('The email or password is not right.');
    }
  });

  it('a chunked sign-in form (no Content-Length) over the form limit answers 413, counted as it arrives', async () => {
    const browser = new Browser(REDIRECT_URI);
    const action = formAction(await browser.navigate((await authorizationUrl(as, webApp)).url));
    const page = await browser.navigate(action, { rawForm: `email=a%40example.test&password=${'x'.repeat(9 * 1024)}`, chunked: true });
    expect(page.status).toBe(413);
    expect(page.body).toContain('invalid_request');
    // Within the limit, a chunked form is read as any other.
    const small = await browser.navigate(action, { rawForm: 'email=a%40example.test&password=wrong-password-guess', chunked: true });
    expect(small.status).toBe(400);
  });

  it('error pages show the reference of their request: its X-Request-Id', async () => {
    const browser = new Browser(REDIRECT_URI);
    // Our interaction error page (no sign-in session here) and the provider's (an unknown client).
    for (const page of [
      await browser.request(`${server.issuer}/interaction/no-such-interaction`),
      await browser.request(`${server.issuer}/auth?client_id=nobody&response_type=code&scope=openid`),
    ]) {
      expect(page.status).toBe(400);
      const requestId = page.headers.get('x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(page.body).toContain(`<code>${requestId}</code>`);
    }
  });
});

describe('logout (RP-initiated)', () => {
  it('confirms on our page, ends the session and returns to the registered post-logout URI', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { start, callback } = await signInThrough(browser, webApp, account);
    const tokens = await exchange(webApp, start, callback);
    const logoutUrl = new URL(as.end_session_endpoint!);
    logoutUrl.searchParams.set('id_token_hint', tokens.id_token!);
    logoutUrl.searchParams.set('post_logout_redirect_uri', SIGNED_OUT_URI);
    logoutUrl.searchParams.set('state', 'bye');
    const confirm = await browser.navigate(logoutUrl.href);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Sign out?');
    expect(confirm.headers.get('content-security-policy')).toContain("form-action 'self' http://127.0.0.1:9");
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
    const done = await browser.request(formAction(confirm), { form: { xsrf, logout: 'yes' } });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`${SIGNED_OUT_URI}?state=bye`);

    // Signed out: the next authorization request shows the sign-in page again.
    const next = await browser.navigate((await authorizationUrl(as, webApp)).url);
    expect(next.body).toContain('name="password"');
  });
});

describe('the pages', () => {
  it('are accessible, self-contained HTML with strict security headers', async () => {
    const browser = new Browser(REDIRECT_URI);
    const page = await browser.navigate((await authorizationUrl(as, webApp)).url);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    for (const directive of ["default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self' http://127.0.0.1:9"]) {
      expect(csp).toContain(directive);
    }
    // One script only: the passkey sign-in's, allowed by its hash (no 'unsafe-inline', no source).
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+={0,2}';/);
    const scripts = [...page.body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => createHash('sha256').update(m[1]).digest('base64'));
    expect(scripts.map((hash) => `script-src 'sha256-${hash}'`)).toEqual([/script-src '[^']+'/.exec(csp)![0]]);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.body).toMatch(/<html lang="en">/);
    expect(page.body).toMatch(/<title>Sign in · /);
    expect(page.body).toContain('<label for="email">');
    expect(page.body).toContain('<label for="password">');
    expect(page.body).toContain('name="viewport"');
    expect(page.body.match(/<button[^>]*type="submit"/g)).toHaveLength(1);
    // Nothing from elsewhere: no script source, no stylesheet or script of another site.
    expect(page.body).not.toMatch(/<script[^>]*\ssrc=|https?:\/\/(?!127\.0\.0\.1)[^"]*\.(css|js)/);
    const css = await fetch(new URL(/href="([^"]+\.css)"/.exec(page.body)![1], server.issuer));
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/text\/css/);
    expect(await css.text()).toContain(':focus-visible');
  });

  it('show errors on our error page (an unknown client), with a reference and no stack trace', async () => {
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({ client_id: 'no-such-client', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI }).toString();
    const page = await new Browser(REDIRECT_URI).navigate(url.href);
    expect(page.status).toBe(400);
    expect(page.body).toContain('Something went wrong');
    expect(page.body).toContain('invalid_client');
    expect(page.body).toContain(page.headers.get('x-request-id')!);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.body).not.toMatch(/at .*\.js:\d+/);
  });

  it('an interaction without its cookie (another browser) lands on the error page', async () => {
    const page = await new Browser(REDIRECT_URI).navigate((await authorizationUrl(as, webApp)).url);
    const stranger = await new Browser(REDIRECT_URI).request(formAction(page), { form: { email: 'a@example.test', password: 'whatever-password' } });
    expect(stranger.status).toBe(400);
    expect(stranger.body).toContain('session_not_found');
  });

  it('cookies are httpOnly and SameSite=Lax', async () => {
    const browser = new Browser(REDIRECT_URI);
    await browser.navigate((await authorizationUrl(as, webApp)).url);
    expect(browser.setCookies.length).toBeGreaterThan(0);
    for (const cookie of browser.setCookies) {
      expect(cookie).toMatch(/; httponly/i);
      expect(cookie).toMatch(/; samesite=lax/i);
    }
  });

  it('every URL the provider builds comes from the issuer, not the Host header', async () => {
    const response = await fetch(`${server.issuer}/.well-known/openid-configuration`, { headers: { 'x-forwarded-host': 'evil.example.test' } });
    const document = (await response.json()) as Record<string, string>;
    expect(document.authorization_endpoint).toBe(`${server.issuer}/auth`);
  });
});

describe('an https issuer (behind a TLS-terminating proxy)', () => {
  it('marks its cookies Secure', async () => {
    const https = await startServer({ env: { ISSUER: 'https://login.example.test' } });
    try {
      const url = new URL('/auth', `http://localhost:${https.port}`);
      url.search = new URLSearchParams({
        client_id: webApp.client_id,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT_URI,
        code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
        code_challenge_method: 'S256',
      }).toString();
      const browser = new Browser(REDIRECT_URI);
      const answer = await browser.request(url.href);
      expect(answer.status).toBe(303);
      expect(answer.headers.get('location')).toMatch(/^\/interaction\//);
      expect(browser.setCookies.length).toBeGreaterThan(0);
      for (const cookie of browser.setCookies) expect(cookie).toMatch(/; secure/i);
    } finally {
      await https.stop();
    }
  }, 60_000);
});
