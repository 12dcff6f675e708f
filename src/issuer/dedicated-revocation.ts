/**
 * The dedicated revocation path (RFC 7009, docs/dedicated-paths.md): a client revoking its own opaque
 * client credentials token with its secret (Basic or in the form) is answered in front of
 * oidc-provider, with one Redis round trip for the lookup, the delete and, on a standalone Redis, the
 * queuing of its revocation event. Anything else goes to the provider untouched, with the body it read
 * given back: access tokens of a grant and refresh tokens (the provider revokes their whole grant),
 * JWTs (revocation.ts records them after the provider), other authentication methods, DPoP and any
 * other header or parameter the introspection path leaves.
 *
 * The provider's revocation (lib/actions/revocation.js of oidc-provider) is what this reproduces, and
 * test/e2e/revocation-differential.test.ts holds the two answers, and their effect, equal. Shared with
 * the dedicated introspection path: the form and header checks, the one client secret check (and its
 * lockout), the error answers.
 */
import type { EarlyExchange, EarlyRoute } from './early-dispatch.js';
import { answerFailure, authenticateThen, dedicatedPath, respond, type ProviderRoute } from './dedicated-path.js';
import type { Logger } from '../observability/logger.js';
import { labelledChildren, revocations } from '../observability/metrics.js';
import { requestContext } from '../shared/request-context.js';
import { epochSeconds } from '../tokens/token-keys.js';
import type { TokenStore } from '../tokens/token-store.js';
import type { ClientSecretCheck } from './client-authentication.js';
import { readCandidate, secretClient } from './dedicated-introspection.js';
import type { TokenEndpointDependencies } from './introspection.js';
import { looksLikeJwt } from './jwt-access-token.js';

/** What the dedicated revocation path consults. */
export interface DedicatedRevocationDependencies extends Pick<TokenEndpointDependencies, 'clients'> {
  readonly issuer: string;
  readonly revocationPath: string;
  readonly tokenStore: TokenStore;
  readonly checkClientSecret: ClientSecretCheck;
  readonly logger: Logger;
}

/** The provider's revocation route has CORS but no no-cache step. */
const REVOCATION_ROUTE: ProviderRoute = { name: 'revocation', noStore: false };

/** oidc-provider's default `clockTolerance` (seconds): a token is expired for it once `exp <= now - 15`. */
const PROVIDER_CLOCK_TOLERANCE = 15;

/** The provider's answer to every revocation it accepts: 200 and an empty body (koa then sends `text/plain`, length 0). */
const REVOKED = { status: 200, body: '' } as const;

const revocationCount = labelledChildren((kind: string) => revocations.labels(kind));

/**
 * Builds the route of the path, answered by the early dispatch in front of the Koa application; every
 * request it leaves goes on to the provider.
 */
export function dedicatedRevocation(deps: DedicatedRevocationDependencies): EarlyRoute {
  return dedicatedPath('revocation', deps.revocationPath, answer);

  /** Answers the request; or leaves it untouched (but for a body read ahead) and resolves `false`. */
  async function answer(exchange: EarlyExchange): Promise<boolean> {
    const candidate = await readCandidate(exchange);
    // A JWT's revocation is recorded by revocation.ts once the provider has authenticated the caller.
    if (!candidate || looksLikeJwt(candidate.token)) return false;
    const client = await secretClient(deps, candidate);
    if (!client) return false;
    const context = requestContext.getStore();
    // Named as the provider names it once it has found the client (traces and logs carry it).
    if (context) context.clientId = candidate.clientId;
    try {
      // A right secret's revocation checks the caller's lockout in its own step: one round trip.
      const revoked = await authenticateThen(exchange, deps, candidate, REVOCATION_ROUTE, (guard) =>
        deps.tokenStore.revokeOwnClientCredentials(
          candidate.token,
          {
            clientId: client.clientId,
            expiredAtOrBefore: epochSeconds() - PROVIDER_CLOCK_TOLERANCE,
            tokensRevokedAt: client.tokensRevokedAt,
            // Its token's audience is one of them (the provider's check_resource): the store may then
            // queue the revocation's event in the same step as the delete.
            audiences: client.metadata.resources,
          },
          guard,
        ),
      );
      if (!revoked) return true;
      // An access token of a grant, a refresh token, an odd record: nothing was changed, and the
      // provider authenticates the caller again (a right secret counts no failure) and revokes.
      if (revoked.value === 'other') return false;
    } catch (error) {
      answerFailure(exchange, deps.logger, error, REVOCATION_ROUTE);
      return true;
    }
    // RFC 7009: an unknown, expired or foreign token is answered 200 all the same, as the provider does.
    respond(exchange, REVOKED, REVOCATION_ROUTE);
    revocationCount('opaque').inc();
    return true;
  }
}
