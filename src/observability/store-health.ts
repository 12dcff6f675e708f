/** What happens when a backing store fails: it is counted, and the request answers 503, not 500. */
import { requestContext } from '../shared/request-context.js';
import type { Logger } from './logger.js';
import { labelledChildren, storeDuration, storeErrors } from './metrics.js';
import { traceStoreCall } from './tracing.js';

/** The backing stores. */
export type StoreName = 'redis' | 'postgres';

const storeTimer = labelledChildren((store: StoreName, operation: string) => storeDuration.labels(store, operation));

/** Counts a failure of `store` and marks the request being served as hit by it. */
export function recordStoreFailure(store: StoreName): void {
  storeErrors.inc({ store });
  const context = requestContext.getStore();
  if (context) context.storeUnavailable = true;
}

/** Runs `call` against `store`, timing it and recording a failure before rethrowing it. */
export function measureStoreCall<T>(store: StoreName, operation: string, call: () => Promise<T>): Promise<T> {
  // Timed by hand: prom-client's startTimer makes two closures, two hrtime arrays and a label object per call.
  const timer = storeTimer(store, operation);
  const started = performance.now();
  const stop = () => timer.observe((performance.now() - started) / 1000);
  const failed = (error: unknown): never => {
    recordStoreFailure(store);
    stop();
    throw error;
  };
  // A plain promise chain rather than an async function: every token and introspection request makes
  // a few of these calls, and each await would be one more promise.
  let pending: Promise<T>;
  try {
    pending = traceStoreCall(store, operation, call);
  } catch (error) {
    return Promise.reject(error as Error).catch(failed);
  }
  return pending.then((value) => {
    stop();
    return value;
  }, failed);
}

// Connection-level failures (Node socket errors, and PostgreSQL's admin shutdown / connection classes).
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Connection is closed|Stream isn't writeable|Command timed out|ECONNREFUSED|Reached the max retries per request limit/i;
/**
 * What Redis answers while unable to serve (a Cluster shard failing over or lost, a server loading
 * its data, or full: at its maxmemory with noeviction, see docs/recovery.md), and what ioredis's
 * cluster client says while it cannot map slots to reachable masters. A MOVED or ASK that reaches us
 * means ioredis ran out of redirections during a failover.
 */
const REDIS_UNAVAILABLE =
  /^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|MASTERDOWN|LOADING|READONLY|OOM)\b|Failed to refresh slots cache|None of startup nodes is available|Too many Cluster redirections|Cluster isn't ready/;

/** Whether `error` says a store could not be reached (as opposed to a bug or bad input). */
export function isStoreUnavailableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (
    (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) ||
    (typeof message === 'string' && (UNAVAILABLE_MESSAGES.test(message) || REDIS_UNAVAILABLE.test(message)))
  );
}

/** An outage fails every request alike: its log is one short line, repeated at most this often. */
const OUTAGE_LOG_INTERVAL_MS = 10_000;
let lastOutageLine = -Infinity;
let unloggedFailures = 0;

/**
 * Logs a store failure as one short warning (the reason, never a stack), at most once every 10 s in
 * this process; the next line says how many failures went unlogged in between.
 */
export function logStoreUnavailable(logger: Logger, error: unknown): void {
  const now = performance.now();
  if (now - lastOutageLine < OUTAGE_LOG_INTERVAL_MS) {
    unloggedFailures++;
    return;
  }
  const reason = error instanceof Error ? error.message : String(error);
  logger.warn({ reason, ...(unloggedFailures > 0 ? { unlogged: unloggedFailures } : {}) }, 'store unavailable');
  lastOutageLine = now;
  unloggedFailures = 0;
}
