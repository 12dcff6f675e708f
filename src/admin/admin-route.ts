/**
 * One declaration per admin route: the handler and its documentation together. The router and the
 * OpenAPI document (src/admin/openapi.ts) are both built from these, so they cannot drift apart; and
 * the router parses what a route declares (params, query, body) before its handler runs, so a handler
 * only ever sees values its schemas accepted.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { setRoute } from '../shared/request-context.js';
import { DEFAULT_PAGE_SIZE, toPage, type PageCursor } from '../shared/pagination.js';
import { readJsonBody } from './json-body.js';
import { fieldErrorsFrom, Problem } from './problem.js';
import { listQuery, pageOf, parseOrProblem, unstorableErrors } from './schemas.js';

/** A declared schema's parsed value, or `undefined` for a part the route does not declare. */
export type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What the router hands a handler: the parsed path parameters, query and body. */
export interface RouteInput<P, Q, B> {
  readonly params: Parsed<P>;
  readonly query: Parsed<Q>;
  readonly body: Parsed<B>;
}

type Schema = z.ZodType | undefined;

/** An admin API route. `path` is relative to /admin, with `:name` parameters (Koa style). */
export interface AdminRoute<P extends Schema = Schema, Q extends Schema = Schema, B extends Schema = Schema> {
  readonly method: 'get' | 'post' | 'patch' | 'delete';
  readonly path: string;
  readonly summary: string;
  /**
   * The path parameters, required when `path` has any. A value it refuses names nothing that can
   * exist, so the answer is a 404 without a lookup.
   */
  readonly params?: P;
  /** The query parameters it reads, if any (a refused value is a 422 naming `query.<name>`). */
  readonly query?: Q;
  /** The JSON body it reads, if any (a refused value is a 422 naming each field). */
  readonly body?: B;
  /** Whether a request without a body reads as `{}` (for bodies whose fields all have defaults). */
  readonly bodyOptional?: boolean;
  /** The status and JSON shape of a successful answer (`undefined` for an empty 204). */
  readonly success: { readonly status: number; readonly schema?: z.ZodType };
  /** Error statuses it may answer beyond 401/403 (which every route may). */
  readonly problems: readonly number[];
  // A method, not a property, so a route with precise schemas is still an AdminRoute.
  handler(ctx: Context, input: RouteInput<P, Q, B>): Promise<void>;
}

/** Declares a route, typing its handler's input from its schemas. */
export const adminRoute = <P extends Schema = undefined, Q extends Schema = undefined, B extends Schema = undefined>(
  route: AdminRoute<P, Q, B>,
): AdminRoute<P, Q, B> => route;

/** The `:name` parameters of a Koa-style path. */
export const pathParameters = (path: string): string[] => [...path.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]);

/**
 * Parses the path parameters. A refused one names nothing that can exist, so the answer is a 404
 * without a lookup, whatever the schema (text PostgreSQL cannot hold is refused here too).
 */
function parseParams(schema: z.ZodType, params: Record<string, string>): unknown {
  const [unstorable] = unstorableErrors(params);
  const result = schema.safeParse(params);
  const reason = unstorable ?? (result.success ? undefined : fieldErrorsFrom(result.error)[0]);
  if (reason) throw new Problem(404, `no such ${reason.path}: ${reason.message}`);
  return result.data;
}

/** A router serving `routes`; throws at once for a route whose path parameters are not all in its `params`. */
export function routerFor(routes: readonly AdminRoute[]): Router {
  const router = new Router();
  for (const route of routes) {
    const name = `admin ${route.method.toUpperCase()} ${route.path}`;
    const declared = route.params instanceof z.ZodObject ? Object.keys(route.params.shape) : [];
    const undeclared = pathParameters(route.path).filter((param) => !declared.includes(param));
    if (undeclared.length > 0) throw new Error(`${name} declares no schema for ${undeclared.join(', ')} in params`);
    router[route.method](route.path, async (ctx) => {
      setRoute(name);
      const params = route.params ? parseParams(route.params, ctx.params) : undefined;
      const query = route.query ? parseOrProblem(route.query, ctx.query, ['query']) : undefined;
      const body = route.body ? parseOrProblem(route.body, await readJsonBody(ctx, { optional: route.bodyOptional })) : undefined;
      await route.handler(ctx, { params, query, body });
    });
  }
  return router;
}

/** What a list route needs: how to read a page of rows, where each row sits, how to present it. */
export interface ListRouteOptions<Row, Filters extends z.ZodRawShape = Record<never, never>> {
  readonly path: string;
  readonly summary: string;
  /** The JSON shape of one item. */
  readonly item: z.ZodType;
  /** The ids a row can have: a cursor with another id is a 422 rather than a database error. */
  readonly cursorId: z.ZodType<string>;
  /**
   * Query parameters that narrow the list, each optional, beside `limit` and `cursor` (a cursor
   * stands for a position in the whole list, so it serves under any filters).
   */
  readonly filters?: Filters;
  /** Reads `limit + 1` rows after the cursor, in the order the cursor follows, matching `filters`. */
  readonly selectPage: (limit: number, after: PageCursor | undefined, filters: Partial<z.output<z.ZodObject<Filters>>>) => Promise<Row[]>;
  readonly cursorOf: (row: Row) => PageCursor;
  readonly present: (row: Row) => unknown;
}

/** A `GET` route listing items with the admin API's cursor pagination (`?limit=&cursor=`, and its filters). */
export function listRoute<Row, Filters extends z.ZodRawShape = Record<never, never>>(options: ListRouteOptions<Row, Filters>): AdminRoute {
  return adminRoute({
    method: 'get',
    path: options.path,
    summary: options.summary,
    query: listQuery(options.cursorId).extend(options.filters ?? {}),
    success: { status: 200, schema: pageOf(options.item) },
    problems: [422],
    handler: async (ctx, { query }) => {
      const { limit = DEFAULT_PAGE_SIZE, cursor, ...filters } = query as { limit?: number; cursor?: PageCursor } & Record<string, unknown>;
      const rows = await options.selectPage(limit, cursor, filters as Partial<z.output<z.ZodObject<Filters>>>);
      ctx.body = toPage(rows, limit, options.cursorOf, options.present);
    },
  });
}
