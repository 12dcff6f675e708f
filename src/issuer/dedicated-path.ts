/**
 * The frame every dedicated path shares (docs/dedicated-paths.md): it takes the POSTs to its route,
 * answers what it fully handles, and leaves everything else to oidc-provider, counting both outcomes.
 */
import type Koa from 'koa';
import { dedicatedPathRequests } from '../observability/metrics.js';

/**
 * The koa middleware of a dedicated path, in front of the provider. `answer` answers the request and
 * resolves `true`, or leaves it untouched (but for a body read ahead, which the provider reads again)
 * and resolves `false`, and the request goes on to the provider.
 * @param route the route's name in metrics (`introspection`, `token`, `revocation`).
 */
export function dedicatedPath(route: string, path: string, answer: (ctx: Koa.Context) => Promise<boolean>): Koa.Middleware {
  const answered = dedicatedPathRequests.labels({ route, outcome: 'answered' });
  const leftToProvider = dedicatedPathRequests.labels({ route, outcome: 'provider' });
  return async function dedicatedPathStep(ctx, next) {
    if (ctx.path !== path || ctx.method !== 'POST') {
      await next();
      return;
    }
    if (await answer(ctx)) answered.inc();
    else {
      leftToProvider.inc();
      await next();
    }
  };
}
