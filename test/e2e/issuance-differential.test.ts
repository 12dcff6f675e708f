/**
 * The dedicated client_credentials path against oidc-provider's (docs/dedicated-paths.md): two servers
 * on one database, one Redis prefix and one issuer, the first with the dedicated paths on, the second
 * with them off (DEDICATED_PATHS=false), are sent the same token requests. Every answer must be the
 * same: status, every header but Date, and the body field by field (token values differ: they must
 * have the same form). Each token issued is then held to the other's: an opaque token the same stored
 * record (but for its id and times), a JWT the same header and claims (but for the values of jti, iat
 * and exp) and verifiable against the published JWKS; either the same introspection answer on both
 * servers, and revocable on either. The first server's metrics tell which requests its dedicated path
 * answered.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { adminToken, discover, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { basic, form, FORM_TYPE, metricValue, sendRaw, startDifferentialServers } from '../helpers/differential.js';
import type { Credentials, DifferentialRequest as Request, DifferentialServers, Observed as RawObserved } from '../helpers/differential.js';
import type { RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** The first server answers on its dedicated path; the second is oidc-provider alone. */
let servers: DifferentialServers;
let dedicated: RunningServer;
let stock: RunningServer;
let as: oauth.AuthorizationServer;
let redis: Redis;

let external: Credentials;
let internal: Credentials;
let postClient: Credentials;
let noGrant: Credentials;
/** May exchange (RFC 8693) the external client's tokens, for ledger. */
let exchanger: Credentials;
let lockouts: [Credentials, Credentials];
let ledger: { identifier: string; introspection: Credentials };
let orders: { identifier: string; introspection: Credentials };
let other: { identifier: string; introspection: Credentials };
/** JWT audiences, one per enabled algorithm (the signing_alg default and two others). */
let rs256: { identifier: string; introspection: Credentials };
let es256: { identifier: string; introspection: Credentials };
let ps256: { identifier: string; introspection: Credentials };
/** Internal clients of the JWT audiences (JWTs unless a sensitive scope is asked). */
let jwtClient: Credentials;
let jwtPostClient: Credentials;

const grant = (c: Credentials, params: Record<string, string> = {}): Request => ({
  headers: { ...FORM_TYPE, ...basic(c) },
  body: form({ grant_type: 'client_credentials', ...params }),
});

/** An answer, and its JSON body when it has one. */
/** What must be the same on both paths, and the JSON body when there is one. */
type Observed = RawObserved & { readonly json: Record<string, unknown> | undefined };

async function send(server: RunningServer, path: string, request: Request, requestId: string): Promise<Observed> {
  const observed = await sendRaw(server, path, request, requestId);
  const json = observed.headers['content-type']?.startsWith('application/json') ? (JSON.parse(observed.body) as Record<string, unknown>) : undefined;
  return { ...observed, json };
}

const metric = (prefix: string, ...labels: string[]) => metricValue(servers.metricsUrl, prefix, ...labels);
const answeredByDedicatedPath = () => servers.dedicatedPathCount('token');
const leftToProvider = () => servers.dedicatedPathCount('token', 'provider');

const TOKEN_VALUE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Sends `request` to the token endpoint of both servers and expects the same answer; `path` says which
 * path of the first server must have answered. Resolves with both answers.
 */
