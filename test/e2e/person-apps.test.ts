/**
 * What person-facing apps met (issue 11), end to end with outside clients: POST to the authorization
 * and logout endpoints, other methods on protocol endpoints, the token an app with an API gets from a
 * code exchange that does not repeat `resource`, and refresh tokens for internal apps asking for
 * offline_access. openid-client is the relying party; a fetch-based browser walks the pages.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as client from 'openid-client';
import { Browser, createAccount, formAction, signIn } from '../helpers/login.js';
import { adminToken, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

// Never contacted: the browser stops at the client's redirect URI and the test reads the code from it.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const SIGNED_OUT_URI = 'http://127.0.0.1:9/signed-out';

let server: RunningServer;
let admin: string;
let orders: { identifier: string; introspection: { client_id: string; client_secret: string } };
let internalApp: client.Configuration;
let externalApp: client.Configuration;

async function relyingParty(clientId: string, clientSecret: string): Promise<client.Configuration> {
  return client.discovery(new URL(server.issuer), clientId, clientSecret, client.ClientSecretBasic(clientSecret), {
    execute: [client.allowInsecureRequests],
  });
}

beforeAll(async () => {
  server = await startServer();
  admin = await adminToken(server.issuer);
  orders = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('orders'), name: 'Orders', scopes: ['orders:read'] });
  const common = {
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [SIGNED_OUT_URI],
    resources: [orders.identifier],
    scope: 'openid profile email offline_access orders:read',
  };
  const internal = await registerClient(server.issuer, admin, { ...common, client_name: 'Shop back office', trust: 'internal' });
  const external = await registerClient(server.issuer, admin, { ...common, client_name: 'Partner shop', trust: 'external' });
  [internalApp, externalApp] = await Promise.all([
    relyingParty(internal.client_id, internal.client_secret),
    relyingParty(external.client_id, external.client_secret),
  ]);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** RFC 7662 introspection with the API's own credentials, as the API would. */
const introspectAsApi = async (token: string) =>
  introspect(await discover(server.issuer), orders.introspection.client_id, orders.introspection.client_secret, token);

/** An authorization request's parameters (code flow, PKCE) and the checks for its callback. */
async function authorizationRequest(params: Record<string, string>) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce(), idTokenExpected: true };
  const parameters = {
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    ...params,
  };
  return { parameters, checks };
}

/** From the sign-in page to the client's callback, approving consent if asked. */
async function completeSignIn(
  browser: Browser,
  loginPage: { status: number; body: string; url: string; headers: Headers },
  account: { email: string; password: string },
) {
  expect(loginPage.status).toBe(200);
  expect(loginPage.body).toContain('name="password"');
  let after = await signIn(browser, loginPage, account.email, account.password);
  if (after.status === 200 && after.body.includes('>Allow</button>')) after = await browser.navigate(formAction(after, 'Allow'), { form: {} });
  expect(after.url.startsWith(REDIRECT_URI)).toBe(true);
  return new URL(after.url);
}

/** Signs `account` in to `config`'s client with an ordinary GET authorization request; the tokens. */
async function signInWith(
  config: client.Configuration,
  account: { email: string; password: string },
  params: Record<string, string>,
  exchangeParams?: Record<string, string>,
) {
  const { parameters, checks } = await authorizationRequest(params);
  const browser = new Browser(REDIRECT_URI);
  const callback = await completeSignIn(browser, await browser.navigate(client.buildAuthorizationUrl(config, parameters).href), account);
  return client.authorizationCodeGrant(config, callback, checks, exchangeParams);
}

describe('POST to the authorization and logout endpoints (OpenID Connect Core 3.1.2.1, RP-Initiated Logout 2)', () => {
  it('a form POST of an authorization request is answered with a 303 to the same request as GET, and signs the person in', async () => {
    const account = await createAccount(server.issuer, admin);
    const { parameters, checks } = await authorizationRequest({ scope: 'openid email' });
    const browser = new Browser(REDIRECT_URI);
    const endpoint = internalApp.serverMetadata().authorization_endpoint!;

    const posted = await browser.request(endpoint, { form: { client_id: internalApp.clientMetadata().client_id, ...parameters } });
    expect(posted.status).toBe(303);
    const location = new URL(posted.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(endpoint);
    expect(Object.fromEntries(location.searchParams)).toEqual({ client_id: internalApp.clientMetadata().client_id, ...parameters });

    const callback = await completeSignIn(browser, await browser.navigate(location.href), account);
    const tokens = await client.authorizationCodeGrant(internalApp, callback, checks);
    expect(tokens.claims()!.sub).toBe(account.id);
    // The session cookies are still SameSite=Lax: the 303 is what lets them work with a POST.
    const sessionCookies = browser.setCookies.filter((cookie) => /^_session=/.test(cookie));
    expect(sessionCookies.length).toBeGreaterThan(0);
    for (const cookie of sessionCookies) expect(cookie).toMatch(/samesite=lax/i);
  });

  it('a form POST to end_session is answered with a 303 to the GET, and logs the person out', async () => {
    const account = await createAccount(server.issuer, admin);
    const { parameters, checks } = await authorizationRequest({ scope: 'openid' });
    const browser = new Browser(REDIRECT_URI);
    const callback = await completeSignIn(browser, await browser.navigate(client.buildAuthorizationUrl(internalApp, parameters).href), account);
    const tokens = await client.authorizationCodeGrant(internalApp, callback, checks);

    const endSession = internalApp.serverMetadata().end_session_endpoint!;
    const posted = await browser.request(endSession, {
      form: { id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT_URI, state: 'bye' },
    });
    expect(posted.status).toBe(303);
    const confirm = await browser.navigate(new URL(posted.headers.get('location')!, endSession).href);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Sign out?');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
    const done = await browser.request(formAction(confirm), { form: { xsrf, logout: 'yes' } });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`${SIGNED_OUT_URI}?state=bye`);
    // Signed out: a new authorization request shows the sign-in page.
    const again = await browser.navigate(client.buildAuthorizationUrl(internalApp, (await authorizationRequest({ scope: 'openid' })).parameters).href);
    expect(again.body).toContain('name="password"');
  });

  it('other methods on protocol endpoints answer 405 with Allow and an OAuth error, never a bare 404', async () => {
    const metadata = internalApp.serverMetadata();
    const cases: Array<[string | undefined, string, RegExp]> = [
      [metadata.authorization_endpoint, 'PUT', /GET.*POST/],
      [metadata.end_session_endpoint, 'DELETE', /GET.*POST/],
      [metadata.token_endpoint, 'GET', /^POST/],
      [metadata.introspection_endpoint, 'GET', /^POST/],
      [metadata.revocation_endpoint, 'PUT', /^POST/],
      [metadata.userinfo_endpoint, 'DELETE', /GET/],
      [metadata.jwks_uri, 'POST', /^GET/],
      [metadata.pushed_authorization_request_endpoint, 'GET', /^POST/],
      [`${server.issuer}/.well-known/openid-configuration`, 'POST', /^GET/],
    ];
    for (const [url, method, allow] of cases) {
      expect(url).toBeDefined();
      const response = await fetch(url!, { method });
      expect({ url, method, status: response.status }).toEqual({ url, method, status: 405 });
      expect(response.headers.get('allow')).toMatch(allow);
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    }
  });
});

