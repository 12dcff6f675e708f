/** Every migration goes up and comes back down on a real PostgreSQL, leaving nothing behind. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { migrateDown, migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';
import { migrations } from '../../migrations/index.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';

let database: ScratchDatabase;
let db: Db;

async function publicTables(): Promise<string[]> {
  const { rows } = await sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public'`.execute(db);
  // kysely's own bookkeeping tables stay: they record which migrations ran.
  return rows
    .map((r) => r.tablename)
    .filter((t) => !t.startsWith('kysely_'))
    .sort();
}

beforeAll(async () => {
  database = await createScratchDatabase('migrations');
  db = await openDatabase(database.url, '');
});

afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

describe('migrations', () => {
  it('apply in order, undo one by one down to an empty schema, and apply again', async () => {
    expect(await migrateToLatest(db)).toEqual(Object.keys(migrations));
    expect(await publicTables()).toEqual(expect.arrayContaining(['accounts', 'audit_events', 'client_secrets', 'clients', 'resource_servers', 'signing_keys']));

    for (let i = 0; i < Object.keys(migrations).length; i++) await migrateDown(db);
    expect(await publicTables()).toEqual([]);

    expect(await migrateToLatest(db)).toEqual(Object.keys(migrations));
    expect(await migrateToLatest(db)).toEqual([]);
  });
});
