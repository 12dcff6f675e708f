/**
 * Revocation (RFC 7009) around oidc-provider's endpoint. The provider authenticates the caller and
 * revokes opaque tokens and grants; it refuses JWT access tokens, so a step after it records their
 * revocation, which introspection then honours at once.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { refusedStructuredToken, type TokenEndpointDependencies } from './introspection.js';

async function revokeJwt(ctx: KoaContextWithOIDC, deps: Pick<TokenEndpointDependencies, 'tokenStore' | 'verifier'>): Promise<void> {
  const claims = await deps.verifier.verify(ctx.oidc.params!.token as string);
  // RFC 7009: an invalid token, or one of another client, is answered 200 all the same.
  if (claims && claims.client_id === ctx.oidc.client!.clientId) {
    // Its resource servers hear of it (a revocation event recorded in the same step).
    await deps.tokenStore.revokeJwt(claims.jti, claims.exp, ([] as string[]).concat(claims.aud ?? []));
  }
  // The provider's answer to an accepted revocation (200, empty, text/plain): the refusal it had
  // written typed the response as JSON, and koa keeps a type already set.
  ctx.remove('Content-Type');
  ctx.status = 200;
  ctx.body = '';
}

/** Installs the revocation step on `provider` (it runs around the provider's own handling). */
export function installRevocation(provider: Provider, deps: Pick<TokenEndpointDependencies, 'tokenStore' | 'verifier'>): void {
  provider.use(async (ctx, next) => {
    await next();
    const oidcCtx = ctx as KoaContextWithOIDC;
    if (oidcCtx.oidc?.route === 'revocation' && refusedStructuredToken(oidcCtx)) await revokeJwt(oidcCtx, deps);
  });
}
