/**
 * The dedicated revocation path against oidc-provider's (docs/dedicated-paths.md): two servers on one
 * database, one Redis prefix and one issuer, the first with the dedicated paths on, the second with
 * them off (DEDICATED_PATHS=false). A revocation changes what it revokes, so each case sends the same
 * request about two tokens alike (issued the same way, to the same client), one to each server: the
 * answers must be the same (status, every header but Date, the body byte for byte), and so must the
 * effect, seen by introspecting both tokens on both servers afterwards (which also shows a revocation
 * on one instance taking effect at once on the other). The first server's metrics tell which requests
 * its dedicated path answered.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, createAccount, signIn, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { basic, encodedBasic, form, FORM_TYPE, metricValue, sendRaw, startDifferentialServers } from '../helpers/differential.js';
import type { Credentials, DifferentialRequest as Request, DifferentialServers, Observed } from '../helpers/differential.js';
import type { RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

let servers: DifferentialServers;
let dedicated: RunningServer;
let stock: RunningServer;
let as: oauth.AuthorizationServer;

let external: Credentials;
let other: Credentials;
let postClient: Credentials;
let internal: Credentials;
let doomed: Credentials;
let lockouts: [Credentials, Credentials];
let webApp: TestClient & Credentials;
let ledger: string;
/** The ledger API's introspection credentials. */
let api: Credentials;
let orders: string;
let brief: string;
let account: { email: string; password: string };
/** Tokens issued before their client's tokens were revoked in bulk, and expired ones: a pair each. */
let bulkRevoked: [string, string];
let expired: [string, string];

/** The usual request: a client revokes with Basic. */
const byBasic =
  (c: Credentials, extra: Record<string, string> = {}) =>
  (token: string): Request => ({
    headers: { ...FORM_TYPE, ...basic(c) },
    body: form({ token, ...extra }),
  });

const send = (server: RunningServer, request: Request, requestId: string) => sendRaw(server, new URL(as.revocation_endpoint!).pathname, request, requestId);
const metric = (prefix: string, ...labels: string[]) => metricValue(servers.metricsUrl, prefix, ...labels);
const answeredByDedicatedPath = () => servers.dedicatedPathCount('revocation');

/** Whether `token` introspects active for `client`, asked of each server: the same on both, or the test fails. */
async function activeEverywhere(client: Credentials, token: string): Promise<boolean> {
  const answers = await Promise.all(
    [dedicated, stock].map(async (server) => {
      const serverAs = { ...as, introspection_endpoint: `http://localhost:${server.port}${new URL(as.introspection_endpoint!).pathname}` };
      return (await introspect(serverAs, client.client_id, client.client_secret, token)).active === true;
    }),
  );
  const [first, second] = answers as [boolean, boolean];
  expect(first).toBe(second);
  return first;
}

/**
 * Sends `request(first)` to the dedicated server and `request(second)` to the stock one, expects the
 * same answer, and that `path` of the first server answered. Then checks the effect is the same: both
 * tokens introspect alike (for `owner`) on both servers. Resolves with the answer and whether the
 * tokens are still active.
 */
async function differential(
  request: (token: string) => Request,
  [first, second]: readonly [string, string],
  path: 'dedicated' | 'provider',
  owner: Credentials,
): Promise<Observed & { stillActive: boolean }> {
  const before = await answeredByDedicatedPath();
  const requestId = `diff-${randomBytes(6).toString('hex')}`;
  const fast = await send(dedicated, request(first), requestId);
  const after = await answeredByDedicatedPath();
  const slow = await send(stock, request(second), requestId);
  expect(after - before).toBe(path === 'dedicated' ? 1 : 0);
  expect(fast.status).toBe(slow.status);
  expect(fast.headers).toEqual(slow.headers);
  expect(fast.body).toBe(slow.body);
  const stillActive = await activeEverywhere(owner, first);
  expect(await activeEverywhere(owner, second)).toBe(stillActive);
  return { ...fast, stillActive };
}

const opaquePair = async (client: Credentials = external): Promise<[string, string]> => {
  const issue = async () => (await issueToken(as, client.client_id, client.client_secret, { resource: ledger, scope: 'ledger:read' })).accessToken;
  return [await issue(), await issue()];
};
const jwtPair = async (): Promise<[string, string]> => {
  const issue = async () => (await issueToken(as, internal.client_id, internal.client_secret, { resource: orders, scope: 'orders:read' })).accessToken;
  return [await issue(), await issue()];
};

