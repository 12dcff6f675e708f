/** `npm run migrate`: applies migrations/ to DATABASE_URL (or the embedded database). */
import { ConfigError, loadConfig } from '../src/config.js';
import { migrateToLatest, openDatabase } from '../src/db/database.js';

try {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl, config.pgliteDir);
  try {
    const applied = await migrateToLatest(db);
    console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Already up to date');
  } finally {
    await db.destroy();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : `Migration failed: ${(error as Error).message}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