async function differential(request: Request, path: 'dedicated' | 'provider'): Promise<{ fast: Observed; slow: Observed }> {
  const [answeredBefore, leftBefore] = [await answeredByDedicatedPath(), await leftToProvider()];
  const requestId = `diff-${randomBytes(6).toString('hex')}`;
  const tokenPath = new URL(as.token_endpoint!).pathname;
  const fast = await send(dedicated, tokenPath, request, requestId);
  const [answeredAfter, leftAfter] = [await answeredByDedicatedPath(), await leftToProvider()];
  const slow = await send(stock, tokenPath, request, requestId);
  expect([answeredAfter - answeredBefore, leftAfter - leftBefore]).toEqual(path === 'dedicated' ? [1, 0] : [0, 1]);
  expect(fast.status).toBe(slow.status);
  if (fast.status === 200 && fast.json?.access_token !== undefined) {
    // The values differ; their form, and everything else, must not.
    const { access_token: fastToken, ...fastRest } = fast.json;
    const { access_token: slowToken, ...slowRest } = slow.json!;
    expect(Object.keys(fast.json)).toEqual(Object.keys(slow.json!));
    if (fast.json.token_type === 'Bearer' && typeof fastToken === 'string' && !fastToken.includes('.')) {
      expect(fastToken).toMatch(TOKEN_VALUE);
      expect(slowToken).toMatch(TOKEN_VALUE);
    } else {
      // A JWT from both, of the same length (header, claims and signature sizes alike).
      expect([(fastToken as string).split('.').length, (fastToken as string).length]).toEqual([3, (slowToken as string).length]);
    }
    expect(fastRest).toEqual(slowRest);
    expect(fast.headers).toEqual(slow.headers);
  } else {
    expect(fast.headers).toEqual(slow.headers);
    expect(fast.json).toEqual(slow.json);
    expect(fast.body).toBe(slow.body);
  }
  return { fast, slow };
}

/** Where the token store keeps a client_credentials token's record. */
const recordKey = (token: string) => `${process.env.TEST_RUN_REDIS_PREFIX}ClientCredentials:{${createHash('sha256').update(token).digest('base64url')}}`;

/** The stored record of an opaque client_credentials token, as the token store keeps it. */
async function storedRecord(token: string): Promise<Record<string, unknown>> {
  const key = recordKey(token);
  const hash = await redis.hgetall(key);
  expect(hash.payload).toBeDefined();
  const ttl = await redis.ttl(key);
  return { ...hash, payload: JSON.parse(hash.payload), ttl };
}

async function introspect(server: RunningServer, rs: Credentials, token: string): Promise<Observed> {
  return send(server, new URL(as.introspection_endpoint!).pathname, { headers: { ...FORM_TYPE, ...basic(rs) }, body: form({ token }) }, randomUUID());
}

async function revokeOn(server: RunningServer, client: Credentials, token: string): Promise<number> {
  const answer = await send(
    server,
    new URL(as.revocation_endpoint!).pathname,
    { headers: { ...FORM_TYPE, ...basic(client) }, body: form({ token }) },
    randomUUID(),
  );
  return answer.status;
}

/** The fields of an answer about a token that do not depend on which token of the pair it is. */
const withoutIdentity = ({ jti: _jti, iat: _iat, exp: _exp, ...rest }: Record<string, unknown>) => rest;

/** The opaque tokens of one pair are stored alike, by the store both paths write through. */
async function expectRecordsAlike(pair: { fast: Observed; slow: Observed }, fastToken: string, slowToken: string): Promise<void> {
  const [fastRecord, slowRecord] = [await storedRecord(fastToken), await storedRecord(slowToken)];
  const fastPayload = fastRecord.payload as Record<string, unknown>;
  const slowPayload = slowRecord.payload as Record<string, unknown>;
  expect(Object.keys(fastPayload)).toEqual(Object.keys(slowPayload));
  expect(withoutIdentity(fastPayload)).toEqual(withoutIdentity(slowPayload));
  // Stored under a digest of the value, never the value itself.
  expect(JSON.stringify(fastRecord)).not.toContain(fastToken);
  expect(Number(fastPayload.exp) - Number(fastPayload.iat)).toBe(pair.fast.json!.expires_in);
  expect(Math.abs(Number(fastRecord.ttl) - Number(slowRecord.ttl))).toBeLessThanOrEqual(2);
  expect(Object.keys(fastRecord).sort()).toEqual(Object.keys(slowRecord).sort());
}

/** The provider's jti of a JWT access token: 43 symbols of the URL-safe alphabet (its nanoid). */
const JTI = /^[A-Za-z0-9_-]{43}$/;

/**
 * The JWTs of one pair are alike: the same protected header (alg, typ, kid, in order), the same claims
 * in the same order with the same values but for jti, iat and exp (of the same type, and the same
 * lifetime, the answer's expires_in), nothing stored for either, and both verify with jose against
 * the JWKS each server publishes.
 */
