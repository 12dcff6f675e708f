/**
 * Where the entitlement policy (entitlement-policy.ts) meets the engine and the introspection paths:
 * who the person behind a request is, what a person's token may carry, whether an issued token is
 * still covered, and the claims (`roles`, `groups`) that carry entitlements to resource servers and
 * apps. Everything is answered from the in-process registries.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { EntitlementRegistry } from '../groups/entitlement-registry.js';
import type { ResourceServer } from '../resource-servers/resource-server.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { boundedListClaim, holdsOnlyEntitledScopes, rolesFor, type PersonEntitlements } from './entitlement-policy.js';
import { PROTOCOL_ROUTES } from './protocol-routes.js';

/** What the entitlement checks consult. */
export interface EntitlementCheckDependencies {
  readonly resourceServers: ResourceServerRegistry;
  readonly entitlements: EntitlementRegistry;
}

/**
 * The account a token request or authorization acts for: the account of the code, refresh token or
 * device code being exchanged, else the signed-in person of an authorization request; `undefined`
 * for a client's own (client credentials) request.
 */
export function personBehind(ctx: KoaContextWithOIDC): string | undefined {
  const { entities } = ctx.oidc;
  const source = entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode;
  if (source) return source.accountId;
  return (ctx.oidc as { session?: { accountId?: string } }).session?.accountId;
}

/** The person's entitlements to `rs` when it enforces them; `undefined` when it does not (nothing to check). */
export async function enforcedEntitlements(
  deps: Pick<EntitlementCheckDependencies, 'entitlements'>,
  accountId: string,
  rs: ResourceServer,
): Promise<PersonEntitlements | undefined> {
  return rs.enforceEntitlements ? deps.entitlements.entitlementsOf(accountId, rs.id) : undefined;
}

/** The facts about an issued token that decide whether the person is still entitled to it. */
export interface EntitledToken {
  /** The person; `undefined` for a client's own token, which entitlements never concern. */
  readonly accountId?: string | undefined;
  readonly audiences: readonly string[];
  /** Space-separated. */
  readonly scope?: string | undefined;
}

/**
 * Whether a person's token may still be active as far as entitlements go: for each enforcing resource
 * server it is for, every scope of it that the token holds is one the person is still entitled to.
 */
export async function stillEntitled(deps: EntitlementCheckDependencies, token: EntitledToken): Promise<boolean> {
  if (token.accountId === undefined || token.audiences.length === 0) return true;
  const scopes = (token.scope ?? '').split(' ').filter(Boolean);
  for (const audience of token.audiences) {
    const rs = deps.resourceServers.byIdentifier(audience);
    if (!rs?.enforceEntitlements) continue;
    const reloading = deps.entitlements.settled();
    if (reloading) await reloading;
    if (!holdsOnlyEntitledScopes(await deps.entitlements.entitlementsOf(token.accountId, rs.id), rs, scopes)) return false;
  }
  return true;
}

/**
 * The entitlement claims of a person's access token (or of an introspection answer about it) for
 * `audience` holding `scope`: `roles`, the person's roles to that resource server only that go with
 * the token's scopes (see `rolesFor`), when it enforces entitlements and any apply. `maxBytes` bounds
 * them in a token (see `boundedListClaim`); introspection answers carry the whole list.
 */
export async function entitlementClaims(
  deps: EntitlementCheckDependencies,
  token: { readonly accountId: string | undefined; readonly audience: string | undefined; readonly scope: string | undefined },
  introspectionEndpoint: string,
  maxBytes?: number,
): Promise<Record<string, unknown> | undefined> {
  if (token.accountId === undefined || token.audience === undefined) return undefined;
  const rs = deps.resourceServers.byIdentifier(token.audience);
  if (!rs) return undefined;
  const person = await enforcedEntitlements(deps, token.accountId, rs);
  const roles = person ? rolesOfToken(person, token.scope ?? '') : [];
  if (roles.length === 0) return undefined;
  return maxBytes === undefined ? { roles: [...roles] } : boundedListClaim('roles', roles, introspectionEndpoint, maxBytes);
}

// The registry answers the same PersonEntitlements object while nothing it depends on changed, so the
// roles of its tokens are worked out once per distinct scope string (a hot resource server's tokens
// share a few), not on every introspection.
const rolesByPerson = new WeakMap<PersonEntitlements, Map<string, readonly string[]>>();
const SCOPE_STRINGS_PER_PERSON = 16;

function rolesOfToken(person: PersonEntitlements, scope: string): readonly string[] {
  let known = rolesByPerson.get(person);
  if (!known) rolesByPerson.set(person, (known = new Map<string, readonly string[]>()));
  let roles = known.get(scope);
  if (!roles) {
    roles = rolesFor(person, scope.split(' '));
    if (known.size >= SCOPE_STRINGS_PER_PERSON) known.clear();
    known.set(scope, roles);
  }
  return roles;
}

/**
 * Adds `roles` to an active introspection answer about a person's token (`body.sub` is the account,
 * `body.aud` the resource server), after every other field, so that both introspection paths give the
 * same bytes. A client's own token (`sub` is its client id) gets nothing.
 */
export function addEntitlementClaims(deps: EntitlementCheckDependencies, issuer: string, body: Record<string, unknown>): Promise<void> | undefined {
  // A client's own token (no person): nothing to add, and no promise made on the introspection hot path.
  if (body.active !== true || typeof body.sub !== 'string' || body.sub === body.client_id) return undefined;
  const audience = typeof body.aud === 'string' ? body.aud : Array.isArray(body.aud) && typeof body.aud[0] === 'string' ? body.aud[0] : undefined;
  const scope = typeof body.scope === 'string' ? body.scope : undefined;
  return entitlementClaims(deps, { accountId: body.sub, audience, scope }, `${issuer}${PROTOCOL_ROUTES.introspection}`).then((claims) => {
    if (claims) Object.assign(body, claims);
  });
}

/** How a client wants the `groups` claim: group names (the default) or group ids. */
export type GroupsClaimForm = 'names' | 'ids';

/**
 * The `groups` claim of a person for an ID token or userinfo (the `groups` scope): the groups the
 * person belongs to (a subgroup's members belong to its parent too), by name or by id as the client
 * chose. At userinfo the whole list; in an ID token bounded (see `boundedListClaim`), pointing to
 * userinfo when it would not fit.
 */
export async function groupsClaim(
  deps: { readonly clients: ClientRegistry; readonly entitlements: EntitlementRegistry },
  issuer: string,
  accountId: string,
  clientId: string | undefined,
  use: 'id_token' | 'userinfo',
): Promise<Record<string, unknown>> {
  const client = clientId === undefined ? undefined : await deps.clients.lookup(clientId);
  const form: GroupsClaimForm = client?.metadata.groups_claim ?? 'names';
  const groups = (await deps.entitlements.groupsOf(accountId)).map((group) => (form === 'ids' ? group.id : group.name));
  return use === 'userinfo' ? { groups } : boundedListClaim('groups', groups, `${issuer}${PROTOCOL_ROUTES.userinfo}`);
}
