/**
 * The kit's Koa, Express and Fastify adapters as an API team uses them: one real app per framework on
 * a port of its own, protected routes, and clients calling them over HTTP with tokens of the real
 * server. Each answers 401 with RFC 6750 / RFC 9449 challenges, 403 for a missing scope, 400 for a
 * malformed header, and lets good requests (bearer and DPoP) through with what the token says.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Router from '@koa/router';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { spawn } from 'node:child_process';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { createResourceServerKit, type ResourceServerKit } from '../../resource-server-kit/src/index.js';
import * as forExpress from '../../resource-server-kit/src/middleware/express.js';
import * as forFastify from '../../resource-server-kit/src/middleware/fastify.js';
import * as forKoa from '../../resource-server-kit/src/middleware/koa.js';
import { boundClientCredentials, dpopKey } from '../helpers/dpop.js';
import { adminToken, discover, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { freePort, startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let as: oauth.AuthorizationServer;
let api: Awaited<ReturnType<typeof registerResourceServer>>;
let worker: { client_id: string; client_secret: string };
let kit: ResourceServerKit;
/** A kit receiving pushed events (RFC 8935) on each framework's `/security-events`. */
let pushKit: ResourceServerKit;
const PUSH_TOKEN = 'push-credential-of-the-shop-0123456789';
const origins: Record<string, string> = {};
const closers: Array<() => Promise<unknown>> = [];

const listening = (httpServer: Server) =>
  new Promise<string>((resolve) => httpServer.once('listening', () => resolve(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`)));

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  const admin = await adminToken(server.issuer);
  api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('shop'), name: 'Shop', scopes: ['orders:read', 'orders:write'] });
  worker = await registerClient(server.issuer, admin, {
    client_name: 'Shop job',
    trust: 'internal',
    scope: 'orders:read orders:write',
    resources: [api.identifier],
  });
  kit = await createResourceServerKit({
    issuer: server.issuer,
    resource: api.identifier,
    credentials: { clientId: api.introspection.client_id, clientSecret: api.introspection.client_secret },
    events: { mode: 'off' },
    realm: 'shop',
  });
  pushKit = await createResourceServerKit({
    issuer: server.issuer,
    resource: api.identifier,
    credentials: { clientId: api.introspection.client_id, clientSecret: api.introspection.client_secret },
    events: { mode: 'push', pushToken: PUSH_TOKEN },
  });

  const koa = new Koa();
  const router = new Router();
  router.get('/orders', forKoa.protect(kit, { scopes: ['orders:read'] }), (ctx) => {
    ctx.body = { subject: forKoa.authOf(ctx).subject };
  });
  router.post('/orders', forKoa.protect(kit, { scopes: ['orders:write'] }), (ctx) => {
    ctx.status = 201;
  });
  router.post('/security-events', forKoa.pushReceiver(pushKit));
  koa.use(router.routes());
  const koaServer = koa.listen(0, '127.0.0.1');
  origins.koa = await listening(koaServer);
  closers.push(() => new Promise((resolve) => koaServer.close(resolve)));

  const app = express();
  app.get('/orders', forExpress.protect(kit, { scopes: ['orders:read'] }), (_req, res) => {
    res.json({ subject: forExpress.authOf(res).subject });
  });
  app.post('/orders', forExpress.protect(kit, { scopes: ['orders:write'] }), (_req, res) => {
    res.status(201).end();
  });
  app.post('/security-events', forExpress.pushReceiver(pushKit));
  const expressServer = app.listen(0, '127.0.0.1');
  origins.express = await listening(expressServer);
  closers.push(() => new Promise((resolve) => expressServer.close(resolve)));

  const fastify = Fastify();
  fastify.get('/orders', { preHandler: forFastify.protect(kit, { scopes: ['orders:read'] }) }, async (request) => ({
    subject: forFastify.authOf(request).subject,
  }));
  fastify.post('/orders', { preHandler: forFastify.protect(kit, { scopes: ['orders:write'] }) }, async (_request, reply) => reply.code(201).send());
  await fastify.register(forFastify.pushReceiver(pushKit, '/security-events'));
  origins.fastify = await fastify.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => fastify.close());
}, 60_000);

afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await kit?.close();
  await pushKit?.close();
  await server?.stop();
});

const call = async (url: string, init: RequestInit = {}) => {
  const response = await fetch(url, init);
  const text = await response.text();
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate') ?? '',
    body: response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : undefined,
  };
};

describe.each(['koa', 'express', 'fastify'])('%s', (framework) => {
  const ordersUrl = () => `${origins[framework]}/orders`;
  const token = async (scope: string) => (await issueToken(as, worker.client_id, worker.client_secret, { resource: api.identifier, scope })).accessToken;

  it('lets a request with a good bearer token through, with what the token says', async () => {
    const answer = await call(ordersUrl(), { headers: { authorization: `Bearer ${await token('orders:read')}` } });
    expect(answer).toMatchObject({ status: 200, body: { subject: worker.client_id } });
  });

  it('answers a request without a token 401 with a Bearer and a DPoP challenge naming no error', async () => {
    const answer = await call(ordersUrl());
    expect(answer.status).toBe(401);
    expect(answer.challenge).toMatch(/^Bearer realm="shop", DPoP realm="shop", algs="ES256 EdDSA Ed25519 PS256 RS256"$/);
  });

  it('answers a bad token 401 invalid_token, a malformed header 400, a missing scope 403 insufficient_scope', async () => {
    const bad = await call(ordersUrl(), { headers: { authorization: 'Bearer not-a-token-of-ours' } });
    expect(bad.status).toBe(401);
    expect(bad.challenge).toMatch(/^Bearer realm="shop", error="invalid_token", error_description="[^"]+"$/);
    expect(bad.body).toEqual({ error: 'invalid_token', error_description: 'the token is not active' });

    const malformed = await call(ordersUrl(), { headers: { authorization: 'Bearer two words' } });
    expect(malformed.status).toBe(400);
    expect(malformed.challenge).toMatch(/error="invalid_request"/);

    const readOnly = await call(ordersUrl(), { method: 'POST', headers: { authorization: `Bearer ${await token('orders:read')}` } });
    expect(readOnly.status).toBe(403);
    expect(readOnly.challenge).toMatch(/^Bearer realm="shop", error="insufficient_scope", error_description="[^"]+", scope="orders:write"$/);
    const writer = await call(ordersUrl(), { method: 'POST', headers: { authorization: `Bearer ${await token('orders:read orders:write')}` } });
    expect(writer.status).toBe(201);
  });

  it('answers a push (RFC 8935) that is not a SET 400 with its error: a wrong credential, another content type, a body that does not verify', async () => {
    const push = (authorization: string, contentType: string, body: string) =>
      call(`${origins[framework]}/security-events`, { method: 'POST', headers: { authorization, 'content-type': contentType }, body });
    expect(await push('Bearer not-the-credential', 'application/secevent+jwt', 'a.b.c')).toMatchObject({
      status: 400,
      body: { err: 'authentication_failed' },
    });
    for (const contentType of ['text/plain', 'application/json', 'application/octet-stream', 'application/jwt']) {
      expect(await push(`Bearer ${PUSH_TOKEN}`, contentType, '{}')).toMatchObject({ status: 400, body: { err: 'invalid_request' } });
    }
    expect(await push(`Bearer ${PUSH_TOKEN}`, 'application/secevent+jwt', 'not-a-set')).toMatchObject({ status: 400, body: { err: expect.any(String) } });
  });

  it('lets a DPoP-bound token through with its proof (oauth4webapi as the client), and challenges it as Bearer with DPoP', async () => {
    const { handle } = await dpopKey(worker);
    const bound = await boundClientCredentials(as, worker, { resource: api.identifier, scope: 'orders:read' }, handle);
    const response = await oauth.protectedResourceRequest(bound, 'GET', new URL(`${ordersUrl()}?page=1`), new Headers(), null, {
      [oauth.allowInsecureRequests]: true,
      DPoP: handle,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ subject: worker.client_id });

    const asBearer = await call(ordersUrl(), { headers: { authorization: `Bearer ${bound}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.challenge).toMatch(/^DPoP realm="shop", error="invalid_token", error_description="[^"]+", algs="ES256 EdDSA Ed25519 PS256 RS256"$/);
  });
});

