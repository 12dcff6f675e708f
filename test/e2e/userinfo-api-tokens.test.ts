/**
 * Userinfo accepts a person-facing app's API token (issue 11, item 12; src/issuer/userinfo-for-api-tokens.ts):
 * the app names its API with `resource`, asks `openid`, and calls userinfo with the API token its
 * code exchange gave. openid-client is the relying party; a fetch-based browser walks the pages.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as client from 'openid-client';
import { Browser, createAccount, formAction, signIn } from '../helpers/login.js';
import { adminToken, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

// Never contacted: the browser stops at the client's redirect URI and the test reads the code from it.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

let server: RunningServer;
let admin: string;
let orders: { identifier: string; introspection: { client_id: string; client_secret: string } };
let app: client.Configuration;
let internalApp: client.Configuration;

async function relyingParty(clientId: string, clientSecret: string): Promise<client.Configuration> {
  return client.discovery(new URL(server.issuer), clientId, clientSecret, client.ClientSecretBasic(clientSecret), {
    execute: [client.allowInsecureRequests],
  });
}

beforeAll(async () => {
  server = await startServer();
  admin = await adminToken(server.issuer);
  orders = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('orders'), name: 'Orders', scopes: ['orders:read'] });
  // An external app: its API tokens are opaque (the token format policy).
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Partner shop',
    trust: 'external',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [orders.identifier],
    scope: 'openid profile email offline_access orders:read',
  });
  app = await relyingParty(registered.client_id, registered.client_secret);
  // An internal app: its API tokens are JWTs.
  const internal = await registerClient(server.issuer, admin, {
    client_name: 'Back office',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [orders.identifier],
    scope: 'openid profile email offline_access orders:read',
  });
  internalApp = await relyingParty(internal.client_id, internal.client_secret);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** Signs `account` in with a code flow (PKCE) asking `params`, approving consent; the tokens of a code exchange without resource. */
async function signInWith(account: { email: string; password: string }, params: Record<string, string>, config = app) {
  const openid = params.scope?.split(' ').includes('openid') ?? false;
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier, expectedState: client.randomState(), ...(openid ? { expectedNonce: client.randomNonce() } : {}), idTokenExpected: openid };
  const parameters = {
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    ...(checks.expectedNonce ? { nonce: checks.expectedNonce } : {}),
    ...params,
  };
  const browser = new Browser(REDIRECT_URI);
  const loginPage = await browser.navigate(client.buildAuthorizationUrl(config, parameters).href);
  expect(loginPage.status).toBe(200);
  let after = await signIn(browser, loginPage, account.email, account.password);
  if (after.status === 200 && after.body.includes('>Allow</button>')) after = await browser.navigate(formAction(after, 'Allow'), { form: {} });
  expect(after.url.startsWith(REDIRECT_URI)).toBe(true);
  return client.authorizationCodeGrant(config, new URL(after.url), checks);
}

/** The `error` of userinfo's WWW-Authenticate challenge when it refuses `token`. */
async function userinfoRefusal(config: client.Configuration, token: string): Promise<string | undefined> {
  try {
    await client.fetchUserInfo(config, token, client.skipSubjectCheck);
  } catch (error) {
    if (error instanceof client.WWWAuthenticateChallengeError) return error.cause[0]?.parameters.error;
    throw error;
  }
  throw new Error('userinfo answered');
}

const introspectAsApi = async (token: string) =>
  introspect(await discover(server.issuer), orders.introspection.client_id, orders.introspection.client_secret, token);

describe('userinfo with an API token', () => {
  it("answers the person's claims for the API token of a grant with openid", async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Katherine Johnson' });
    const tokens = await signInWith(account, { scope: 'openid profile email orders:read', resource: orders.identifier });
    // An opaque token for the API.
    expect(tokens.access_token).not.toContain('.');
    expect(await introspectAsApi(tokens.access_token)).toMatchObject({ active: true, aud: orders.identifier, sub: account.id, scope: 'orders:read' });

    expect(await client.fetchUserInfo(app, tokens.access_token, account.id)).toEqual({
      sub: account.id,
      email: account.email,
      email_verified: false,
      name: 'Katherine Johnson',
    });
    // Again: each call mints its own short-lived token, and the API token stays usable for the API.
    expect(await client.fetchUserInfo(app, tokens.access_token, account.id)).toMatchObject({ sub: account.id });
    expect(await introspectAsApi(tokens.access_token)).toMatchObject({ active: true, aud: orders.identifier });
  });

  it('gives only the claims of the granted OpenID scopes', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Dorothy Vaughan' });
    const tokens = await signInWith(account, { scope: 'openid orders:read', resource: orders.identifier });
    expect(await client.fetchUserInfo(app, tokens.access_token, account.id)).toEqual({ sub: account.id });
  });

  it('refuses the API token once its grant is revoked', async () => {
    const account = await createAccount(server.issuer, admin);
    const tokens = await signInWith(account, { scope: 'openid email offline_access orders:read', resource: orders.identifier, prompt: 'consent' });
    expect(tokens.refresh_token).toBeDefined();
    expect(await client.fetchUserInfo(app, tokens.access_token, account.id)).toMatchObject({ sub: account.id });
    // Revoking the refresh token revokes its grant (oidc-provider's default policy), and every token of it.
    await client.tokenRevocation(app, tokens.refresh_token!);
    expect(await userinfoRefusal(app, tokens.access_token)).toBe('invalid_token');
  });

  it('refuses the API token of a grant without openid', async () => {
    const account = await createAccount(server.issuer, admin);
    const tokens = await signInWith(account, { scope: 'orders:read', resource: orders.identifier });
    expect(await introspectAsApi(tokens.access_token)).toMatchObject({ active: true, aud: orders.identifier, sub: account.id });
    // The provider's own answer: the token lacks openid.
    expect(await userinfoRefusal(app, tokens.access_token)).toBe('insufficient_scope');
  });

  it('refuses a client_credentials API token (no person)', async () => {
    const service = await registerClient(server.issuer, admin, {
      client_name: 'Orders batch',
      trust: 'external',
      grant_types: ['client_credentials'],
      resources: [orders.identifier],
      scope: 'orders:read',
    });
    const config = await relyingParty(service.client_id, service.client_secret);
    const tokens = await client.clientCredentialsGrant(config, { scope: 'orders:read', resource: orders.identifier });
    expect(await introspectAsApi(tokens.access_token)).toMatchObject({ active: true, aud: orders.identifier });
    expect(await userinfoRefusal(config, tokens.access_token)).toBe('invalid_token');
  });

  it('answers for a JWT API token of a grant with openid, and refuses it once the grant is revoked', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Mary Jackson' });
    const tokens = await signInWith(account, { scope: 'openid profile email offline_access orders:read', resource: orders.identifier }, internalApp);
    expect(tokens.access_token.split('.')).toHaveLength(3);
    expect(await client.fetchUserInfo(internalApp, tokens.access_token, account.id)).toEqual({
      sub: account.id,
      email: account.email,
      email_verified: false,
      name: 'Mary Jackson',
    });
    await client.tokenRevocation(internalApp, tokens.refresh_token!);
    expect(await userinfoRefusal(internalApp, tokens.access_token)).toBe('invalid_token');
  });

  it('refuses a JWT API token of a grant without openid', async () => {
    const account = await createAccount(server.issuer, admin);
    const tokens = await signInWith(account, { scope: 'orders:read', resource: orders.identifier }, internalApp);
    expect(tokens.access_token.split('.')).toHaveLength(3);
    expect(await userinfoRefusal(internalApp, tokens.access_token)).toBe('invalid_token');
  });
});
