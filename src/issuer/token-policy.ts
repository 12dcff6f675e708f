/**
 * The token format policy (docs/protocol.md, "Token format policy") as one pure function: who asks, for which
 * audience, with which scopes -> JWT or opaque, with its lifetime and signing algorithm.
 */
import type { ClientTrust } from '../clients/client.js';
import type { SigningAlg } from '../keys/signing-keys.js';

/** Default lifetime of a JWT access token: short, since local validators only see revocation at expiry. */
export const DEFAULT_JWT_TTL_SECONDS = 300;
/** Default lifetime of an opaque access token: revocable at once, so it may live longer. */
export const DEFAULT_OPAQUE_TTL_SECONDS = 3600;

/** The facts about the resource server that the policy reads. */
export interface PolicyResourceServer {
  readonly tokenFormat: 'jwt' | 'opaque';
  readonly sensitiveScopes: readonly string[];
  readonly accessTokenTtl: number | null;
  readonly signingAlg: SigningAlg;
}

/** What the policy decides for one access token. */
export type AccessTokenDecision =
  { readonly format: 'jwt'; readonly ttlSeconds: number; readonly signingAlg: SigningAlg } | { readonly format: 'opaque'; readonly ttlSeconds: number };

/**
 * Decides the format and lifetime of an access token.
 * JWT only for internal clients on JWT audiences when no requested scope is sensitive; else opaque.
 */
export function decideAccessToken(trust: ClientTrust, resourceServer: PolicyResourceServer, requestedScopes: Iterable<string>): AccessTokenDecision {
  const sensitive = new Set(resourceServer.sensitiveScopes);
  let asksSensitive = false;
  for (const scope of requestedScopes) if (sensitive.has(scope)) asksSensitive = true;

  if (trust === 'internal' && resourceServer.tokenFormat === 'jwt' && !asksSensitive) {
    return {
      format: 'jwt',
      ttlSeconds: resourceServer.accessTokenTtl ?? DEFAULT_JWT_TTL_SECONDS,
      signingAlg: resourceServer.signingAlg,
    };
  }
  return { format: 'opaque', ttlSeconds: resourceServer.accessTokenTtl ?? DEFAULT_OPAQUE_TTL_SECONDS };
}
