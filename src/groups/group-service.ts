/**
 * Managing groups, memberships and entitlements: each change is one transaction with its audit
 * entries and, when it takes scopes or roles from people, the revocation events that announce it to
 * the resource servers concerned (entitlement-losses.ts); then change events so every instance's
 * registry follows at once. A change that would leave no person administrator where there was one
 * (the last one's group deleted, their membership or entitlement removed, their subgroup moved) is
 * refused with a 409 and leaves nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { recordAudit } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { isUniqueViolation, type ChangeContext } from '../shared/change-context.js';
import { ConflictError, found, InvalidInputError, NotFoundError } from '../shared/errors.js';
import { accountsHoldingGroup, announcingLostEntitlements } from './entitlement-losses.js';
import { ADMIN_WRITE_SCOPE, type Entitlement, type EntitlementSubject, type Group, type MembershipOutcome } from './group.js';
import {
  deleteEntitlementRow,
  deleteGroupRow,
  deleteMembers,
  hasSubgroups,
  insertEntitlement,
  insertGroup,
  insertMembers,
  selectAccountsEntitledTo,
  selectEntitlement,
  selectExistingAccounts,
  selectGroup,
  updateEntitlementRow,
  updateGroupRow,
} from './group-repository.js';

/**
 * The advisory lock serialising the changes that narrow entitlements: they could remove the last
 * person administrator (see `keepingAnAdministrator`), and each reads what people had before and
 * after it to announce their losses (entitlement-losses.ts), which another such change running
 * alongside would make wrong.
 */
const ADMINISTRATORS_LOCK_ID = 7_300_002;

/** What a group change needs: the audited database, the change bus, and the admin audience (for the last-administrator rule). */
export interface GroupChangeContext extends ChangeContext {
  /** The identifier of the admin audience of this issuer. */
  readonly adminAudience: string;
}

/** Another group already has this name (whatever its case). */
export class DuplicateGroupNameError extends ConflictError {
  constructor() {
    super('a group with this name already exists', { field: { path: 'name', message: 'is taken' } });
  }
}

/** What an admin gives to create (or, whole, to change) a group. */
export interface GroupInput {
  name: string;
  parentId: string | null;
}

/**
 * Runs `change` inside a transaction and refuses it (rolled back, 409) when it leaves no person
 * holding `admin:write` while someone did before.
 */
async function keepingAnAdministrator<T>(context: GroupChangeContext, what: string, change: (trx: Db) => Promise<T>): Promise<T> {
  return context.db.transaction().execute(async (trx) => {
    // One such change at a time: two removals running side by side could each leave the other's
    // person as the last administrator, and then neither.
    await sql`select pg_advisory_xact_lock(${ADMINISTRATORS_LOCK_ID})`.execute(trx);
    const admin = await trx.selectFrom('resource_servers').select('id').where('identifier', '=', context.adminAudience).executeTakeFirst();
    const before = admin ? await selectAccountsEntitledTo(trx, admin.id, ADMIN_WRITE_SCOPE) : new Set<string>();
    const result = await change(trx);
    if (admin && before.size > 0 && (await selectAccountsEntitledTo(trx, admin.id, ADMIN_WRITE_SCOPE)).size === 0) {
      throw new ConflictError(`${what} would leave no person administrator (admin:write); entitle another person first`);
    }
    return result;
  });
}

/** Checks the nesting rule: one level, no cycle. Throws InvalidInputError (422) on `parent_id`. */
async function checkParent(db: Db, groupId: string | undefined, parentId: string | null): Promise<void> {
  if (parentId === null) return;
  if (parentId === groupId) throw new InvalidInputError('parent_id', 'a group cannot be its own parent (a cycle)');
  const parent = await selectGroup(db, parentId);
  if (!parent) throw new InvalidInputError('parent_id', `no group ${parentId}`);
  if (parent.parentId !== null) {
    const cycle = parent.parentId === groupId;
    throw new InvalidInputError(
      'parent_id',
      cycle ? 'the parent is a subgroup of this group (a cycle)' : 'the parent is itself a subgroup: groups nest one level only',
    );
  }
  if (groupId !== undefined && (await hasSubgroups(db, groupId))) {
    throw new InvalidInputError('parent_id', 'this group has subgroups: groups nest one level only');
  }
}

async function withUniqueName<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUniqueViolation(error)) throw new DuplicateGroupNameError();
    throw error;
  }
}

/** Creates a group, under `parentId` when given. */
export async function createGroup(change: GroupChangeContext, input: GroupInput): Promise<Group> {
  const group = await withUniqueName(() =>
    change.db.transaction().execute(async (trx) => {
      await checkParent(trx, undefined, input.parentId);
      const created = await insertGroup(trx, { id: randomUUID(), ...input });
      await recordAudit(trx, { actor: change.actor, action: 'group.create', target: created.id, details: { name: created.name, parent_id: created.parentId } });
      return created;
    }),
  );
  await change.bus.publish({ kind: 'group', id: group.id });
  return group;
}

