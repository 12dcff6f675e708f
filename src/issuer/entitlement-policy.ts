/**
 * The entitlement policy (docs/groups-and-entitlements.md) as pure functions beside the token format
 * policy (token-policy.ts): which of a resource server's scopes a person's token may carry, and the
 * claims that say who the person is to that resource server. No I/O: the caller hands in what the
 * in-process registries hold.
 */

/** One entitlement as the policy reads it: scopes, and the roles that come with them. */
export interface EntitlementGrant {
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
}

/** What one person may receive from one resource server: the union of their entitlements to it. */
export interface PersonEntitlements {
  readonly scopes: ReadonlySet<string>;
  /** Each entitlement that applies to the person (their own, their groups', their groups' parents'). */
  readonly grants: readonly EntitlementGrant[];
}

/** The facts about the resource server that the policy reads. */
export interface EntitlementResourceServer {
  readonly scopes: readonly string[];
  /** Off: every person may receive what the client may ask (deployments from before entitlements). */
  readonly enforceEntitlements: boolean;
}

/** What the policy decides for one token request. */
export interface EntitlementDecision {
  /**
   * The resource server's scopes the token may carry: those the client may ask for and, when a person
   * is behind the token of an enforcing resource server, those the person is entitled to. The engine
   * keeps the requested (and granted) ones among them.
   */
  readonly offered: readonly string[];
  /** Requested scopes of the resource server that are dropped because the person is not entitled to them. */
  readonly refused: readonly string[];
  /** The request asked for scopes of the resource server and every one of them is refused: `access_denied`. */
  readonly denied: boolean;
}

/**
 * Decides which of a resource server's scopes a token may carry.
 * @param clientScopes the scopes the client is registered for.
 * @param person the person's entitlements to this resource server; `undefined` when no person is
 *   behind the token (a client's own client credentials token), which the policy leaves as it was.
 * @param requested the scopes of the request (any resource's, OpenID ones included).
 */
export function decideEntitledScopes(
  clientScopes: ReadonlySet<string>,
  person: PersonEntitlements | undefined,
  resourceServer: EntitlementResourceServer,
  requested: readonly string[],
): EntitlementDecision {
  const clientMay = resourceServer.scopes.filter((scope) => clientScopes.has(scope));
  if (person === undefined || !resourceServer.enforceEntitlements) return { offered: clientMay, refused: [], denied: false };
  const offered = clientMay.filter((scope) => person.scopes.has(scope));
  const ofResourceServer = new Set(resourceServer.scopes);
  const asked = requested.filter((scope) => ofResourceServer.has(scope));
  const refused = asked.filter((scope) => !person.scopes.has(scope));
  return { offered, refused, denied: asked.length > 0 && refused.length === asked.length };
}

/**
 * The person's roles carried by a token holding `tokenScopes`: those of each entitlement that gave
 * one of the token's scopes (or that gives roles without scopes), sorted, without repeats. A token
 * narrower than what the person may have carries only the roles that go with what it holds.
 */
export function rolesFor(person: PersonEntitlements, tokenScopes: readonly string[]): string[] {
  const held = new Set(tokenScopes);
  const roles = new Set<string>();
  for (const grant of person.grants) {
    if (grant.scopes.length === 0 || grant.scopes.some((scope) => held.has(scope))) for (const role of grant.roles) roles.add(role);
  }
  return [...roles].sort();
}

/**
 * Whether a person's token holding `tokenScopes` for this resource server may still be active: every
 * scope of the resource server it holds is one the person is still entitled to. A token that held a
 * scope only a group gave ends when the person leaves the group (it is not narrowed: a resource server
 * may have cached what it read).
 */
export function holdsOnlyEntitledScopes(person: PersonEntitlements, resourceServer: EntitlementResourceServer, tokenScopes: readonly string[]): boolean {
  if (!resourceServer.enforceEntitlements) return true;
  const ofResourceServer = new Set(resourceServer.scopes);
  return tokenScopes.every((scope) => !ofResourceServer.has(scope) || person.scopes.has(scope));
}

/** The entitlements of one resource server, by subject: what `resolveEntitlements` reads. */
export interface EntitlementIndex<G extends EntitlementGrant = EntitlementGrant> {
  readonly byGroup: ReadonlyMap<string, G>;
  readonly byAccount: ReadonlyMap<string, G>;
}

/**
 * What a person may receive from one resource server: the union of their own entitlement and those
 * of the groups they are a direct member of and of those groups' parents. `parentOf` answers a
 * group's parent (`null` for none) or `undefined` for a group that no longer exists (it gives nothing).
 */
export function resolveEntitlements<G extends EntitlementGrant>(
  index: EntitlementIndex<G>,
  parentOf: (groupId: string) => string | null | undefined,
  accountId: string,
  directGroupIds: readonly string[],
): { readonly scopes: ReadonlySet<string>; readonly grants: readonly G[] } {
  const scopes = new Set<string>();
  // A Set: a parent entitled once counts once, however many of its subgroups the person is in.
  const grants = new Set<G>();
  const add = (grant: G | undefined) => {
    if (!grant) return;
    for (const scope of grant.scopes) scopes.add(scope);
    grants.add(grant);
  };
  add(index.byAccount.get(accountId));
  for (const id of directGroupIds) {
    const parentId = parentOf(id);
    if (parentId === undefined) continue;
    add(index.byGroup.get(id));
    if (parentId !== null) add(index.byGroup.get(parentId));
  }
  return { scopes, grants: [...grants] };
}

/** What a person lost at one resource server, sorted; see `lostEntitlements`. */
export interface LostEntitlements {
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
}

/**
 * What a person lost at one enforcing resource server between two resolutions of their entitlements:
 * the scopes they may no longer receive, and the roles no entitlement of theirs gives any more (a
 * role one of their tokens may carry, see `rolesFor`). `undefined` when they lost nothing (what they
 * kept, or gained, ends no token). A token holding a lost scope, or carrying a lost role, is no
 * longer one the person could get: it is to end (see `holdsOnlyEntitledScopes`).
 */
export function lostEntitlements(before: PersonEntitlements, after: PersonEntitlements): LostEntitlements | undefined {
  const rolesOf = (person: PersonEntitlements) => new Set(person.grants.flatMap((grant) => grant.roles));
  const rolesAfter = rolesOf(after);
  const scopes = [...before.scopes].filter((scope) => !after.scopes.has(scope)).sort();
  const roles = [...rolesOf(before)].filter((role) => !rolesAfter.has(role)).sort();
  return scopes.length === 0 && roles.length === 0 ? undefined : { scopes, roles };
}

/** The largest JSON (in bytes) a list claim may take inside a token before it overflows (see `boundedListClaim`). */
export const MAX_LIST_CLAIM_BYTES = 2048;

/**
 * A list claim bounded in size: `{[name]: values}` when its JSON takes at most `maxBytes`, else an
 * OpenID Connect Core 5.6.2 distributed claim naming where the whole list is (`_claim_names` and
 * `_claim_sources`), so a person in 500 groups still gets a small token. Never a partial list: a
 * missing entry would read as a membership the person lacks.
 */
export function boundedListClaim(name: string, values: readonly string[], endpoint: string, maxBytes = MAX_LIST_CLAIM_BYTES): Record<string, unknown> {
  if (Buffer.byteLength(JSON.stringify(values), 'utf8') <= maxBytes) return { [name]: [...values] };
  return { _claim_names: { [name]: name }, _claim_sources: { [name]: { endpoint } } };
}
