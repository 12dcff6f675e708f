/**
 * Instrumentation of every oidc-provider route: route names and issuance metrics, a 503 (not a 500)
 * when a backing store failed, and `Retry-After` on 429s. Installed before the introspection and
 * revocation steps, so it sees their final answer.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import { type Logger } from '../observability/logger.js';
import { requestContext, setRoute } from '../shared/request-context.js';
import { isStoreUnavailableError } from '../observability/store-health.js';
import { introspectionDuration, introspections, labelledChildren, revocations, tokensIssued } from '../observability/metrics.js';
import type { ClientWithSecrets } from '../clients/client.js';
import { looksLikeJwt } from './jwt-access-token.js';

const issuedCount = labelledChildren((grant: string, format: string, trust: string) => tokensIssued.labels(grant, format, trust));
const introspectionCount = labelledChildren((active: string) => introspections.labels(active));
const revocationCount = labelledChildren((kind: string) => revocations.labels(kind));

/** Counts the access token just issued; its client was looked up moments ago, so is in the cache. */
function countIssuedToken(ctx: KoaContextWithOIDC, clients: ClientRegistry): void | Promise<void> {
  const token = ctx.oidc.entities.ClientCredentials ?? ctx.oidc.entities.AccessToken;
  if (!token) return;
  const format = token.resourceServer?.accessTokenFormat === 'jwt' ? 'jwt' : 'opaque';
  const grantType = ctx.oidc.params?.grant_type;
  const grant = typeof grantType === 'string' ? grantType : 'unknown';
  const count = (client: ClientWithSecrets | undefined) => issuedCount(grant, format, client?.trust ?? 'unknown').inc();
  const client = clients.lookup(token.clientId!);
  return client instanceof Promise ? client.then(count) : count(client);
}

/** Instruments `provider`; install it before the introspection and revocation steps. */
export function instrumentProvider(provider: Provider, clients: ClientRegistry, logger: Logger): void {
  provider.use(async (ctx, next) => {
    const started = performance.now();
    const context = requestContext.getStore();
    let failed = false;
    try {
      await next();
    } catch (error) {
      // The introspection and revocation steps run after the provider's own error handling: their failures land here.
      failed = true;
      if (!context?.storeUnavailable && !isStoreUnavailableError(error)) {
        logger.error({ err: error }, 'request failed');
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'oops! something went wrong' };
        return;
      }
      // The same line as for a store failure inside the provider (its server_error event, services.ts).
      logger.warn({ reason: error instanceof Error ? error.message : String(error) }, 'store unavailable');
    }
    const oidcCtx = ctx as KoaContextWithOIDC;
    const route = oidcCtx.oidc?.route;
    if (route) setRoute(route);
    if (context && oidcCtx.oidc?.client) context.clientId = oidcCtx.oidc.client.clientId;

    if (failed || (ctx.status >= 500 && context?.storeUnavailable && typeof ctx.body === 'object')) {
      ctx.status = 503;
      ctx.set('Retry-After', '1');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'a backing store is unavailable; retry shortly' };
      return;
    }
    if (ctx.status === 429 && context?.retryAfterSeconds) ctx.set('Retry-After', String(context.retryAfterSeconds));
    if (ctx.status !== 200) return;

    if (route === 'token') await countIssuedToken(oidcCtx, clients);
    else if (route === 'introspection') {
      introspectionCount(String((ctx.body as { active?: boolean }).active === true)).inc();
      introspectionDuration.observe((performance.now() - started) / 1000);
    } else if (route === 'revocation') {
      const token = oidcCtx.oidc.params?.token;
      revocationCount(typeof token === 'string' && looksLikeJwt(token) ? 'jwt' : 'opaque').inc();
    }
  });
}
