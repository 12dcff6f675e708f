/**
 * The frame every dedicated path shares (docs/dedicated-paths.md): it takes the POSTs to its route,
 * answers what it fully handles, and leaves everything else to oidc-provider, counting both outcomes.
 */
import type Koa from 'koa';
import type { EarlyRoute } from './early-dispatch.js';
import { dedicatedPathRequests } from '../observability/metrics.js';
import { readBodyWithin, type RequestWithBody } from '../shared/request-body.js';

/** The provider's form body limit (lib/shared/selective_body.js); longer bodies are left to it. */
const PROVIDER_BODY_LIMIT = 56 * 1024;

/** Headers that change how the provider answers (DPoP, client attestation, CORS): left to it. */
const PROVIDER_ONLY_HEADERS = ['dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop', 'origin', 'transfer-encoding'];

/**
 * The form body of a request a dedicated path may handle, read ahead and kept on the request
 * (oidc-provider's documented `req.body`), so the provider reads the same bytes if the request is left
 * to it; `undefined` for a request left to the provider as it came (no or too long a declared length,
 * not a form, a client preferring HTML, a header that changes the provider's answer), or one that broke
 * off (the provider's to fail).
 */
export async function readFormAhead(ctx: Koa.Context): Promise<Buffer | undefined> {
  const length = ctx.request.length;
  if (
    length === undefined ||
    length > PROVIDER_BODY_LIMIT ||
    !ctx.is('application/x-www-form-urlencoded') ||
    // The provider renders its errors as HTML to a client that prefers it.
    ctx.accepts('json', 'html') === 'html' ||
    PROVIDER_ONLY_HEADERS.some((name) => ctx.req.headers[name] !== undefined)
  ) {
    return undefined;
  }
  const body = await readBodyWithin(ctx.req, PROVIDER_BODY_LIMIT).catch(() => undefined);
  if (body) (ctx.req as RequestWithBody).body = body;
  return body;
}

/**
 * The route of a dedicated path, answered by the early dispatch (early-dispatch.ts) in front of the
 * Koa application and the provider. `answer` answers the request and resolves `true`, or leaves it
 * untouched (but for a body read ahead, which the provider reads again) and resolves `false`, and the
 * request goes on to the provider.
 * @param route the route's name in metrics (`introspection`, `token`, `revocation`).
 */
export function dedicatedPath(route: string, path: string, answer: (ctx: Koa.Context) => Promise<boolean>): EarlyRoute {
  const answered = dedicatedPathRequests.labels({ route, outcome: 'answered' });
  const leftToProvider = dedicatedPathRequests.labels({ route, outcome: 'provider' });
  return {
    path,
    methods: ['POST'],
    async serve(ctx) {
      if (await answer(ctx)) {
        answered.inc();
        return true;
      }
      leftToProvider.inc();
      return false;
    },
  };
}
