/**
 * The early dispatch: the node:http request listener of the server. The hottest routes (the JWKS and
 * the dedicated paths of docs/dedicated-paths.md) are answered here, before the Koa application is
 * entered; every other request, and every request a dedicated path leaves to the provider, goes to the
 * Koa application as it came (but for a body read ahead, which the provider reads again).
 *
 * A route answered here gets what every request gets in the Koa application (src/app.ts), from the
 * same functions: its request id and common headers, the request context, the server span when tracing
 * is on, one log line and the HTTP metrics (src/shared/request-tagging.ts). What it skips is the rest
 * of the stack: the middleware chain and its dispatch, `on-finished`'s listeners, the routing checks of
 * every step in front of the provider. A route works on a Koa context made by the application itself
 * (`createContext`: Koa's own request and response objects, so headers and bodies come out as Koa
 * makes them), answered below as Koa's `respond` would.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type Koa from 'koa';
import { traceServerRequest } from '../observability/tracing.js';
import { requestContext } from '../shared/request-context.js';
import { pathOf, tagRequest, type RequestTaggingOptions } from '../shared/request-tagging.js';

/** A route answered before the Koa application. */
export interface EarlyRoute {
  readonly path: string;
  /** The methods it takes; other methods of the path go to the Koa application. */
  readonly methods: readonly string[];
  /**
   * Answers the request (status, headers and body on `ctx`) and resolves `true`; or leaves it
   * untouched (but for a body read ahead) and resolves `false`: the Koa application then serves it.
   */
  serve(ctx: Koa.Context): Promise<boolean> | boolean;
}

/** Statuses without a body (Koa's `statuses.empty`). */
const EMPTY_STATUSES = new Set([204, 205, 304]);

/**
 * The request listener: `routes` before `app`, every other request to `app`. The routes' paths must
 * differ.
 */
export function earlyDispatch(app: Koa, routes: readonly EarlyRoute[], options: RequestTaggingOptions): RequestListener {
  const byPath = new Map(routes.map((route) => [route.path, route]));
  const koa = app.callback();
  return function dispatch(req, res) {
    const route = byPath.get(pathOf(req));
    if (route === undefined || !route.methods.includes(req.method ?? '')) {
      void koa(req, res);
      return;
    }
    const context = tagRequest(req, res, options);
    void requestContext.run(context, () => traceServerRequest(req, res, () => serveEarly(app, route, req, res, koa)));
  };
}

async function serveEarly(app: Koa, route: EarlyRoute, req: IncomingMessage, res: ServerResponse, koa: ReturnType<Koa['callback']>): Promise<void> {
  // Where Koa starts too: a route that sets no status answers 404.
  res.statusCode = 404;
  const ctx = app.createContext(req, res);
  try {
    if (!(await route.serve(ctx))) {
      await koa(req, res);
      return;
    }
  } catch (error) {
    // Koa's own answer to an error a middleware threw (a 500, the error logged through the app's listener).
    ctx.onerror(error as Error);
    return;
  }
  respond(ctx);
}

/** Sends the answer set on `ctx`, as Koa's `respond` sends a buffer, string or JSON body. */
function respond(ctx: Koa.Context): void {
  const { res } = ctx;
  if (!ctx.writable) {
    res.end();
    return;
  }
  if (EMPTY_STATUSES.has(ctx.status)) {
    // Strips the body's headers, as Koa does.
    ctx.body = null;
    res.end();
    return;
  }
  const body: unknown = ctx.body;
  if (ctx.method === 'HEAD') {
    if (!res.headersSent && !res.hasHeader('Content-Length')) {
      const { length } = ctx.response;
      if (Number.isInteger(length)) ctx.length = length;
    }
    res.end();
    return;
  }
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    res.end(body);
    return;
  }
  if (body === undefined || body === null) {
    // No body set: Koa answers the status's message as text.
    const text = ctx.message || String(ctx.status);
    ctx.type = 'text';
    ctx.length = Buffer.byteLength(text);
    res.end(text);
    return;
  }
  const json = JSON.stringify(body);
  if (!res.headersSent) ctx.length = Buffer.byteLength(json);
  res.end(json);
}
