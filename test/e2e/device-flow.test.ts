/**
 * The device authorization grant (RFC 8628) end to end: an oauth4webapi device client asks for a code
 * and polls; a person (a fetch-driven browser, see login.ts) enters the code, signs in and approves.
 * The issued tokens follow the token policy; the failures are the RFC's: authorization_pending,
 * slow_down, access_denied, unauthorized_client; wrong user codes are limited per address.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { Browser, createAccount, formAction, signIn, type Page } from '../helpers/login.js';
import { adminToken, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let orders: { identifier: string; introspection: { client_id: string; client_secret: string } };

beforeAll(async () => {
  // Each test browser has its own address (X-Forwarded-For), as behind the operator's proxy.
  server = await startServer({ env: { TRUST_PROXY: 'true' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  orders = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('orders'),
    name: 'Orders',
    scopes: ['orders:read', 'orders:refund'],
    sensitive_scopes: ['orders:refund'],
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

type DeviceClient = { client_id: string; client_secret?: string };

const authOf = (client: DeviceClient) => (client.client_secret ? oauth.ClientSecretBasic(client.client_secret) : oauth.None());

async function deviceClient(trust: 'internal' | 'external', confidential = false): Promise<DeviceClient> {
  return registerClient(server.issuer, admin, {
    client_name: trust === 'internal' ? 'Meeting Room Display' : 'Partner TV App',
    trust,
    grant_types: [DEVICE_GRANT, 'refresh_token'],
    token_endpoint_auth_method: confidential ? 'client_secret_basic' : 'none',
    resources: [orders.identifier],
    scope: 'openid offline_access orders:read orders:refund',
  });
}

/** The device's first step: a device code for it, a user code for the person. */
async function startDevice(client: DeviceClient, scope: string): Promise<oauth.DeviceAuthorizationResponse> {
  const response = await oauth.deviceAuthorizationRequest(as, client, authOf(client), { scope, resource: orders.identifier }, insecure);
  return oauth.processDeviceAuthorizationResponse(as, client, response);
}

/** One poll of the token endpoint: the tokens, or the RFC 8628 error. */
async function poll(client: DeviceClient, deviceCode: string): Promise<{ tokens?: oauth.TokenEndpointResponse; error?: string; status: number }> {
  const response = await oauth.deviceCodeGrantRequest(as, client, authOf(client), deviceCode, insecure);
  if (!response.ok) return { status: response.status, error: ((await response.json()) as { error: string }).error };
  return { status: response.status, tokens: await oauth.processDeviceCodeResponse(as, client, response) };
}

const xsrfOf = (page: Page) => /name="xsrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';

/** The person types the code on the code entry page; the answer is the next page. */
async function enterCode(browser: Browser, verificationUri: string, userCode: string): Promise<Page> {
  const entry = await browser.navigate(verificationUri);
  expect(entry.status).toBe(200);
  return browser.navigate(formAction(entry), { form: { xsrf: xsrfOf(entry), user_code: userCode } });
}

/** Confirms the device on the confirmation page (or cancels). */
function answerConfirmation(browser: Browser, confirmation: Page, answer: 'confirm' | 'abort', userCode: string): Promise<Page> {
  return browser.navigate(formAction(confirmation), { form: { xsrf: xsrfOf(confirmation), user_code: userCode, [answer]: 'yes' } });
}

/** Enter the code, confirm, sign in (and consent when asked): the page the person ends on. */
async function approve(device: oauth.DeviceAuthorizationResponse, person: { email: string; password: string }): Promise<Page> {
  const browser = new Browser(`${server.issuer}/never-a-redirect-target`);
  const confirmation = await enterCode(browser, device.verification_uri, device.user_code);
  const login = await answerConfirmation(browser, confirmation, 'confirm', device.user_code);
  expect(login.body).toContain('name="password"');
  let page = await signIn(browser, login, person.email, person.password);
  if (page.body.includes('>Allow</button>')) page = await browser.navigate(formAction(page, 'Allow'), { form: {} });
  return page;
}

