/** The kysely instance: PostgreSQL through `pg`, or embedded PGlite when no DATABASE_URL is set. */
import { mkdirSync } from 'node:fs';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { migrations } from '../../migrations/index.js';
import { postgresQueryTracing } from '../observability/tracing.js';
import type { Database } from './schema.js';

export type { Database };
/** The typed database handle used by every repository. */
export type Db = Kysely<Database>;

/** Opens the database: `url` for PostgreSQL, otherwise PGlite stored in `pgliteDir`. */
export async function openDatabase(url: string | undefined, pgliteDir: string): Promise<Db> {
  if (url) {
    // Short timeouts: with PostgreSQL away, requests answer 503 within seconds instead of piling up.
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 2_000, query_timeout: 5_000 });
    // A client losing its connection must not crash the process. Idle clients report it on the pool,
    // which replaces them; a checked-out client (in a transaction, or mid-query) emits it on itself,
    // where `pg` throws it when nobody listens. Its query already rejects with the same error and the
    // pool discards it on release, so the listener has nothing left to do.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: postgresQueryTracing() });
  }
  // Loaded lazily: production never pays for the embedded database's WebAssembly.
  const [{ PGlite }, { PGliteDialect }] = await Promise.all([import('@electric-sql/pglite'), import('kysely-pglite-dialect')]);
  mkdirSync(pgliteDir, { recursive: true });
  return new Kysely<Database>({ dialect: new PGliteDialect(new PGlite(pgliteDir)) });
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Reverts the latest migration (used by tests of the down migrations). */
export async function migrateDown(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error } = await migrator.migrateDown();
  if (error) throw error instanceof Error ? error : new Error(JSON.stringify(error));
}

/** Resolves when the database answers a trivial query. */
export async function pingDatabase(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