/**
 * Renames or moves a group (validated whole by the caller); NotFoundError when there is none. A move
 * takes the old parent's entitlements from its members: announced, and refused like any narrowing
 * change when it would leave no person administrator.
 */
export async function updateGroup(change: GroupChangeContext, id: string, input: GroupInput): Promise<Group> {
  const group = await withUniqueName(() =>
    keepingAnAdministrator(change, 'moving this group', async (trx) => {
      const current = found(await selectGroup(trx, id), `group ${id}`);
      await checkParent(trx, id, input.parentId);
      const moved = current.parentId !== null && current.parentId !== input.parentId;
      const members = moved ? await accountsHoldingGroup(trx, id) : [];
      const updated = await announcingLostEntitlements(trx, { accountIds: members, reason: 'group-moved' }, async () =>
        found(await updateGroupRow(trx, id, input), `group ${id}`),
      );
      await recordAudit(trx, { actor: change.actor, action: 'group.update', target: id, details: { name: updated.name, parent_id: updated.parentId } });
      return updated;
    }),
  );
  await change.bus.publish({ kind: 'group', id });
  return group;
}

/**
 * Deletes a group, its memberships and its entitlements. ConflictError while it has subgroups, or
 * when it is what makes the last person administrator one.
 */
export async function deleteGroup(change: GroupChangeContext, id: string): Promise<void> {
  const group = found(await selectGroup(change.db, id), `group ${id}`);
  await keepingAnAdministrator(change, `deleting group ${group.name}`, async (trx) => {
    if (await hasSubgroups(trx, id)) throw new ConflictError(`group ${group.name} has subgroups: delete or move them first`);
    const members = await accountsHoldingGroup(trx, id);
    const deleted = await announcingLostEntitlements(trx, { accountIds: members, reason: 'group-deleted' }, () => deleteGroupRow(trx, id));
    if (!deleted) throw new NotFoundError(`no group ${id}`);
    await recordAudit(trx, { actor: change.actor, action: 'group.delete', target: id, details: { name: group.name } });
  });
  await change.bus.publish({ kind: 'group', id });
}

/** The outcome of a bulk membership change, item by item, in the order asked. */
export interface MembershipResult {
  readonly accountId: string;
  readonly outcome: MembershipOutcome;
}

/**
 * Adds accounts to a group in one transaction: every known account is added (or already was); an
 * unknown one is reported as such and costs the others nothing. One audit entry per account added.
 */
export async function addMembers(change: GroupChangeContext, groupId: string, accountIds: readonly string[]): Promise<MembershipResult[]> {
  const { results, changed } = await change.db.transaction().execute(async (trx) => {
    const group = found(await selectGroup(trx, groupId), `group ${groupId}`);
    const emails = await selectExistingAccounts(trx, accountIds);
    const added = await insertMembers(trx, groupId, [...emails.keys()]);
    for (const accountId of added) {
      await recordAudit(trx, {
        actor: change.actor,
        action: 'group.member_add',
        target: groupId,
        details: { group: group.name, account_id: accountId, email: emails.get(accountId) },
      });
    }
    const outcome = (id: string): MembershipOutcome => (!emails.has(id) ? 'unknown_account' : added.has(id) ? 'added' : 'already_member');
    return { results: accountIds.map((accountId) => ({ accountId, outcome: outcome(accountId) })), changed: added };
  });
  await publishMemberships(change, changed);
  return results;
}

/** Removes accounts from a group in one transaction; one audit entry per account removed. */
export async function removeMembers(change: GroupChangeContext, groupId: string, accountIds: readonly string[]): Promise<MembershipResult[]> {
  const group = found(await selectGroup(change.db, groupId), `group ${groupId}`);
  const { results, changed } = await keepingAnAdministrator(change, `removing these members from ${group.name}`, async (trx) => {
    const emails = await selectExistingAccounts(trx, accountIds);
    const narrowing = { accountIds: [...emails.keys()], reason: 'group-membership-removed' } as const;
    const removed = await announcingLostEntitlements(trx, narrowing, () => deleteMembers(trx, groupId, accountIds));
    for (const accountId of removed) {
      await recordAudit(trx, {
        actor: change.actor,
        action: 'group.member_remove',
        target: groupId,
        details: { group: group.name, account_id: accountId, email: emails.get(accountId) },
      });
    }
    const outcome = (id: string): MembershipOutcome => (!emails.has(id) ? 'unknown_account' : removed.has(id) ? 'removed' : 'not_member');
    return { results: accountIds.map((accountId) => ({ accountId, outcome: outcome(accountId) })), changed: removed };
  });
  await publishMemberships(change, changed);
  return results;
}

