/**
 * Revocation events survive what a deployment goes through: a server restart, and a crash and restart
 * of Redis with its append-only file on. An event recorded with its revocation but never relayed (a
 * crash in between: an outbox row in PostgreSQL, a recorded event in Redis) is relayed when a server
 * comes back. And how long an event takes to reach a waiting poll, over 100 revocations.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import * as oauth from 'oauth4webapi';
import pg from 'pg';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';
import { sleep } from '../helpers/keys.js';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { EventInbox, pollRequest } from '../helpers/security-events.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startSpareRedis, type SpareRedis } from '../helpers/spare-redis.js';

const TOKEN_REVOKED = 'urn:login-server:secevent:token-revoked';
const CLIENT_TOKENS_REVOKED = 'urn:login-server:secevent:client-tokens-revoked';
const PREFIX = 'durable:';

let aofDir: string;
let redis: SpareRedis;
let database: ScratchDatabase;
let server: RunningServer;
let port: number;
let as: oauth.AuthorizationServer;
let admin: string;
let api: Awaited<ReturnType<typeof registerResourceServer>>;
let client: Awaited<ReturnType<typeof registerClient>>;
let inbox: EventInbox;

const serverEnv = () => ({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX, DATABASE_URL: database.url, EVENTS_POLL_WAIT: '5' });

beforeAll(async () => {
  aofDir = mkdtempSync(join(tmpdir(), 'events-aof-'));
  redis = await startSpareRedis(undefined, { appendOnlyDir: aofDir });
  database = await createScratchDatabase('events');
  server = await startServer({ env: serverEnv() });
  port = server.port;
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  api = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('durable'),
    name: 'Durable',
    scopes: ['d:read'],
    token_format: 'opaque',
  });
  client = await registerClient(server.issuer, admin, { client_name: 'durable', trust: 'external', resources: [api.identifier], scope: 'd:read' });
  const jwksUri = ((await (await fetch(`${server.issuer}/.well-known/ssf-configuration`)).json()) as { jwks_uri: string }).jwks_uri;
  inbox = new EventInbox(server.issuer, api, jwksUri);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await redis?.stop();
  await database?.drop();
  rmSync(aofDir, { recursive: true, force: true });
});

/** Issues and revokes a token of the API; its `jti` as introspection answered it. */
async function revokeOne(): Promise<string> {
  const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: api.identifier, scope: 'd:read' });
  const { jti } = await introspect(as, api.introspection.client_id, api.introspection.client_secret, accessToken);
  expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
  return jti as string;
}

/** The SET ids waiting for the API right now, without acknowledging them. */
async function waitingIds(): Promise<string[]> {
  const answer = await pollRequest(server.issuer, api.introspection, { returnImmediately: true });
  expect(answer.status).toBe(200);
  return Object.keys(answer.body.sets as object);
}

describe('nothing is lost', () => {
  it('across a server restart and a Redis crash and restart (append-only file)', async () => {
    const jti = await revokeOne();
    const other = await registerClient(server.issuer, admin, {
      client_name: 'disabled later',
      trust: 'external',
      resources: [api.identifier],
      scope: 'd:read',
    });
    expect((await adminCall(server.issuer, admin, 'PATCH', `/clients/${other.client_id}`, { disabled: true })).status).toBe(200);
    await sleep(500);
    const before = await waitingIds();
    expect(before.length).toBeGreaterThanOrEqual(2);

    await server.stop();
    server = await startServer({ port, env: serverEnv() });
    expect((await waitingIds()).sort()).toEqual(before.sort());

    await redis.stop();
    await redis.restart();
    // The server reconnects by itself.
    const deadline = Date.now() + 10_000;
    let after: string[] | undefined;
    while (Date.now() < deadline) {
      after = await pollRequest(server.issuer, api.introspection, { returnImmediately: true })
        .then((answer) => (answer.status === 200 ? Object.keys(answer.body.sets as object) : undefined))
        .catch(() => undefined);
      if (after) break;
      await sleep(200);
    }
    expect(after?.sort()).toEqual(before.sort());

    // And they are the right events, verified.
    await inbox.waitFor(TOKEN_REVOKED, { jti });
    await inbox.waitFor(CLIENT_TOKENS_REVOKED, { client_id: other.client_id });
    // A revocation after the Redis restart is announced as before.
    await inbox.waitFor(TOKEN_REVOKED, { jti: await revokeOne() });
  }, 60_000);

  it('an event recorded with its revocation but not relayed (a crash in between) is relayed when a server comes back', async () => {
    await server.stop();
    // What a crash leaves: a committed outbox row in PostgreSQL, a recorded event in Redis (in the
    // revoked token's slot), neither relayed to any queue.
    const outboxEvent = {
      id: randomUUID(),
      at: Math.floor(Date.now() / 1000),
      event: { kind: 'client', clientId: 'crashed-client', revokedBefore: 1, reason: 'revoked' },
    };
    const pool = new pg.Pool({ connectionString: database.url });
    await pool.query('insert into security_event_outbox (id, event) values ($1, $2)', [outboxEvent.id, JSON.stringify(outboxEvent)]);
    await pool.end();
    const recorded = { id: randomUUID(), at: Math.floor(Date.now() / 1000), event: { kind: 'token', jti: 'crashed-token-jti', audiences: [api.identifier] } };
    const direct = new Redis(redis.url);
    await direct.set(`${PREFIX}secevent-outbox:{crashed-digest}:${recorded.id}`, JSON.stringify(recorded));

    server = await startServer({ port, env: serverEnv() });
    await inbox.waitFor(CLIENT_TOKENS_REVOKED, { client_id: 'crashed-client' });
    await inbox.waitFor(TOKEN_REVOKED, { jti: 'crashed-token-jti' });
    // Relayed, so no longer kept for another relay.
    expect(await direct.keys(`${PREFIX}secevent-outbox:*`)).toEqual([]);
    direct.disconnect();
  }, 60_000);
});

describe('latency', () => {
  it('from the revocation answer to a waiting poll answering with the event: 100 revocations', async () => {
    const fromAnswer: number[] = [];
    const fromRequest: number[] = [];
    let beforeAnswer = 0;
    // Start clean.
    while ((await inbox.poll()).length > 0);
    for (let trial = 0; trial < 100; trial++) {
      const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: api.identifier, scope: 'd:read' });
      const polled = pollRequest(server.issuer, api.introspection, {}).then((answer) => ({ answer, at: performance.now() }));
      // Let the poll reach the server and wait.
      await sleep(20);
      const requested = performance.now();
      expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
      const answered = performance.now();
      const { answer, at } = await polled;
      const ids = Object.keys(answer.body.sets as object);
      expect(ids).toHaveLength(1);
      if (at < answered) beforeAnswer++;
      fromAnswer.push(Math.max(0, at - answered));
      fromRequest.push(at - requested);
      await pollRequest(server.issuer, api.introspection, { ack: ids, maxEvents: 0 });
    }
    const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.ceil((p / 100) * values.length) - 1];
    const figures = {
      trials: fromAnswer.length,
      polled_before_the_revocation_answer_arrived: beforeAnswer,
      from_answer_ms: { p50: percentile(fromAnswer, 50), p99: percentile(fromAnswer, 99), max: Math.max(...fromAnswer) },
      from_request_ms: { p50: percentile(fromRequest, 50), p99: percentile(fromRequest, 99), max: Math.max(...fromRequest) },
    };
    console.log(`revocation event latency: ${JSON.stringify(figures)}`);
    expect(figures.from_answer_ms.p99).toBeLessThan(2_000);
  }, 120_000);
});
