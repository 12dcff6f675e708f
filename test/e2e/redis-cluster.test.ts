/**
 * The server on a Redis Cluster of three masters (REDIS_CLUSTER_NODES): the issue, introspect, revoke
 * cycle end to end for opaque and JWT access tokens, a revocation made through one server process seen
 * at once by another process on the same cluster, and its revocation event reaching the resource
 * server's queue (recorded, then relayed: the queue is in another slot). The token store's own
 * contract suite runs on a cluster in test/tokens/redis-cluster-token-store.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { EventInbox } from '../helpers/security-events.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let redisCluster: RedisCluster;
let first: RunningServer;
let second: RunningServer;
let as: AuthorizationServer;
/** The same issuer, its endpoints reached through the second process. */
let asSecond: AuthorizationServer;
let api: Awaited<ReturnType<typeof registerResourceServer>>;
let client: Awaited<ReturnType<typeof registerClient>>;

/** `endpoint` of the issuer, reached on the second process's port. */
function onSecond(endpoint: string): string {
  const url = new URL(endpoint);
  url.port = String(second.port);
  return url.toString();
}

beforeAll(async () => {
  redisCluster = await startRedisCluster();
  // REDIS_URL emptied: the cluster alone must carry every Redis use (tokens, change bus, rate limits).
  const env = { REDIS_CLUSTER_NODES: redisCluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','), REDIS_URL: '' };
  first = await startServer({ env });
  second = await startServer({ env, issuerPort: first.port });
  as = await discover(first.issuer);
  asSecond = {
    ...as,
    token_endpoint: onSecond(as.token_endpoint!),
    introspection_endpoint: onSecond(as.introspection_endpoint!),
    revocation_endpoint: onSecond(as.revocation_endpoint!),
  };
  const admin = await adminToken(first.issuer);
  api = await registerResourceServer(first.issuer, admin, {
    identifier: uniqueResource('cluster'),
    name: 'Cluster',
    scopes: ['c:read', 'c:secret'],
    sensitive_scopes: ['c:secret'],
  });
  client = await registerClient(first.issuer, admin, {
    client_name: 'Cluster client',
    trust: 'internal',
    resources: [api.identifier],
    scope: 'c:read c:secret',
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await redisCluster?.stop();
});

const inspect = (server: AuthorizationServer, token: string) => introspect(server, api.introspection.client_id, api.introspection.client_secret, token);

it('is ready on the cluster', async () => {
  for (const server of [first, second]) {
    const response = await fetch(`http://localhost:${server.port}/readyz`);
    expect(response.status).toBe(200);
  }
});

describe.each([
  ['opaque', 'c:secret', false],
  ['JWT', 'c:read', true],
])('%s access token', (_format, scope, isJwt) => {
  it('is issued, introspects active, is revoked, and then introspects inactive', async () => {
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope });
    expect(accessToken.split('.').length === 3).toBe(isJwt);

    expect(await inspect(as, accessToken)).toMatchObject({ active: true, client_id: client.client_id, aud: api.identifier, scope });
    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
    expect(await inspect(as, accessToken)).toEqual({ active: false });
  });

  it('revoked through one process, is inactive at once through the other', async () => {
    const { accessToken } = await issueToken(asSecond, client.client_id, client.client_secret, { scope });
    expect(await inspect(as, accessToken)).toMatchObject({ active: true });
    expect(await inspect(asSecond, accessToken)).toMatchObject({ active: true });

    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
    expect(await inspect(asSecond, accessToken)).toEqual({ active: false });
  });
});

it("announces a client's revocation of its own opaque token on the dedicated path: recorded, then relayed to the queue (in another slot)", async () => {
  const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'c:secret' });
  const { jti } = await inspect(as, accessToken);
  expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
  const jwksUri = ((await (await fetch(`${first.issuer}/.well-known/ssf-configuration`)).json()) as { jwks_uri: string }).jwks_uri;
  // Read through the other process: the queue is the cluster's, not an instance's.
  const set = await new EventInbox(second.issuer, api, jwksUri).waitFor('urn:login-server:secevent:token-revoked', { jti });
  expect(set.aud).toBe(api.identifier);
});

it('answered nothing with 500', () => {
  for (const server of [first, second]) {
    // The request log lines only: on failure they name the requests, not the whole log.
    expect(
      server
        .output()
        .split('\n')
        .filter((line) => /"status":500\b/.test(line)),
    ).toEqual([]);
  }
});