async function expectJwtsAlike(pair: { fast: Observed; slow: Observed }, fastToken: string, slowToken: string, audience: string): Promise<void> {
  expect(decodeProtectedHeader(fastToken)).toEqual(decodeProtectedHeader(slowToken));
  expect(Object.keys(decodeProtectedHeader(fastToken))).toEqual(['alg', 'typ', 'kid']);
  expect(decodeProtectedHeader(fastToken).typ).toBe('at+jwt');
  const [fastClaims, slowClaims] = [decodeJwt(fastToken), decodeJwt(slowToken)];
  expect(Object.keys(fastClaims)).toEqual(Object.keys(slowClaims));
  expect(withoutIdentity(fastClaims)).toEqual(withoutIdentity(slowClaims));
  for (const claims of [fastClaims, slowClaims]) {
    expect(claims.jti).toMatch(JTI);
    expect([typeof claims.iat, typeof claims.exp]).toEqual(['number', 'number']);
    expect(claims.exp! - claims.iat!).toBe(pair.fast.json!.expires_in);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(30);
  }
  expect(fastClaims.jti).not.toBe(slowClaims.jti);
  // A JWT access token is not stored, on either path.
  for (const token of [fastToken, slowToken]) expect(await redis.exists(recordKey(token))).toBe(0);
  for (const server of [dedicated, stock]) {
    const jwks = createRemoteJWKSet(new URL(`http://localhost:${server.port}${new URL(as.jwks_uri!).pathname}`));
    for (const token of [fastToken, slowToken]) {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: as.issuer, audience, typ: 'at+jwt' });
      expect(protectedHeader.alg).toBe(decodeProtectedHeader(slowToken).alg);
      expect(payload.client_id).toBe(slowClaims.client_id);
    }
  }
}

/**
 * The tokens of one differential pair are alike: stored alike (opaque) or signed alike (JWT),
 * introspected alike by their resource server on both servers, invisible to another audience, and
 * revoked by either server.
 */
async function expectTokensAlike(
  pair: { fast: Observed; slow: Observed },
  client: Credentials,
  rs: Credentials,
  outsider = other.introspection,
  audience?: string,
): Promise<void> {
  const fastToken = pair.fast.json!.access_token as string;
  const slowToken = pair.slow.json!.access_token as string;
  if (audience === undefined) await expectRecordsAlike(pair, fastToken, slowToken);
  else await expectJwtsAlike(pair, fastToken, slowToken, audience);

  const answers = [];
  const jtis = new Map<string, unknown>();
  for (const server of [dedicated, stock]) {
    for (const token of [fastToken, slowToken]) {
      const answer = await introspect(server, rs, token);
      expect(answer.status).toBe(200);
      expect(answer.json!.active).toBe(true);
      // The same token's identifier on both servers (never the value itself).
      expect(answer.json!.jti).not.toBe(token);
      if (jtis.has(token)) expect(answer.json!.jti).toBe(jtis.get(token));
      else jtis.set(token, answer.json!.jti);
      answers.push(withoutIdentity(answer.json!));
      // Another audience learns nothing.
      expect((await introspect(server, outsider, token)).json).toEqual({ active: false });
    }
  }
  for (const answer of answers) expect(answer).toEqual(answers[0]);
  expect(Object.keys(answers[0])).toEqual(Object.keys(answers[3]));

  // Each revoked by the server that did not issue it.
  expect(await revokeOn(stock, client, fastToken)).toBe(200);
  expect(await revokeOn(dedicated, client, slowToken)).toBe(200);
  for (const server of [dedicated, stock]) {
    for (const token of [fastToken, slowToken]) expect((await introspect(server, rs, token)).json).toEqual({ active: false });
  }
}

