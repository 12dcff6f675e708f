/**
 * OpenID Connect Back-Channel Logout 1.0 end to end: a test receiver (a real HTTP server on loopback,
 * allowed outside production) validates every logout token it gets against the server's JWKS, as a
 * relying party would. Logout tokens go out on RP-initiated logout and when an account is disabled or
 * deleted; a slow client does not hold up the logout page; a failing one is retried a bounded number
 * of times.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let resource: string;
let receiver: Server;
let receiverUrl: string;

/** What the receiver got at a path: each verified logout token's claims and header type. */
const received = new Map<string, Array<{ claims: JWTPayload; typ: string | undefined }>>();
/** How the receiver answers at a path: a status per attempt (then 204), or a delay. */
const behaviour = new Map<string, { statuses?: number[]; delayMs?: number }>();
const attempts = new Map<string, number>();

beforeAll(async () => {
  server = await startServer({ env: { TRUST_PROXY: 'true' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  resource = (await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('notes'), name: 'Notes', scopes: ['notes:read'] })).identifier;
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
  receiver = createServer((req, res) => {
    const path = req.url!;
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => void answer());
    async function answer(): Promise<void> {
      const attempt = (attempts.get(path) ?? 0) + 1;
      attempts.set(path, attempt);
      const plan = behaviour.get(path) ?? {};
      if (plan.delayMs) await new Promise((resolve) => setTimeout(resolve, plan.delayMs));
      const status = plan.statuses?.[attempt - 1] ?? 204;
      if (status === 204) {
        const token = new URLSearchParams(body).get('logout_token')!;
        const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: server.issuer });
        received.set(path, [...(received.get(path) ?? []), { claims: payload, typ: protectedHeader.typ }]);
      }
      res.writeHead(status).end();
    }
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  receiver?.closeAllConnections();
  receiver?.close();
});

let nextPath = 0;

/** A web client with its own receiver path. */
async function webClient(sessionRequired = true): Promise<TestClient & { path: string }> {
  const path = `/logout/${++nextPath}`;
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Wiki',
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: [REDIRECT_URI],
    resources: [resource],
    scope: 'openid notes:read',
    backchannel_logout_uri: `${receiverUrl}${path}`,
    backchannel_logout_session_required: sessionRequired,
  });
  return { ...registered, redirect_uri: REDIRECT_URI, path };
}

/** Signs a person in to `client` in `browser`; the ID token's claims. */
async function signInTo(browser: Browser, client: TestClient, account: { email: string; password: string }) {
  const start = await authorizationUrl(as, client);
  const after = await signIn(browser, await browser.navigate(start.url), account.email, account.password);
  const params = oauth.validateAuthResponse(as, client, new URL(after.url), start.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(client.client_secret!),
    params,
    REDIRECT_URI,
    start.verifier,
    insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: start.nonce });
  return { idToken: tokens.id_token!, claims: decodeJwt(tokens.id_token!) };
}

/** RP-initiated logout, confirmed on the page; the time the answer took. */
async function logOut(browser: Browser, idToken: string): Promise<number> {
  const url = new URL(as.end_session_endpoint!);
  url.searchParams.set('id_token_hint', idToken);
  const confirm = await browser.navigate(url.href);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  const started = Date.now();
  const done = await browser.navigate(formAction(confirm), { form: { xsrf, logout: 'yes' } });
  expect(done.status).toBe(200);
  expect(done.body).toContain('You are signed out');
  return Date.now() - started;
}

