/**
 * Groups, entitlements and each account's memberships, held in process so the token and introspection
 * paths never wait on PostgreSQL. Groups and entitlements are few and loaded whole (reloaded when any
 * instance publishes a `group` or `entitlement` change, and at least every `ttlSeconds`); an account's
 * groups sit in the bounded registry cache, dropped on every instance by a `group-membership` event.
 */
import { isPossibleAccountId } from '../accounts/account.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { resolveEntitlements, type EntitlementIndex, type PersonEntitlements } from '../issuer/entitlement-policy.js';
import type { Logger } from '../observability/logger.js';
import { CoalescedRun } from '../shared/coalesced-run.js';
import { RegistryCache } from '../shared/registry-cache.js';
import type { Entitlement, Group } from './group.js';
import { selectAllEntitlements, selectAllGroups, selectGroupIdsOfAccount } from './group-repository.js';

/** A resource server's entitlements, by subject. */
type ResourceServerEntitlements = EntitlementIndex<Entitlement>;

/** What one (account, resource server) pair resolved to, kept while nothing it depends on changed. */
interface Resolved {
  readonly generation: number;
  readonly groupIds: readonly string[];
  readonly entitlements: PersonEntitlements;
}

/** Entitlements indexed per resource server, then by subject (the form `resolveEntitlements` reads). */
export function indexByResourceServer(entitlements: readonly Entitlement[]): Map<string, ResourceServerEntitlements> {
  const byResourceServer = new Map<string, { byGroup: Map<string, Entitlement>; byAccount: Map<string, Entitlement> }>();
  for (const entitlement of entitlements) {
    let entry = byResourceServer.get(entitlement.resourceServerId);
    if (!entry) byResourceServer.set(entitlement.resourceServerId, (entry = { byGroup: new Map(), byAccount: new Map() }));
    if (entitlement.groupId !== null) entry.byGroup.set(entitlement.groupId, entitlement);
    else entry.byAccount.set(entitlement.accountId, entitlement);
  }
  return byResourceServer;
}

const NONE: PersonEntitlements = { scopes: new Set(), grants: [] };
const NO_GROUPS: readonly string[] = [];
// Enough for every person's pair of the busy resource servers; the oldest goes first beyond it.
const MAX_RESOLVED = 20_000;

/** Cached groups, memberships and entitlements, for issuance, introspection and the admin API. */
export class EntitlementRegistry {
  #groups = new Map<string, Group>();
  #byResourceServer = new Map<string, ResourceServerEntitlements>();
  /** Bumped on every reload: resolutions made before it are stale. */
  #generation = 0;
  #loadedAt = 0;
  readonly #reloads: CoalescedRun;
  readonly #memberships: RegistryCache<readonly string[]>;
  readonly #resolved = new Map<string, Resolved>();

  constructor(
    private readonly db: Db,
    private readonly ttlSeconds: number,
    logger: Logger,
  ) {
    this.#reloads = new CoalescedRun(
      () => this.reload(),
      (error) => logger.warn({ err: error }, 'group and entitlement reload failed; serving cached entries'),
    );
    this.#memberships = new RegistryCache({
      kind: 'group-membership',
      ttlSeconds,
      logger,
      load: (accountId) => selectGroupIdsOfAccount(db, accountId),
      isPossibleId: isPossibleAccountId,
    });
  }

  /** Loads groups and entitlements and follows change events on `bus`. */
  async start(bus: ChangeBus): Promise<void> {
    this.#memberships.follow(bus);
    bus.subscribe((event) => {
      if (event.kind === 'group' || event.kind === 'entitlement') this.#reloads.request();
    });
    await this.reload();
  }

  /** Reads every group and entitlement from PostgreSQL again. */
  async reload(): Promise<void> {
    const [groups, entitlements] = await Promise.all([selectAllGroups(this.db), selectAllEntitlements(this.db)]);
    this.#groups = new Map(groups.map((group) => [group.id, group]));
    this.#byResourceServer = indexByResourceServer(entitlements);
    this.#generation++;
    this.#resolved.clear();
    this.#loadedAt = Date.now();
  }

  /** Resolves when any reload in progress has finished; `undefined` at once when none is. */
  settled(): Promise<void> | undefined {
    return this.#reloads.settled();
  }

  /** The group with this id, if any. */
  group(id: string): Group | undefined {
    this.#refreshIfStale();
    return this.#groups.get(id);
  }

  /**
   * The groups the account belongs to, directly or as a member of a subgroup (its parent), sorted by
   * name. Unknown accounts belong to none.
   */
  async groupsOf(accountId: string): Promise<Group[]> {
    const direct = await this.#directGroupIds(accountId);
    const effective = new Map<string, Group>();
    for (const id of direct) {
      const group = this.#groups.get(id);
      if (!group) continue;
      effective.set(group.id, group);
      const parent = group.parentId === null ? undefined : this.#groups.get(group.parentId);
      if (parent) effective.set(parent.id, parent);
    }
    return [...effective.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * What the account may receive from the resource server: the union of its own entitlement and those
   * of its groups and their parents. Answered from memory; PostgreSQL is read only when the account's
   * memberships are not cached.
   */
  async entitlementsOf(accountId: string, resourceServerId: string): Promise<PersonEntitlements> {
    const reloading = this.#reloads.settled();
    if (reloading) await reloading;
    const forResourceServer = this.#byResourceServer.get(resourceServerId);
    if (!forResourceServer) return NONE;
    const groupIds = await this.#directGroupIds(accountId);
    const key = `${accountId} ${resourceServerId}`;
    const known = this.#resolved.get(key);
    if (known && known.generation === this.#generation && known.groupIds === groupIds) return known.entitlements;

    const entitlements: PersonEntitlements = resolveEntitlements(forResourceServer, (id) => this.#groups.get(id)?.parentId, accountId, groupIds);
    if (this.#resolved.size >= MAX_RESOLVED) this.#resolved.delete(this.#resolved.keys().next().value!);
    this.#resolved.set(key, { generation: this.#generation, groupIds, entitlements });
    return entitlements;
  }

  async #directGroupIds(accountId: string): Promise<readonly string[]> {
    this.#refreshIfStale();
    return (await this.#memberships.get(accountId)) ?? NO_GROUPS;
  }

  // As the resource server registry: a stale copy keeps answering while it refreshes.
  #refreshIfStale(): void {
    if (Date.now() - this.#loadedAt > this.ttlSeconds * 1000) this.#reloads.request();
  }
}
