/**
 * Limits and headers: oversized form bodies, repeated failed client authentication shared across
 * instances, no-store on token answers, security headers, and a forged Host header.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminCall, adminToken, clientCredentials, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let first: RunningServer;
let second: RunningServer;
let as: AuthorizationServer;
let asSecond: AuthorizationServer;
let api: Awaited<ReturnType<typeof registerResourceServer>>;
let admin: string;

// The second instance bootstraps an admin client whose secret has +, / and = (base64, not base64url).
const PLUS_CLIENT_ID = `limits-plus-${randomBytes(6).toString('hex')}`;
const PLUS_SECRET = `ab+cd/ef==${randomBytes(24).toString('hex')}+/=`;

beforeAll(async () => {
  first = await startServer();
  second = await startServer({ issuerPort: first.port, env: { ADMIN_BOOTSTRAP_CLIENT_ID: PLUS_CLIENT_ID, ADMIN_BOOTSTRAP_CLIENT_SECRET: PLUS_SECRET } });
  as = await discover(first.issuer);
  asSecond = { ...as, token_endpoint: `http://localhost:${second.port}/token` };
  admin = await adminToken(first.issuer);
  api = await registerResourceServer(first.issuer, admin, { identifier: uniqueResource('limits'), name: 'Limits', scopes: ['x:read'] });
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
});

const newClient = () => registerClient(first.issuer, admin, { client_name: 'Limited', trust: 'internal', resources: [api.identifier], scope: 'x:read' });

const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;

/** A client credentials request with a raw Authorization header (or none); status and JSON body. */
async function tokenRequest(server: RunningServer, authorization: string | undefined, body = 'grant_type=client_credentials') {
  const response = await fetch(`http://localhost:${server.port}/token`, {
    method: 'POST',
    headers: { ...(authorization ? { authorization } : {}), 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as { error?: string; access_token?: string } };
}

describe('client authentication failures', () => {
  it('the 20th failure in a minute is the last one answered 401; the next attempt answers 429 with Retry-After, counted across instances', async () => {
    const client = await newClient();
    for (let i = 0; i < 19; i++) {
      expect(await clientCredentials(as, client.client_id, `wrong-${i}`)).toMatchObject({ status: 401, error: 'invalid_client' });
    }
    // The 20th failure lands on the other instance: the count is shared, and it is still a 401.
    expect(await tokenRequest(second, basic(client.client_id, 'wrong-20th'))).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    // The next attempt, on the first instance, is refused: it never saw the 20th failure itself.
    const response = await tokenRequest(first, basic(client.client_id, 'wrong-21st'));
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(response.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(response.body.error).toBe('too_many_requests');
    // Locked out on both instances even with the right secret, until the window ends.
    expect(await clientCredentials(as, client.client_id, client.client_secret)).toMatchObject({ ok: false, status: 429 });
    expect(await clientCredentials(asSecond, client.client_id, client.client_secret)).toMatchObject({ ok: false, status: 429 });
  });

  it("locked out on one instance: the right secret's introspection and revocation on the other answer 429, and revoke nothing", async () => {
    // An external client: its tokens are opaque, answered by the dedicated paths' store steps.
    const client = await registerClient(first.issuer, admin, { client_name: 'Limited', trust: 'external', resources: [api.identifier], scope: 'x:read' });
    const issued = await clientCredentials(as, client.client_id, client.client_secret, { scope: 'x:read' });
    expect(issued).toMatchObject({ ok: true });
    const token = (issued as { accessToken: string }).accessToken;
    for (let i = 0; i < 20; i++) {
      expect(await clientCredentials(as, client.client_id, `wrong-${i}`)).toMatchObject({ status: 401, error: 'invalid_client' });
    }
    // The second instance saw none of the failures: the count its store step reads (in the same Redis
    // command as the record on a standalone Redis) is what refuses the right secret there.
    const post = (path: string) =>
      fetch(`http://localhost:${second.port}${path}`, {
        method: 'POST',
        headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
    for (const path of ['/token/introspection', '/token/revocation']) {
      const response = await post(path);
      expect({ path, status: response.status, body: await response.json() }).toMatchObject({ path, status: 429, body: { error: 'too_many_requests' } });
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(response.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    }
    // Not revoked: its audience still introspects it active (an opaque token: its record is there).
    expect(token.split('.')).toHaveLength(1);
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, token)).toMatchObject({ active: true });
  });

  it('25 wrong secrets in parallel over both instances: exactly 20 answer 401, the rest 429; then the right secret answers 429', async () => {
    const client = await newClient();
    const answers = await Promise.all(
      Array.from({ length: 25 }, (_, i) => tokenRequest(i % 2 ? second : first, basic(client.client_id, `parallel-wrong-${i}`)).then((r) => r.status)),
    );
    expect(answers.filter((status) => status === 401)).toHaveLength(20);
    expect(answers.filter((status) => status === 429)).toHaveLength(5);
    for (const target of [as, asSecond]) {
      expect(await clientCredentials(target, client.client_id, client.client_secret)).toMatchObject({ ok: false, status: 429 });
    }
  });

  it('successes do not count: a client making many parallel requests with its right secret is never refused', async () => {
    const client = await newClient();
    const answers = await Promise.all(Array.from({ length: 40 }, () => clientCredentials(as, client.client_id, client.client_secret, { scope: 'x:read' })));
    expect(answers.filter((a) => a.ok)).toHaveLength(40);
    // 19 failures after them still answer 401: the successes left nothing counted.
    for (let i = 0; i < 19; i++) expect(await clientCredentials(as, client.client_id, `wrong-${i}`)).toMatchObject({ status: 401 });
    expect(await clientCredentials(as, client.client_id, client.client_secret, { scope: 'x:read' })).toMatchObject({ ok: true });
  });

  it('another client is not affected', async () => {
    const client = await newClient();
    expect(await clientCredentials(as, client.client_id, client.client_secret, { scope: 'x:read' })).toMatchObject({ ok: true });
  });

  it('a secret with +, / and =, form-encoded in Basic as RFC 6749 2.3.1 says, authenticates', async () => {
    // The bootstrap admin client of the second instance has such a secret (openssl rand -base64 makes them).
    expect(PLUS_SECRET).toMatch(/\+/);
    expect(await clientCredentials(asSecond, PLUS_CLIENT_ID, PLUS_SECRET, { scope: 'admin:read' })).toMatchObject({ ok: true });
    // Sent without the form encoding, its + reads as a space: why the walkthrough now uses hex secrets.
    expect(await tokenRequest(second, basic(PLUS_CLIENT_ID, PLUS_SECRET), 'grant_type=client_credentials&scope=admin%3Aread')).toMatchObject({ status: 401 });
  });

  it('every secret the server makes is base64url: safe in Basic credentials as it is', async () => {
    const base64url = /^[A-Za-z0-9_-]{43}$/;
    const client = await newClient();
    expect(client.client_secret).toMatch(base64url);
    expect(api.introspection.client_secret).toMatch(base64url);
    const rotated = await adminCall(first.issuer, admin, 'POST', `/clients/${client.client_id}/secret`, {});
    expect(rotated.status).toBe(200);
    expect(rotated.body.client_secret).toMatch(base64url);
    // Sent raw (as curl -u does), such a secret authenticates.
    expect(await tokenRequest(first, basic(client.client_id, rotated.body.client_secret), 'grant_type=client_credentials&scope=x%3Aread')).toMatchObject({
      status: 200,
    });
  });
});

/** The sum of login_store_errors_total over its labels, from the server's /metrics. */
async function storeErrors(server: RunningServer): Promise<number> {
  const port = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output())?.[1];
  expect(port).toBeDefined();
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('login_store_errors_total'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

describe('ids that cannot exist', () => {
  // A NUL, a space, undecodable UTF-8, a character outside the id alphabet, and far too long.
  const impossible = ['\0abc', 'abc\0', 'a b', '\ufffd', 'x'.repeat(129), "a'b", 'ü'];

  it('are unknown clients at the token, introspection and revocation endpoints: invalid_client, no store error', async () => {
    const before = await storeErrors(first);
    for (const clientId of impossible) {
      const formBasic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:secret`).toString('base64')}`;
      // Basic credentials must be VSCHARs (RFC 6749 appendix A): the provider refuses others as badly encoded.
      const basicAnswer = /^[\x20-\x7e]+$/.test(clientId) ? { status: 401, error: 'invalid_client' } : { status: 400, error: 'invalid_request' };
      const viaBasic = await tokenRequest(first, formBasic);
      expect({ clientId, status: viaBasic.status, error: viaBasic.body.error }).toEqual({ clientId, ...basicAnswer });
      const post = `grant_type=client_credentials&client_id=${encodeURIComponent(clientId)}&client_secret=secret`;
      const viaPost = await tokenRequest(first, undefined, post);
      expect({ clientId, status: viaPost.status, error: viaPost.body.error }).toEqual({ clientId, status: 401, error: 'invalid_client' });
      for (const endpoint of [as.introspection_endpoint!, as.revocation_endpoint!]) {
        for (const [headers, body] of [
          [{ authorization: formBasic }, 'token=some-token'],
          [{}, `token=some-token&client_id=${encodeURIComponent(clientId)}&client_secret=secret`],
        ] as const) {
          const response = await fetch(endpoint, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body });
          const expected = 'authorization' in headers ? basicAnswer : { status: 401, error: 'invalid_client' };
          const error = ((await response.json()) as { error: string }).error;
          expect({ endpoint, clientId, status: response.status, error }).toEqual({ endpoint, clientId, ...expected });
        }
      }
    }
    // A raw NUL and raw invalid UTF-8 in Basic (not form-encoded): refused as badly encoded or unknown, never a store error.
    for (const raw of [Buffer.from('\0abc:secret'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(':secret')])]) {
      const answer = await tokenRequest(first, `Basic ${raw.toString('base64')}`);
      expect([400, 401]).toContain(answer.status);
      expect(['invalid_request', 'invalid_client']).toContain(answer.body.error);
    }
    const undecodable = await tokenRequest(first, undefined, 'grant_type=client_credentials&client_id=%FF%FE&client_secret=secret');
    expect(undecodable).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await storeErrors(first)).toBe(before);
  });

  it('are unknown clients at the authorization and end session endpoints: the error page, no store error', async () => {
    const before = await storeErrors(first);
    for (const clientId of [...impossible, '%FF%FE']) {
      const param = clientId === '%FF%FE' ? clientId : encodeURIComponent(clientId);
      const auth = await fetch(`${first.issuer}/auth?client_id=${param}&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb`, {
        headers: { accept: 'text/html' },
      });
      expect({ clientId, status: auth.status }).toEqual({ clientId, status: 400 });
      expect(await auth.text()).toContain('invalid_client');
      const end = await fetch(`${first.issuer}/session/end?client_id=${param}`, { headers: { accept: 'text/html' } });
      expect({ clientId, status: end.status }).toEqual({ clientId, status: 400 });
      expect(await end.text()).toMatch(/invalid_client|invalid_request/);
    }
    expect(await storeErrors(first)).toBe(before);
  });
});

/** A POST through node:http with a body sent in chunks (Transfer-Encoding: chunked, no Content-Length). */
function chunkedPost(port: number, path: string, headers: Record<string, string>, chunks: Buffer[]) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    // The server may answer and close before the last chunks are written: only errors before an answer count.
    req.on('error', reject);
    expect(req.getHeader('content-length')).toBeUndefined();
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('bodies and headers', () => {
  it('a form body over 64 KiB answers 413 with an OAuth JSON error', async () => {
    const response = await fetch(as.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&padding=${'a'.repeat(70 * 1024)}`,
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('a chunked form body (no Content-Length) over 64 KiB answers 413 too, counted as it arrives', async () => {
    const chunk = Buffer.from(`&padding=${'a'.repeat(8 * 1024)}`);
    const answer = await chunkedPost(first.port, '/token', { 'content-type': 'application/x-www-form-urlencoded' }, [
      Buffer.from('grant_type=client_credentials'),
      ...Array.from({ length: 9 }, () => chunk),
    ]);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_request' });
  });

  it('a chunked form body within 64 KiB (over the 56 KiB the provider would read itself) is served', async () => {
    const client = await newClient();
    const answer = await chunkedPost(
      first.port,
      '/token',
      { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, client.client_secret) },
      [Buffer.from('grant_type=client_credentials&scope=x%3Aread'), ...Array.from({ length: 7 }, () => Buffer.from(`&padding=${'a'.repeat(8 * 1024)}`))],
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toHaveProperty('access_token');
  });

  it('a chunked admin JSON body over 1 MiB answers 413 problem+json', async () => {
    const chunk = Buffer.from(' '.repeat(64 * 1024));
    const answer = await chunkedPost(first.port, '/admin/clients', { 'content-type': 'application/json', authorization: `Bearer ${admin}` }, [
      Buffer.from('{"client_name":"x"'),
      ...Array.from({ length: 17 }, () => chunk),
      Buffer.from('}'),
    ]);
    expect(answer.status).toBe(413);
    expect(answer.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('token answers carry Cache-Control: no-store', async () => {
    const client = await newClient();
    const response = await fetch(as.token_endpoint!, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials&scope=x%3Aread',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('HTML answers carry the security headers', async () => {
    const response = await fetch(`${first.issuer}/auth?client_id=nobody`, { headers: { accept: 'text/html' } });
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await response.text()).not.toMatch(/at .*\.js:\d+/);
  });

  it('a forged Host header never reaches the issuer or its URLs', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: first.port,
          path: '/.well-known/openid-configuration',
          headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body).not.toContain('evil.example');
    expect(JSON.parse(body).issuer).toBe(first.issuer);
  });
});
