/**
 * Store failures end to end: the real server on a Redis or a PostgreSQL of its own, which the test
 * kills mid-test and starts again. While a store is away the server answers fast and honestly (an
 * OAuth 503, never a 500 with a stack trace, never `active: true` it cannot vouch for) without piling
 * up work in memory; when the store returns, the server recovers by itself.
 *
 * The tests of each scenario run in order: they are the phases of one outage.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startSparePostgres, type SparePostgres } from '../helpers/spare-postgres.js';
import { startSpareRedis, type SpareRedis } from '../helpers/spare-redis.js';

/** The bound on an OAuth answer while a store is away (Redis commands time out after 1 s). */
const UNAVAILABLE_WITHIN_MS = 2_000;
/** PostgreSQL calls may wait up to the pool's 2 s connection timeout before they fail. */
const POSTGRES_UNAVAILABLE_WITHIN_MS = 3_000;
/** How long the server may take to notice that a store is back. */
const RECOVERY_WITHIN_MS = 10_000;
/** A sanity bound on memory growth under a stream of requests during an outage (no growing queue). */
const MAX_RSS_GROWTH_BYTES = 100 * 1024 * 1024;
const BURST = 200;
const IN_FLIGHT = 20;

/** An HTTP answer as a client sees it, and how long it took. */
interface TimedAnswer {
  status: number;
  contentType: string;
  text: string;
  ms: number;
}

/** Measured timings, printed after the file so a reader sees how the server actually behaved. */
const timings: string[] = [];