describe('the example API (scripts/example-resource-server.ts)', () => {
  it('runs on the kit: polls events, lets a good token through, refuses a missing one with a challenge', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [resolve('dist/scripts/example-resource-server.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        ISSUER: server.issuer,
        RESOURCE: api.identifier,
        RS_CLIENT_ID: api.introspection.client_id,
        RS_CLIENT_SECRET: api.introspection.client_secret,
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the example did not start:\n${output}`)), 20_000);
        child.stdout.on('data', () => {
          if (!output.includes('revocation events: up') || !output.includes('example resource server on')) return;
          clearTimeout(timer);
          resolve();
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`the example exited with ${code}:\n${output}`));
        });
      });
      const origin = `http://127.0.0.1:${port}`;
      const token = (await issueToken(as, worker.client_id, worker.client_secret, { resource: api.identifier, scope: 'orders:read' })).accessToken;
      const ok = await call(`${origin}/orders`, { headers: { authorization: `Bearer ${token}` } });
      expect(ok).toMatchObject({ status: 200, body: { for: worker.client_id, token: 'jwt', bound: false } });
      const refused = await call(`${origin}/orders`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(refused.status).toBe(403);
      expect((await call(`${origin}/orders`)).challenge).toMatch(/^Bearer realm="orders"/);
      expect((await call(`${origin}/stats`)).body).toMatchObject({ accepted: 1, refused: 2, channel: 'up' });
    } finally {
      child.kill('SIGTERM');
    }
  });
});
