/**
 * The dedicated introspection path against oidc-provider's (docs/dedicated-paths.md): two servers on
 * one database, one Redis prefix and one issuer, the first with the dedicated paths on, the second with
 * them off (DEDICATED_PATHS=false), are sent the same corpus. Every answer must be the same: status,
 * every header but Date, and the body byte for byte. The first server's metrics tell which requests
 * its dedicated path answered, so the corpus is known to go through it, and what it must leave to the
 * provider is known to be left.
 */
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { basic, encodedBasic, form, FORM_TYPE, sendRaw, startDifferentialServers } from '../helpers/differential.js';
import type { Credentials, DifferentialRequest as Request, DifferentialServers, Observed } from '../helpers/differential.js';
import type { RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** The first server answers on its dedicated path; the second is oidc-provider alone. */
let servers: DifferentialServers;
let dedicated: RunningServer;
let stock: RunningServer;
let as: oauth.AuthorizationServer;

let api: Credentials;
let ordersApi: Credentials;
let internal: Credentials;
let otherApi: Credentials;
let lockouts: [Credentials, Credentials];
let external: Credentials;
let postClient: Credentials;
/** The audience of the opaque exchanged tokens. */
let vaultApi: Credentials;
/** A resource server that enforces entitlements, and the group whose member holds its tokens (docs/groups-and-entitlements.md). */
let payrollApi: Credentials;
let payrollGroup: { groupId: string; accountId: string; adminToken: string };
const tokens: Record<string, string> = {};

/** The usual request: the resource server introspects with Basic. */
const byApi = (token: string, extra: Record<string, string> = {}): Request => ({ headers: { ...FORM_TYPE, ...basic(api) }, body: form({ token, ...extra }) });
const answeredByDedicatedPath = () => servers.dedicatedPathCount('introspection');
const send = (server: RunningServer, request: Request, requestId: string) => sendRaw(server, new URL(as.introspection_endpoint!).pathname, request, requestId);

/**
 * Sends `request` to both servers and expects the same answer; `path` says which path of the first
 * server must have answered. Resolves with the (common) answer.
 */
async function differential(request: Request, path: 'dedicated' | 'provider'): Promise<Observed & { json: Record<string, unknown> | undefined }> {
  const before = await answeredByDedicatedPath();
  const requestId = `diff-${randomBytes(6).toString('hex')}`;
  const fast = await send(dedicated, request, requestId);
  const after = await answeredByDedicatedPath();
  const slow = await send(stock, request, requestId);
  expect(after - before).toBe(path === 'dedicated' ? 1 : 0);
  expect(fast.status).toBe(slow.status);
  expect(fast.headers).toEqual(slow.headers);
  const json = fast.headers['content-type']?.startsWith('application/json') ? (JSON.parse(fast.body) as Record<string, unknown>) : undefined;
  if (json) expect(json).toEqual(JSON.parse(slow.body));
  // Field by field above for a readable difference; byte for byte here, key order included.
  expect(fast.body).toBe(slow.body);
  return { ...fast, json };
}

const expectActive = (answer: { status: number; json: Record<string, unknown> | undefined }) => {
  expect(answer.status).toBe(200);
  expect(answer.json?.active).toBe(true);
};
const expectInactive = (answer: { status: number; json: Record<string, unknown> | undefined }) => {
  expect(answer.status).toBe(200);
  expect(answer.json).toEqual({ active: false });
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  servers = await startDifferentialServers();
  ({ dedicated, stock } = servers);
  as = await discover(dedicated.issuer);
  const admin = await adminToken(dedicated.issuer);

  const rs = (name: string, fields: Record<string, unknown> = {}) =>
    registerResourceServer(dedicated.issuer, admin, { identifier: uniqueResource(name), name, scopes: [`${name}:read`], ...fields });
  const opaque = await rs('ledger', { token_format: 'opaque' });
  const other = await rs('other', { token_format: 'opaque' });
  const jwt = await rs('orders');
  const shortOpaque = await rs('brief', { token_format: 'opaque', access_token_ttl: 1 });
  const shortJwt = await rs('fleeting', { access_token_ttl: 1 });
  const locks = [await rs('locka'), await rs('lockb')];
  api = opaque.introspection;
  ordersApi = jwt.introspection;
  otherApi = other.introspection;
  lockouts = [locks[0].introspection, locks[1].introspection];

  const resources = [opaque.identifier, jwt.identifier, shortOpaque.identifier, shortJwt.identifier, other.identifier];
  const scope = 'ledger:read orders:read brief:read fleeting:read other:read';
  external = await registerClient(dedicated.issuer, admin, { client_name: 'Partner', trust: 'external', resources, scope });
  internal = await registerClient(dedicated.issuer, admin, { client_name: 'Billing job', trust: 'internal', resources, scope });
  postClient = await registerClient(dedicated.issuer, admin, {
    client_name: 'Posting partner',
    trust: 'external',
    resources,
    scope,
    token_endpoint_auth_method: 'client_secret_post',
  });
  const doomed = await registerClient(dedicated.issuer, admin, { client_name: 'Doomed', trust: 'external', resources, scope });

  const issue = async (client: Credentials, resource: string, tokenScope: string) =>
    (await issueToken(as, client.client_id, client.client_secret, { resource, scope: tokenScope })).accessToken;
  tokens.opaque = await issue(external, opaque.identifier, 'ledger:read');
  tokens.jwt = await issue(internal, jwt.identifier, 'orders:read');
  tokens.expiredOpaque = await issue(external, shortOpaque.identifier, 'brief:read');
  tokens.expiredJwt = await issue(internal, shortJwt.identifier, 'fleeting:read');
  tokens.revokedOpaque = await issue(external, opaque.identifier, 'ledger:read');
  expect(await revoke(as, external.client_id, external.client_secret, tokens.revokedOpaque)).toBe(200);
  tokens.revokedJwt = await issue(internal, jwt.identifier, 'orders:read');
  expect(await revoke(as, internal.client_id, internal.client_secret, tokens.revokedJwt)).toBe(200);
  tokens.postClientOpaque = await issue(postClient, opaque.identifier, 'ledger:read');
  tokens.bulkRevoked = await issue(doomed, opaque.identifier, 'ledger:read');
  expect((await adminCall(dedicated.issuer, admin, 'POST', `/clients/${doomed.client_id}/revoke-tokens`)).status).toBeLessThan(300);

  // Tokens bound to a DPoP key (RFC 9449): an opaque one and a JWT.
  const dpop = oauth.DPoP({}, await oauth.generateKeyPair('ES256'));
  for (const [name, client, resource] of [
    ['dpopOpaque', external, opaque.identifier],
    ['dpopJwt', internal, jwt.identifier],
  ] as const) {
    const params = new URLSearchParams({ resource, scope: resource === jwt.identifier ? 'orders:read' : 'ledger:read' });
    const response = await oauth.clientCredentialsGrantRequest(as, { client_id: client.client_id }, oauth.ClientSecretBasic(client.client_secret), params, {
      ...insecure,
      DPoP: dpop,
    });
    const result = await oauth.processClientCredentialsResponse(as, { client_id: client.client_id }, response);
    expect(result.token_type).toBe('dpop');
    tokens[name] = result.access_token;
  }

  // A person's tokens: a refresh token and an opaque access token of their grant.
  const web = await registerClient(dedicated.issuer, admin, {
    client_name: 'Intranet',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [opaque.identifier],
    scope: 'openid offline_access ledger:read',
  });
  const webApp: TestClient & Credentials = { ...web, redirect_uri: REDIRECT_URI };
  const account = await createAccount(dedicated.issuer, admin);
  const browser = new Browser(REDIRECT_URI);
  const start = await authorizationUrl(as, webApp, { scope: 'openid offline_access ledger:read', prompt: 'consent' });
  const callback = new URL((await signIn(browser, await browser.navigate(start.url), account.email, account.password)).url);
  const code = oauth.validateAuthResponse(as, webApp, callback, start.state);
  const exchanged = await oauth.processAuthorizationCodeResponse(
    as,
    webApp,
    await oauth.authorizationCodeGrantRequest(as, webApp, oauth.ClientSecretBasic(webApp.client_secret), code, REDIRECT_URI, start.verifier, {
      ...insecure,
      additionalParameters: { resource: opaque.identifier },
    }),
    { expectedNonce: start.nonce, requireIdToken: true },
  );
  tokens.personOpaque = exchanged.access_token;
  tokens.refresh = exchanged.refresh_token!;
  tokens.webApp = JSON.stringify(webApp);

  // Tokens issued by token exchange (RFC 8693), a JWT and an opaque one; and a pair whose subject's
  // client then has its tokens revoked in bulk.
  const vault = await rs('vault', { token_format: 'opaque', scopes: ['orders:read'] });
  vaultApi = vault.introspection;
  const callerFields = { trust: 'internal', resources: [jwt.identifier], scope: 'orders:read' };
  const caller = await registerClient(dedicated.issuer, admin, { client_name: 'Exchange caller', ...callerFields });
  const doomedCaller = await registerClient(dedicated.issuer, admin, { client_name: 'Doomed exchange caller', ...callerFields });
  const exchanger = await registerClient(dedicated.issuer, admin, {
    client_name: 'Exchanger',
    trust: 'internal',
    resources: [jwt.identifier, vault.identifier],
    scope: 'orders:read',
    token_exchange: { subject_audiences: [jwt.identifier], audiences: [jwt.identifier, vault.identifier] },
  });
  const exchange = async (subject: string, resource: string) => {
    const response = await oauth.genericTokenEndpointRequest(
      as,
      { client_id: exchanger.client_id },
      oauth.ClientSecretBasic(exchanger.client_secret),
      'urn:ietf:params:oauth:grant-type:token-exchange',
      { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', resource },
      insecure,
    );
    return (await oauth.processGenericTokenEndpointResponse(as, { client_id: exchanger.client_id }, response)).access_token;
  };
  const subject = await issue(caller, jwt.identifier, 'orders:read');
  tokens.exchangedJwt = await exchange(subject, jwt.identifier);
  tokens.exchangedOpaque = await exchange(subject, vault.identifier);
  const doomedSubject = await issue(doomedCaller, jwt.identifier, 'orders:read');
  tokens.exchangedJwtOfRevoked = await exchange(doomedSubject, jwt.identifier);
  tokens.exchangedOpaqueOfRevoked = await exchange(doomedSubject, vault.identifier);
  expect((await adminCall(dedicated.issuer, admin, 'POST', `/clients/${doomedCaller.client_id}/revoke-tokens`)).status).toBeLessThan(300);
  // A person entitled through a group to an enforcing resource server, with roles: an opaque token
  // (external app) and a JWT (internal app) of it.
  const payroll = await rs('payroll', { enforce_entitlements: true, scopes: ['payroll:read', 'payroll:write'] });
  payrollApi = payroll.introspection;
  const group = await adminCall(dedicated.issuer, admin, 'POST', '/groups', { name: `Payroll clerks ${randomBytes(4).toString('hex')}` });
  const entitled = await adminCall(dedicated.issuer, admin, 'POST', `/resource-servers/${payroll.id}/entitlements`, {
    group_id: group.body.id,
    scopes: ['payroll:read'],
    roles: ['clerk', 'auditor'],
  });
  expect(entitled.status).toBe(201);
  const clerk = await createAccount(dedicated.issuer, admin);
  await adminCall(dedicated.issuer, admin, 'POST', `/groups/${group.body.id}/members`, { account_ids: [clerk.id] });
  payrollGroup = { groupId: group.body.id, accountId: clerk.id, adminToken: admin };
  for (const [name, trust] of [
    ['entitledOpaque', 'external'],
    ['entitledJwt', 'internal'],
  ] as const) {
    const app = await registerClient(dedicated.issuer, admin, {
      client_name: `Payroll ${trust}`,
      trust,
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT_URI],
      resources: [payroll.identifier],
      scope: 'openid offline_access payroll:read payroll:write',
    });
    const payrollApp: TestClient & Credentials = { ...app, redirect_uri: REDIRECT_URI };
    const clerkBrowser = new Browser(REDIRECT_URI);
    const begin = await authorizationUrl(as, payrollApp, {
      // Offline access: the token does not end with the session, so the dedicated path answers it.
      scope: 'openid offline_access payroll:read payroll:write',
      resource: payroll.identifier,
      prompt: 'consent',
    });
    let page = await signIn(clerkBrowser, await clerkBrowser.navigate(begin.url), clerk.email, clerk.password);
    if (page.status === 200) page = await clerkBrowser.navigate(formAction(page, 'Allow'), { form: {} });
    const clerkCode = oauth.validateAuthResponse(as, payrollApp, new URL(page.url), begin.state);
    const clerkTokens = await oauth.processAuthorizationCodeResponse(
      as,
      payrollApp,
      await oauth.authorizationCodeGrantRequest(as, payrollApp, oauth.ClientSecretBasic(payrollApp.client_secret), clerkCode, REDIRECT_URI, begin.verifier, {
        ...insecure,
        additionalParameters: { resource: payroll.identifier },
      }),
      { expectedNonce: begin.nonce, requireIdToken: true },
    );
    expect(clerkTokens.scope).toBe('payroll:read');
    tokens[name] = clerkTokens.access_token;
  }

  // Forgeries of a genuine JWT's claims.
  const claims = decodeJwt(tokens.jwt);
  const { kid } = decodeProtectedHeader(tokens.jwt);
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  tokens.algNone = `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(claims)}.`;
  tokens.wrongKey = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
    .sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  const jwks = (await (await fetch(as.jwks_uri!)).json()) as { keys: Array<Record<string, unknown>> };
  const publicPem = createPublicKey({ key: jwks.keys.find((k) => k.kid === kid)! as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  tokens.hs256 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(Buffer.from(publicPem));

  // The short-lived tokens (1 s) have expired by now, or will have after this.
  await sleep(1_100);
}, 90_000);

afterAll(async () => {
  await Promise.all([dedicated?.stop(), stock?.stop()]);
});

describe('opaque access tokens', () => {
  it('active, introspected by its audience (Basic)', async () => {
    const answer = await differential(byApi(tokens.opaque), 'dedicated');
    expectActive(answer);
    expect(Object.keys(answer.json!)).toEqual(['active', 'client_id', 'exp', 'iat', 'iss', 'jti', 'aud', 'scope', 'token_type', 'sub']);
  });

  it('active, introspected with the secret in the form (client_secret_post)', async () => {
    expectActive(
      await differential({ headers: FORM_TYPE, body: form({ token: tokens.opaque, client_id: api.client_id, client_secret: api.client_secret }) }, 'dedicated'),
    );
  });

  it('active, Basic credentials form-encoded', async () => {
    expectActive(await differential({ headers: { ...FORM_TYPE, ...encodedBasic(api) }, body: form({ token: tokens.opaque }) }, 'dedicated'));
  });

  it('active, a client_id beside Basic naming the same client', async () => {
    expectActive(await differential(byApi(tokens.opaque, { client_id: api.client_id }), 'dedicated'));
  });

  it.each(['access_token', 'refresh_token', 'urn:ietf:params:oauth:token-type:access_token'])('with token_type_hint=%s', async (hint) => {
    expectActive(await differential(byApi(tokens.opaque, { token_type_hint: hint }), 'dedicated'));
  });

  it('a token_type_hint the path does not know is left to the provider', async () => {
    expectActive(await differential(byApi(tokens.opaque, { token_type_hint: 'id_token' }), 'provider'));
  });

  it('introspected by another audience: inactive', async () => {
    expectInactive(await differential({ headers: { ...FORM_TYPE, ...basic(otherApi) }, body: form({ token: tokens.opaque }) }, 'dedicated'));
  });

  it("introspected by the token's own client", async () => {
    expectActive(await differential({ headers: { ...FORM_TYPE, ...basic(external) }, body: form({ token: tokens.opaque }) }, 'dedicated'));
  });

  it('introspected by its own client_secret_post client', async () => {
    const body = form({ token: tokens.postClientOpaque, client_id: postClient.client_id, client_secret: postClient.client_secret });
    expectActive(await differential({ headers: FORM_TYPE, body }, 'dedicated'));
  });

  it('expired', async () => {
    expectInactive(await differential(byApi(tokens.expiredOpaque), 'dedicated'));
  });

  it('revoked', async () => {
    expectInactive(await differential(byApi(tokens.revokedOpaque), 'dedicated'));
  });

  it("its client's tokens revoked in bulk", async () => {
    expectInactive(await differential(byApi(tokens.bulkRevoked), 'dedicated'));
  });

  it("a person's token of a grant", async () => {
    const answer = await differential(byApi(tokens.personOpaque), 'dedicated');
    expectActive(answer);
    expect(answer.json!.sub).not.toBe(answer.json!.client_id);
    // How the person signed in (docs/strong-sign-in.md), answered alike by both paths.
    expect(answer.json).toMatchObject({ acr: 'urn:login:acr:password', amr: ['pwd'] });
    expect(typeof answer.json!.auth_time).toBe('number');
  });

  it('bound to a DPoP key: left to the provider', async () => {
    const answer = await differential(byApi(tokens.dpopOpaque), 'provider');
    expectActive(answer);
    expect(answer.json!.token_type).toBe('DPoP');
  });
});

describe('refresh tokens (left to the provider)', () => {
  it('introspected by its own client', async () => {
    const webApp = JSON.parse(tokens.webApp) as Credentials;
    const answer = await differential({ headers: { ...FORM_TYPE, ...basic(webApp) }, body: form({ token: tokens.refresh }) }, 'provider');
    expectActive(answer);
    expect(answer.json!.token_type).toBe('refresh_token');
  });

  it('introspected by a resource server: inactive', async () => {
    expectInactive(await differential(byApi(tokens.refresh, { token_type_hint: 'refresh_token' }), 'provider'));
  });
});

describe('JWT access tokens', () => {
  it('genuine, introspected by its audience, twice (the second from what the verifier remembers)', async () => {
    for (let i = 0; i < 2; i++) {
      const answer = await differential({ headers: { ...FORM_TYPE, ...basic(ordersApi) }, body: form({ token: tokens.jwt }) }, 'dedicated');
      expectActive(answer);
      expect(answer.json!.jti).toBe(decodeJwt(tokens.jwt).jti);
    }
  });

  it('genuine, introspected by another audience: inactive', async () => {
    expectInactive(await differential(byApi(tokens.jwt), 'dedicated'));
  });

  it('genuine, introspected by its own client', async () => {
    expectActive(await differential({ headers: { ...FORM_TYPE, ...basic(internal) }, body: form({ token: tokens.jwt }) }, 'dedicated'));
  });

  it.each(['algNone', 'wrongKey', 'hs256', 'expiredJwt', 'revokedJwt'])('%s: inactive', async (name) => {
    expectInactive(await differential(byApi(tokens[name]), 'dedicated'));
  });

  it('bound to a DPoP key: left to the provider', async () => {
    await differential(byApi(tokens.dpopJwt), 'provider');
  });
});

describe('tokens issued by token exchange', () => {
  it('a JWT, introspected by its audience: active, with act', async () => {
    const answer = await differential({ headers: { ...FORM_TYPE, ...basic(ordersApi) }, body: form({ token: tokens.exchangedJwt }) }, 'dedicated');
    expectActive(answer);
    expect(answer.json!.act).toEqual({ sub: answer.json!.client_id, client_id: answer.json!.client_id });
    expect(answer.json!.sub).not.toBe(answer.json!.client_id);
  });

  it('an opaque token, introspected by its audience: active, with act and nothing of its bookkeeping', async () => {
    const answer = await differential({ headers: { ...FORM_TYPE, ...basic(vaultApi) }, body: form({ token: tokens.exchangedOpaque }) }, 'dedicated');
    expectActive(answer);
    expect(Object.keys(answer.json!).sort()).toEqual(['act', 'active', 'aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub', 'token_type']);
  });

  it("the subject's client revoked in bulk: both inactive", async () => {
    expectInactive(await differential({ headers: { ...FORM_TYPE, ...basic(ordersApi) }, body: form({ token: tokens.exchangedJwtOfRevoked }) }, 'dedicated'));
    expectInactive(await differential({ headers: { ...FORM_TYPE, ...basic(vaultApi) }, body: form({ token: tokens.exchangedOpaqueOfRevoked }) }, 'dedicated'));
  });
});

describe('malformed requests', () => {
  it.each([
    ['garbage', 'not-a-token', 'dedicated'],
    ['JWT-shaped garbage', 'a.b.c', 'dedicated'],
    ['an empty token', '', 'provider'],
  ] as const)('%s', async (_name, token, path) => {
    await differential(byApi(token), path);
  });

  it('no token parameter', async () => {
    const answer = await differential({ headers: { ...FORM_TYPE, ...basic(api) }, body: '' }, 'provider');
    expect(answer.status).toBe(400);
  });

  it('the token twice', async () => {
    await differential({ headers: { ...FORM_TYPE, ...basic(api) }, body: `token=${tokens.opaque}&token=${tokens.opaque}` }, 'provider');
  });

  it('an unknown parameter', async () => {
    expectActive(await differential(byApi(tokens.opaque, { resource: 'https://example.test/' }), 'provider'));
  });

  it('a JSON body', async () => {
    await differential({ headers: { 'content-type': 'application/json', ...basic(api) }, body: JSON.stringify({ token: tokens.opaque }) }, 'provider');
  });
});

describe('client authentication failures', () => {
  const cases: Array<[string, () => Request, 'dedicated' | 'provider']> = [
    [
      'an unknown client',
      () => ({ headers: { ...FORM_TYPE, ...basic({ client_id: 'nobody', client_secret: 'x'.repeat(43) }) }, body: form({ token: tokens.opaque }) }),
      'provider',
    ],
    [
      'a wrong secret (Basic)',
      () => ({ headers: { ...FORM_TYPE, ...basic({ ...api, client_secret: 'x'.repeat(43) }) }, body: form({ token: tokens.opaque }) }),
      'dedicated',
    ],
    [
      'a wrong secret (Basic, form-encoded)',
      () => ({ headers: { ...FORM_TYPE, ...encodedBasic({ ...api, client_secret: `${api.client_secret.slice(1)}-` }) }, body: form({ token: tokens.opaque }) }),
      'dedicated',
    ],
    [
      'a Basic header that does not decode',
      () => ({
        headers: { ...FORM_TYPE, authorization: `Basic ${Buffer.from(`${api.client_id}:%E0%A4%A`).toString('base64')}` },
        body: form({ token: tokens.opaque }),
      }),
      'provider',
    ],
    [
      'a wrong secret (form)',
      () => ({ headers: FORM_TYPE, body: form({ token: tokens.opaque, client_id: api.client_id, client_secret: 'x'.repeat(43) }) }),
      'dedicated',
    ],
    ['no authentication', () => ({ headers: FORM_TYPE, body: form({ token: tokens.opaque }) }), 'provider'],
    ['a client_id without a secret', () => ({ headers: FORM_TYPE, body: form({ token: tokens.opaque, client_id: api.client_id }) }), 'provider'],
    [
      'Basic and a secret in the form',
      () => ({ headers: { ...FORM_TYPE, ...basic(api) }, body: form({ token: tokens.opaque, client_id: api.client_id, client_secret: api.client_secret }) }),
      'provider',
    ],
    ['a malformed Basic header', () => ({ headers: { ...FORM_TYPE, authorization: 'Basic !!!' }, body: form({ token: tokens.opaque }) }), 'provider'],
    [
      'a Basic header without a colon',
      () => ({ headers: { ...FORM_TYPE, authorization: `Basic ${Buffer.from(api.client_id).toString('base64')}` }, body: form({ token: tokens.opaque }) }),
      'provider',
    ],
    ['a Bearer header', () => ({ headers: { ...FORM_TYPE, authorization: `Bearer ${tokens.opaque}` }, body: form({ token: tokens.opaque }) }), 'provider'],
    ['a client_id beside Basic naming another client', () => byApi(tokens.opaque, { client_id: external.client_id }), 'provider'],
    [
      'a wrong secret, to a client that prefers HTML',
      () => ({ headers: { ...FORM_TYPE, accept: 'text/html', ...basic({ ...api, client_secret: 'y'.repeat(43) }) }, body: form({ token: tokens.opaque }) }),
      'provider',
    ],
  ];
  it.each(cases)('%s', async (_name, request, path) => {
    const answer = await differential(request(), path);
    expect(answer.status).toBeGreaterThanOrEqual(400);
  });

  it('lockout: the same answers before, at and after the limit', async () => {
    // One client per server: the failure counter is shared (one Redis prefix), so each server counts its own.
    const wrong = (c: Credentials): Request => ({
      headers: { ...FORM_TYPE, ...basic({ ...c, client_secret: 'z'.repeat(43) }) },
      body: form({ token: tokens.opaque }),
    });
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 22; attempt++) {
      const requestId = `lockout-${attempt}-${randomBytes(3).toString('hex')}`;
      const before = await answeredByDedicatedPath();
      const fast = await send(dedicated, wrong(lockouts[0]), requestId);
      expect((await answeredByDedicatedPath()) - before).toBe(1);
      const slow = await send(stock, wrong(lockouts[1]), requestId);
      // Retry-After counts down the same window, which began a moment apart on each.
      const { 'retry-after': fastRetry, ...fastHeaders } = fast.headers;
      const { 'retry-after': slowRetry, ...slowHeaders } = slow.headers;
      expect([fast.status, fastHeaders, fast.body]).toEqual([slow.status, slowHeaders, slow.body]);
      expect(fastRetry === undefined).toBe(slowRetry === undefined);
      if (fastRetry !== undefined) expect(Math.abs(Number(fastRetry) - Number(slowRetry))).toBeLessThanOrEqual(1);
      statuses.push(fast.status);
    }
    expect(statuses.slice(0, 19).every((s) => s === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    // Locked out, the right secret is refused alike.
    const fast = await send(dedicated, { headers: { ...FORM_TYPE, ...basic(lockouts[0]) }, body: form({ token: tokens.opaque }) }, 'locked');
    const slow = await send(stock, { headers: { ...FORM_TYPE, ...basic(lockouts[1]) }, body: form({ token: tokens.opaque }) }, 'locked');
    expect([fast.status, fast.body]).toEqual([429, slow.body]);
    expect(slow.status).toBe(429);
  });
});

describe('entitlements (a person entitled through a group)', () => {
  const byPayroll = (token: string): Request => ({ headers: { ...FORM_TYPE, ...basic(payrollApi) }, body: form({ token }) });

  it.each(['entitledOpaque', 'entitledJwt'])('%s: active, with the roles for its audience', async (name) => {
    const answer = await differential(byPayroll(tokens[name]), 'dedicated');
    expectActive(answer);
    expect(answer.json).toMatchObject({ sub: payrollGroup.accountId, scope: 'payroll:read', roles: ['auditor', 'clerk'] });
  });

  it.each(['entitledOpaque', 'entitledJwt'])('%s: introspected by another audience, inactive', async (name) => {
    expectInactive(await differential(byApi(tokens[name]), 'dedicated'));
  });

  it('once the person leaves the group, both are inactive at once on both paths', async () => {
    const removed = await adminCall(dedicated.issuer, payrollGroup.adminToken, 'DELETE', `/groups/${payrollGroup.groupId}/members/${payrollGroup.accountId}`);
    expect(removed.status).toBe(204);
    // The other server learns of it through the change bus.
    await sleep(200);
    expectInactive(await differential(byPayroll(tokens.entitledOpaque), 'dedicated'));
    expectInactive(await differential(byPayroll(tokens.entitledJwt), 'dedicated'));
  });
});

describe('after the grant is revoked', () => {
  it("a person's opaque token and the refresh token are inactive", async () => {
    const webApp = JSON.parse(tokens.webApp) as Credentials;
    expect(await revoke(as, webApp.client_id, webApp.client_secret, tokens.refresh)).toBe(200);
    expectInactive(await differential(byApi(tokens.personOpaque), 'dedicated'));
    expectInactive(await differential({ headers: { ...FORM_TYPE, ...basic(webApp) }, body: form({ token: tokens.refresh }) }, 'dedicated'));
  });
});
