/**
 * JSON logs (pino). Anything that could hold a credential is redacted by path, and request logs
 * carry the path only (never the query string, which can hold codes or tokens).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.client_secret',
  '*.password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.private_jwk',
];

/** What is known about the request being served, wherever in the code it is needed. */
export interface RequestContext {
  readonly requestId: string;
  /** The client's address (the socket's: the server trusts no forwarding header). */
  readonly ip: string;
  /** A route name for metrics (never a raw path, which would explode label cardinality). */
  route?: string;
  /** Set when a backing store failed while serving: the answer becomes a 503, not a 500. */
  storeUnavailable?: boolean;
  /** Set with a 429: how long the caller should wait. */
  retryAfterSeconds?: number;
}

/**
 * The request being served, if any. Every log line written while serving it carries its id, wherever
 * in the code the line comes from.
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** Names the route of the request being served, for metrics. */
export function setRoute(route: string): void {
  const context = requestContext.getStore();
  if (context) context.route = route;
}

/** Creates the process logger at `level`, writing to file descriptor `fd` (stdout by default). */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  return pino(
    {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
      mixin: () => {
        const current = requestContext.getStore();
        return current ? { requestId: current.requestId } : {};
      },
    },
    pino.destination(fd),
  );
}
