/**
 * DPoP (RFC 9449) as outside clients use it, with oauth4webapi's DPoP support: bound tokens introspect
 * as bound (JWT and opaque alike), and the admin API demands the proof of a bound admin token.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { adminToken, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

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

/** A DPoP key of the client, the handle oauth4webapi signs proofs with, and the key's thumbprint. */
async function dpopKey(client: oauth.Client) {
  const keyPair = await oauth.generateKeyPair('ES256');
  const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
  return { handle: oauth.DPoP(client, keyPair), jkt };
}

/** A client credentials grant, DPoP-bound when `dpop` is given. */
async function clientCredentials(client: { client_id: string; client_secret: string }, params: Record<string, string>, dpop?: oauth.DPoPHandle) {
  const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(client.client_secret), new URLSearchParams(params), {
    ...insecure,
    ...(dpop ? { DPoP: dpop } : {}),
  });
  return oauth.processClientCredentialsResponse(as, client, response);
}

describe('introspection of DPoP-bound tokens (RFC 9449 section 6.2)', () => {
  let jwtApi: Awaited<ReturnType<typeof registerResourceServer>>;
  let opaqueApi: Awaited<ReturnType<typeof registerResourceServer>>;
  let worker: { client_id: string; client_secret: string };

  beforeAll(async () => {
    jwtApi = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('bound-jwt'), name: 'Bound JWT', scopes: ['jobs:run'] });
    opaqueApi = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('bound-opaque'),
      name: 'Bound opaque',
      scopes: ['files:read'],
      token_format: 'opaque',
    });
    worker = await registerClient(server.issuer, admin, {
      client_name: 'Batch worker',
      trust: 'internal',
      scope: 'jobs:run files:read',
      resources: [jwtApi.identifier, opaqueApi.identifier],
    });
  });

  it('a bound JWT access token answers token_type DPoP and cnf.jkt', async () => {
    const { handle, jkt } = await dpopKey(worker);
    const tokens = await clientCredentials(worker, { resource: jwtApi.identifier, scope: 'jobs:run' }, handle);
    expect(tokens.token_type).toBe('dpop');
    expect(tokens.access_token.split('.')).toHaveLength(3);
    const answer = await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, tokens.access_token);
    expect(answer).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
  });

  it('a bound opaque access token answers the same', async () => {
    const { handle, jkt } = await dpopKey(worker);
    const tokens = await clientCredentials(worker, { resource: opaqueApi.identifier, scope: 'files:read' }, handle);
    expect(tokens.access_token.split('.')).toHaveLength(1);
    const answer = await introspect(as, opaqueApi.introspection.client_id, opaqueApi.introspection.client_secret, tokens.access_token);
    expect(answer).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
  });

  it('an unbound JWT access token stays Bearer, with no cnf', async () => {
    const tokens = await clientCredentials(worker, { resource: jwtApi.identifier, scope: 'jobs:run' });
    const answer = await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, tokens.access_token);
    expect(answer).toMatchObject({ active: true, token_type: 'Bearer' });
    expect(answer).not.toHaveProperty('cnf');
  });
});
