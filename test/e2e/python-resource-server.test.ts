/**
 * The design notes' Python example (PyJWT + requests) against the real server, run by Debian's
 * /usr/bin/python3 (python3-jwt, python3-requests; .ci/run installs them): a faithful copy of its two
 * functions (test/resource-servers/seed_python_example.py) with the changes docs/resource-servers.md
 * names — audience = the resource server's identifier, introspection URL from discovery, the key from
 * the JWKS, the `typ` check — validates an internal client's JWT locally and introspects an external
 * client's opaque token, and refuses what a resource server must refuse.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type * as oauth from 'oauth4webapi';
import { adminToken, discover, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const SCRIPT = resolve('test/resource-servers/seed_python_example.py');

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

/** Runs the Python example as resource server `rs`; its exit code and output. */
function python(rs: Registered, mode: 'jwt' | 'introspect', token: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn('/usr/bin/python3', [SCRIPT], {
      env: {
        PATH: process.env.PATH ?? '',
        ISSUER: as.issuer,
        AUDIENCE: rs.identifier,
        INTROSPECTION_URL: as.introspection_endpoint!,
        JWKS_URI: as.jwks_uri!,
        RS_CLIENT_ID: rs.introspection.client_id,
        RS_CLIENT_SECRET: rs.introspection.client_secret,
        TOKEN: token,
        MODE: mode,
      },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output: output.trim() }));
  });
}

/** A resource server with an internal (JWT) and an external (opaque) client. */
async function apiWithClients(name: string) {
  const rs = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource(name), name, scopes: [`${name}:read`], signing_alg: 'RS256' });
  const internal = await registerClient(server.issuer, admin, {
    client_name: `${name} internal`,
    trust: 'internal',
    resources: [rs.identifier],
    scope: `${name}:read`,
  });
  const external = await registerClient(server.issuer, admin, {
    client_name: `${name} external`,
    trust: 'external',
    resources: [rs.identifier],
    scope: `${name}:read`,
  });
  const token = async (client: typeof internal) => (await issueToken(as, client.client_id, client.client_secret, { scope: `${name}:read` })).accessToken;
  return { rs, jwt: await token(internal), opaque: await token(external), internal, external };
}

describe('the design notes’ Python example (PyJWT + requests)', () => {
  let payments: Awaited<ReturnType<typeof apiWithClients>>;
  let ledger: Awaited<ReturnType<typeof apiWithClients>>;

  beforeAll(async () => {
    payments = await apiWithClients('payments');
    ledger = await apiWithClients('ledger');
  }, 30_000);

  it('validates an internal client’s JWT locally with the key from the JWKS', async () => {
    expect(payments.jwt.split('.')).toHaveLength(3);
    const { code, output } = await python(payments.rs, 'jwt', payments.jwt);
    expect({ code, output }).toMatchObject({ code: 0 });
    const claims = JSON.parse(output) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: server.issuer, aud: payments.rs.identifier, client_id: payments.internal.client_id, scope: 'payments:read' });
  });

  it('introspects an external client’s opaque token', async () => {
    expect(payments.opaque.split('.')).not.toHaveLength(3);
    const { code, output } = await python(payments.rs, 'introspect', payments.opaque);
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(JSON.parse(output)).toMatchObject({ active: true, client_id: payments.external.client_id, scope: 'payments:read' });
  });

  it('raises "Token inactive" for another audience’s opaque token and for a revoked one', async () => {
    expect(await python(payments.rs, 'introspect', ledger.opaque)).toEqual({ code: 1, output: 'ERROR ValueError: Token inactive' });
    // A fresh token of the ledger's external client: active at the ledger until its client revokes it.
    const token = (await issueToken(as, ledger.external.client_id, ledger.external.client_secret, { scope: 'ledger:read' })).accessToken;
    expect(await python(ledger.rs, 'introspect', token)).toMatchObject({ code: 0 });
    expect(await revoke(as, ledger.external.client_id, ledger.external.client_secret, token)).toBe(200);
    expect(await python(ledger.rs, 'introspect', token)).toEqual({ code: 1, output: 'ERROR ValueError: Token inactive' });
  });

  it('refuses a JWT for another audience', async () => {
    expect(await python(payments.rs, 'jwt', ledger.jwt)).toEqual({ code: 1, output: 'ERROR InvalidAudienceError: Invalid audience' });
  });

  it('refuses a JWT that is not an access token (typ)', async () => {
    // A JWT signed with our keys whose typ is not at+jwt: a signed introspection answer (RFC 9701),
    // the one such token a resource server gets without a browser.
    const response = await fetch(as.introspection_endpoint!, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${payments.rs.introspection.client_id}:${payments.rs.introspection.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/token-introspection+jwt',
      },
      body: new URLSearchParams({ token: payments.jwt }),
    });
    expect(response.status).toBe(200);
    expect(await python(payments.rs, 'jwt', await response.text())).toEqual({ code: 1, output: 'ERROR ValueError: not an access token' });
  });
});
