/**
 * A Redis Cluster shard lost under the server: one of three masters (no replicas) killed. Readiness
 * must follow the cluster, not the one node it happens to ask: /readyz answers 503 within about 2 s.
 * Requests whose keys live on the lost shard answer 503, never 500, and the log says so in short
 * lines, without a stack trace.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminToken, clientCredentials, discover, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { clusterState, startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startServer, type RunningServer } from '../helpers/server.js';

/** Readiness is probed at most once a second, and a lost node's commands fail within its 1 s timeout. */
const READY_503_WITHIN_MS = 2_000;
/**
 * The surviving nodes call the lost one failed after this long, and the cluster down (no replica to
 * promote): from then on they answer CLUSTERDOWN to every command, which the server must also
 * recognise as an outage.
 */
const NODE_TIMEOUT_MS = 1_000;

let redisCluster: RedisCluster;
let server: RunningServer;
let as: AuthorizationServer;
let client: Awaited<ReturnType<typeof registerClient>>;

beforeAll(async () => {
  redisCluster = await startRedisCluster({ nodeTimeoutMs: NODE_TIMEOUT_MS });
  server = await startServer({ env: { REDIS_CLUSTER_NODES: redisCluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','), REDIS_URL: '' } });
  as = await discover(server.issuer);
  const admin = await adminToken(server.issuer);
  const api = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('shard'),
    name: 'Shard',
    scopes: ['s:read'],
    token_format: 'opaque',
  });
  client = await registerClient(server.issuer, admin, { client_name: 'Shard client', trust: 'external', resources: [api.identifier], scope: 's:read' });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await redisCluster?.stop();
});

const readyStatus = async () => (await fetch(`${server.issuer}/readyz`)).status;

it('is ready, and issues tokens, while every shard serves', async () => {
  expect(await readyStatus()).toBe(200);
  await issueToken(as, client.client_id, client.client_secret, { scope: 's:read' });
});

it('answers /readyz 503 within 2 s of a shard lost, and 503 (never 500) to requests it cannot serve, logging no stack', async () => {
  const logFrom = server.output().length;
  // Any node will do: each masters a third of the slots, and the server's own seed node is among them.
  await redisCluster.kill(redisCluster.nodes[1].port);
  const killedAt = performance.now();

  let notReadyAfter: number | undefined;
  while (performance.now() - killedAt < READY_503_WITHIN_MS + 1_000) {
    if ((await readyStatus()) === 503) {
      notReadyAfter = performance.now() - killedAt;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(notReadyAfter).toBeDefined();
  expect(notReadyAfter!).toBeLessThanOrEqual(READY_503_WITHIN_MS);

  // Tokens are keyed by their digest, spread over every slot: some land on the lost shard.
  const issue = async () => {
    const outcome = await clientCredentials(as, client.client_id, client.client_secret, { scope: 's:read' });
    return outcome.ok ? 200 : outcome.status;
  };
  const statuses = await Promise.all(Array.from({ length: 8 }, issue));
  expect(statuses).toContain(503);

  // Then the survivors declare the cluster down: every command fails, with CLUSTERDOWN.
  const survivor = redisCluster.nodes[0].port;
  const downBy = performance.now() + 10 * NODE_TIMEOUT_MS;
  while ((await clusterState(survivor)) !== 'fail') {
    if (performance.now() > downBy) throw new Error('the surviving nodes never declared the cluster down');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(await Promise.all(Array.from({ length: 4 }, issue))).toEqual([503, 503, 503, 503]);
  expect(statuses.filter((status) => status !== 200 && status !== 503)).toEqual([]);
  expect(await readyStatus()).toBe(503);

  const log = server.output().slice(logFrom);
  expect(log).not.toContain('"stack"');
  expect(log).not.toMatch(/provider server error|request failed|unhandled request error/);
  // One short line for the outage (another only if it outlasts the 10 s between two lines).
  const outageLines = log.split('\n').filter((line) => line.includes('"msg":"store unavailable"'));
  expect(outageLines.length).toBeGreaterThanOrEqual(1);
  expect(outageLines.length).toBeLessThanOrEqual(2);
});