// Past this many accounts one event drops every cached membership rather than one per account.
const MEMBERSHIP_EVENTS_AT_MOST = 100;

async function publishMemberships(change: ChangeContext, accountIds: ReadonlySet<string>): Promise<void> {
  if (accountIds.size > MEMBERSHIP_EVENTS_AT_MOST) await change.bus.publish({ kind: 'group-membership', id: '*' });
  else await Promise.all([...accountIds].map((id) => change.bus.publish({ kind: 'group-membership', id })));
}

/** What an admin gives for an entitlement: its subject (on create), scopes and roles. */
export interface EntitlementInput {
  scopes: string[];
  roles: string[];
}

async function entitledResourceServer(db: Db, resourceServerId: string, scopes: readonly string[]): Promise<void> {
  const rs = found(
    await db.selectFrom('resource_servers').select(['id', 'scopes']).where('id', '=', resourceServerId).executeTakeFirst(),
    `resource server ${resourceServerId}`,
  );
  scopes.forEach((scope, index) => {
    if (!rs.scopes.includes(scope)) throw new InvalidInputError(`scopes.${index}`, `${scope} is not a scope of this resource server`);
  });
}

/** Entitles a group or an account to scopes (and roles) of a resource server; ConflictError when that subject already has one there. */
export async function createEntitlement(
  change: GroupChangeContext,
  resourceServerId: string,
  subject: EntitlementSubject,
  input: EntitlementInput,
): Promise<Entitlement> {
  let entitlement: Entitlement;
  try {
    entitlement = await change.db.transaction().execute(async (trx) => {
      await entitledResourceServer(trx, resourceServerId, input.scopes);
      if (subject.groupId !== null && !(await selectGroup(trx, subject.groupId))) throw new InvalidInputError('group_id', `no group ${subject.groupId}`);
      if (subject.accountId !== null && (await selectExistingAccounts(trx, [subject.accountId])).size === 0) {
        throw new InvalidInputError('account_id', `no account ${subject.accountId}`);
      }
      const created = await insertEntitlement(trx, { id: randomUUID(), resourceServerId, ...subject, ...input });
      await recordAudit(trx, {
        actor: change.actor,
        action: 'entitlement.create',
        target: created.id,
        details: { resource_server_id: resourceServerId, group_id: subject.groupId, account_id: subject.accountId, scopes: input.scopes, roles: input.roles },
      });
      return created;
    });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new ConflictError(`this ${subject.groupId !== null ? 'group' : 'account'} already has an entitlement here: change it instead`);
    throw error;
  }
  await change.bus.publish({ kind: 'entitlement', id: resourceServerId });
  return entitlement;
}

/** Replaces an entitlement's scopes and roles. */
export async function updateEntitlement(change: GroupChangeContext, resourceServerId: string, id: string, input: EntitlementInput): Promise<Entitlement> {
  const updated = await keepingAnAdministrator(change, 'this change', async (trx) => {
    const current = found(await selectEntitlement(trx, resourceServerId, id), `entitlement ${id}`);
    await entitledResourceServer(trx, resourceServerId, input.scopes);
    const narrowing = { accountIds: await accountsHolding(trx, current), resourceServerId, reason: 'entitlement-changed' } as const;
    const row = await announcingLostEntitlements(trx, narrowing, async () => found(await updateEntitlementRow(trx, id, input), `entitlement ${id}`));
    await recordAudit(trx, { actor: change.actor, action: 'entitlement.update', target: id, details: { resource_server_id: resourceServerId, ...input } });
    return row;
  });
  await change.bus.publish({ kind: 'entitlement', id: resourceServerId });
  return updated;
}

/** The accounts an entitlement applies to: its account, or its group's members and its subgroups'. */
function accountsHolding(trx: Db, entitlement: Entitlement): Promise<string[]> {
  return entitlement.groupId !== null ? accountsHoldingGroup(trx, entitlement.groupId) : Promise.resolve([entitlement.accountId]);
}

/** Deletes an entitlement. */
export async function deleteEntitlement(change: GroupChangeContext, resourceServerId: string, id: string): Promise<void> {
  await keepingAnAdministrator(change, 'deleting this entitlement', async (trx) => {
    const current = found(await selectEntitlement(trx, resourceServerId, id), `entitlement ${id}`);
    const narrowing = { accountIds: await accountsHolding(trx, current), resourceServerId, reason: 'entitlement-removed' } as const;
    await announcingLostEntitlements(trx, narrowing, () => deleteEntitlementRow(trx, id));
    await recordAudit(trx, { actor: change.actor, action: 'entitlement.delete', target: id, details: { resource_server_id: resourceServerId } });
  });
  await change.bus.publish({ kind: 'entitlement', id: resourceServerId });
}
