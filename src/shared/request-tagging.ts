/**
 * What every request gets before anything answers it: its id (`X-Request-Id`, echoed when the caller
 * sent a well-formed one), the caller's address, the headers safe on every answer, and, once the answer
 * is sent, one log line and the HTTP metrics. One function for both ways in: the early dispatch of the
 * hottest routes (src/issuer/early-dispatch.ts) and the Koa application (src/app.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { httpDuration, httpRequests, labelledChildren } from '../observability/metrics.js';
import type { RequestContext } from './request-context.js';

/** What tagging a request needs to know. */
export interface RequestTaggingOptions {
  readonly logger: Logger;
  /** Client addresses come from our proxy's X-Forwarded-For entry. */
  readonly trustProxy: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Safe on every answer; HTML pages add their own Content-Security-Policy on top. */
const COMMON_HEADERS = [
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'DENY'],
] as const;

const requestCount = labelledChildren((route: string, method: string, status: string) => httpRequests.labels(route, method, status));
const requestTimer = labelledChildren((route: string) => httpDuration.labels(route));

/** The requests tagged already: a request the early dispatch leaves to Koa is tagged once. */
const tagged = new WeakMap<IncomingMessage, RequestContext>();

/** The address a request comes from: the socket's, or the one our own proxy appended to X-Forwarded-For. */
function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').at(-1)?.trim();
    if (forwarded) return forwarded;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/** The path of a request target, without its query (what Koa's `ctx.path` is for an origin-form target). */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** COMMON_HEADERS as `res.writeHead` takes them: names and values in turn. */
const COMMON_HEADER_LIST: readonly string[] = COMMON_HEADERS.flat();

/** Sets the request's id and the common headers on `res`, one by one (for an answer made by others: Koa, the provider). */
export function setRequestHeaders(res: ServerResponse, context: RequestContext): void {
  res.setHeader('X-Request-Id', context.requestId);
  for (const [name, value] of COMMON_HEADERS) res.setHeader(name, value);
}

/**
 * The request's id and the common headers, then the answer's own `headers`, as `res.writeHead` takes
 * them (names and values in turn), for an answer that sends every header in one step: the cheap way
 * (no header set one by one).
 */
export function requestHeaderList(context: RequestContext, headers: readonly (string | number)[]): (string | number)[] {
  return ['X-Request-Id', context.requestId, ...COMMON_HEADER_LIST, ...headers];
}

/**
 * Tags the request (see the file comment) and answers its context; a request tagged before gets the
 * same context back, and no second log line or count. `headers: 'with-answer'` leaves the request's
 * headers to the answer (`requestHeaderList`), or to `setRequestHeaders` before anything else answers.
 */
export function tagRequest(req: IncomingMessage, res: ServerResponse, options: RequestTaggingOptions, headers: 'now' | 'with-answer' = 'now'): RequestContext {
  const known = tagged.get(req);
  if (known) return known;
  const incoming = req.headers['x-request-id'];
  const context: RequestContext = {
    requestId: typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID(),
    ip: clientAddress(req, options.trustProxy),
  };
  tagged.set(req, context);
  if (headers === 'now') setRequestHeaders(res, context);
  const started = performance.now();
  const { logger } = options;
  // Recorded when the response is sent, which also covers the provider's routes (it writes to res itself).
  res.once('finish', () => {
    const seconds = (performance.now() - started) / 1000;
    const route = context.route ?? 'other';
    const status = res.statusCode;
    const method = req.method ?? 'GET';
    // One line per request; not even its fields are gathered when info is off. 'finish' fires
    // outside the request's async context: its ids are given here.
    if (logger.isLevelEnabled('info')) {
      logger.info(
        { requestId: context.requestId, traceId: context.traceId, method, path: pathOf(req), route, status, ms: Math.round(seconds * 1000) },
        'request',
      );
    }
    requestCount(route, method, String(status)).inc();
    requestTimer(route).observe(seconds);
  });
  return context;
}
