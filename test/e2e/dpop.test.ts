/**
 * DPoP (RFC 9449) as outside clients use it, with oauth4webapi's DPoP support: bound tokens introspect
 * as bound (JWT and opaque alike), and the admin API demands the proof of a bound admin token.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { adminCall, adminToken, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
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
  return { handle: oauth.DPoP(client, keyPair), jkt, keyPair };
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

describe('the admin API with a DPoP-bound admin token', () => {
  let operator: { client_id: string; client_secret: string };

  beforeAll(async () => {
    operator = await registerClient(server.issuer, admin, {
      client_name: 'Bound operator',
      trust: 'internal',
      resources: [`${server.issuer}/admin`],
      scope: 'admin:read admin:write',
    });
  });

  /** The DPoP and Authorization headers oauth4webapi sends for `method url`, captured instead of sent. */
  async function proofFor(token: string, dpop: oauth.DPoPHandle, method: string, url: string): Promise<Headers> {
    let captured: Headers | undefined;
    await oauth.protectedResourceRequest(token, method, new URL(url), new Headers(), null, {
      ...insecure,
      DPoP: dpop,
      [oauth.customFetch]: async (_url: string, init: RequestInit) => {
        captured = new Headers(init.headers);
        return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
      },
    });
    return captured!;
  }

  const send = async (url: string, headers: Headers) => {
    const response = await fetch(url, { headers });
    return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '', body: await response.text() };
  };

  it('works with its proof; refuses it as Bearer, without a proof, with a replayed proof, and with a proof for another URL', async () => {
    const { handle } = await dpopKey(operator);
    const tokens = await clientCredentials(operator, { scope: 'admin:read' }, handle);
    expect(tokens.token_type).toBe('dpop');
    const clientsUrl = `${server.issuer}/admin/clients`;

    // With its proof, through oauth4webapi as a client of a DPoP-protected resource would call it.
    const ok = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(clientsUrl), new Headers(), null, { ...insecure, DPoP: handle });
    expect(ok.status).toBe(200);

    // Sent as a bearer token (what a thief without the key would do): 401 with a DPoP challenge.
    const asBearer = await adminCall(server.issuer, tokens.access_token, 'GET', '/clients');
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);

    // The DPoP scheme without a proof.
    const noProof = await send(clientsUrl, new Headers({ authorization: `DPoP ${tokens.access_token}` }));
    expect(noProof.status).toBe(401);
    expect(noProof.challenge).toMatch(/^DPoP error="invalid_dpop_proof"/);

    // A proof used once is refused the second time.
    const headers = await proofFor(tokens.access_token, handle, 'GET', clientsUrl);
    expect((await send(clientsUrl, headers)).status).toBe(200);
    const replay = await send(clientsUrl, headers);
    expect(replay.status).toBe(401);
    expect(replay.challenge).toMatch(/^DPoP error="invalid_dpop_proof"/);
    expect(JSON.parse(replay.body).detail).toContain('used before');

    // A fresh proof for another URL, or another method, is refused.
    const elsewhere = await proofFor(tokens.access_token, handle, 'GET', `${server.issuer}/admin/resource-servers`);
    const misdirected = await send(clientsUrl, elsewhere);
    expect(misdirected.status).toBe(401);
    expect(JSON.parse(misdirected.body).detail).toContain('htu');
    const posted = await proofFor(tokens.access_token, handle, 'POST', clientsUrl);
    expect((await send(clientsUrl, posted)).status).toBe(401);

    // A proof signed by another key, even one made for this request, is refused.
    const { handle: otherKey } = await dpopKey(operator);
    const stranger = await send(clientsUrl, await proofFor(tokens.access_token, otherKey, 'GET', clientsUrl));
    expect(stranger.status).toBe(401);
  });

  it('refuses a proof with a stale iat, and one made for another token (ath), signed by the right key', async () => {
    const { handle, keyPair } = await dpopKey(operator);
    const tokens = await clientCredentials(operator, { scope: 'admin:read' }, handle);
    const other = await clientCredentials(operator, { scope: 'admin:read' }, handle);
    const clientsUrl = `${server.issuer}/admin/clients`;
    const jwk = await exportJWK(keyPair.publicKey);
    const proof = (token: string, iat: number) =>
      new SignJWT({ htm: 'GET', htu: clientsUrl, ath: createHash('sha256').update(token).digest('base64url'), jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt(iat)
        .sign(keyPair.privateKey);
    const now = Math.floor(Date.now() / 1000);
    const call = async (dpop: string) => (await fetch(clientsUrl, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop } })).status;

    expect(await call(await proof(tokens.access_token, now))).toBe(200);
    expect(await call(await proof(tokens.access_token, now - 600))).toBe(401);
    expect(await call(await proof(tokens.access_token, now + 600))).toBe(401);
    expect(await call(await proof(other.access_token, now))).toBe(401);
  });

  it('an unbound admin token keeps working as Bearer, and is refused with the DPoP scheme', async () => {
    const tokens = await clientCredentials(operator, { scope: 'admin:read' });
    expect((await adminCall(server.issuer, tokens.access_token, 'GET', '/clients')).status).toBe(200);
    const asDpop = await send(`${server.issuer}/admin/clients`, new Headers({ authorization: `DPoP ${tokens.access_token}` }));
    expect(asDpop.status).toBe(401);
  });
});
