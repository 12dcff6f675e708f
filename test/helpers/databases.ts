/**
 * Empty PostgreSQL databases for tests that need one of their own (migrations, signing keys), apart
 * from the run's shared database. Their names start with the run's database name, so the global
 * teardown drops any that a failed or interrupted test left behind.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A database of a test's own. */
export interface ScratchDatabase {
  readonly name: string;
  /** Its URL, for openDatabase or DATABASE_URL. */
  readonly url: string;
  /**
   * Takes it away as a stopped server would be (cuts every connection, refuses new ones), or gives it
   * back: PostgreSQL going down and coming back, for this database alone.
   */
  setReachable(reachable: boolean): Promise<void>;
  /** Drops it, cutting any connection still open. */
  drop(): Promise<void>;
}

/** Creates an empty database named after the run's database and `label` (lowercase letters, digits, `_`). */
export async function createScratchDatabase(label: string): Promise<ScratchDatabase> {
  if (!/^[a-z0-9_]+$/.test(label)) throw new Error(`not a database label: ${label}`);
  const name = `${process.env.TEST_RUN_DATABASE_NAME ?? 'login_test'}_${label}_${randomBytes(3).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    setReachable: async (reachable) => {
      await adminQuery(`alter database ${name} with allow_connections ${reachable}`);
      if (!reachable) await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}'`);
    },
    drop: () => adminQuery(`drop database if exists ${name} with (force)`),
  };
}
