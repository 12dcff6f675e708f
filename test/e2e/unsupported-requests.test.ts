/**
 * "Say no clearly": what the server cannot do is refused with the specs' error codes, never silently
 * ignored: an authentication context class it does not offer (`acr_values`, or an essential `acr` in
 * the `claims` parameter, naming none of `acr_values_supported`; the levels it offers are honoured,
 * see strong-sign-in.test.ts) and RFC 9396 `authorization_details`, at the authorization endpoint,
 * pushed authorization requests and device authorization. Discovery does not claim authorization details.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, type TestClient } from '../helpers/login.js';
import { adminToken, discover, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const ACR_CLAIMS = JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:mfa'] } } });
const DETAILS = JSON.stringify([{ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '1.00' } }]);

let server: RunningServer;
let as: oauth.AuthorizationServer;
let web: TestClient;
let device: { client_id: string; client_secret: string };

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  const admin = await adminToken(server.issuer);
  const resource = (await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('pay'), name: 'Payments', scopes: ['pay:read'] }))
    .identifier;
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Shop',
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: [REDIRECT_URI],
    resources: [resource],
    scope: 'openid pay:read',
  });
  web = { ...registered, redirect_uri: REDIRECT_URI };
  device = await registerClient(server.issuer, admin, {
    client_name: 'Kiosk',
    trust: 'internal',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
    resources: [resource],
    scope: 'openid pay:read',
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** An authorization request with extra parameters; the error the client gets back at its redirect URI. */
async function authorizationError(params: Record<string, string>): Promise<URLSearchParams> {
  const start = await authorizationUrl(as, web, params);
  const page = await new Browser(REDIRECT_URI).navigate(start.url);
  expect(page.url.startsWith(REDIRECT_URI)).toBe(true);
  const answer = new URL(page.url).searchParams;
  expect(answer.get('state')).toBe(start.state);
  return answer;
}

describe('saying no clearly', () => {
  it('discovery lists the acr values it offers and the claims parameter, and no authorization details', () => {
    expect(as.acr_values_supported).toEqual(['urn:login:acr:password', 'urn:login:acr:mfa']);
    expect(as.authorization_details_types_supported).toBeUndefined();
    expect(as.claims_parameter_supported).toBe(true);
  });

  it('acr_values naming no offered level: unmet_authentication_requirements at the redirect URI', async () => {
    expect((await authorizationError({ acr_values: 'urn:example:mfa' })).get('error')).toBe('unmet_authentication_requirements');
  });

  it('an essential acr in the claims parameter naming no offered level: unmet_authentication_requirements', async () => {
    expect((await authorizationError({ claims: ACR_CLAIMS })).get('error')).toBe('unmet_authentication_requirements');
  });

  it('authorization_details: invalid_authorization_details', async () => {
    expect((await authorizationError({ authorization_details: DETAILS })).get('error')).toBe('invalid_authorization_details');
  });

  it('a request without them still reaches the sign-in page', async () => {
    const page = await new Browser(REDIRECT_URI).navigate((await authorizationUrl(as, web, { claims: JSON.stringify({ id_token: { email: null } }) })).url);
    expect(page.status).toBe(200);
    expect(page.body).toContain('name="password"');
  });

  it('device authorization refuses both with a JSON error', async () => {
    for (const [params, error] of [
      // (Without openid the engine already refuses acr_values, as invalid_request.)
      [{ scope: 'openid pay:read', acr_values: 'urn:example:mfa' }, 'unmet_authentication_requirements'],
      [{ scope: 'pay:read', authorization_details: DETAILS }, 'invalid_authorization_details'],
    ] as const) {
      const response = await oauth.deviceAuthorizationRequest(as, device, oauth.ClientSecretBasic(device.client_secret), params, insecure);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error });
    }
  });

  it('pushed authorization requests refuse them too', async () => {
    expect(as.pushed_authorization_request_endpoint).toBe(`${server.issuer}/request`);
    const start = await authorizationUrl(as, web, { acr_values: 'urn:example:mfa' });
    const params = new URL(start.url).searchParams;
    params.delete('client_id');
    const response = await oauth.pushedAuthorizationRequest(as, web, oauth.ClientSecretBasic(web.client_secret!), params, insecure);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'unmet_authentication_requirements' });
  });
});