async function waitFor<T>(check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe('back-channel logout', () => {
  it('discovery says it is supported, with session ids', () => {
    expect(as.backchannel_logout_supported).toBe(true);
    expect(as.backchannel_logout_session_supported).toBe(true);
  });

  it('the admin API keeps the client fields and refuses a bad URI', async () => {
    const client = await webClient(false);
    const read = await adminCall(server.issuer, admin, 'GET', `/clients/${client.client_id}`);
    expect(read.body).toMatchObject({ backchannel_logout_uri: `${receiverUrl}${client.path}`, backchannel_logout_session_required: false });
    const bad = await adminCall(server.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { backchannel_logout_uri: 'not a uri' });
    expect(bad.status).toBe(422);
    const removed = await adminCall(server.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { backchannel_logout_uri: null });
    expect(removed.status).toBe(200);
    expect(removed.body.backchannel_logout_uri).toBeUndefined();
  });

  it('RP-initiated logout sends a valid logout token with the sub and sid of the sign-in', async () => {
    const client = await webClient();
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { idToken, claims } = await signInTo(browser, client, account);
    await logOut(browser, idToken);
    const [token] = await waitFor(() => received.get(client.path));
    expect(token.typ).toBe('logout+jwt');
    expect(token.claims).toMatchObject({ iss: server.issuer, aud: client.client_id, sub: account.id, sid: claims.sid });
    expect(token.claims.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
    expect(token.claims.jti).toEqual(expect.any(String));
    expect(token.claims.nonce).toBeUndefined();
  });

  it('a slow client does not hold up the logout page', async () => {
    const client = await webClient();
    behaviour.set(client.path, { delayMs: 2_000 });
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { idToken } = await signInTo(browser, client, account);
    expect(await logOut(browser, idToken)).toBeLessThan(1_500);
    await waitFor(() => received.get(client.path));
  });

  it('a failing client is retried, a bounded number of times', async () => {
    const flaky = await webClient();
    behaviour.set(flaky.path, { statuses: [500, 503] });
    const dead = await webClient();
    behaviour.set(dead.path, { statuses: [500, 500, 500, 500, 500] });
    const account = await createAccount(server.issuer, admin);
    for (const client of [flaky, dead]) {
      const browser = new Browser(REDIRECT_URI);
      await logOut(browser, (await signInTo(browser, client, account)).idToken);
    }
    await waitFor(() => received.get(flaky.path));
    expect(attempts.get(flaky.path)).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    expect(attempts.get(dead.path)).toBe(3);
    expect(received.get(dead.path)).toBeUndefined();
    expect(server.output()).not.toContain('logout_token=');
  }, 30_000);

  it.each([
    ['disabling', (id: string) => adminCall(server.issuer, admin, 'PATCH', `/accounts/${id}`, { disabled: true })],
    ['deleting', (id: string) => adminCall(server.issuer, admin, 'DELETE', `/accounts/${id}`)],
  ])('%s an account tells the clients of its sessions', async (_what, change) => {
    const client = await webClient();
    const bystander = await webClient();
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { claims } = await signInTo(browser, client, account);
    expect((await change(account.id)).status).toBeLessThan(300);
    const [token] = await waitFor(() => received.get(client.path));
    expect(token.claims).toMatchObject({ aud: client.client_id, sub: account.id, sid: claims.sid });
    // A client the person never signed in to hears nothing.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(attempts.get(bystander.path)).toBeUndefined();
  });
});

describe('back-channel logout in production', () => {
  it('delivers to public addresses only: a loopback receiver never hears from it', async () => {
    const production = await startServer({ env: { NODE_ENV: 'production', TRUST_PROXY: 'true' } });
    try {
      const prodAs = await discover(production.issuer);
      const prodAdmin = await adminToken(production.issuer);
      const path = `/logout/production-${++nextPath}`;
      const registered = await registerClient(production.issuer, prodAdmin, {
        client_name: 'Wiki',
        trust: 'internal',
        grant_types: ['authorization_code'],
        redirect_uris: [REDIRECT_URI],
        resources: [resource],
        scope: 'openid',
        backchannel_logout_uri: `${receiverUrl}${path}`,
      });
      const client = { ...registered, redirect_uri: REDIRECT_URI };
      const account = await createAccount(production.issuer, prodAdmin);
      const browser = new Browser(REDIRECT_URI);
      const start = await authorizationUrl(prodAs, client);
      const after = await signIn(browser, await browser.navigate(start.url), account.email, account.password);
      expect(after.url).toMatch(/^http:\/\/127\.0\.0\.1:9\/callback/);
      expect((await adminCall(production.issuer, prodAdmin, 'PATCH', `/accounts/${account.id}`, { disabled: true })).status).toBe(200);
      // Three attempts, each refused by the engine's guard against special-use addresses.
      await waitFor(() => (production.output().includes('logout token not delivered') ? true : undefined), 15_000);
      expect(production.output()).toContain('special-use IP address');
      expect(attempts.get(path)).toBeUndefined();
    } finally {
      await production.stop();
    }
  }, 30_000);
});
