// Runs once after the suite: drops this run's database (and the scratch databases named after it, see
// databases.ts) and deletes every Redis key under its prefix.
import { Redis } from 'ioredis';
import pg from 'pg';

export default async function globalTeardown() {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
  await client.connect();
  const { rows } = await client.query('select datname from pg_database where starts_with(datname, $1)', [process.env.TEST_RUN_DATABASE_NAME]);
  for (const { datname } of rows) await client.query(`drop database if exists ${datname} with (force)`);
  await client.end();

  const redis = new Redis(process.env.TEST_REDIS_URL);
  const prefix = process.env.TEST_RUN_REDIS_PREFIX;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
}