afterAll(() => {
  if (timings.length > 0) console.log(`fault timings:\n  ${timings.join('\n  ')}`);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function timedFetch(url: string, init: RequestInit = {}): Promise<TimedAnswer> {
  const started = performance.now();
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text, ms: Math.round(performance.now() - started) };
}

/** A form POST with client_secret_basic, as RFC 6749 section 2.3.1 encodes the credentials. */
function postForm(url: string, clientId: string, clientSecret: string, params: Record<string, string>): Promise<TimedAnswer> {
  const credentials = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
  return timedFetch(url, {
    method: 'POST',
    headers: { authorization: `Basic ${credentials}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
}

/** A Node stack frame (`at fn (/path/file.js:12:3)`): must never reach a client. */
const STACK_FRAME = /\bat .*\.js:\d+/;

/** Asserts an RFC 6749 `temporarily_unavailable` answer within the bound, with nothing internal in it. */
function expectTemporarilyUnavailable(answer: TimedAnswer): void {
  expect(answer).toMatchObject({ status: 503, contentType: expect.stringMatching(/^application\/json/) });
  expect(JSON.parse(answer.text)).toMatchObject({ error: 'temporarily_unavailable' });
  expect(answer.text).not.toMatch(STACK_FRAME);
  expect(answer.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
}

/** The requests (`METHOD /path`) the server's request log says it answered with 500: there must be none. */
function answeredWith500(server: RunningServer): string[] {
  return server
    .output()
    .split('\n')
    .filter((line) => /"status":500\b/.test(line))
    .map((line) => {
      const { method, path } = JSON.parse(line) as { method: string; path: string };
      return `${method} ${path}`;
    });
}

/** Resident memory of a process in bytes, from /proc. */
function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Calls `attempt` until it returns true: the milliseconds that took, or a failure after `withinMs`. */
async function until(what: string, withinMs: number, attempt: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await attempt().catch(() => false)) return Math.round(performance.now() - started);
    if (performance.now() - started > withinMs) throw new Error(`${what}: not within ${withinMs} ms`);
    await sleep(100);
  }
}

type Api = Awaited<ReturnType<typeof registerResourceServer>>;
type Client = Awaited<ReturnType<typeof registerClient>>;

/** A resource server whose plain scope gets JWTs and whose sensitive scope gets opaque tokens, and a client of it. */
async function registerApiAndClient(issuer: string, admin: string, name: string): Promise<{ api: Api; client: Client }> {
  const api = await registerResourceServer(issuer, admin, {
    identifier: uniqueResource(name),
    name,
    scopes: ['f:read', 'f:secret'],
    sensitive_scopes: ['f:secret'],
  });
  const client = await registerClient(issuer, admin, {
    client_name: `${name} client`,
    trust: 'internal',
    resources: [api.identifier],
    scope: 'f:read f:secret',
  });
  return { api, client };
}

describe('Redis outage', () => {
  let redis: SpareRedis;
  let server: RunningServer;
  let as: AuthorizationServer;
  let api: Api;
  let client: Client;
  let opaque: string;
  let jwt: string;

  const token = (scope: string) => postForm(as.token_endpoint!, client.client_id, client.client_secret, { grant_type: 'client_credentials', scope });
  const introspection = (value: string) => postForm(as.introspection_endpoint!, api.introspection.client_id, api.introspection.client_secret, { token: value });
  const revocation = (value: string) => postForm(as.revocation_endpoint!, client.client_id, client.client_secret, { token: value });
  const readyz = () => timedFetch(`${server.issuer}/readyz`);

  beforeAll(async () => {
    redis = await startSpareRedis();
    server = await startServer({ env: { REDIS_URL: redis.url } });
    as = await discover(server.issuer);
    const admin = await adminToken(server.issuer);
    ({ api, client } = await registerApiAndClient(server.issuer, admin, 'redis-fault'));
    opaque = (await issueToken(as, client.client_id, client.client_secret, { scope: 'f:secret' })).accessToken;
    jwt = (await issueToken(as, client.client_id, client.client_secret, { scope: 'f:read' })).accessToken;
    expect(jwt.split('.')).toHaveLength(3);
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, opaque)).toMatchObject({ active: true });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('answers 503 within 2 s while Redis hangs (no answer, connection open), and carries on when it wakes', async () => {
    redis.pause();
    try {
      const answers = {
        token: await token('f:secret'),
        'introspection (opaque)': await introspection(opaque),
        'introspection (JWT)': await introspection(jwt),
      };
      for (const [endpoint, answer] of Object.entries(answers)) {
        timings.push(`Redis hung: ${endpoint} answered ${answer.status} in ${answer.ms} ms`);
        expectTemporarilyUnavailable(answer);
      }
      const ready = await readyz();
      timings.push(`Redis hung: /readyz answered ${ready.status} in ${ready.ms} ms`);
      expect(ready.status).toBe(503);
      expect(ready.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    } finally {
      redis.resume();
    }

    const issuingAfter = await until('a token issued', RECOVERY_WITHIN_MS, async () => (await token('f:secret')).status === 200);
    timings.push(`Redis woke: token endpoint 200 after ${issuingAfter} ms`);
    // Nothing was lost: the token issued before Redis hung is still known.
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, opaque)).toMatchObject({ active: true });
  }, 40_000);

  it('answers 503 temporarily_unavailable within 2 s on the token, introspection and revocation endpoints when Redis dies', async () => {
    await redis.stop();

    const answers = {
      token: await token('f:secret'),
      'introspection (opaque)': await introspection(opaque),
      'introspection (JWT)': await introspection(jwt),
      'revocation (opaque)': await revocation(opaque),
      'revocation (JWT)': await revocation(jwt),
    };
    for (const [endpoint, answer] of Object.entries(answers)) {
      timings.push(`Redis down: ${endpoint} answered ${answer.status} in ${answer.ms} ms`);
      expectTemporarilyUnavailable(answer);
    }
  });

  it('never vouches for a token it cannot check, and never answers 500 to a wrong secret', async () => {
    for (const value of [opaque, jwt]) expect((await introspection(value)).text).not.toMatch(/"active"\s*:\s*true/);

    // A failed client authentication is counted in Redis: with Redis away it cannot be counted, so it
    // is refused (fails closed) with a 503, never a 401 that lets guessing go on uncounted, never a 500.
    const wrongSecret = await postForm(as.token_endpoint!, client.client_id, 'not-the-secret', { grant_type: 'client_credentials' });
    timings.push(`Redis down: a wrong client secret answered ${wrongSecret.status} in ${wrongSecret.ms} ms`);
    expect(wrongSecret.status).toBe(503);
    expect(wrongSecret.text).not.toMatch(STACK_FRAME);
    expect(wrongSecret.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  });

  it('is not ready: /readyz answers 503 within 2 s', async () => {
    const answer = await readyz();
    timings.push(`Redis down: /readyz answered ${answer.status} in ${answer.ms} ms`);
    expect(answer).toMatchObject({ status: 503, contentType: expect.stringMatching(/^application\/json/) });
    expect(answer.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  });

  it(`answers ${BURST} requests with 503s, each fast, without its memory growing`, async () => {
    const before = residentBytes(server.process.pid!);
    const calls = [() => token('f:secret'), () => introspection(opaque), () => introspection(jwt), () => revocation(opaque)];
    const answers: TimedAnswer[] = [];
    const started = performance.now();
    // A steady stream of callers rather than one burst: each answer's time is then the server's
    // handling of an outage, not the queue of a single process's CPU under 200 simultaneous requests.
    for (let i = 0; i < BURST; i += IN_FLIGHT) {
      answers.push(...(await Promise.all(Array.from({ length: IN_FLIGHT }, (_, j) => calls[(i + j) % calls.length]()))));
    }
    const total = Math.round(performance.now() - started);
    const growth = residentBytes(server.process.pid!) - before;
    const slowest = Math.max(...answers.map((answer) => answer.ms));
    timings.push(
      `Redis down: ${BURST} requests (${IN_FLIGHT} in flight) in ${total} ms, slowest ${slowest} ms, RSS growth ${(growth / 1024 / 1024).toFixed(1)} MiB`,
    );

    const statuses: Record<number, number> = {};
    for (const { status } of answers) statuses[status] = (statuses[status] ?? 0) + 1;
    expect(statuses).toEqual({ 503: BURST });
    expect(slowest).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    expect(growth).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  });

  it('recovers by itself when Redis returns (empty: tokens held there are gone)', async () => {
    await redis.restart();

    const readyAfter = await until('/readyz 200', RECOVERY_WITHIN_MS, async () => (await readyz()).status === 200);
    const issuingAfter = await until('a token issued', RECOVERY_WITHIN_MS, async () => (await token('f:secret')).status === 200);
    timings.push(`Redis back: /readyz 200 after ${readyAfter} ms, token endpoint 200 after ${readyAfter + issuingAfter} ms`);

    const { accessToken: fresh } = await issueToken(as, client.client_id, client.client_secret, { scope: 'f:secret' });
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, fresh)).toMatchObject({
      active: true,
      client_id: client.client_id,
    });
    // The restarted Redis keeps nothing (`--save ""`): the opaque token issued before the outage is unknown now.
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, opaque)).toEqual({ active: false });

    expect((await revocation(fresh)).status).toBe(200);
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, fresh)).toEqual({ active: false });
    expect(answeredWith500(server)).toEqual([]);
  }, 40_000);
});

describe('PostgreSQL outage', () => {
  let postgres: SparePostgres;
  let server: RunningServer;
  let as: AuthorizationServer;
  let admin: string;
  let api: Api;
  let client: Client;

  const readyz = () => timedFetch(`${server.issuer}/readyz`);
  const listClients = () => timedFetch(`${server.issuer}/admin/clients`, { headers: { authorization: `Bearer ${admin}` } });

  beforeAll(async () => {
    postgres = await startSparePostgres();
    server = await startServer({ env: { DATABASE_URL: postgres.url } });
    as = await discover(server.issuer);
    admin = await adminToken(server.issuer);
    ({ api, client } = await registerApiAndClient(server.issuer, admin, 'postgres-fault'));
    // Warms the client cache with both the client and the resource server's introspection client, as
    // traffic in the last minute would have.
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'f:read' });
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, accessToken)).toMatchObject({ active: true });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await postgres?.destroy();
  });

  it('keeps issuing and introspecting tokens for a known client from its cache, within 2 s', async () => {
    await postgres.stop();

    for (const scope of ['f:read', 'f:secret']) {
      const answer = await postForm(as.token_endpoint!, client.client_id, client.client_secret, { grant_type: 'client_credentials', scope });
      timings.push(`PostgreSQL down: token endpoint (${scope}) answered ${answer.status} in ${answer.ms} ms`);
      expect(answer.status).toBe(200);
      expect(answer.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);

      const issued = (JSON.parse(answer.text) as { access_token: string }).access_token;
      const introspected = await postForm(as.introspection_endpoint!, api.introspection.client_id, api.introspection.client_secret, { token: issued });
      timings.push(`PostgreSQL down: introspection answered ${introspected.status} in ${introspected.ms} ms`);
      expect(introspected.status).toBe(200);
      expect(JSON.parse(introspected.text)).toMatchObject({ active: true, client_id: client.client_id });
      expect(introspected.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    }
  });

  it('answers a client it has never seen with 401 or 503, never 500', async () => {
    const answer = await postForm(as.token_endpoint!, 'never-registered-client', 'whatever-secret', { grant_type: 'client_credentials' });
    timings.push(`PostgreSQL down: unknown client answered ${answer.status} in ${answer.ms} ms`);
    expect(String(answer.status)).toMatch(/^(401|503)$/);
    expect(answer.contentType).toMatch(/^application\/json/);
    expect(answer.text).not.toMatch(STACK_FRAME);
    expect(answer.ms).toBeLessThan(POSTGRES_UNAVAILABLE_WITHIN_MS);
  });

  it('answers the admin API with 503 problem+json, and /readyz with 503', async () => {
    const listed = await listClients();
    timings.push(`PostgreSQL down: GET /admin/clients answered ${listed.status} in ${listed.ms} ms`);
    expect(listed).toMatchObject({ status: 503, contentType: expect.stringMatching(/^application\/problem\+json/) });
    expect(JSON.parse(listed.text)).toMatchObject({ status: 503, title: 'Service Unavailable', type: expect.any(String), detail: expect.any(String) });
    expect(listed.text).not.toMatch(STACK_FRAME);
    expect(listed.ms).toBeLessThan(POSTGRES_UNAVAILABLE_WITHIN_MS);

    const ready = await readyz();
    timings.push(`PostgreSQL down: /readyz answered ${ready.status} in ${ready.ms} ms`);
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThan(POSTGRES_UNAVAILABLE_WITHIN_MS);
  });

  it('recovers by itself when PostgreSQL returns', async () => {
    await postgres.restart();

    const adminAfter = await until('GET /admin/clients 200', RECOVERY_WITHIN_MS, async () => (await listClients()).status === 200);
    const readyAfter = await until('/readyz 200', RECOVERY_WITHIN_MS, async () => (await readyz()).status === 200);
    timings.push(`PostgreSQL back: admin API 200 after ${adminAfter} ms, /readyz 200 after ${adminAfter + readyAfter} ms`);

    // Writes work again too: a client registered now gets a token.
    const { client: later } = await registerApiAndClient(server.issuer, admin, 'postgres-recovered');
    await expect(issueToken(as, later.client_id, later.client_secret, { scope: 'f:read' })).resolves.toMatchObject({ expiresIn: 300 });
    expect(answeredWith500(server)).toEqual([]);
  }, 40_000);
});
