/**
 * Limits and headers: oversized form bodies, repeated failed client authentication shared across
 * instances, no-store on token answers, security headers, and a forged Host header.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminToken, clientCredentials, discover, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let first: RunningServer;
let second: RunningServer;
let as: AuthorizationServer;
let asSecond: AuthorizationServer;
let api: Awaited<ReturnType<typeof registerResourceServer>>;
let admin: string;

beforeAll(async () => {
  first = await startServer();
  second = await startServer({ issuerPort: first.port });
  as = await discover(first.issuer);
  asSecond = { ...as, token_endpoint: `http://localhost:${second.port}/token` };
  admin = await adminToken(first.issuer);
  api = await registerResourceServer(first.issuer, admin, { identifier: uniqueResource('limits'), name: 'Limits', scopes: ['x:read'] });
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
});

const newClient = () => registerClient(first.issuer, admin, { client_name: 'Limited', trust: 'internal', resources: [api.identifier], scope: 'x:read' });

describe('client authentication failures', () => {
  it('after 20 failures in a minute from one address, 429 with Retry-After, counted across instances', async () => {
    const client = await newClient();
    for (let i = 0; i < 19; i++) {
      expect(await clientCredentials(as, client.client_id, `wrong-${i}`)).toMatchObject({ status: 401, error: 'invalid_client' });
    }
    // The 20th failure lands on the other instance: the count is shared.
    const response = await fetch(asSecond.token_endpoint!, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.client_id}:wrong-again`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await response.json()) as { error: string }).error).toBe('too_many_requests');
    // Locked out on that instance even with the right secret, until the window ends.
    expect(await clientCredentials(asSecond, client.client_id, client.client_secret)).toMatchObject({ ok: false, status: 429 });
  });

  it('another client is not affected', async () => {
    const client = await newClient();
    expect(await clientCredentials(as, client.client_id, client.client_secret, { scope: 'x:read' })).toMatchObject({ ok: true });
  });
});

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
        { host: '127.0.0.1', port: first.port, path: '/.well-known/openid-configuration', headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' } },
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
