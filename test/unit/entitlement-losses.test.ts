/**
 * Entitlement losses written to the outbox by the group service, against real PostgreSQL: one event
 * per (account, enforcing resource server) that lost something, in the change's transaction (a refused
 * change leaves none), and the bound on the accounts one change may take entitlements from.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';
import { MemoryChangeBus } from '../../src/events/change-bus.js';
import { MAX_ACCOUNTS_PER_NARROWING_CHANGE } from '../../src/groups/entitlement-losses.js';
import { insertMembers } from '../../src/groups/group-repository.js';
import { createEntitlement, createGroup, deleteGroup, removeMembers, updateGroup, type GroupChangeContext } from '../../src/groups/group-service.js';
import { insertResourceServer } from '../../src/resource-servers/resource-server-repository.js';
import type { RecordedEvent, RevocationEvent } from '../../src/security-events/revocation-event.js';
import { ConflictError } from '../../src/shared/errors.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';

const ADMIN_AUDIENCE = 'https://login.example.test/admin';

let database: ScratchDatabase;
let db: Db;
let change: GroupChangeContext;
let payroll: { id: string; identifier: string };
let adminApi: { id: string; identifier: string };

async function resourceServer(identifier: string, scopes: string[], enforceEntitlements: boolean) {
  return insertResourceServer(db, {
    id: randomUUID(),
    identifier,
    name: identifier,
    scopes,
    sensitiveScopes: [],
    tokenFormat: 'jwt',
    accessTokenTtl: null,
    signingAlg: 'RS256',
    introspectionResponse: 'json',
    requiredAcr: null,
    sensitiveScopesAcr: null,
    sensitiveScopesAcrMaxAge: null,
    introspectionClientId: `rs-${randomUUID()}`,
    enforceEntitlements,
    scopeDescriptions: {},
  });
}

/** `count` accounts, inserted directly (no password hashing: this is about groups). */
async function accounts(count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (let start = 0; start < ids.length; start += 1000) {
    const now = new Date();
    await db
      .insertInto('accounts')
      .values(
        ids.slice(start, start + 1000).map((id) => ({ id, email: `${id}@example.test`, name: 'Person', password_hash: 'x', created_at: now, updated_at: now })),
      )
      .execute();
  }
  return ids;
}

/** The outbox's events, and empties it (no relay runs here). */
async function takeOutbox(): Promise<RecordedEvent[]> {
  const rows = await db.deleteFrom('security_event_outbox').returning('event').execute();
  return rows.map((row) => (typeof row.event === 'string' ? JSON.parse(row.event) : row.event) as RecordedEvent);
}

beforeAll(async () => {
  database = await createScratchDatabase('entitlement_losses');
  db = await openDatabase(database.url, '');
  await migrateToLatest(db);
  change = { db, bus: new MemoryChangeBus(), actor: 'test', adminAudience: ADMIN_AUDIENCE };
  payroll = await resourceServer('https://payroll.example.test/', ['pay:read', 'pay:write'], true);
  adminApi = await resourceServer(ADMIN_AUDIENCE, ['admin:read', 'admin:write'], true);
  await resourceServer('https://legacy.example.test/', ['legacy:read'], false);
});

afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

