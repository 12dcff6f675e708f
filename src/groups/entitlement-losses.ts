/**
 * Announcing what a change of groups, memberships or entitlements takes away (docs/revocation-events.md):
 * inside the change's transaction, what the accounts it concerns are entitled to at each enforcing
 * resource server is resolved before and after it (the same resolution as the registry's,
 * `resolveEntitlements`), and one `entitlements` revocation event per (account, resource server) that
 * lost a scope or a role is written to the outbox. The change and its announcement commit together;
 * a resource server whose decision did not change hears nothing.
 */
import { revokedBeforeOf, type EntitlementsRevokedReason, type RevocationEvent } from '../security-events/revocation-event.js';
import { recordRevocationEvents } from '../security-events/outbox.js';
import { lostEntitlements, resolveEntitlements, type PersonEntitlements } from '../issuer/entitlement-policy.js';
import type { Db } from '../db/database.js';
import { ConflictError } from '../shared/errors.js';
import { indexByResourceServer } from './entitlement-registry.js';
import {
  selectAllGroups,
  selectEnforcingResourceServers,
  selectEntitlementsTo,
  selectGroupIdsOfAccounts,
  selectMembersOfGroupTree,
} from './group-repository.js';

/**
 * The most accounts one change may take entitlements from: it resolves each one's entitlements twice
 * and writes an event per loss inside the change's transaction, which holds the lock of every
 * narrowing change. A bigger group is emptied in batches first (`POST .../members/remove`, 1000 a call).
 */
export const MAX_ACCOUNTS_PER_NARROWING_CHANGE = 10_000;

/** The accounts a change concerns and, when it concerns one resource server only, which. */
export interface NarrowingChange {
  readonly accountIds: readonly string[];
  /** An entitlement's resource server: no other one's decisions can change. */
  readonly resourceServerId?: string;
  readonly reason: EntitlementsRevokedReason;
}

/**
 * The accounts that hold what a group gives: its direct members and its subgroups'. ConflictError
 * (409) past `MAX_ACCOUNTS_PER_NARROWING_CHANGE`, so the work of one change stays bounded.
 */
export async function accountsHoldingGroup(trx: Db, groupId: string): Promise<string[]> {
  const accountIds = await selectMembersOfGroupTree(trx, groupId, MAX_ACCOUNTS_PER_NARROWING_CHANGE + 1);
  if (accountIds.length > MAX_ACCOUNTS_PER_NARROWING_CHANGE) {
    throw new ConflictError(
      `this group and its subgroups have more than ${MAX_ACCOUNTS_PER_NARROWING_CHANGE} members, whose tokens this change would end one by one: remove members in batches first`,
    );
  }
  return accountIds;
}

/**
 * Runs `change` in the caller's transaction `trx` (which must hold the lock serialising narrowing
 * changes, so that no other one runs between the two readings) and records what it took from each
 * account of `narrowing` as revocation events, in the same transaction.
 */
export async function announcingLostEntitlements<T>(trx: Db, narrowing: NarrowingChange, change: () => Promise<T>): Promise<T> {
  const resourceServers = await selectEnforcingResourceServers(trx, narrowing.resourceServerId);
  if (resourceServers.length === 0 || narrowing.accountIds.length === 0) return change();
  const before = await resolveAll(trx, resourceServers, narrowing.accountIds);
  const result = await change();
  const after = await resolveAll(trx, resourceServers, narrowing.accountIds);
  // Tokens issued up to the end of this second carry what the person had until now.
  const revokedBefore = revokedBeforeOf(Date.now());
  const events: RevocationEvent[] = [];
  for (const [key, { accountId, identifier, entitlements }] of before) {
    const lost = lostEntitlements(entitlements, after.get(key)?.entitlements ?? NOTHING);
    if (!lost) continue;
    events.push({ kind: 'entitlements', sub: accountId, audiences: [identifier], ...lost, revokedBefore, reason: narrowing.reason });
  }
  await recordRevocationEvents(trx, events);
  return result;
}

const NOTHING: PersonEntitlements = { scopes: new Set(), grants: [] };

interface Resolved {
  readonly accountId: string;
  /** The resource server's identifier: its tokens' `aud`, and where the event goes. */
  readonly identifier: string;
  readonly entitlements: PersonEntitlements;
}

/** What each account may receive from each of the resource servers, as read in `trx`; pairs that give nothing are absent. */
async function resolveAll(
  trx: Db,
  resourceServers: readonly { id: string; identifier: string }[],
  accountIds: readonly string[],
): Promise<Map<string, Resolved>> {
  const [groups, entitlements, memberships] = await Promise.all([
    selectAllGroups(trx),
    selectEntitlementsTo(
      trx,
      resourceServers.map((rs) => rs.id),
    ),
    selectGroupIdsOfAccounts(trx, accountIds),
  ]);
  const parents = new Map(groups.map((group) => [group.id, group.parentId]));
  const index = indexByResourceServer(entitlements);
  const resolved = new Map<string, Resolved>();
  for (const rs of resourceServers) {
    const forResourceServer = index.get(rs.id);
    if (!forResourceServer) continue;
    for (const accountId of new Set(accountIds)) {
      const person = resolveEntitlements(forResourceServer, (id) => parents.get(id), accountId, memberships.get(accountId) ?? []);
      if (person.scopes.size > 0 || person.grants.length > 0)
        resolved.set(`${accountId} ${rs.id}`, { accountId, identifier: rs.identifier, entitlements: person });
    }
  }
  return resolved;
}
