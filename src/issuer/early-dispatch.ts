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
 * every step in front of the provider, and Koa's own request and response objects: a route answers
 * on node's response, with the headers Koa would give its body (`sendJson`, `sendEmptyText`), all of
 * them (the request's id and common headers included) in one `writeHead`, and asks for a Koa context (made by the application itself, `createContext`) only for what Koa settles
 * best: negotiation the common headers do not settle, an error's answer.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type Koa from 'koa';
import { traceServerRequest } from '../observability/tracing.js';
import { requestContext, type RequestContext } from '../shared/request-context.js';
import { pathOf, requestHeaderList, setRequestHeaders, tagRequest, type RequestTaggingOptions } from '../shared/request-tagging.js';

/**
 * A request to a route answered before the Koa application: node's request and response, and the
 * one way a route sends its answer (`send`, or `sendJson` and `sendEmptyText` on top of it); Koa's
 * context for what Koa settles best (content negotiation the common headers do not settle, an
 * error's answer), made only when asked for.
 */
export interface EarlyExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /**
   * Sends the answer: its status, its own headers (names and values in turn) after the request's id
   * and the common headers, and its body (none for a HEAD request: node drops it), all headers in
   * one step.
   */
  send(status: number, headers: readonly (string | number)[], body?: string | Buffer): void;
  /** Koa's context of the request (its own request and response objects), made on first use. */
  koa(): Koa.Context;
}

/** A route answered before the Koa application. */
export interface EarlyRoute {
  readonly path: string;
  /** The methods it takes; other methods of the path go to the Koa application. */
  readonly methods: readonly string[];
  /**
   * Sends the answer and resolves `true`; or leaves the request untouched (but for a body read ahead)
   * and resolves `false`: the Koa application then serves it.
   */
  serve(exchange: EarlyExchange): Promise<boolean> | boolean;
}

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
    // The request's own headers go with the answer (EarlyExchange.send), or are set before Koa answers.
    const context = tagRequest(req, res, options, 'with-answer');
    void requestContext.run(context, () => traceServerRequest(req, res, () => serveEarly(app, route, context, req, res, koa)));
  };
}

async function serveEarly(
  app: Koa,
  route: EarlyRoute,
  context: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  koa: ReturnType<Koa['callback']>,
): Promise<void> {
  let ctx: Koa.Context | undefined;
  const exchange: EarlyExchange = {
    req,
    res,
    send(status, headers, body) {
      res.writeHead(status, requestHeaderList(context, headers));
      res.end(body);
    },
    koa: () => (ctx ??= app.createContext(req, res)),
  };
  try {
    if (await route.serve(exchange)) return;
    setRequestHeaders(res, context);
    await koa(req, res);
  } catch (error) {
    // Koa's own answer to an error a middleware threw (a 500, the error logged through the app's listener).
    if (!res.headersSent) setRequestHeaders(res, context);
    exchange.koa().onerror(error as Error);
  }
}

/** Sends `body` as Koa sends an object body: JSON, `application/json; charset=utf-8`, with its length. */
export function sendJson(exchange: EarlyExchange, status: number, body: object, headers: readonly (string | number)[] = []): void {
  const json = JSON.stringify(body);
  exchange.send(status, [...headers, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', Buffer.byteLength(json)], json);
}

/** Sends an empty body as Koa sends an empty string: `text/plain; charset=utf-8`, length 0. */
export function sendEmptyText(exchange: EarlyExchange, status: number, headers: readonly (string | number)[] = []): void {
  exchange.send(status, [...headers, 'Content-Type', 'text/plain; charset=utf-8', 'Content-Length', 0]);
}