/** A person's sign-in to the web app: an opaque access token of the grant and its refresh token. */
async function personTokens(): Promise<{ access: string; refresh: string }> {
  const browser = new Browser(REDIRECT_URI);
  const start = await authorizationUrl(as, webApp, { scope: 'openid offline_access ledger:read', prompt: 'consent' });
  const callback = new URL((await signIn(browser, await browser.navigate(start.url), account.email, account.password)).url);
  const code = oauth.validateAuthResponse(as, webApp, callback, start.state);
  const exchanged = await oauth.processAuthorizationCodeResponse(
    as,
    webApp,
    await oauth.authorizationCodeGrantRequest(as, webApp, oauth.ClientSecretBasic(webApp.client_secret), code, REDIRECT_URI, start.verifier, {
      ...insecure,
      additionalParameters: { resource: ledger },
    }),
    { expectedNonce: start.nonce, requireIdToken: true },
  );
  return { access: exchanged.access_token, refresh: exchanged.refresh_token! };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  servers = await startDifferentialServers();
  ({ dedicated, stock } = servers);
  as = await discover(dedicated.issuer);
  const admin = await adminToken(dedicated.issuer);

  const rs = (name: string, fields: Record<string, unknown> = {}) =>
    registerResourceServer(dedicated.issuer, admin, { identifier: uniqueResource(name), name, scopes: [`${name}:read`], ...fields });
  const ledgerRs = await rs('ledger', { token_format: 'opaque' });
  ledger = ledgerRs.identifier;
  api = ledgerRs.introspection;
  orders = (await rs('orders')).identifier;
  brief = (await rs('brief', { token_format: 'opaque', access_token_ttl: 1 })).identifier;
  const resources = [ledger, orders, brief];
  const scope = 'ledger:read orders:read brief:read';
  const client = (client_name: string, fields: Record<string, unknown> = {}) =>
    registerClient(dedicated.issuer, admin, { client_name, trust: 'external', resources, scope, ...fields });
  external = await client('Partner');
  other = await client('Other partner');
  postClient = await client('Posting partner', { token_endpoint_auth_method: 'client_secret_post' });
  internal = await client('Billing job', { trust: 'internal' });
  doomed = await client('Doomed');
  lockouts = [await client('Lock A'), await client('Lock B')];

  bulkRevoked = await opaquePair(doomed);
  expect((await adminCall(dedicated.issuer, admin, 'POST', `/clients/${doomed.client_id}/revoke-tokens`)).status).toBeLessThan(300);
  const issueBrief = async () => (await issueToken(as, external.client_id, external.client_secret, { resource: brief, scope: 'brief:read' })).accessToken;
  expired = [await issueBrief(), await issueBrief()];

  const web = await registerClient(dedicated.issuer, admin, {
    client_name: 'Intranet',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [ledger],
    scope: 'openid offline_access ledger:read',
  });
  webApp = { ...web, redirect_uri: REDIRECT_URI };
  account = await createAccount(dedicated.issuer, admin);
}, 90_000);

afterAll(async () => {
  await Promise.all([dedicated?.stop(), stock?.stop()]);
});

