/**
 * Which resource server an access token is for, and what the token policy decides for it: the one
 * resolution behind oidc-provider's `features.resourceIndicators` (`defaultResource`,
 * `getResourceServerInfo`, provider.ts) and the dedicated client_credentials path
 * (dedicated-issuance.ts), so both answer alike.
 */
import { errors } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { SigningAlg } from '../keys/signing-keys.js';
import type { EntitlementRegistry } from '../groups/entitlement-registry.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { decideEntitledScopes } from './entitlement-policy.js';
import { enforcedEntitlements } from './entitlements.js';
import { decideAccessToken, type AccessTokenDecision } from './token-policy.js';

/** What the resolution consults. */
export interface ResourceServerInfoDependencies {
  readonly clients: ClientRegistry;
  readonly resourceServers: ResourceServerRegistry;
  /** What people are entitled to (a person's token carries only that; docs/groups-and-entitlements.md). */
  readonly entitlements: EntitlementRegistry;
  /** The kid signing with each enabled algorithm now (the key ring of the provider in force). */
  readonly currentKid: () => Partial<Record<SigningAlg, string>>;
}

/** What the provider's `getResourceServerInfo` answers, with the policy's decision beside it. */
export interface ResolvedResourceServer {
  readonly audience: string;
  /** The resource server's scopes this client (and the person behind the token, if any) may have, space-separated. */
  readonly scope: string;
  readonly accessTokenTTL: number;
  readonly accessTokenFormat: 'jwt' | 'opaque';
  readonly jwt?: { readonly sign: { readonly alg: SigningAlg; readonly kid: string | undefined } };
  readonly decision: AccessTokenDecision;
}

/**
 * The client's default resource (the first it is registered for), as the provider's `defaultResource`
 * answers without `oneOf`: answered at once when the client is cached.
 */
export function defaultResourceOf(clients: ClientRegistry, clientId: string): string | undefined | Promise<string | undefined> {
  const lookup = clients.lookup(clientId);
  return lookup instanceof Promise ? lookup.then((client) => client?.metadata.resources[0]) : lookup?.metadata.resources[0];
}

/**
 * The resource server `resourceIndicator` names for `clientId` asking for `requested` scopes, and the
 * token policy's decision for it. With `accountId` (a person's token), the scopes offered are those
 * the entitlement policy leaves (entitlement-policy.ts).
 * @throws errors.InvalidTarget for a resource unknown or not allowed to the client, or one whose
 *   signing algorithm is not enabled; errors.InvalidScope for a scope the client may not ask for;
 *   errors.AccessDenied when the person is entitled to none of the resource server's scopes asked.
 */
export async function resolveResourceServer(
  deps: ResourceServerInfoDependencies,
  clientId: string,
  resourceIndicator: string,
  requested: readonly string[],
  accountId?: string,
): Promise<ResolvedResourceServer> {
  const lookup = deps.clients.lookupActive(clientId);
  const registered = lookup instanceof Promise ? await lookup : lookup;
  const reloading = deps.resourceServers.settled();
  if (reloading) await reloading;
  const rs = deps.resourceServers.byIdentifier(resourceIndicator);
  if (!registered || !rs || !registered.metadata.resources.includes(rs.identifier)) {
    throw new errors.InvalidTarget(`resource ${resourceIndicator} is unknown or not allowed for this client`);
  }
  // The provider checks only its static (OpenID) scopes against the client; resource server
  // scopes it would drop silently. A client asking beyond what it was granted must hear so.
  const allowed = new Set(registered.metadata.scope.split(' '));
  const refused = requested.find((scope) => !allowed.has(scope));
  if (refused !== undefined) throw new errors.InvalidScope('requested scope is not allowed', refused);
  const person = accountId === undefined ? undefined : await enforcedEntitlements(deps, accountId, rs);
  const entitled = decideEntitledScopes(allowed, person, rs, requested);
  if (entitled.denied) throw new errors.AccessDenied(`the account is not entitled to the scopes it asked of ${rs.identifier}`);
  const dropped = new Set(entitled.refused);
  const decision = decideAccessToken(
    registered.trust,
    rs,
    requested.filter((scope) => !dropped.has(scope)),
  );
  const kid = decision.format === 'jwt' ? deps.currentKid()[decision.signingAlg] : undefined;
  if (decision.format === 'jwt' && kid === undefined) {
    // Registered before SIGNING_ALGS left its algorithm out: no token rather than another algorithm.
    throw new errors.InvalidTarget(`resource ${resourceIndicator} signs with ${decision.signingAlg}, which this server does not enable`);
  }
  return {
    audience: rs.identifier,
    scope: entitled.offered.join(' '),
    accessTokenTTL: decision.ttlSeconds,
    accessTokenFormat: decision.format,
    ...(decision.format === 'jwt' ? { jwt: { sign: { alg: decision.signingAlg, kid } } } : {}),
    decision,
  };
}