beforeAll(async () => {
  servers = await startDifferentialServers();
  ({ dedicated, stock } = servers);
  as = await discover(dedicated.issuer);
  redis = new Redis(process.env.TEST_REDIS_URL!);
  const admin = await adminToken(dedicated.issuer);

  const rs = (name: string, fields: Record<string, unknown> = {}) =>
    registerResourceServer(dedicated.issuer, admin, { identifier: uniqueResource(name), name, scopes: [`${name}:read`, `${name}:write`], ...fields });
  ledger = await rs('ledger', { token_format: 'opaque', access_token_ttl: 900 });
  orders = await rs('orders', { scopes: ['orders:read', 'orders:refund'], sensitive_scopes: ['orders:refund'] });
  other = await rs('other', { token_format: 'opaque' });
  const locks = [await rs('locka'), await rs('lockb')];
  rs256 = await rs('rsa', { scopes: ['rsa:read', 'rsa:write', 'rsa:admin'], sensitive_scopes: ['rsa:admin'], access_token_ttl: 120 });
  es256 = await rs('ec', { signing_alg: 'ES256' });
  ps256 = await rs('pss', { signing_alg: 'PS256' });

  const resources = [ledger.identifier, orders.identifier, other.identifier];
  const scope = 'ledger:read ledger:write orders:read orders:refund other:read';
  external = await registerClient(dedicated.issuer, admin, { client_name: 'Partner', trust: 'external', resources, scope });
  internal = await registerClient(dedicated.issuer, admin, {
    client_name: 'Billing job',
    trust: 'internal',
    resources: [orders.identifier, ledger.identifier],
    scope: 'orders:read orders:refund ledger:read',
  });
  postClient = await registerClient(dedicated.issuer, admin, {
    client_name: 'Posting partner',
    trust: 'external',
    resources,
    scope,
    token_endpoint_auth_method: 'client_secret_post',
  });
  const jwtResources = [rs256.identifier, es256.identifier, ps256.identifier, ledger.identifier];
  const jwtScope = 'rsa:read rsa:write rsa:admin ec:read ec:write pss:read ledger:read';
  jwtClient = await registerClient(dedicated.issuer, admin, { client_name: 'Nightly export', trust: 'internal', resources: jwtResources, scope: jwtScope });
  jwtPostClient = await registerClient(dedicated.issuer, admin, {
    client_name: 'Report job',
    trust: 'internal',
    resources: [es256.identifier],
    scope: 'ec:read ec:write',
    token_endpoint_auth_method: 'client_secret_post',
  });
  noGrant = await registerClient(dedicated.issuer, admin, {
    client_name: 'Intranet',
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: ['http://127.0.0.1:9/callback'],
    resources,
    scope: 'openid ledger:read',
  });
  exchanger = await registerClient(dedicated.issuer, admin, {
    client_name: 'Exchanger',
    trust: 'external',
    resources: [ledger.identifier],
    scope: 'ledger:read',
    token_exchange: { subject_client_ids: [external.client_id], audiences: [ledger.identifier] },
  });
  lockouts = [
    await registerClient(dedicated.issuer, admin, { client_name: 'Lock A', trust: 'external', resources: [locks[0].identifier], scope: 'locka:read' }),
    await registerClient(dedicated.issuer, admin, { client_name: 'Lock B', trust: 'external', resources: [locks[1].identifier], scope: 'lockb:read' }),
  ];
}, 90_000);

afterAll(async () => {
  redis?.disconnect();
  await Promise.all([dedicated?.stop(), stock?.stop()]);
});

