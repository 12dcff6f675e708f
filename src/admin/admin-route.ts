/**
 * One declaration per admin route: the handler and its documentation together. The router and the
 * OpenAPI document (src/admin/openapi.ts) are both built from these, so they cannot drift apart.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';
import { setRoute } from '../observability/logger.js';

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
