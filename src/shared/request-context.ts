/**
 * What is known about the request being served, wherever in the code it is needed: its id (every log
 * line carries it), the caller's address (limits), the route name (metrics), and what the answer must
 * become when a store failed or a limit was hit.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The facts about one request, set by the app's first middleware. */
export interface RequestContext {
  readonly requestId: string;
  /** The client's address: the socket's, or our own proxy's X-Forwarded-For entry (TRUST_PROXY). */
  readonly ip: string;
  /** A route name for metrics (never a raw path, which would explode label cardinality). */
  route?: string;
  /** Set when a backing store failed while serving: the answer becomes a 503, not a 500. */
  storeUnavailable?: boolean;
  /** Set with a 429: how long the caller should wait. */
  retryAfterSeconds?: number;
  /** The OpenTelemetry trace of the request, when tracing is on: every log line carries it. */
  traceId?: string;
  /** The OAuth client the request authenticated as, once known (a trace attribute). */
  clientId?: string;
}

/** The request being served, if any. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** Names the route of the request being served, for metrics. */
export function setRoute(route: string): void {
  const context = requestContext.getStore();
  if (context) context.route = route;
}
