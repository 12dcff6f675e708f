/**
 * One declaration per admin route: the handler and its documentation together. The router and the
 * OpenAPI document (src/admin/openapi.ts) are both built from these, so they cannot drift apart.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';
import { setRoute } from '../shared/request-context.js';
import { toPage, type PageCursor } from '../shared/pagination.js';
import { Problem } from './problem.js';
import { listQuerySchema, pageOf, parseListQuery } from './schemas.js';

/** An admin API route. `path` is relative to /admin, with `:name` parameters (Koa style). */
export interface AdminRoute {
  readonly method: 'get' | 'post' | 'patch' | 'delete';
  readonly path: string;
  readonly summary: string;
  /** The JSON body it reads, if any (validated by the handler through `parseOrProblem`). */
  readonly body?: z.ZodType;
  /** The query parameters it reads, if any. */
  readonly query?: z.ZodType;
  /** The status and JSON shape of a successful answer (`undefined` for an empty 204). */
  readonly success: { readonly status: number; readonly schema?: z.ZodType };
  /** Error statuses it may answer beyond 401/403 (which every route may). */
  readonly problems: readonly number[];
  readonly handler: (ctx: Context) => Promise<void>;
}

/** A router serving `routes`. */
export function routerFor(routes: readonly AdminRoute[]): Router {
  const router = new Router();
  for (const route of routes) {
    const name = `admin ${route.method.toUpperCase()} ${route.path}`;
    router[route.method](route.path, async (ctx) => {
      setRoute(name);
      await route.handler(ctx);
    });
  }
  return router;
}

/** What a list route needs: how to read a page of rows, where each row sits, how to present it. */
export interface ListRouteOptions<Row> {
  readonly path: string;
  readonly summary: string;
  /** The JSON shape of one item. */
  readonly item: z.ZodType;
  /** Reads `limit + 1` rows after the cursor, in the order the cursor follows. */
  readonly selectPage: (limit: number, after: PageCursor | undefined) => Promise<Row[]>;
  readonly cursorOf: (row: Row) => PageCursor;
  readonly present: (row: Row) => unknown;
  /** Refuses cursors whose id cannot be compared (a 422 rather than a database error). */
  readonly acceptsCursor?: (cursor: PageCursor) => boolean;
}

/** A `GET` route listing items with the admin API's cursor pagination (`?limit=&cursor=`). */
export function listRoute<Row>(options: ListRouteOptions<Row>): AdminRoute {
  return {
    method: 'get',
    path: options.path,
    summary: options.summary,
    query: listQuerySchema,
    success: { status: 200, schema: pageOf(options.item) },
    problems: [422],
    handler: async (ctx) => {
      const { limit, after } = parseListQuery(ctx.query);
      if (after && options.acceptsCursor && !options.acceptsCursor(after)) {
        throw new Problem(422, 'invalid fields', [{ path: 'query.cursor', message: 'is not a cursor from a previous page' }]);
      }
      const rows = await options.selectPage(limit, after);
      ctx.body = toPage(rows, limit, options.cursorOf, options.present);
    },
  };
}