describe('opaque client credentials tokens', () => {
  it('its own active token, Basic: revoked, at once on both instances', async () => {
    const answer = await differential(byBasic(external), await opaquePair(), 'dedicated', external);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('');
    expect(answer.headers['content-length']).toBe('0');
    expect(answer.stillActive).toBe(false);
  });

  it('its own active token, the secret in the form (client_secret_post)', async () => {
    const request = (token: string) => ({
      headers: FORM_TYPE,
      body: form({ token, client_id: postClient.client_id, client_secret: postClient.client_secret }),
    });
    expect((await differential(request, await opaquePair(postClient), 'dedicated', postClient)).stillActive).toBe(false);
  });

  it('Basic credentials form-encoded, and a client_id beside them naming the same client', async () => {
    const request = (token: string) => ({ headers: { ...FORM_TYPE, ...encodedBasic(external) }, body: form({ token, client_id: external.client_id }) });
    expect((await differential(request, await opaquePair(), 'dedicated', external)).stillActive).toBe(false);
  });

  it("another client's token: 200, and not revoked", async () => {
    const answer = await differential(byBasic(other), await opaquePair(), 'dedicated', external);
    expect(answer.status).toBe(200);
    expect(answer.stillActive).toBe(true);
  });

  it('already revoked', async () => {
    const pair = await opaquePair();
    expect(await revoke(as, external.client_id, external.client_secret, pair[0])).toBe(200);
    expect(await revoke(as, external.client_id, external.client_secret, pair[1])).toBe(200);
    expect((await differential(byBasic(external), pair, 'dedicated', external)).status).toBe(200);
  });

  it("issued before its client's tokens were revoked in bulk", async () => {
    expect((await differential(byBasic(doomed), bulkRevoked, 'dedicated', doomed)).status).toBe(200);
  });

  it.each(['access_token', 'refresh_token', 'urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:token-type:refresh_token'])(
    'with token_type_hint=%s',
    async (hint) => {
      expect((await differential(byBasic(external, { token_type_hint: hint }), await opaquePair(), 'dedicated', external)).stillActive).toBe(false);
    },
  );

  it('a token_type_hint the path does not know is left to the provider', async () => {
    await differential(byBasic(external, { token_type_hint: 'id_token' }), await opaquePair(), 'provider', external);
  });

  it('bound to a DPoP key, revoked by its client without a proof', async () => {
    const dpop = oauth.DPoP({}, await oauth.generateKeyPair('ES256'));
    const issue = async () => {
      const params = new URLSearchParams({ resource: ledger, scope: 'ledger:read' });
      const response = await oauth.clientCredentialsGrantRequest(
        as,
        { client_id: external.client_id },
        oauth.ClientSecretBasic(external.client_secret),
        params,
        {
          ...insecure,
          DPoP: dpop,
        },
      );
      return (await oauth.processClientCredentialsResponse(as, { client_id: external.client_id }, response)).access_token;
    };
    expect((await differential(byBasic(external), [await issue(), await issue()], 'dedicated', external)).stillActive).toBe(false);
  });

  it('a DPoP header: left to the provider', async () => {
    const request = (token: string) => ({ headers: { ...FORM_TYPE, ...basic(external), dpop: 'not.a.proof' }, body: form({ token }) });
    await differential(request, await opaquePair(), 'provider', external);
  });

  it('expired', async () => {
    // Issued in beforeAll with a lifetime of 1 s.
    await sleep(1_100);
    expect((await differential(byBasic(external), expired, 'dedicated', external)).status).toBe(200);
  });
});

describe('tokens whose revocation is left to the provider', () => {
  it("a person's refresh token: its whole grant is revoked", async () => {
    const [a, b] = [await personTokens(), await personTokens()];
    const answer = await differential(byBasic(webApp), [a.refresh, b.refresh], 'provider', webApp);
    expect(answer.stillActive).toBe(false);
    expect(await activeEverywhere(webApp, a.access)).toBe(false);
    expect(await activeEverywhere(webApp, b.access)).toBe(false);
  }, 30_000);

  it("a person's opaque access token: its whole grant is revoked", async () => {
    const [a, b] = [await personTokens(), await personTokens()];
    const answer = await differential(byBasic(webApp), [a.access, b.access], 'provider', webApp);
    expect(answer.stillActive).toBe(false);
    expect(await activeEverywhere(webApp, a.refresh)).toBe(await activeEverywhere(webApp, b.refresh));
  }, 30_000);

  it('a JWT access token of its own client', async () => {
    expect((await differential(byBasic(internal), await jwtPair(), 'provider', internal)).stillActive).toBe(false);
  });

  it('a JWT access token of another client: not revoked', async () => {
    expect((await differential(byBasic(external), await jwtPair(), 'provider', internal)).stillActive).toBe(true);
  });
});