describe('an app that names its API and signs a person in', () => {
  it('gets a token for its API from a code exchange without resource, and a userinfo token by a refresh with OpenID scopes', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Mary Jackson' });
    const tokens = await signInWith(internalApp, account, { scope: 'openid profile email offline_access orders:read', resource: orders.identifier });
    // The ID token carries the person's claims.
    expect(tokens.claims()).toMatchObject({ sub: account.id, email: account.email, name: 'Mary Jackson' });

    // The API accepts it: introspected as the API, it is active and for the API.
    expect(await introspectAsApi(tokens.access_token)).toMatchObject({ active: true, aud: orders.identifier, sub: account.id, scope: 'orders:read' });

    // A refresh asking for OpenID scopes only gets a plain userinfo token (no audience).
    expect(tokens.refresh_token).toBeDefined();
    const forUserinfo = await client.refreshTokenGrant(internalApp, tokens.refresh_token!, { scope: 'openid profile email' });
    const userinfo = await client.fetchUserInfo(internalApp, forUserinfo.access_token, account.id);
    expect(userinfo).toMatchObject({ sub: account.id, email: account.email, name: 'Mary Jackson' });

    // A plain refresh keeps giving tokens for the API.
    const again = await client.refreshTokenGrant(internalApp, forUserinfo.refresh_token ?? tokens.refresh_token!);
    expect(await introspectAsApi(again.access_token)).toMatchObject({
      active: true,
      aud: orders.identifier,
    });
  });

  it('repeating resource at the code exchange gives the same kind of token', async () => {
    const account = await createAccount(server.issuer, admin);
    const tokens = await signInWith(internalApp, account, { scope: 'openid orders:read', resource: orders.identifier }, { resource: orders.identifier });
    expect(await introspectAsApi(tokens.access_token)).toMatchObject({
      active: true,
      aud: orders.identifier,
    });
  });

  it('an app asking only for OpenID scopes still gets a userinfo token from its code exchange', async () => {
    const account = await createAccount(server.issuer, admin);
    const tokens = await signInWith(internalApp, account, { scope: 'openid email' });
    expect(await client.fetchUserInfo(internalApp, tokens.access_token, account.id)).toMatchObject({ sub: account.id, email: account.email });
  });
});

describe('offline_access', () => {
  it('an internal app gets a refresh token when it asks for offline_access, without prompt=consent and without a consent page', async () => {
    const account = await createAccount(server.issuer, admin);
    const { parameters, checks } = await authorizationRequest({ scope: 'openid offline_access' });
    const browser = new Browser(REDIRECT_URI);
    const loginPage = await browser.navigate(client.buildAuthorizationUrl(internalApp, parameters).href);
    const after = await signIn(browser, loginPage, account.email, account.password);
    // Straight back to the app: no consent page.
    expect(after.url.startsWith(REDIRECT_URI)).toBe(true);
    const tokens = await client.authorizationCodeGrant(internalApp, new URL(after.url), checks);
    expect(tokens.refresh_token).toBeDefined();
    expect(tokens.scope?.split(' ')).toContain('offline_access');
    const refreshed = await client.refreshTokenGrant(internalApp, tokens.refresh_token!);
    expect(refreshed.access_token).toBeDefined();
  });

  it('an external app keeps the consent rule: no refresh token without prompt=consent, one with it', async () => {
    const without = await signInWith(externalApp, await createAccount(server.issuer, admin), { scope: 'openid offline_access' });
    expect(without.refresh_token).toBeUndefined();
    const withConsent = await signInWith(externalApp, await createAccount(server.issuer, admin), { scope: 'openid offline_access', prompt: 'consent' });
    expect(withConsent.refresh_token).toBeDefined();
  });
});
