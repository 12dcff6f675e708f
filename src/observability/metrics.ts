/**
 * Prometheus metrics (prom-client), served on METRICS_HOST:METRICS_PORT (loopback unless configured),
 * never on the public port.
 * With several workers the primary serves the sum of every worker's metrics.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The registry every metric of this process is in. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'login_' });
// Workers answer the primary's aggregation requests from this registry, not prom-client's global one.
// prom-client installs a worker's answering listener only when an AggregatorRegistry is constructed.
if (cluster.isWorker) {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Access tokens issued, by grant type, format (jwt or opaque) and client trust. */
export const tokensIssued = new Counter({
  name: 'login_tokens_issued_total',
  help: 'Access tokens issued',
  labelNames: ['grant', 'format', 'trust'] as const,
  registers: [registry],
});

/**
 * Requests a dedicated path (docs/dedicated-paths.md) took up, by route and outcome: `answered` there,
 * or `provider` when it left them to oidc-provider. The share left to the provider is the first thing
 * to look at when a dedicated path seems not to pay.
 */
export const dedicatedPathRequests = new Counter({
  name: 'login_dedicated_path_requests_total',
  help: 'Requests a dedicated path took up: answered there, or left to oidc-provider',
  labelNames: ['route', 'outcome'] as const,
  registers: [registry],
});

/** Introspection answers, by outcome. */
export const introspections = new Counter({
  name: 'login_introspections_total',
  help: 'Introspection answers',
  labelNames: ['active'] as const,
  registers: [registry],
});

/** Introspection latency. */
export const introspectionDuration = new Histogram({
  name: 'login_introspection_duration_seconds',
  help: 'Introspection latency',
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

/** Revocation requests answered, by token kind (opaque, jwt, or unknown). */
export const revocations = new Counter({
  name: 'login_revocations_total',
  help: 'Revocation requests answered',
  labelNames: ['kind'] as const,
  registers: [registry],
});

/** Security events (revocation SETs), by step: queued (per audience), delivered by poll or push, acknowledged, refused by the receiver (setErrs, push 400), push failures. */
export const securityEvents = new Counter({
  name: 'login_security_events_total',
  help: 'Security event tokens queued, delivered and acknowledged',
  labelNames: ['step'] as const,
  registers: [registry],
});

/** Signing key changes, by kind (rotate, forced_rotate, revoke, remove), one per key. */
export const keyRotations = new Counter({
  name: 'login_key_changes_total',
  help: 'Signing key rotations, revocations and removals',
  labelNames: ['kind'] as const,
  registers: [registry],
});

/** Failed store calls, by store (redis, postgres). */
export const storeErrors = new Counter({
  name: 'login_store_errors_total',
  help: 'Failed calls to a backing store',
  labelNames: ['store'] as const,
  registers: [registry],
});

/** Store call latency, by store and operation. */
export const storeDuration = new Histogram({
  name: 'login_store_duration_seconds',
  help: 'Latency of calls to a backing store',
  labelNames: ['store', 'operation'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

/** HTTP requests, by route (a route name, never a raw path), method and status. */
export const httpRequests = new Counter({
  name: 'login_http_requests_total',
  help: 'HTTP requests answered',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [registry],
});

/** HTTP latency, by route. */
export const httpDuration = new Histogram({
  name: 'login_http_request_duration_seconds',
  help: 'HTTP request latency',
  labelNames: ['route'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

/** Label sets remembered per metric at most; beyond, children are looked up each time (still counted). */
const MAX_CACHED_CHILDREN = 1000;

/**
 * `metric.labels(...values)`, remembered per set of values: prom-client would otherwise sort, join and
 * hash the labels on every call of a hot path. The values come from short lists (routes, methods,
 * statuses, outcomes), and the cache is bounded all the same.
 */
export function labelledChildren<V extends string[], C>(labels: (...values: V) => C): (...values: V) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (child === undefined) {
      child = labels(...values);
      if (children.size < MAX_CACHED_CHILDREN) children.set(key, child);
    }
    return child;
  };
}

/**
 * Whether each store answered the last readiness check (1) or not (0). With several workers the
 * primary reports the lowest: one worker cut off from a store is enough to say so.
 */
export const storeUp = new Gauge({
  name: 'login_store_up',
  help: 'Whether the store answered the last readiness check',
  labelNames: ['store'] as const,
  aggregator: 'min',
  registers: [registry],
});

/** Published signing keys by algorithm and state (current, next): without a next key no rotation can happen. */
export const signingKeys = new Gauge({
  name: 'login_signing_keys',
  help: 'Signing keys by algorithm and state',
  labelNames: ['alg', 'state'] as const,
  aggregator: 'max',
  registers: [registry],
});

/** When each algorithm's current signing key is due to be replaced by its next one (Unix time). */
export const signingKeyRotationDue = new Gauge({
  name: 'login_signing_key_rotation_due_timestamp_seconds',
  help: 'When the current signing key of an algorithm is due to be rotated out',
  labelNames: ['alg'] as const,
  aggregator: 'max',
  registers: [registry],
});

/**
 * Serves `GET /metrics` on `host`:`port` (0: any free port). In a cluster primary the answer
 * aggregates every worker (prom-client asks them over the cluster channel).
 */
export async function serveMetrics(port: number, host = '127.0.0.1'): Promise<Server> {
  const aggregator = cluster.isPrimary ? new AggregatorRegistry() : undefined;
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    // Decided per request: the primary may serve before its workers are forked.
    const hasWorkers = Object.keys(cluster.workers ?? {}).length > 0;
    const body = aggregator && hasWorkers ? aggregator.clusterMetrics() : registry.metrics();
    body.then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(503).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** The port a metrics server listens on. */
export const metricsPortOf = (server: Server): number => (server.address() as AddressInfo).port;