describe('the outbox of a narrowing change', () => {
  it('holds one event per account that lost something, for the resource server concerned only', async () => {
    const [ann, bob] = await accounts(2);
    const group = await createGroup(change, { name: `Clerks ${randomUUID()}`, parentId: null });
    await createEntitlement(change, payroll.id, { groupId: group.id, accountId: null }, { scopes: ['pay:write'], roles: ['clerk'] });
    // Bob keeps pay:write through his own entitlement, but not the role.
    await createEntitlement(change, payroll.id, { groupId: null, accountId: bob }, { scopes: ['pay:write'], roles: [] });
    await insertMembers(db, group.id, [ann, bob]);
    await takeOutbox();

    const before = Math.floor(Date.now() / 1000);
    await removeMembers(change, group.id, [ann, bob]);
    // Ann's first, whatever order the rows come back in.
    const rank = (event: RevocationEvent) => (event.kind === 'entitlements' && event.sub === ann ? 0 : 1);
    const events = (await takeOutbox()).map((recorded) => recorded.event).sort((a, b) => rank(a) - rank(b));
    expect(events).toEqual([
      expect.objectContaining({ kind: 'entitlements', sub: ann, audiences: [payroll.identifier], scopes: ['pay:write'], roles: ['clerk'] }),
      expect.objectContaining({ kind: 'entitlements', sub: bob, audiences: [payroll.identifier], scopes: [], roles: ['clerk'] }),
    ]);
    for (const event of events) {
      expect(event).toMatchObject({ reason: 'group-membership-removed' });
      expect((event as { revokedBefore: number }).revokedBefore).toBeGreaterThan(before);
    }
  });

  it('a change refused (the last person administrator) leaves no event behind: both roll back together', async () => {
    const [admin] = await accounts(1);
    const admins = await createGroup(change, { name: `Admins ${randomUUID()}`, parentId: null });
    await createEntitlement(change, adminApi.id, { groupId: admins.id, accountId: null }, { scopes: ['admin:read', 'admin:write'], roles: [] });
    await insertMembers(db, admins.id, [admin]);
    await takeOutbox();

    await expect(removeMembers(change, admins.id, [admin])).rejects.toBeInstanceOf(ConflictError);
    expect(await takeOutbox()).toEqual([]);
  });

  it('moving the subgroup of the last person administrator away from the group that makes them one is refused too, with no event', async () => {
    const [admin] = await accounts(1);
    const admins = await createGroup(change, { name: `Admins ${randomUUID()}`, parentId: null });
    const oncall = await createGroup(change, { name: `On call ${randomUUID()}`, parentId: admins.id });
    await createEntitlement(change, adminApi.id, { groupId: admins.id, accountId: null }, { scopes: ['admin:read', 'admin:write'], roles: [] });
    await insertMembers(db, oncall.id, [admin]);
    // The previous test's administrator loses admin:write here: only this one is left.
    await db.deleteFrom('entitlements').where('resource_server_id', '=', adminApi.id).where('group_id', '!=', admins.id).execute();
    await takeOutbox();

    await expect(updateGroup(change, oncall.id, { name: oncall.name, parentId: null })).rejects.toBeInstanceOf(ConflictError);
    expect(await takeOutbox()).toEqual([]);
    // A rename is no move: allowed, and announces nothing.
    await updateGroup(change, oncall.id, { name: `${oncall.name} (renamed)`, parentId: admins.id });
    expect(await takeOutbox()).toEqual([]);
  });
});

describe('the bound on one change', () => {
  let members: string[];
  let group: { id: string };

  beforeAll(async () => {
    members = await accounts(MAX_ACCOUNTS_PER_NARROWING_CHANGE + 1);
    group = await createGroup(change, { name: `Everyone ${randomUUID()}`, parentId: null });
    await createEntitlement(change, payroll.id, { groupId: group.id, accountId: null }, { scopes: ['pay:read'], roles: [] });
    await insertMembers(db, group.id, members);
    await takeOutbox();
  }, 60_000);

  it(`past ${MAX_ACCOUNTS_PER_NARROWING_CHANGE} accounts a group is not deleted (409) and nothing is written`, async () => {
    await expect(deleteGroup(change, group.id)).rejects.toThrow(ConflictError);
    expect(await db.selectFrom('groups').select('id').where('id', '=', group.id).executeTakeFirst()).toBeDefined();
    expect(await takeOutbox()).toEqual([]);
  });

  it(`at ${MAX_ACCOUNTS_PER_NARROWING_CHANGE} accounts it is, with one event each, in bounded time`, async () => {
    await removeMembers(change, group.id, members.slice(0, 1));
    await takeOutbox();
    const started = performance.now();
    await deleteGroup(change, group.id);
    const tookMs = performance.now() - started;
    console.log(`deleting a group of ${MAX_ACCOUNTS_PER_NARROWING_CHANGE} members with their events took ${tookMs.toFixed(0)} ms`);
    const events = await takeOutbox();
    expect(events).toHaveLength(MAX_ACCOUNTS_PER_NARROWING_CHANGE);
    expect(new Set(events.map((recorded) => (recorded.event as { sub: string }).sub)).size).toBe(MAX_ACCOUNTS_PER_NARROWING_CHANGE);
    expect(events.every((recorded) => recorded.event.kind === 'entitlements' && recorded.event.reason === 'group-deleted')).toBe(true);
    expect(tookMs).toBeLessThan(20_000);
  }, 60_000);
});
