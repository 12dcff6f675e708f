/** `npm run migrate`, compiled as it ships: applies every migration to DATABASE_URL, then has nothing left to do. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { migrations } from '../../migrations/index.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';

let database: ScratchDatabase;

beforeAll(async () => {
  database = await createScratchDatabase('migrate_script');
});

afterAll(async () => {
  await database?.drop();
});

describe('npm run migrate', () => {
  it('applies the migrations to DATABASE_URL, then has nothing left to do', async () => {
    const run = () =>
      spawnSync(process.execPath, ['dist/scripts/migrate.js'], {
        env: { PATH: process.env.PATH ?? '', DATABASE_URL: database.url },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const first = run();
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`Applied: ${Object.keys(migrations).join(', ')}`);
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('Already up to date');
  });
});