describe('malformed requests', () => {
  it.each([
    ['garbage', 'not-a-token', 'dedicated'],
    // Not a JWS for jose, hence for the provider too: an unknown opaque value.
    ['JWT-shaped garbage', 'a.b.c', 'dedicated'],
    ['a JWS of no key of this server', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`, 'provider'],
    ['an empty token', '', 'provider'],
  ] as const)('%s', async (_name, token, path) => {
    expect((await differential(() => byBasic(external)(token), await opaquePair(), path, external)).stillActive).toBe(true);
  });

  it('no token parameter', async () => {
    const pair = await opaquePair();
    const answer = await differential(() => ({ headers: { ...FORM_TYPE, ...basic(external) }, body: '' }), pair, 'provider', external);
    expect(answer.status).toBe(400);
    expect(answer.stillActive).toBe(true);
  });

  it('the token twice', async () => {
    const answer = await differential(
      (token) => ({ headers: { ...FORM_TYPE, ...basic(external) }, body: `token=${token}&token=${token}` }),
      await opaquePair(),
      'provider',
      external,
    );
    expect(answer.status).toBe(400);
  });
});

describe('client authentication failures: nothing revoked', () => {
  const wrong = (c: Credentials): Credentials => ({ ...c, client_secret: 'x'.repeat(43) });
  const cases: Array<[string, (token: string) => Request, 'dedicated' | 'provider']> = [
    ['a wrong secret (Basic)', (token) => byBasic(wrong(external))(token), 'dedicated'],
    [
      'a wrong secret (Basic, form-encoded)',
      (token) => ({ headers: { ...FORM_TYPE, ...encodedBasic({ ...external, client_secret: `${external.client_secret.slice(1)}-` }) }, body: form({ token }) }),
      'dedicated',
    ],
    [
      'a wrong secret (form)',
      (token) => ({ headers: FORM_TYPE, body: form({ token, client_id: postClient.client_id, client_secret: 'x'.repeat(43) }) }),
      'dedicated',
    ],
    ['an unknown client', (token) => byBasic({ client_id: 'nobody', client_secret: 'x'.repeat(43) })(token), 'provider'],
    ['no authentication', (token) => ({ headers: FORM_TYPE, body: form({ token }) }), 'provider'],
    ['a client_id without a secret', (token) => ({ headers: FORM_TYPE, body: form({ token, client_id: external.client_id }) }), 'provider'],
    [
      'Basic and a secret in the form',
      (token) => ({
        headers: { ...FORM_TYPE, ...basic(external) },
        body: form({ token, client_id: external.client_id, client_secret: external.client_secret }),
      }),
      'provider',
    ],
    ['a malformed Basic header', (token) => ({ headers: { ...FORM_TYPE, authorization: 'Basic !!!' }, body: form({ token }) }), 'provider'],
    ['a Bearer header', (token) => ({ headers: { ...FORM_TYPE, authorization: `Bearer ${token}` }, body: form({ token }) }), 'provider'],
    ['a client_id beside Basic naming another client', (token) => byBasic(external, { client_id: other.client_id })(token), 'provider'],
    [
      'a wrong secret, to a client that prefers HTML',
      (token) => ({ headers: { ...FORM_TYPE, accept: 'text/html', ...basic(wrong(external)) }, body: form({ token }) }),
      'provider',
    ],
  ];
  it.each(cases)('%s', async (_name, request, path) => {
    const answer = await differential(request, await opaquePair(), path, external);
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.stillActive).toBe(true);
  });

  it('lockout: the same answers before, at and after the limit, and the right secret refused once locked out', async () => {
    // One client per server: the failure counter is shared (one Redis prefix), so each server counts its own.
    const [a, b] = [await opaquePair(lockouts[0]), await opaquePair(lockouts[1])];
    const wrongRequest = (c: Credentials, token: string): Request => byBasic(wrong(c))(token);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 22; attempt++) {
      const requestId = `lockout-${attempt}-${randomBytes(3).toString('hex')}`;
      const before = await answeredByDedicatedPath();
      const fast = await send(dedicated, wrongRequest(lockouts[0], a[0]), requestId);
      expect((await answeredByDedicatedPath()) - before).toBe(1);
      const slow = await send(stock, wrongRequest(lockouts[1], b[0]), requestId);
      const { 'retry-after': fastRetry, ...fastHeaders } = fast.headers;
      const { 'retry-after': slowRetry, ...slowHeaders } = slow.headers;
      expect([fast.status, fastHeaders, fast.body]).toEqual([slow.status, slowHeaders, slow.body]);
      expect(fastRetry === undefined).toBe(slowRetry === undefined);
      if (fastRetry !== undefined) expect(Math.abs(Number(fastRetry) - Number(slowRetry))).toBeLessThanOrEqual(1);
      statuses.push(fast.status);
    }
    expect(statuses.slice(0, 19).every((s) => s === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    const fast = await send(dedicated, byBasic(lockouts[0])(a[0]), 'locked');
    const slow = await send(stock, byBasic(lockouts[1])(b[0]), 'locked');
    expect([fast.status, fast.body]).toEqual([429, slow.body]);
    expect(slow.status).toBe(429);
    // Not revoked: their audience introspects them active still (their clients are locked out).
    expect(await activeEverywhere(api, a[0])).toBe(true);
    expect(await activeEverywhere(api, b[0])).toBe(true);
  });
});

describe('metrics', () => {
  it('counts an opaque revocation under login_revocations_total{kind="opaque"}, as the provider path does', async () => {
    const before = await metric('login_revocations_total{', 'kind="opaque"');
    await differential(byBasic(external), await opaquePair(), 'dedicated', external);
    expect(await metric('login_revocations_total{', 'kind="opaque"')).toBe(before + 1);
  });
});