describe('opaque tokens issued on the dedicated path', () => {
  it('an external client, its default resource', async () => {
    const pair = await differential(grant(external, { scope: 'ledger:read' }), 'dedicated');
    expect(pair.fast.status).toBe(200);
    expect(pair.fast.json).toMatchObject({ expires_in: 900, scope: 'ledger:read', token_type: 'Bearer' });
    expect(pair.fast.headers['cache-control']).toBe('no-store');
    await expectTokensAlike(pair, external, ledger.introspection);
  });

  it('an explicit resource', async () => {
    const pair = await differential(grant(external, { resource: other.identifier, scope: 'other:read' }), 'dedicated');
    expect(pair.fast.json).toMatchObject({ expires_in: 3600, scope: 'other:read' });
    await expectTokensAlike(pair, external, other.introspection, ledger.introspection);
  });

  it.each([
    ['no scope', {}],
    ['both scopes', { scope: 'ledger:write ledger:read' }],
    ['a scope twice', { scope: 'ledger:read ledger:read' }],
    ["another resource's scope beside one of this resource", { scope: 'other:read ledger:write' }],
    ["only another resource's scope", { scope: 'other:read' }],
  ])('scope subsets: %s', async (_name, params) => {
    const pair = await differential(grant(external, { resource: ledger.identifier, ...params }), 'dedicated');
    expect(pair.fast.status).toBe(200);
    await expectTokensAlike(pair, external, ledger.introspection);
  });

  it('the secret in the form (client_secret_post)', async () => {
    const body = form({ grant_type: 'client_credentials', client_id: postClient.client_id, client_secret: postClient.client_secret, scope: 'ledger:read' });
    const pair = await differential({ headers: FORM_TYPE, body }, 'dedicated');
    await expectTokensAlike(pair, postClient, ledger.introspection);
  });

  it('an internal client asking a sensitive scope of a JWT audience gets an opaque token', async () => {
    const pair = await differential(grant(internal, { resource: orders.identifier, scope: 'orders:refund' }), 'dedicated');
    expect(pair.fast.json).toMatchObject({ scope: 'orders:refund', token_type: 'Bearer' });
    expect(pair.fast.json!.access_token).toMatch(TOKEN_VALUE);
    await expectTokensAlike(pair, internal, orders.introspection);
  });

  it('counts the token issued as the provider counts it', async () => {
    const labels = ['grant="client_credentials"', 'format="opaque"', 'trust="external"'];
    const before = await metric('login_tokens_issued_total{', ...labels);
    await differential(grant(external, { scope: 'ledger:read' }), 'dedicated');
    expect((await metric('login_tokens_issued_total{', ...labels)) - before).toBe(1);
  });
});