describe('device authorization grant (RFC 8628)', () => {
  it('discovery names the device authorization endpoint and the grant', async () => {
    expect(as.device_authorization_endpoint).toBe(`${server.issuer}/device/auth`);
    expect(as.grant_types_supported).toContain(DEVICE_GRANT);
  });

  it('a client without the grant registered gets unauthorized_client', async () => {
    const machine = await registerClient(server.issuer, admin, {
      client_name: 'Batch',
      trust: 'internal',
      resources: [orders.identifier],
      scope: 'orders:read',
    });
    const response = await oauth.deviceAuthorizationRequest(as, machine, oauth.ClientSecretBasic(machine.client_secret), { scope: 'orders:read' }, insecure);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('an internal device: pending, slow_down, then a JWT for the person once they approve', async () => {
    const client = await deviceClient('internal');
    const person = await createAccount(server.issuer, admin);
    const device = await startDevice(client, 'orders:read');
    expect(device.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(device.interval).toBe(5);
    expect(device.verification_uri).toBe(`${server.issuer}/device`);

    expect(await poll(client, device.device_code)).toEqual({ status: 400, error: 'authorization_pending' });
    expect(await poll(client, device.device_code)).toEqual({ status: 400, error: 'slow_down' });

    const done = await approve(device, person);
    expect(done.status).toBe(200);
    expect(done.body).toContain('Device connected');
    expect(done.headers.get('content-security-policy')).toContain("default-src 'none'");

    const { tokens } = await poll(client, device.device_code);
    expect(decodeProtectedHeader(tokens!.access_token).typ).toBe('at+jwt');
    expect(decodeJwt(tokens!.access_token)).toMatchObject({ sub: person.id, aud: orders.identifier, client_id: client.client_id, scope: 'orders:read' });
    // The device code is spent.
    expect(await poll(client, device.device_code)).toMatchObject({ status: 400, error: 'invalid_grant' });
  });

  it('an internal device asking for a sensitive scope gets an opaque token', async () => {
    const client = await deviceClient('internal');
    const person = await createAccount(server.issuer, admin);
    const device = await startDevice(client, 'orders:read orders:refund');
    await approve(device, person);
    const { tokens } = await poll(client, device.device_code);
    expect(tokens!.access_token.split('.')).toHaveLength(1);
    const answer = await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, tokens!.access_token);
    expect(answer).toMatchObject({ active: true, sub: person.id, client_id: client.client_id, scope: 'orders:read orders:refund' });
  });

  it('an external device: the confirmation names the app and the scopes, the person consents, the token is opaque', async () => {
    const client = await deviceClient('external', true);
    const person = await createAccount(server.issuer, admin);
    const device = await startDevice(client, 'orders:read');
    const browser = new Browser(`${server.issuer}/never-a-redirect-target`);
    const confirmation = await enterCode(browser, device.verification_uri_complete!.replace(/\?.*$/, ''), device.user_code);
    expect(confirmation.body).toContain('Connect Partner TV App?');
    expect(confirmation.body).toContain('<code>orders:read</code>');
    expect(confirmation.body).toContain(device.user_code);
    expect(confirmation.headers.get('content-security-policy')).toContain("form-action 'self'");

    const login = await answerConfirmation(browser, confirmation, 'confirm', device.user_code);
    const consent = await signIn(browser, login, person.email, person.password);
    expect(consent.body).toContain('Allow Partner TV App access?');
    const done = await browser.navigate(formAction(consent, 'Allow'), { form: {} });
    expect(done.body).toContain('Device connected');

    const { tokens } = await poll(client, device.device_code);
    expect(tokens!.access_token.split('.')).toHaveLength(1);
    const answer = await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, tokens!.access_token);
    expect(answer).toMatchObject({ active: true, sub: person.id, client_id: client.client_id, aud: orders.identifier });
  });

  it('cancelling on the confirmation page gives the device access_denied', async () => {
    const client = await deviceClient('internal');
    const device = await startDevice(client, 'orders:read');
    const browser = new Browser(`${server.issuer}/never-a-redirect-target`);
    const confirmation = await enterCode(browser, device.verification_uri, device.user_code);
    const cancelled = await answerConfirmation(browser, confirmation, 'abort', device.user_code);
    expect(cancelled.body).toContain('The device was not connected.');
    expect(await poll(client, device.device_code)).toEqual({ status: 400, error: 'access_denied' });
    // The same code cannot be entered again.
    const again = await enterCode(browser, device.verification_uri, device.user_code);
    expect(again.body).toContain('already been used');
  });

  it('denying consent gives the device access_denied', async () => {
    const client = await deviceClient('external');
    const person = await createAccount(server.issuer, admin);
    const device = await startDevice(client, 'orders:read');
    const browser = new Browser(`${server.issuer}/never-a-redirect-target`);
    const confirmation = await enterCode(browser, device.verification_uri, device.user_code);
    const login = await answerConfirmation(browser, confirmation, 'confirm', device.user_code);
    const consent = await signIn(browser, login, person.email, person.password);
    await browser.navigate(formAction(consent, 'Deny'), { form: {} });
    expect(await poll(client, device.device_code)).toEqual({ status: 400, error: 'access_denied' });
  });

  it('wrong user codes are limited per address: after 10, even the right code waits', async () => {
    const client = await deviceClient('internal');
    const device = await startDevice(client, 'orders:read');
    const browser = new Browser(`${server.issuer}/never-a-redirect-target`);
    for (let attempt = 0; attempt < 10; attempt++) {
      const wrong = await enterCode(browser, device.verification_uri, 'BBBB-BBBB');
      expect(wrong.status).toBe(200);
      expect(wrong.body).toContain('That code is not right.');
      // What was typed is shown again, escaped.
      expect(wrong.body).toContain('value="BBBB-BBBB"');
    }
    const paused = await enterCode(browser, device.verification_uri, device.user_code);
    expect(paused.status).toBe(429);
    expect(Number(paused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(paused.body).toContain('Too many wrong codes.');
    // Another address is not affected.
    const elsewhere = await enterCode(new Browser(`${server.issuer}/never`), device.verification_uri, device.user_code);
    expect(elsewhere.body).toContain('Connect Meeting Room Display?');
  });

  it('what a person types is escaped on the page', async () => {
    const browser = new Browser(`${server.issuer}/never`);
    const page = await enterCode(browser, `${server.issuer}/device`, '"><script>alert(1)</script>');
    expect(page.body).not.toContain('<script>alert(1)</script>');
  });
});

describe('an expired device code (DEVICE_CODE_TTL)', () => {
  const TTL_SECONDS = 2;
  let short: RunningServer;

  beforeAll(async () => {
    short = await startServer({ env: { DEVICE_CODE_TTL: String(TTL_SECONDS), TRUST_PROXY: 'true' } });
  }, 60_000);

  afterAll(async () => {
    await short?.stop();
  });

  it('the device hears expired_token once the code has expired, and the person is told to start again', async () => {
    const shortAs = await discover(short.issuer);
    const shortAdmin = await adminToken(short.issuer);
    const api = await registerResourceServer(short.issuer, shortAdmin, { identifier: uniqueResource('tv'), name: 'TV guide', scopes: ['guide:read'] });
    const client = await registerClient(short.issuer, shortAdmin, {
      client_name: 'Hotel TV',
      trust: 'external',
      grant_types: [DEVICE_GRANT],
      token_endpoint_auth_method: 'none',
      resources: [api.identifier],
      scope: 'guide:read',
    });
    const device = await oauth.processDeviceAuthorizationResponse(
      shortAs,
      client,
      await oauth.deviceAuthorizationRequest(shortAs, client, oauth.None(), { scope: 'guide:read', resource: api.identifier }, insecure),
    );
    expect(device.expires_in).toBe(TTL_SECONDS);
    const pollOnce = async () => {
      const response = await oauth.deviceCodeGrantRequest(shortAs, client, oauth.None(), device.device_code, insecure);
      return { status: response.status, error: ((await response.json()) as { error?: string }).error };
    };
    expect(await pollOnce()).toEqual({ status: 400, error: 'authorization_pending' });
    // Past the code's lifetime, and past the polling interval (so no slow_down).
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    expect(await pollOnce()).toEqual({ status: 400, error: 'expired_token' });
    // At once again: slow_down never hides an expiry.
    expect(await pollOnce()).toEqual({ status: 400, error: 'expired_token' });

    const browser = new Browser(`${short.issuer}/never`);
    const entry = await browser.navigate(device.verification_uri);
    const page = await browser.navigate(formAction(entry), { form: { xsrf: xsrfOf(entry), user_code: device.user_code } });
    expect(page.body).toContain('That code has expired.');
  }, 30_000);
});
