/**
 * SIGNING_ALGS: keys are generated, published and used only for the enabled algorithms. By default no
 * Ed25519 (OKP) key is published, since common resource-server libraries cannot load one; a deployment
 * that enables EdDSA gets EdDSA access tokens that a resource server verifies from the JWKS.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const servers: RunningServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function start(env: Record<string, string> = {}) {
  const server = await startServer({ env });
  servers.push(server);
  const as = await discover(server.issuer);
  return { server, as, admin: await adminToken(server.issuer) };
}

const publishedKeys = async (jwksUri: string) => ((await (await fetch(jwksUri)).json()) as { keys: JWK[] }).keys;

describe('by default (RS256, PS256, ES256)', () => {
  let setup: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    setup = await start();
  }, 60_000);

  it('publishes no OKP (Ed25519) key, and discovery offers no EdDSA', async () => {
    const keys = await publishedKeys(setup.as.jwks_uri!);
    expect(keys.filter((key) => key.kty === 'OKP')).toEqual([]);
    expect(new Set(keys.map((key) => key.alg))).toEqual(new Set(['RS256', 'PS256', 'ES256']));
    expect(setup.as.id_token_signing_alg_values_supported).not.toContain('EdDSA');
    expect(setup.as.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'PS256', 'ES256']));
    expect(setup.as.introspection_signing_alg_values_supported ?? []).not.toContain('EdDSA');
  });

  it('refuses (422) a resource server with signing_alg EdDSA, on create and on PATCH', async () => {
    const { server, admin } = setup;
    const created = await adminCall(server.issuer, admin, 'POST', '/resource-servers', {
      identifier: uniqueResource('ed'),
      name: 'Ed',
      scopes: ['ed:read'],
      signing_alg: 'EdDSA',
    });
    expect(created.status).toBe(422);
    expect(created.body.errors).toEqual([{ path: 'signing_alg', message: expect.stringContaining('EdDSA is not enabled') }]);

    const rs = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('rsa'), name: 'RSA', scopes: ['rsa:read'] });
    const patched = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${rs.id}`, { signing_alg: 'EdDSA' });
    expect(patched.status).toBe(422);
    expect((await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${rs.id}`, { signing_alg: 'ES256' })).status).toBe(200);
  });
});

describe('with SIGNING_ALGS=RS256,EdDSA', () => {
  it('publishes only RS256 and Ed25519 keys, and an EdDSA resource server gets EdDSA JWTs that verify from the JWKS', async () => {
    const { server, as, admin } = await start({ SIGNING_ALGS: 'RS256,EdDSA' });
    const keys = await publishedKeys(as.jwks_uri!);
    expect(new Set(keys.map((key) => key.alg))).toEqual(new Set(['RS256', 'EdDSA']));
    expect(as.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'EdDSA']));
    expect(as.id_token_signing_alg_values_supported).not.toContain('ES256');

    const api = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('edapi'),
      name: 'Ed API',
      scopes: ['ed:read'],
      signing_alg: 'EdDSA',
    });
    const client = await registerClient(server.issuer, admin, { client_name: 'Ed worker', trust: 'internal', resources: [api.identifier], scope: 'ed:read' });
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'ed:read' });
    expect(decodeProtectedHeader(accessToken)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const { payload } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(as.jwks_uri!)), {
      issuer: server.issuer,
      audience: api.identifier,
      algorithms: ['EdDSA'],
    });
    expect(payload).toMatchObject({ client_id: client.client_id, scope: 'ed:read' });
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, accessToken)).toMatchObject({ active: true });

    // ES256 is not enabled here.
    const refused = await adminCall(server.issuer, admin, 'POST', '/resource-servers', {
      identifier: uniqueResource('ec'),
      name: 'EC',
      scopes: ['ec:read'],
      signing_alg: 'ES256',
    });
    expect(refused.status).toBe(422);
  });

  it('an invalid SIGNING_ALGS stops the server, naming the variable', async () => {
    await expect(startServer({ env: { SIGNING_ALGS: 'RS256,HS256' } })).rejects.toThrow(/SIGNING_ALGS/);
  });
});
