// Runs once before the suite: builds the server (end-to-end tests start dist/), and creates this run's
// own PostgreSQL database and Redis key prefix, which global-teardown.js removes.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export default async function globalSetup() {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const runId = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const database = `login_test_${runId}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`create database ${database}`);
  await client.end();

  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  process.env.TEST_RUN_DATABASE_URL = url.toString();
  process.env.TEST_RUN_DATABASE_NAME = database;
  process.env.TEST_REDIS_URL ??= 'redis://127.0.0.1:6379';
  process.env.TEST_RUN_REDIS_PREFIX = `test:${runId}:`;
}