describe('JWT access tokens issued on the dedicated path', () => {
  it('an internal client on a JWT audience (RS256, the default signing_alg)', async () => {
    const pair = await differential(grant(internal, { resource: orders.identifier, scope: 'orders:read' }), 'dedicated');
    expect(pair.fast.status).toBe(200);
    expect(pair.fast.json).toMatchObject({ expires_in: 300, scope: 'orders:read', token_type: 'Bearer' });
    expect(decodeProtectedHeader(pair.fast.json!.access_token as string).alg).toBe('RS256');
    await expectTokensAlike(pair, internal, orders.introspection, other.introspection, orders.identifier);
  });

  it('an internal client whose default resource is a JWT audience, no scope', async () => {
    const pair = await differential(grant(internal), 'dedicated');
    expect(pair.fast.json!.scope).toBeUndefined();
    expect(decodeJwt(pair.fast.json!.access_token as string).scope).toBeUndefined();
    await expectTokensAlike(pair, internal, orders.introspection, other.introspection, orders.identifier);
  });

  it.each([
    ['RS256, one scope', () => rs256, { scope: 'rsa:read' }, 'RS256'],
    ['RS256, several scopes, one twice, in another order', () => rs256, { scope: 'rsa:write rsa:read rsa:write' }, 'RS256'],
    ["RS256, another resource's scope beside one of this resource", () => rs256, { scope: 'ec:read rsa:read' }, 'RS256'],
    ["RS256, only another resource's scope", () => rs256, { scope: 'ec:read' }, 'RS256'],
    ['ES256, one scope', () => es256, { scope: 'ec:read' }, 'ES256'],
    ['ES256, both scopes', () => es256, { scope: 'ec:read ec:write' }, 'ES256'],
    ['ES256, no scope', () => es256, {}, 'ES256'],
    ['PS256, one scope', () => ps256, { scope: 'pss:read' }, 'PS256'],
  ] as const)('%s', async (_name, target, params: Record<string, string>, alg) => {
    const rs = target();
    const pair = await differential(grant(jwtClient, { resource: rs.identifier, ...params }), 'dedicated');
    expect(pair.fast.status).toBe(200);
    expect(decodeProtectedHeader(pair.fast.json!.access_token as string).alg).toBe(alg);
    await expectTokensAlike(pair, jwtClient, rs.introspection, ledger.introspection, rs.identifier);
  });

  it("the default resource (RS256, the client's first), no scope", async () => {
    const pair = await differential(grant(jwtClient), 'dedicated');
    expect(decodeJwt(pair.fast.json!.access_token as string).aud).toBe(rs256.identifier);
    expect(pair.fast.json!.expires_in).toBe(120);
    await expectTokensAlike(pair, jwtClient, rs256.introspection, ledger.introspection, rs256.identifier);
  });

  it('the secret in the form (client_secret_post)', async () => {
    const body = form({ grant_type: 'client_credentials', client_id: jwtPostClient.client_id, client_secret: jwtPostClient.client_secret, scope: 'ec:write' });
    const pair = await differential({ headers: FORM_TYPE, body }, 'dedicated');
    await expectTokensAlike(pair, jwtPostClient, es256.introspection, ledger.introspection, es256.identifier);
  });

  it('a sensitive scope of the same audience: an opaque token, on the dedicated path too', async () => {
    const pair = await differential(grant(jwtClient, { resource: rs256.identifier, scope: 'rsa:read rsa:admin' }), 'dedicated');
    expect(pair.fast.json!.access_token).toMatch(TOKEN_VALUE);
    await expectTokensAlike(pair, jwtClient, rs256.introspection, ledger.introspection);
  });

  it('the same client on an opaque audience: an opaque token', async () => {
    const pair = await differential(grant(jwtClient, { resource: ledger.identifier, scope: 'ledger:read' }), 'dedicated');
    expect(pair.fast.json!.access_token).toMatch(TOKEN_VALUE);
  });

  it('counts the token issued as the provider counts it', async () => {
    const labels = ['grant="client_credentials"', 'format="jwt"', 'trust="internal"'];
    const before = await metric('login_tokens_issued_total{', ...labels);
    await differential(grant(jwtClient, { resource: es256.identifier, scope: 'ec:read' }), 'dedicated');
    expect((await metric('login_tokens_issued_total{', ...labels)) - before).toBe(1);
  });

  it('a JWT from either path is accepted by an outside client (oauth4webapi) and introspects on both', async () => {
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      { client_id: jwtClient.client_id },
      oauth.ClientSecretBasic(jwtClient.client_secret),
      new URLSearchParams({ resource: es256.identifier, scope: 'ec:read' }),
      insecure,
    );
    const result = await oauth.processClientCredentialsResponse(as, { client_id: jwtClient.client_id }, response);
    expect(decodeProtectedHeader(result.access_token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    for (const server of [dedicated, stock]) {
      expect((await introspect(server, es256.introspection, result.access_token)).json).toMatchObject({ active: true, scope: 'ec:read' });
    }
  });

  it.each([
    ['a scope the client may not have', () => grant(jwtClient, { resource: es256.identifier, scope: 'orders:read' }), 400],
    ['a scope no one has', () => grant(jwtClient, { resource: es256.identifier, scope: 'ec:delete' }), 400],
    ['an unknown resource', () => grant(jwtClient, { resource: uniqueResource('nowhere'), scope: 'ec:read' }), 400],
    ['a JWT audience the client may not use', () => grant(jwtClient, { resource: orders.identifier }), 400],
    ['scope with invalid characters', () => grant(jwtClient, { resource: es256.identifier, scope: 'ec:read\tec:write' }), 400],
    ['an unknown parameter', () => grant(jwtClient, { resource: es256.identifier, audience: 'x' }), 200],
  ] as const)('left to the provider: %s', async (_name, request, status) => {
    const { fast } = await differential(request(), 'provider');
    expect(fast.status).toBe(status);
  });
});

describe('left to the provider', () => {
  it.each([
    ['a scope the client may not have', () => grant(internal, { resource: ledger.identifier, scope: 'other:read' }), 400],
    ['a scope no one has', () => grant(external, { scope: 'ledger:delete' }), 400],
    ['an unknown resource', () => grant(external, { resource: uniqueResource('nowhere'), scope: 'ledger:read' }), 400],
    ['a resource the client may not use', () => grant(internal, { resource: other.identifier }), 400],
    ['a relative resource', () => grant(external, { resource: '/ledger' }), 400],
    ['a resource with a fragment', () => grant(external, { resource: `${ledger.identifier}#x` }), 400],
    [
      'two resources',
      () => ({
        headers: grant(external).headers,
        body: `${grant(external).body}&resource=${encodeURIComponent(ledger.identifier)}&resource=${encodeURIComponent(other.identifier)}`,
      }),
      400,
    ],
    ['missing grant_type', () => ({ headers: grant(external).headers, body: form({ scope: 'ledger:read' }) }), 400],
    ['another grant type', () => grant(external, { grant_type: 'password' }), 400],
    ['a client not registered for the grant', () => grant(noGrant, { scope: 'ledger:read' }), 400],
    ['scope with invalid characters', () => grant(external, { scope: 'ledger:read  ledger:write' }), 400],
    ['an empty scope', () => grant(external, { scope: '' }), 200],
    ['an unknown parameter', () => grant(external, { scope: 'ledger:read', audience: 'x' }), 200],
    [
      'a JSON body',
      () => ({ headers: { 'content-type': 'application/json', ...basic(external) }, body: JSON.stringify({ grant_type: 'client_credentials' }) }),
      400,
    ],
  ] as const)('%s', async (_name, request, status) => {
    const { fast } = await differential(request(), 'provider');
    expect(fast.status).toBe(status);
  });

  it('a token exchange (RFC 8693): issued by the provider, refused alike', async () => {
    const subject = (await issueToken(as, external.client_id, external.client_secret, { resource: ledger.identifier, scope: 'ledger:read' })).accessToken;
    const params = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subject,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    };
    const issued = await differential(grant(exchanger, params), 'provider');
    expect(issued.fast.status).toBe(200);
    expect(issued.fast.json).toMatchObject({ issued_token_type: params.subject_token_type, token_type: 'Bearer', scope: 'ledger:read' });
    const refused = await differential(grant(internal, params), 'provider');
    expect(refused.fast.status).toBe(400);
    expect(refused.fast.json!.error).toBe('unauthorized_client');
  });

  it.each([
    ['an opaque token', () => grant(external, { scope: 'ledger:read' })],
    ['a JWT', () => grant(jwtClient, { resource: es256.identifier, scope: 'ec:read' })],
  ] as const)('a DPoP proof: a DPoP-bound token from the provider (%s)', async (_name, request) => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    // A proof is good once (the servers share the replay record): one each.
    const proof = () =>
      new SignJWT({ htm: 'POST', htu: as.token_endpoint, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(privateKey);
    const { headers, body } = request();
    const tokenPath = new URL(as.token_endpoint!).pathname;
    const left = await leftToProvider();
    const fast = await send(dedicated, tokenPath, { headers: { ...headers, dpop: await proof() }, body }, 'dpop');
    expect((await leftToProvider()) - left).toBe(1);
    const slow = await send(stock, tokenPath, { headers: { ...headers, dpop: await proof() }, body }, 'dpop');
    expect([fast.status, slow.status]).toEqual([200, 200]);
    expect(fast.headers).toEqual(slow.headers);
    const { access_token: fastToken, ...fastRest } = fast.json!;
    const { access_token: slowToken, ...slowRest } = slow.json!;
    expect(fastRest).toEqual(slowRest);
    expect(fast.json!.token_type).toBe('DPoP');
    if (String(fastToken).includes('.')) {
      // Bound to the proof's key: the JWT says so (cnf.jkt), on both.
      expect(Object.keys(decodeJwt(String(fastToken)))).toEqual(Object.keys(decodeJwt(String(slowToken))));
      expect(decodeJwt(String(fastToken)).cnf).toEqual(decodeJwt(String(slowToken)).cnf);
      expect(decodeJwt(String(fastToken)).cnf).toHaveProperty('jkt');
    }
  });
});

describe('client authentication failures', () => {
  const wrong = (c: Credentials) => ({ ...c, client_secret: 'x'.repeat(43) });
  it.each([
    ['a wrong secret (Basic)', () => grant(wrong(external), { scope: 'ledger:read' }), 'dedicated'],
    [
      'a wrong secret (form)',
      () => ({ headers: FORM_TYPE, body: form({ grant_type: 'client_credentials', client_id: postClient.client_id, client_secret: 'x'.repeat(43) }) }),
      'dedicated',
    ],
    // The grant's errors are the provider's: it authenticates first, then refuses the resource.
    ['a wrong secret, with an unknown resource', () => grant(wrong(external), { resource: uniqueResource('nowhere') }), 'provider'],
    ['a wrong secret, for a JWT', () => grant(wrong(internal), { resource: orders.identifier, scope: 'orders:read' }), 'dedicated'],
    [
      'a wrong secret (form), for a JWT',
      () => ({ headers: FORM_TYPE, body: form({ grant_type: 'client_credentials', client_id: jwtPostClient.client_id, client_secret: 'x'.repeat(43) }) }),
      'dedicated',
    ],
    ['an unknown client', () => grant({ client_id: 'nobody', client_secret: 'x'.repeat(43) }), 'provider'],
    ['no authentication', () => ({ headers: FORM_TYPE, body: form({ grant_type: 'client_credentials' }) }), 'provider'],
    [
      'a client_id without a secret',
      () => ({ headers: FORM_TYPE, body: form({ grant_type: 'client_credentials', client_id: external.client_id }) }),
      'provider',
    ],
    [
      'Basic and a secret in the form',
      () => ({ headers: grant(external).headers, body: form({ grant_type: 'client_credentials', client_secret: external.client_secret }) }),
      'provider',
    ],
    [
      'a malformed Basic header',
      () => ({ headers: { ...FORM_TYPE, authorization: 'Basic !!!' }, body: form({ grant_type: 'client_credentials' }) }),
      'provider',
    ],
    ['a client_id beside Basic naming another client', () => grant(external, { client_id: internal.client_id }), 'provider'],
    [
      'a wrong secret, to a client that prefers HTML',
      () => ({ headers: { ...grant(wrong(external)).headers, accept: 'text/html' }, body: grant(external).body }),
      'provider',
    ],
  ] as const)('%s', async (_name, request, path) => {
    const { fast } = await differential(request(), path);
    expect(fast.status).toBeGreaterThanOrEqual(400);
  });

  it('lockout: the same answers before, at and after the limit', async () => {
    // One client per server: the failure counter is shared (one Redis prefix), so each server counts its own.
    const tokenPath = new URL(as.token_endpoint!).pathname;
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 22; attempt++) {
      const requestId = `lockout-${attempt}-${randomBytes(3).toString('hex')}`;
      const before = await answeredByDedicatedPath();
      const fast = await send(dedicated, tokenPath, grant(wrong(lockouts[0])), requestId);
      expect((await answeredByDedicatedPath()) - before).toBe(1);
      const slow = await send(stock, tokenPath, grant(wrong(lockouts[1])), requestId);
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
    const fast = await send(dedicated, tokenPath, grant(lockouts[0]), 'locked');
    const slow = await send(stock, tokenPath, grant(lockouts[1]), 'locked');
    expect([fast.status, fast.body]).toEqual([429, slow.body]);
    expect(slow.status).toBe(429);
  });
});

describe('one path, the other read back', () => {
  it('a token issued by either is found by oauth4webapi-style introspection on both', async () => {
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      { client_id: external.client_id },
      oauth.ClientSecretBasic(external.client_secret),
      new URLSearchParams({ scope: 'ledger:read' }),
      insecure,
    );
    const result = await oauth.processClientCredentialsResponse(as, { client_id: external.client_id }, response);
    expect(result.access_token).toMatch(TOKEN_VALUE);
    for (const server of [dedicated, stock]) expect((await introspect(server, ledger.introspection, result.access_token)).json!.active).toBe(true);
  });
});
