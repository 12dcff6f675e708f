/** Every migration goes up and comes back down on a real PostgreSQL, leaving nothing behind. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { migrateDown, migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';
import { migrations } from '../../migrations/index.js';

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `login_migrations_${randomBytes(4).toString('hex')}`;
let db: Db;

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function publicTables(): Promise<string[]> {
  const { rows } = await sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public'`.execute(db);
  // kysely's own bookkeeping tables stay: they record which migrations ran.
  return rows.map((r) => r.tablename).filter((t) => !t.startsWith('kysely_')).sort();
}

beforeAll(async () => {
  await adminQuery(`create database ${database}`);
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  db = await openDatabase(url.toString(), '');
});

afterAll(async () => {
  await db?.destroy();
  await adminQuery(`drop database if exists ${database} with (force)`);
});

describe('npm run migrate', () => {
  it('applies the migrations to DATABASE_URL, then has nothing left to do', async () => {
    const other = `${database}_script`;
    await adminQuery(`create database ${other}`);
    try {
      const url = new URL(adminUrl);
      url.pathname = `/${other}`;
      const run = () =>
        spawnSync(process.execPath, ['dist/scripts/migrate.js'], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: url.toString() }, encoding: 'utf8', timeout: 30_000 });
      const first = run();
      expect(first.status).toBe(0);
      expect(first.stdout).toContain(`Applied: ${Object.keys(migrations).join(', ')}`);
      const second = run();
      expect(second.status).toBe(0);
      expect(second.stdout).toContain('Already up to date');
    } finally {
      await adminQuery(`drop database if exists ${other} with (force)`);
    }
  });
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
