/**
 * Property-based fuzzing of every endpoint with malformed requests (fast-check): never a 5xx, never a
 * stack trace, OAuth errors as JSON; forged JWTs (alg none, HS256 keyed with our public key) are
 * inactive at introspection and refused by the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT, type JWK } from 'jose';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let as: AuthorizationServer;
let api: Awaited<ReturnType<typeof registerResourceServer>>;
let client: Awaited<ReturnType<typeof registerClient>>;
let admin: string;
let paths: string[];

beforeAll(async () => {
  server = await startServer({ env: { LOG_LEVEL: 'warn' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('fuzz'), name: 'Fuzz', scopes: ['f:read'] });
  client = await registerClient(server.issuer, admin, { client_name: 'Fuzzed', trust: 'internal', resources: [api.identifier], scope: 'f:read' });
  const endpoints = [
    as.token_endpoint,
    as.introspection_endpoint,
    as.revocation_endpoint,
    as.jwks_uri,
    as.userinfo_endpoint,
    as.authorization_endpoint,
    as.end_session_endpoint,
    as.pushed_authorization_request_endpoint,
  ];
  paths = [
    ...endpoints.filter((e): e is string => typeof e === 'string').map((e) => new URL(e).pathname),
    '/.well-known/openid-configuration',
    '/.well-known/oauth-authorization-server',
    '/healthz',
    '/readyz',
    '/admin/clients',
    '/admin/resource-servers',
    `/admin/clients/${client.client_id}`,
    '/admin/audit',
    '/admin/openapi.json',
    '/interaction/abc',
  ];
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const OAUTH_PATHS = ['/token', '/token/introspection', '/token/revocation'];
const STACK_TRACE = /\n\s+at .+:\d+:\d+|\bat [\w.<>]+ \(.*\.[cm]?js:\d+/;

const fieldNames = fc.constantFrom(
  'grant_type',
  'client_id',
  'client_secret',
  'scope',
  'resource',
  'token',
  'token_type_hint',
  'code',
  'redirect_uri',
  'refresh_token',
  'response_type',
  'client_assertion',
  'client_assertion_type',
  'x',
);
const formBody = fc
  .array(
    fc.tuple(
      fieldNames,
      fc.oneof(fc.string(), fc.constantFrom('client_credentials', 'authorization_code', 'refresh_token', 'f:read', 'https://fuzz.example.test/')),
    ),
    { maxLength: 8 },
  )
  .map((pairs) => new URLSearchParams(pairs).toString());
const body = fc.oneof(
  formBody,
  fc.string(),
  fc.json(),
  fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const contentType = fc.constantFrom(
  'application/x-www-form-urlencoded',
  'application/json',
  'text/plain',
  'multipart/form-data; boundary=zz',
  'application/x-www-form-urlencoded; charset=utf-16',
  'garbage/type',
);
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.string().map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
  fc.tuple(fc.string(), fc.string()).map(([u, p]) => `Basic ${Buffer.from(`${encodeURIComponent(u)}:${encodeURIComponent(p)}`).toString('base64')}`),
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-._~+/='.split('')) }).map((s) => `Bearer ${s}`),
  fc.constant('Bearer'),
  fc.constant('Digest x'),
);

describe('fuzzing every endpoint', () => {
  it('never answers 5xx or a stack trace; OAuth endpoints answer JSON errors', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
        fc.option(fc.string({ maxLength: 30 }).map((s) => encodeURIComponent(s))),
        contentType,
        body,
        authorization,
        async (path, method, query, type, payload, auth) => {
          const headers: Record<string, string> = { 'content-type': type, accept: 'application/json' };
          if (auth) headers.authorization = auth;
          const response = await fetch(`${server.issuer}${path}${query ? `?x=${query}` : ''}`, {
            method,
            headers,
            body: method === 'GET' ? undefined : payload,
          });
          const text = await response.text();
          expect({ path, method, status: response.status }).toEqual({ path, method, status: expect.any(Number) });
          expect(response.status).toBeLessThan(500);
          expect(text).not.toMatch(STACK_TRACE);
          if (OAUTH_PATHS.includes(path) && method === 'POST' && response.status >= 400) {
            expect(response.headers.get('content-type')).toMatch(/application\/json/);
            expect(typeof (JSON.parse(text) as { error?: unknown }).error).toBe('string');
          }
        },
      ),
      { numRuns: 300 },
    );
  }, 120_000);
});

describe('forged JWT access tokens', () => {
  async function forgeries(): Promise<string[]> {
    const genuine = await issueToken(as, client.client_id, client.client_secret, { scope: 'f:read' });
    const [, payload] = genuine.accessToken.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;
    const jwks = (await (await fetch(as.jwks_uri!)).json()) as { keys: JWK[] };
    const rsa = jwks.keys.find((k) => k.kty === 'RSA')!;
    const pem = createPublicKey({ key: rsa, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    // The classic key-confusion attack: HMAC keyed with the server's own public key.
    const hs256 = await new SignJWT({ ...claims, scope: 'f:read' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: rsa.kid })
      .sign(new TextEncoder().encode(String(pem)));
    const adminForgery = await new SignJWT({ ...claims, aud: `${server.issuer}/admin`, scope: 'admin:read admin:write' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: rsa.kid })
      .sign(new TextEncoder().encode(String(pem)));
    return [none, hs256, adminForgery];
  }

  it('introspect inactive and are refused by the admin API', async () => {
    for (const forged of await forgeries()) {
      expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, forged)).toEqual({ active: false });
      expect((await adminCall(server.issuer, forged, 'GET', '/clients')).status).toBe(401);
    }
  });
});
