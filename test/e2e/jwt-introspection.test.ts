/**
 * JWT introspection responses (RFC 9701) end to end, through oauth4webapi as a resource server would
 * call: `Accept: application/token-introspection+jwt` gives a signed answer for opaque and JWT access
 * tokens alike, active or not, with `aud` the caller; a resource server registered with
 * `introspection_response: "jwt"` gets them without asking. Each answer is also verified here against
 * the published JWKS.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import {
  adminCall,
  adminToken,
  discover,
  introspect,
  introspectAsIs,
  issueToken,
  registerClient,
  registerResourceServer,
  uniqueResource,
} from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const JWT_TYPE = 'application/token-introspection+jwt';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

type Registered = Awaited<ReturnType<typeof registerResourceServer>>;

async function audienceWithClient(body: Record<string, unknown> = {}) {
  const rs = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('ledger'), name: 'Ledger', scopes: ['ledger:read'], ...body });
  const internal = await registerClient(server.issuer, admin, { client_name: 'Books', trust: 'internal', resources: [rs.identifier], scope: 'ledger:read' });
  const external = await registerClient(server.issuer, admin, { client_name: 'Auditor', trust: 'external', resources: [rs.identifier], scope: 'ledger:read' });
  return { rs, internal, external };
}

/** Introspects as the resource server, asking for a JWT; the raw answer. */
const introspectForJwt = (rs: Registered, token: string, accept = JWT_TYPE): Promise<Response> => introspectAsIs(as, rs, token, accept);

/** Checks an RFC 9701 answer against the JWKS; its payload. */
async function verified(response: Response, caller: string) {
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/token-introspection\+jwt/);
  const jwt = await response.text();
  expect(decodeProtectedHeader(jwt).typ).toBe('token-introspection+jwt');
  const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(as.jwks_uri!)), {
    issuer: server.issuer,
    audience: caller,
    typ: 'token-introspection+jwt',
  });
  expect(payload.iat).toEqual(expect.any(Number));
  return { payload, alg: decodeProtectedHeader(jwt).alg };
}

describe('JWT introspection responses (RFC 9701)', () => {
  it('discovery lists the signing algorithms', () => {
    // The enabled signing algorithms (SIGNING_ALGS; its default).
    expect([...as.introspection_signing_alg_values_supported!].sort()).toEqual(['ES256', 'PS256', 'RS256']);
  });

  it('oauth4webapi gets and validates signed answers for JWT and opaque tokens', async () => {
    const { rs, internal, external } = await audienceWithClient();
    const caller = { client_id: rs.introspection.client_id };
    for (const client of [internal, external]) {
      const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'ledger:read' });
      const response = await oauth.introspectionRequest(as, caller, oauth.ClientSecretBasic(rs.introspection.client_secret), accessToken, {
        ...insecure,
        requestJwtResponse: true,
      });
      const answer = await oauth.processIntrospectionResponse(as, caller, response);
      expect(answer).toMatchObject({ active: true, client_id: client.client_id, aud: rs.identifier, scope: 'ledger:read', token_type: 'Bearer' });
    }
  });

  it('the signed answer carries iss, aud (the caller), iat and token_introspection, for both formats', async () => {
    const { rs, internal, external } = await audienceWithClient();
    const jwtToken = (await issueToken(as, internal.client_id, internal.client_secret)).accessToken;
    const opaqueToken = (await issueToken(as, external.client_id, external.client_secret)).accessToken;
    expect(jwtToken.split('.')).toHaveLength(3);
    expect(opaqueToken.split('.')).toHaveLength(1);
    for (const [token, client] of [
      [jwtToken, internal],
      [opaqueToken, external],
    ] as const) {
      const { payload } = await verified(await introspectForJwt(rs, token), rs.introspection.client_id);
      const plain = await introspect(as, rs.introspection.client_id, rs.introspection.client_secret, token);
      expect(payload.token_introspection).toEqual(plain);
      expect(payload.token_introspection).toMatchObject({ active: true, client_id: client.client_id, sub: client.client_id, iss: server.issuer });
    }
  });

  it('inactive answers are signed too, with aud the caller and nothing else about the token', async () => {
    const mine = await audienceWithClient();
    const theirs = await audienceWithClient();
    const { accessToken } = await issueToken(as, theirs.internal.client_id, theirs.internal.client_secret);
    for (const token of [accessToken, 'not-a-token-at-all']) {
      const { payload } = await verified(await introspectForJwt(mine.rs, token), mine.rs.introspection.client_id);
      expect(payload.token_introspection).toEqual({ active: false });
    }
  });

  it('without the Accept header the answer stays JSON; a failed authentication stays an RFC 6749 error', async () => {
    const { rs, internal } = await audienceWithClient();
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret);
    const plain = await introspectForJwt(rs, accessToken, 'application/json');
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await plain.json()).toMatchObject({ active: true });
    const refused = await introspectForJwt({ ...rs, introspection: { ...rs.introspection, client_secret: 'wrong' } }, accessToken);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('a resource server registered with introspection_response "jwt" gets signed answers without asking, in its algorithm', async () => {
    const { rs, internal } = await audienceWithClient({ introspection_response: 'jwt', signing_alg: 'ES256' });
    const read = await adminCall(server.issuer, admin, 'GET', `/resource-servers/${rs.id}`);
    expect(read.body.introspection_response).toBe('jwt');
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret);
    const { payload, alg } = await verified(await introspectForJwt(rs, accessToken, 'application/json'), rs.introspection.client_id);
    expect(alg).toBe('ES256');
    expect(payload.token_introspection).toMatchObject({ active: true });

    const patched = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${rs.id}`, { introspection_response: 'json' });
    expect(patched.body.introspection_response).toBe('json');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const plain = await introspectForJwt(rs, accessToken, 'application/json');
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);

    const invalid = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${rs.id}`, { introspection_response: 'xml' });
    expect(invalid.status).toBe(422);
  });

  it('new resource servers answer JSON by default', async () => {
    const { rs } = await audienceWithClient();
    expect((await adminCall(server.issuer, admin, 'GET', `/resource-servers/${rs.id}`)).body.introspection_response).toBe('json');
  });
});
