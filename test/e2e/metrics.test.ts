/**
 * /metrics on 127.0.0.1:METRICS_PORT after real traffic holds the series operators alert on; with
 * METRICS_HOST it answers on the configured address instead (a pod's, for Prometheus).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let metrics: string;
let metricsPort: string;

beforeAll(async () => {
  server = await startServer();
  const as = await discover(server.issuer);
  const admin = await adminToken(server.issuer);
  const api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('metrics'), name: 'Metrics', scopes: ['m:read'] });
  const internal = await registerClient(server.issuer, admin, { client_name: 'Metered job', trust: 'internal', resources: [api.identifier], scope: 'm:read' });
  const external = await registerClient(server.issuer, admin, {
    client_name: 'Metered partner',
    trust: 'external',
    resources: [api.identifier],
    scope: 'm:read',
  });
  const jwt = await issueToken(as, internal.client_id, internal.client_secret, { scope: 'm:read' });
  const opaque = await issueToken(as, external.client_id, external.client_secret, { scope: 'm:read' });
  // A scope the client may not have: refused by the provider (the dedicated path leaves grant errors to it).
  await expect(issueToken(as, internal.client_id, internal.client_secret, { scope: 'm:delete' })).rejects.toThrow('token request failed: 400');
  await introspect(as, api.introspection.client_id, api.introspection.client_secret, opaque.accessToken);
  await introspect(as, api.introspection.client_id, api.introspection.client_secret, 'unknown-token');
  await revoke(as, external.client_id, external.client_secret, opaque.accessToken);
  await revoke(as, internal.client_id, internal.client_secret, jwt.accessToken);
  await adminCall(server.issuer, admin, 'GET', '/clients');
  expect((await fetch(`${server.issuer}/readyz`)).status).toBe(200);

  metricsPort = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output())?.[1] ?? '';
  expect(metricsPort).not.toBe('');
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(response.status).toBe(200);
  metrics = await response.text();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** The value of the sample whose name and labels match. */
function sample(name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
  }
  return undefined;
}

describe('metrics', () => {
  it('count tokens issued by grant, format and client trust', () => {
    expect(sample('login_tokens_issued_total', { grant: 'client_credentials', format: 'jwt', trust: 'internal' })).toBeGreaterThanOrEqual(1);
    expect(sample('login_tokens_issued_total', { grant: 'client_credentials', format: 'opaque', trust: 'external' })).toBeGreaterThanOrEqual(1);
  });

  it('count introspection answers by outcome, with a latency histogram', () => {
    expect(sample('login_introspections_total', { active: 'true' })).toBeGreaterThanOrEqual(1);
    expect(sample('login_introspections_total', { active: 'false' })).toBeGreaterThanOrEqual(1);
    expect(sample('login_introspection_duration_seconds_count')).toBeGreaterThanOrEqual(2);
  });

  it('count what the dedicated introspection path answered (nothing, when DEDICATED_PATHS=false)', () => {
    const answered = sample('login_dedicated_path_requests_total', { route: 'introspection', outcome: 'answered' });
    if (process.env.DEDICATED_PATHS === 'false') expect(answered).toBeUndefined();
    else expect(answered).toBe(2);
  });

  it('count what the dedicated issuance path answered (the opaque token and the JWT) and left (the refused scope); nothing when DEDICATED_PATHS=false', () => {
    const answered = sample('login_dedicated_path_requests_total', { route: 'token', outcome: 'answered' });
    const left = sample('login_dedicated_path_requests_total', { route: 'token', outcome: 'provider' });
    if (process.env.DEDICATED_PATHS === 'false') expect([answered, left]).toEqual([undefined, undefined]);
    else {
      expect(answered).toBeGreaterThanOrEqual(2);
      expect(left).toBeGreaterThanOrEqual(1);
    }
  });

  it('count revocations, key changes and store calls', () => {
    expect(sample('login_revocations_total', { kind: 'opaque' })).toBeGreaterThanOrEqual(1);
    expect(sample('login_revocations_total', { kind: 'jwt' })).toBeGreaterThanOrEqual(1);
    expect(metrics).toContain('# TYPE login_key_changes_total counter');
    expect(metrics).toContain('# TYPE login_store_errors_total counter');
    expect(sample('login_store_duration_seconds_count', { store: 'redis', operation: 'find' })).toBeGreaterThanOrEqual(1);
  });

  it('count each request once, one a dedicated path leaves to the provider (the JWT revocation) included', () => {
    // Two revocations: the opaque token's (answered by the dedicated path, or the provider) and the
    // JWT's (always the provider's, after the early dispatch looked at it when the paths are on).
    expect(sample('login_http_requests_total', { route: 'revocation', method: 'POST', status: '200' })).toBe(2);
    // Counted twice, the second count would have no route name: every POST here has one.
    expect(sample('login_http_requests_total', { route: 'other', method: 'POST' })).toBeUndefined();
  });

  it('count HTTP requests by route name and status, never by raw path', () => {
    expect(sample('login_http_requests_total', { route: 'token', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(3);
    expect(sample('login_http_requests_total', { route: 'introspection', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(sample('login_http_requests_total', { route: 'admin GET /clients', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(metrics).not.toMatch(/route="\/admin\/clients\/[^"]+"/);
  });

  it('report whether each store answered the last readiness check', () => {
    expect(sample('login_store_up', { store: 'postgres' })).toBe(1);
    expect(sample('login_store_up', { store: 'redis' })).toBe(1);
  });

  it("report each enabled algorithm's current and next signing keys, and when the current one is due to rotate", () => {
    // SIGNING_ALGS is unset: RS256, PS256 and ES256 are enabled, EdDSA is not (and has no series).
    expect(sample('login_signing_keys', { alg: 'EdDSA' })).toBeUndefined();
    for (const alg of ['RS256', 'PS256', 'ES256']) {
      expect(sample('login_signing_keys', { alg, state: 'current' })).toBe(1);
      expect(sample('login_signing_keys', { alg, state: 'next' })).toBe(1);
      // Keys rotate every 30 days by default: due within them, and not in the past.
      const due = sample('login_signing_key_rotation_due_timestamp_seconds', { alg })!;
      expect(due * 1000).toBeGreaterThan(Date.now());
      expect(due * 1000).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000);
    }
  });

  it('are not served on the public port', async () => {
    expect((await fetch(`${server.issuer}/metrics`)).status).toBe(404);
  });
});

/**
 * 127.0.0.2 is a loopback address too (all of 127/8 is), but a socket bound to 127.0.0.1 does not
 * answer it, while one bound to every address does: the check that tells the two bindings apart.
 */
const OTHER_ADDRESS = '127.0.0.2';

describe('METRICS_HOST', () => {
  it('unset, metrics answer on 127.0.0.1 only', async () => {
    await expect(fetch(`http://${OTHER_ADDRESS}:${metricsPort}/metrics`)).rejects.toThrow();
  });

  it('set to 0.0.0.0, metrics answer on the other addresses of the host', async () => {
    const open = await startServer({ env: { METRICS_HOST: '0.0.0.0' } });
    try {
      const port = /Metrics on http:\/\/0\.0\.0\.0:(\d+)\/metrics/.exec(open.output())?.[1];
      expect(port).toBeDefined();
      const response = await fetch(`http://${OTHER_ADDRESS}:${port}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('# TYPE login_http_requests_total counter');
    } finally {
      await open.stop();
    }
  });
});
