/**
 * The account page with outside clients (a fetch-based browser, oauth4webapi relying parties): what a
 * browser test does not show. Its pages carry the strict page headers; a form without the page
 * session's anti-forgery token, or sent from another site, changes nothing; removing an app revokes
 * its JWT access tokens at introspection too (through their grant); ending a session sends the apps
 * signed in through it a back-channel logout token; changing the password is throttled as signing in
 * is; and every change is audited with the person as the actor.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, createAccount, signIn, type Page, type TestClient } from '../helpers/login.js';
import { adminToken, auditTrail, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let ledger: { identifier: string; introspection: { client_id: string; client_secret: string } };
let receiver: Server;
let receiverUrl: string;
/** The logout tokens the receiver got. */
const logoutTokens: string[] = [];

beforeAll(async () => {
  server = await startServer({ env: { TRUST_PROXY: 'true' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  // An API taking JWT access tokens from internal apps.
  ledger = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('ledger'), name: 'Ledger', scopes: ['ledger:read'] });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      logoutTokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/logout`;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  receiver?.close();
});

const accountUrl = (path = '') => `${server.issuer}/account${path}`;
const csrfOf = (page: Page) => /name="csrf" value="([^"]+)"/.exec(page.body)![1];
const sessionsOf = (page: Page) => [...page.body.matchAll(/name="session" value="([^"]+)"/g)].map((match) => match[1]);

/** A browser signed in to the account page as `person`: its overview page. */
async function signedInBrowser(person: { email: string; password: string }): Promise<{ browser: Browser; overview: Page }> {
  const browser = new Browser(REDIRECT_URI);
  const signInPage = await browser.navigate(accountUrl());
  expect(signInPage.body).toContain('to continue to Account page');
  const overview = await signIn(browser, signInPage, person.email, person.password);
  expect(overview).toMatchObject({ status: 200, url: accountUrl() });
  return { browser, overview };
}

/** The browser signs in to `app` (already signed in: no password asked) and the app exchanges the code. */
async function appSignIn(browser: Browser, app: TestClient, params: Record<string, string>): Promise<oauth.TokenEndpointResponse> {
  const start = await authorizationUrl(as, app, params);
  const landed = await browser.navigate(start.url);
  const callback = oauth.validateAuthResponse(as, app, new URL(landed.url), start.state);
  const auth = app.client_secret ? oauth.ClientSecretBasic(app.client_secret) : oauth.None();
  const response = await oauth.authorizationCodeGrantRequest(as, app, auth, callback, app.redirect_uri, start.verifier, insecure);
  return oauth.processAuthorizationCodeResponse(as, app, response, { expectedNonce: start.nonce, requireIdToken: true });
}

/** The audit entries about `accountId`. */
const auditOf = (accountId: string) => auditTrail(server.issuer, admin, { target: accountId });

describe('the account page', () => {
  it('sends its pages with the strict page headers, and refuses forms without the token or from another site', async () => {
    const person = await createAccount(server.issuer, admin);
    const { browser, overview } = await signedInBrowser(person);
    expect(overview.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(overview.headers.get('cache-control')).toBe('no-store');
    expect(overview.headers.get('x-frame-options')).toBe('DENY');
    const [session] = sessionsOf(overview);

    // No token, a wrong one: refused, and the session lives on.
    for (const form of [{ session }, { session, csrf: 'forged' }] as Record<string, string>[]) {
      const refused = await browser.request(accountUrl('/sessions/end'), { form });
      expect(refused.status).toBe(403);
      expect(refused.body).toContain('This form is out of date');
    }
    // Sent from another site (what a browser says of a cross-site form): refused.
    const crossSite = await fetch(accountUrl('/sessions/end'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://elsewhere.example', 'sec-fetch-site': 'cross-site' },
      body: new URLSearchParams({ session, csrf: csrfOf(overview) }),
      redirect: 'manual',
    });
    expect(crossSite.status).toBe(403);
    expect((await browser.navigate(accountUrl())).status).toBe(200);
    // Without a page session a form leads to signing in, and changes nothing.
    const stranger = new Browser(REDIRECT_URI);
    const unsigned = await stranger.request(accountUrl('/sessions/end'), { form: { session, csrf: csrfOf(overview) } });
    expect(unsigned).toMatchObject({ status: 303 });
    expect(unsigned.headers.get('location')).toBe('/account');
    expect(sessionsOf(await browser.navigate(accountUrl()))).toEqual([session]);
  });

  it("removing an app's access makes its JWT access tokens fail introspection too, audited as the person's", async () => {
    const person = await createAccount(server.issuer, admin);
    const { browser } = await signedInBrowser(person);
    const registered = await registerClient(server.issuer, admin, {
      client_name: 'Ledger viewer',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      resources: [ledger.identifier],
      scope: 'openid ledger:read',
    });
    const app: TestClient = { ...registered, redirect_uri: REDIRECT_URI };
    const tokens = await appSignIn(browser, app, { scope: 'openid ledger:read', resource: ledger.identifier });
    // An internal app and a JWT API: a JWT access token.
    expect(tokens.access_token.split('.')).toHaveLength(3);
    const asLedger = (token: string) => introspect(as, ledger.introspection.client_id, ledger.introspection.client_secret, token);
    await expect(asLedger(tokens.access_token)).resolves.toMatchObject({ active: true, sub: person.id });

    const overview = await browser.navigate(accountUrl());
    expect(overview.body).toContain('Ledger viewer');
    const removed = await browser.navigate(accountUrl('/apps/remove'), { form: { csrf: csrfOf(overview), client_id: app.client_id } });
    expect(removed.url).toBe(accountUrl('?done=app-removed'));
    // No app holds access any more (the session still shows it signed in there).
    expect(removed.body).toContain('No app holds access to your account.');
    await expect(asLedger(tokens.access_token)).resolves.toEqual({ active: false });
    expect(await auditOf(person.id)).toContainEqual(
      expect.objectContaining({ actor: `account:${person.id}`, action: 'account.grant.revoke', details: { client_id: app.client_id, grants: 1 } }),
    );
  });

  it('ending a session sends its apps a back-channel logout token and signs that browser out', async () => {
    const person = await createAccount(server.issuer, admin);
    const first = await signedInBrowser(person);
    const second = await signedInBrowser(person);
    const registered = await registerClient(server.issuer, admin, {
      client_name: 'Notes',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      backchannel_logout_uri: receiverUrl,
      scope: 'openid',
    });
    await appSignIn(second.browser, { ...registered, redirect_uri: REDIRECT_URI }, { scope: 'openid' });

    const overview = await first.browser.navigate(accountUrl());
    const sessions = sessionsOf(overview);
    expect(sessions).toHaveLength(2);
    // The first listed is this browser's own.
    const other = sessions[1];
    const ended = await first.browser.navigate(accountUrl('/sessions/end'), { form: { csrf: csrfOf(overview), session: other } });
    expect(ended.url).toBe(accountUrl('?done=session-ended'));
    expect(sessionsOf(ended)).toEqual([sessions[0]]);

    for (let waited = 0; logoutTokens.length === 0 && waited < 5_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(logoutTokens.map((token) => decodeJwt(token))).toContainEqual(expect.objectContaining({ sub: person.id, aud: registered.client_id }));
    // The other browser is asked to sign in again.
    expect((await second.browser.navigate(accountUrl())).body).toContain('to continue to Account page');
    expect(await auditOf(person.id)).toContainEqual(
      expect.objectContaining({ actor: `account:${person.id}`, action: 'account.session.end', details: { session: other } }),
    );
  });

  it("throttles password changes as sign-ins are, and audits the change as the person's", async () => {
    const person = await createAccount(server.issuer, admin);
    const { browser, overview } = await signedInBrowser(person);
    const csrf = csrfOf(overview);
    const attempt = (current: string) =>
      browser.request(accountUrl('/password'), {
        form: { csrf, current_password: current, new_password: 'a new password 123', repeat_password: 'a new password 123' },
      });
    // The right password changes it.
    const changed = await attempt(person.password);
    expect(changed.headers.get('location')).toBe('/account?done=password-changed');
    expect(await auditOf(person.id)).toContainEqual(expect.objectContaining({ actor: `account:${person.id}`, action: 'account.password' }));
    // Ten wrong ones in a row are answered 400; the next, right or not, 429 with Retry-After.
    for (let i = 0; i < 10; i++) expect((await attempt('not the password')).status).toBe(400);
    const throttled = await attempt('a new password 123');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(throttled.body).toContain('Too many failed attempts');
  }, 120_000);
});
