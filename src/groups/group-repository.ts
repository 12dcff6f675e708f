/** PostgreSQL access for groups, their members and entitlements. Functions take the database (or a transaction) first. */
import { sql, type Selectable } from 'kysely';
import { isPossibleAccountId } from '../accounts/account.js';
import type { Db } from '../db/database.js';
import type { EntitlementsTable, GroupsTable } from '../db/schema.js';
import { pageAfter, type PageCursor } from '../shared/pagination.js';
import type { Entitlement, Group, GroupMember } from './group.js';

const NO_ID = '00000000-0000-0000-0000-000000000000';
/** Ids per `in (...)` list. */
const ID_CHUNK = 1000;
const uuidOrNone = (id: string) => (isPossibleAccountId(id) ? id : NO_ID);

function toGroup(row: Selectable<GroupsTable>): Group {
  return { id: row.id, name: row.name, parentId: row.parent_id, createdAt: row.created_at, updatedAt: row.updated_at };
}

function toEntitlement(row: Selectable<EntitlementsTable>): Entitlement {
  const common = {
    id: row.id,
    resourceServerId: row.resource_server_id,
    scopes: row.scopes,
    roles: row.roles,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  return row.group_id !== null ? { ...common, groupId: row.group_id, accountId: null } : { ...common, groupId: null, accountId: row.account_id! };
}

/** Every group (the registry holds them all). */
export async function selectAllGroups(db: Db): Promise<Group[]> {
  return (await db.selectFrom('groups').selectAll().execute()).map(toGroup);
}

/** One group by id, or undefined. */
export async function selectGroup(db: Db, id: string): Promise<Group | undefined> {
  if (!isPossibleAccountId(id)) return undefined;
  const row = await db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toGroup(row);
}

/** A page of groups in creation order, `limit + 1` rows. */
export async function selectGroupPage(db: Db, limit: number, after: PageCursor | undefined): Promise<Group[]> {
  const rows = await pageAfter(db.selectFrom('groups').selectAll(), after, limit, {
    createdAtColumn: 'created_at',
    idColumn: 'id',
    storableId: uuidOrNone,
  }).execute();
  return rows.map(toGroup);
}

/** Inserts a group; run it inside the caller's transaction. */
export async function insertGroup(db: Db, group: { id: string; name: string; parentId: string | null }): Promise<Group> {
  const now = new Date();
  const row = await db
    .insertInto('groups')
    .values({ id: group.id, name: group.name, parent_id: group.parentId, created_at: now, updated_at: now })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toGroup(row);
}

/** Renames or moves a group; undefined when there is none. */
export async function updateGroupRow(db: Db, id: string, changes: { name: string; parentId: string | null }): Promise<Group | undefined> {
  const row = await db
    .updateTable('groups')
    .set({ name: changes.name, parent_id: changes.parentId, updated_at: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toGroup(row);
}

/** Deletes a group (its memberships and entitlements go with it); whether there was one. */
export async function deleteGroupRow(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('groups').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Whether any group sits under this one. */
export async function hasSubgroups(db: Db, id: string): Promise<boolean> {
  return (await db.selectFrom('groups').select('id').where('parent_id', '=', id).limit(1).executeTakeFirst()) !== undefined;
}

/** The ids of the groups an account is a direct member of. */
export async function selectGroupIdsOfAccount(db: Db, accountId: string): Promise<string[]> {
  if (!isPossibleAccountId(accountId)) return [];
  const rows = await db.selectFrom('group_members').select('group_id').where('account_id', '=', accountId).execute();
  return rows.map((row) => row.group_id);
}

/** The direct groups of each of these accounts (an account in none is absent). */
export async function selectGroupIdsOfAccounts(db: Db, accountIds: readonly string[]): Promise<Map<string, string[]>> {
  const byAccount = new Map<string, string[]>();
  const possible = accountIds.filter(isPossibleAccountId);
  // In chunks: a bound on the statement's parameters, whatever the number of accounts.
  for (let start = 0; start < possible.length; start += ID_CHUNK) {
    const rows = await db
      .selectFrom('group_members')
      .select(['account_id', 'group_id'])
      .where('account_id', 'in', possible.slice(start, start + ID_CHUNK))
      .execute();
    for (const row of rows) {
      const groups = byAccount.get(row.account_id);
      if (groups) groups.push(row.group_id);
      else byAccount.set(row.account_id, [row.group_id]);
    }
  }
  return byAccount;
}

/**
 * The accounts that are direct members of the group or of one of its subgroups (those who hold what
 * it gives), at most `limit` of them.
 */
export async function selectMembersOfGroupTree(db: Db, groupId: string, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('group_members')
    .select('account_id')
    .distinct()
    .where(
      'group_id',
      'in',
      db
        .selectFrom('groups')
        .select('id')
        .where((eb) => eb.or([eb('id', '=', groupId), eb('parent_id', '=', groupId)])),
    )
    .limit(limit)
    .execute();
  return rows.map((row) => row.account_id);
}

/** A page of a group's members in the order they were added, `limit + 1` rows. */
export async function selectMemberPage(db: Db, groupId: string, limit: number, after: PageCursor | undefined): Promise<GroupMember[]> {
  const rows = await pageAfter(
    db
      .selectFrom('group_members')
      .innerJoin('accounts', 'accounts.id', 'group_members.account_id')
      .select(['group_members.account_id', 'group_members.created_at', 'accounts.email', 'accounts.name'])
      .where('group_members.group_id', '=', groupId),
    after,
    limit,
    { createdAtColumn: 'group_members.created_at', idColumn: 'group_members.account_id', storableId: uuidOrNone },
  ).execute();
  return rows.map((row) => ({ accountId: row.account_id, email: row.email, name: row.name, addedAt: row.created_at }));
}

/** Of these ids, the accounts that exist, with their emails (for the audit trail). */
export async function selectExistingAccounts(db: Db, ids: readonly string[]): Promise<Map<string, string>> {
  const possible = ids.filter(isPossibleAccountId);
  if (possible.length === 0) return new Map();
  const rows = await db.selectFrom('accounts').select(['id', 'email']).where('id', 'in', possible).execute();
  return new Map(rows.map((row) => [row.id, row.email]));
}

/** Adds these (existing) accounts to a group; answers the ones that were not members yet. */
export async function insertMembers(db: Db, groupId: string, accountIds: readonly string[]): Promise<Set<string>> {
  if (accountIds.length === 0) return new Set();
  const now = new Date();
  const rows = await db
    .insertInto('group_members')
    .values(accountIds.map((accountId) => ({ group_id: groupId, account_id: accountId, created_at: now })))
    .onConflict((oc) => oc.columns(['group_id', 'account_id']).doNothing())
    .returning('account_id')
    .execute();
  return new Set(rows.map((row) => row.account_id));
}

/** Removes these accounts from a group; answers the ones that were members. */
export async function deleteMembers(db: Db, groupId: string, accountIds: readonly string[]): Promise<Set<string>> {
  const possible = accountIds.filter(isPossibleAccountId);
  if (possible.length === 0) return new Set();
  const rows = await db.deleteFrom('group_members').where('group_id', '=', groupId).where('account_id', 'in', possible).returning('account_id').execute();
  return new Set(rows.map((row) => row.account_id));
}

/** Every entitlement (the registry holds them all). */
export async function selectAllEntitlements(db: Db): Promise<Entitlement[]> {
  return (await db.selectFrom('entitlements').selectAll().execute()).map(toEntitlement);
}

/** The resource servers that enforce entitlements (only `resourceServerId` when given): id and identifier. */
export async function selectEnforcingResourceServers(db: Db, resourceServerId?: string): Promise<{ id: string; identifier: string }[]> {
  let query = db.selectFrom('resource_servers').select(['id', 'identifier']).where('enforce_entitlements', '=', true);
  if (resourceServerId !== undefined) query = query.where('id', '=', resourceServerId);
  return query.execute();
}

/** Every entitlement to these resource servers. */
export async function selectEntitlementsTo(db: Db, resourceServerIds: readonly string[]): Promise<Entitlement[]> {
  if (resourceServerIds.length === 0) return [];
  return (await db.selectFrom('entitlements').selectAll().where('resource_server_id', 'in', resourceServerIds).execute()).map(toEntitlement);
}

/** One entitlement of a resource server, or undefined. */
export async function selectEntitlement(db: Db, resourceServerId: string, id: string): Promise<Entitlement | undefined> {
  if (!isPossibleAccountId(id)) return undefined;
  const row = await db.selectFrom('entitlements').selectAll().where('id', '=', id).where('resource_server_id', '=', resourceServerId).executeTakeFirst();
  return row && toEntitlement(row);
}

/** A page of a resource server's entitlements in creation order, `limit + 1` rows. */
export async function selectEntitlementPage(db: Db, resourceServerId: string, limit: number, after: PageCursor | undefined): Promise<Entitlement[]> {
  const rows = await pageAfter(db.selectFrom('entitlements').selectAll().where('resource_server_id', '=', resourceServerId), after, limit, {
    createdAtColumn: 'created_at',
    idColumn: 'id',
    storableId: uuidOrNone,
  }).execute();
  return rows.map(toEntitlement);
}

/** Inserts an entitlement; run it inside the caller's transaction. */
export async function insertEntitlement(
  db: Db,
  entitlement: { id: string; resourceServerId: string; groupId: string | null; accountId: string | null; scopes: readonly string[]; roles: readonly string[] },
): Promise<Entitlement> {
  const now = new Date();
  const row = await db
    .insertInto('entitlements')
    .values({
      id: entitlement.id,
      resource_server_id: entitlement.resourceServerId,
      group_id: entitlement.groupId,
      account_id: entitlement.accountId,
      scopes: JSON.stringify(entitlement.scopes),
      roles: JSON.stringify(entitlement.roles),
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toEntitlement(row);
}

/** Replaces an entitlement's scopes and roles; undefined when there is none. */
export async function updateEntitlementRow(
  db: Db,
  id: string,
  changes: { scopes: readonly string[]; roles: readonly string[] },
): Promise<Entitlement | undefined> {
  const row = await db
    .updateTable('entitlements')
    .set({ scopes: JSON.stringify(changes.scopes), roles: JSON.stringify(changes.roles), updated_at: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toEntitlement(row);
}

/** Deletes an entitlement; whether there was one. */
export async function deleteEntitlementRow(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('entitlements').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * The enabled accounts that hold `scope` of the resource server through an entitlement: directly, as
 * members of an entitled group, or as members of a subgroup of one. For the last-administrator rule.
 */
export async function selectAccountsEntitledTo(db: Db, resourceServerId: string, scope: string): Promise<Set<string>> {
  const { rows } = await sql<{ account_id: string }>`
    with entitled as (
      select group_id, account_id from entitlements
      where resource_server_id = ${resourceServerId} and scopes ? ${scope}
    ),
    entitled_groups as (
      select g.id from groups g
      where g.id in (select group_id from entitled) or g.parent_id in (select group_id from entitled)
    )
    select a.id as account_id from accounts a
    where not a.disabled
      and (a.id in (select account_id from entitled where account_id is not null)
        or a.id in (select account_id from group_members where group_id in (select id from entitled_groups)))
  `.execute(db);
  return new Set(rows.map((row) => row.account_id));
}
