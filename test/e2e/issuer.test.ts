/**
 * The issuer end to end: the real server over HTTP, with oauth4webapi as the client and jose's remote
 * JWKS as a resource server would validate. Covers the token policy table, RFC 9068 tokens, default
 * lifetimes, introspection isolation, revocation, and the OAuth errors clients rely on.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import {
  adminToken,
  clientCredentials,
  discover,
  introspect,
  issueToken,
  registerClient,
  registerResourceServer,
  revoke,
  uniqueResource,
} from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;

type Registered = { identifier: string; introspection: { client_id: string; client_secret: string } };
let jwtApi: Registered;
let opaqueApi: Registered;
let es256Api: Registered;
let shortApi: Registered;
let internal: { client_id: string; client_secret: string };
let external: { client_id: string; client_secret: string };

const isJwt = (token: string) => token.split('.').length === 3;

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  jwtApi = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('orders'),
    name: 'Orders',
    scopes: ['orders:read', 'orders:write', 'orders:refund'],
    sensitive_scopes: ['orders:refund'],
  });
  opaqueApi = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('ledger'),
    name: 'Ledger',
    scopes: ['ledger:read'],
    token_format: 'opaque',
  });
  es256Api = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('inventory'),
    name: 'Inventory',
    scopes: ['inventory:read'],
    signing_alg: 'ES256',
  });
  shortApi = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('short'),
    name: 'Short-lived',
    scopes: ['short:read'],
    access_token_ttl: 120,
  });
  const resources = [jwtApi.identifier, opaqueApi.identifier, es256Api.identifier, shortApi.identifier];
  const scope = 'orders:read orders:write orders:refund ledger:read inventory:read short:read';
  internal = await registerClient(server.issuer, admin, { client_name: 'Billing job', trust: 'internal', resources, scope });
  external = await registerClient(server.issuer, admin, { client_name: 'Partner', trust: 'external', resources, scope });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('discovery', () => {
  it.each(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'])('%s lists every endpoint', async (path) => {
    const document = (await (await fetch(`${server.issuer}${path}`)).json()) as Record<string, unknown>;
    expect(document.issuer).toBe(server.issuer);
    for (const endpoint of [
      'token_endpoint',
      'introspection_endpoint',
      'revocation_endpoint',
      'jwks_uri',
      'authorization_endpoint',
      'userinfo_endpoint',
      'end_session_endpoint',
    ]) {
      expect(typeof document[endpoint]).toBe('string');
      expect(document[endpoint] as string).toMatch(new RegExp(`^${server.issuer}/`));
    }
  });
});

describe('token format policy (docs/protocol.md, "Token format policy")', () => {
  it('internal client, JWT audience, no sensitive scope: an RFC 9068 JWT that verifies against the JWKS', async () => {
    const { accessToken, expiresIn } = await issueToken(as, internal.client_id, internal.client_secret, {
      resource: jwtApi.identifier,
      scope: 'orders:read',
    });
    expect(isJwt(accessToken)).toBe(true);
    const header = decodeProtectedHeader(accessToken);
    expect(header.typ).toBe('at+jwt');
    expect(header.alg).toBe('RS256');
    expect(typeof header.kid).toBe('string');

    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    const { payload } = await jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: jwtApi.identifier, typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id: internal.client_id, sub: internal.client_id, scope: 'orders:read' });
    for (const claim of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'scope']) expect(payload[claim]).toBeDefined();
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(expiresIn).toBe(300);
  });

  it('internal client, JWT audience, a sensitive scope: opaque', async () => {
    const { accessToken, expiresIn } = await issueToken(as, internal.client_id, internal.client_secret, {
      resource: jwtApi.identifier,
      scope: 'orders:read orders:refund',
    });
    expect(isJwt(accessToken)).toBe(false);
    expect(Buffer.from(accessToken, 'base64url').length).toBeGreaterThanOrEqual(32);
    expect(expiresIn).toBe(3600);
  });

  it('internal client, opaque audience: opaque', async () => {
    const { accessToken, expiresIn } = await issueToken(as, internal.client_id, internal.client_secret, {
      resource: opaqueApi.identifier,
      scope: 'ledger:read',
    });
    expect(isJwt(accessToken)).toBe(false);
    expect(expiresIn).toBe(3600);
  });

  it.each([
    ['JWT audience', () => jwtApi, 'orders:read'],
    ['opaque audience', () => opaqueApi, 'ledger:read'],
  ])('external client, %s: opaque', async (_name, api, scope) => {
    const { accessToken } = await issueToken(as, external.client_id, external.client_secret, { resource: api().identifier, scope });
    expect(isJwt(accessToken)).toBe(false);
  });

  it('a resource server may choose ES256', async () => {
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret, {
      resource: es256Api.identifier,
      scope: 'inventory:read',
    });
    expect(decodeProtectedHeader(accessToken).alg).toBe('ES256');
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    await expect(jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: es256Api.identifier })).resolves.toBeDefined();
  });

  it("a resource server's access_token_ttl overrides the default lifetime", async () => {
    const jwt = await issueToken(as, internal.client_id, internal.client_secret, { resource: shortApi.identifier, scope: 'short:read' });
    expect(isJwt(jwt.accessToken)).toBe(true);
    expect(jwt.expiresIn).toBe(120);
    const opaque = await issueToken(as, external.client_id, external.client_secret, { resource: shortApi.identifier, scope: 'short:read' });
    expect(opaque.expiresIn).toBe(120);
  });

  it("without a resource parameter, the client's first resource is the audience", async () => {
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret, { scope: 'orders:read' });
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    const { payload } = await jwtVerify(accessToken, jwks, { issuer: server.issuer });
    expect(payload.aud).toBe(jwtApi.identifier);
  });
});

describe('client errors', () => {
  it('a wrong secret answers 401 invalid_client', async () => {
    const outcome = await clientCredentials(as, internal.client_id, 'not-the-secret', { resource: jwtApi.identifier });
    expect(outcome).toEqual({ ok: false, status: 401, error: 'invalid_client' });
  });

  it('an unknown client answers 401 invalid_client', async () => {
    const outcome = await clientCredentials(as, 'no-such-client', 'whatever', { resource: jwtApi.identifier });
    expect(outcome).toEqual({ ok: false, status: 401, error: 'invalid_client' });
  });

  it('an unknown resource answers invalid_target', async () => {
    const outcome = await clientCredentials(as, internal.client_id, internal.client_secret, { resource: 'https://unknown.example.test/' });
    expect(outcome).toMatchObject({ ok: false, status: 400, error: 'invalid_target' });
  });

  it('a scope the client may not have answers invalid_scope', async () => {
    const outcome = await clientCredentials(as, internal.client_id, internal.client_secret, {
      resource: jwtApi.identifier,
      scope: 'orders:delete',
    });
    expect(outcome).toMatchObject({ ok: false, status: 400, error: 'invalid_scope' });
  });

  it('OAuth errors are JSON, never HTML or a stack trace', async () => {
    const response = await fetch(as.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'grant_type=client_credentials',
    });
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await response.json()) as Record<string, unknown>;
    expect(typeof body.error).toBe('string');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.js:\d+/);
  });
});

describe('introspection (docs/protocol.md, "Introspection")', () => {
  it('answers an opaque token to its audience with every promised field', async () => {
    const { accessToken } = await issueToken(as, external.client_id, external.client_secret, { resource: opaqueApi.identifier, scope: 'ledger:read' });
    const answer = await introspect(as, opaqueApi.introspection.client_id, opaqueApi.introspection.client_secret, accessToken);
    expect(answer).toMatchObject({
      active: true,
      client_id: external.client_id,
      sub: external.client_id,
      aud: opaqueApi.identifier,
      scope: 'ledger:read',
      iss: server.issuer,
      token_type: 'Bearer',
    });
    for (const field of ['exp', 'iat', 'jti']) expect(answer[field]).toBeDefined();
    expect(answer.jti).not.toBe(accessToken);
  });

  it('answers a JWT access token to its audience', async () => {
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret, { resource: jwtApi.identifier, scope: 'orders:write' });
    const answer = await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, accessToken);
    expect(answer).toMatchObject({ active: true, client_id: internal.client_id, aud: jwtApi.identifier, scope: 'orders:write', token_type: 'Bearer' });
    for (const field of ['sub', 'exp', 'iat', 'iss', 'jti']) expect(answer[field]).toBeDefined();
  });

  it('another audience gets exactly {"active": false}, for opaque and JWT tokens alike', async () => {
    const opaque = await issueToken(as, external.client_id, external.client_secret, { resource: opaqueApi.identifier, scope: 'ledger:read' });
    const jwt = await issueToken(as, internal.client_id, internal.client_secret, { resource: jwtApi.identifier, scope: 'orders:read' });
    expect(await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, opaque.accessToken)).toEqual({ active: false });
    expect(await introspect(as, opaqueApi.introspection.client_id, opaqueApi.introspection.client_secret, jwt.accessToken)).toEqual({ active: false });
  });

  it('garbage, a forged JWT and an unknown token are {"active": false}', async () => {
    const jwt = await issueToken(as, internal.client_id, internal.client_secret, { resource: jwtApi.identifier, scope: 'orders:read' });
    const [header, payload] = jwt.accessToken.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'orders:refund' })).toString(
      'base64url',
    );
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;
    for (const token of ['garbage', `${header}.${forgedPayload}.${jwt.accessToken.split('.')[2]}`, unsigned, 'x'.repeat(43)]) {
      expect(await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, token)).toEqual({ active: false });
    }
  });

  it('an introspection identity cannot get tokens of its own', async () => {
    const outcome = await clientCredentials(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, { resource: jwtApi.identifier });
    expect(outcome.ok).toBe(false);
  });
});

describe('revocation (docs/protocol.md, "Revocation")', () => {
  it('revoking an opaque access token makes it inactive at once', async () => {
    const { accessToken } = await issueToken(as, external.client_id, external.client_secret, { resource: opaqueApi.identifier, scope: 'ledger:read' });
    expect(await revoke(as, external.client_id, external.client_secret, accessToken)).toBe(200);
    expect(await introspect(as, opaqueApi.introspection.client_id, opaqueApi.introspection.client_secret, accessToken)).toEqual({ active: false });
  });

  it('revoking a JWT access token makes introspection answer inactive at once', async () => {
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret, { resource: jwtApi.identifier, scope: 'orders:read' });
    // Answered as every accepted revocation is: 200, an empty body, not typed as JSON.
    const response = await oauth.revocationRequest(as, { client_id: internal.client_id }, oauth.ClientSecretBasic(internal.client_secret), accessToken, {
      [oauth.allowInsecureRequests]: true,
    });
    expect({ status: response.status, type: response.headers.get('content-type'), body: await response.text() }).toEqual({
      status: 200,
      type: 'text/plain; charset=utf-8',
      body: '',
    });
    expect(await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, accessToken)).toEqual({ active: false });
  });

  it("a client cannot revoke another client's token", async () => {
    const { accessToken } = await issueToken(as, internal.client_id, internal.client_secret, { resource: jwtApi.identifier, scope: 'orders:read' });
    expect(await revoke(as, external.client_id, external.client_secret, accessToken)).toBe(200);
    expect(await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, accessToken)).toMatchObject({ active: true });
  });

  it('an unknown token gets 200', async () => {
    expect(await revoke(as, internal.client_id, internal.client_secret, 'never-issued-token-value')).toBe(200);
  });
});

describe('two server processes on the same stores', () => {
  it('a revocation on one is seen by the other at once', async () => {
    const second = await startServer({ issuerPort: server.port });
    try {
      const secondAs = { ...as, introspection_endpoint: `http://localhost:${second.port}/token/introspection` };
      const opaque = await issueToken(as, external.client_id, external.client_secret, { resource: opaqueApi.identifier, scope: 'ledger:read' });
      const jwt = await issueToken(as, internal.client_id, internal.client_secret, { resource: jwtApi.identifier, scope: 'orders:read' });
      expect(await introspect(secondAs, opaqueApi.introspection.client_id, opaqueApi.introspection.client_secret, opaque.accessToken)).toMatchObject({
        active: true,
      });
      expect(await introspect(secondAs, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, jwt.accessToken)).toMatchObject({ active: true });

      expect(await revoke(as, external.client_id, external.client_secret, opaque.accessToken)).toBe(200);
      expect(await revoke(as, internal.client_id, internal.client_secret, jwt.accessToken)).toBe(200);

      expect(await introspect(secondAs, opaqueApi.introspection.client_id, opaqueApi.introspection.client_secret, opaque.accessToken)).toEqual({
        active: false,
      });
      expect(await introspect(secondAs, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, jwt.accessToken)).toEqual({ active: false });
    } finally {
      await second.stop();
    }
  }, 60_000);
});
