// Runs once before every run, whichever projects it selects: creates this run's own PostgreSQL
// database and Redis key prefix, which global-teardown.js removes. (The e2e project builds dist/ in
// build-setup.js.)
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export default async function globalSetup() {
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
