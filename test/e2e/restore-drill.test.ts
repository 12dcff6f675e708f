/**
 * The restore drill of docs/recovery.md: a server runs on its own PostgreSQL database and a Redis
 * with an append-only file; PostgreSQL is dumped (pg_dump), Redis crashes (SIGKILL) and its AOF is
 * copied; both are restored into a fresh database (pg_restore) and a fresh Redis; a server started on
 * the copies, with the same issuer and key-encryption key, serves the same clients, signing keys and
 * live tokens, and a token revoked before the backup stays revoked.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { AuthorizationServer } from 'oauth4webapi';
import pg from 'pg';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startSpareRedis, type SpareRedis } from '../helpers/spare-redis.js';

const run = promisify(execFile);

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const suffix = `${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
const SOURCE_DB = `restore_source_${suffix}`;
const RESTORED_DB = `restore_target_${suffix}`;

let dir: string;
let sourceRedis: SpareRedis | undefined;
let restoredRedis: SpareRedis | undefined;
let before: RunningServer | undefined;
let after: RunningServer | undefined;

/** The URL of database `name` on the test PostgreSQL. */
function databaseUrl(name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'restore-drill-'));
  await admin(`create database ${SOURCE_DB}`);
  await admin(`create database ${RESTORED_DB}`);
});

afterAll(async () => {
  await Promise.all([before?.stop(), after?.stop()]);
  await Promise.all([sourceRedis?.stop(), restoredRedis?.stop()]);
  await admin(`drop database if exists ${SOURCE_DB} with (force)`);
  await admin(`drop database if exists ${RESTORED_DB} with (force)`);
  await rm(dir, { recursive: true, force: true });
});

it('restores a PostgreSQL dump and a Redis AOF, then serves the same clients, keys and live tokens', async () => {
  // Before: a server on its own database and a Redis that writes every command to its AOF.
  const sourceAof = join(dir, 'redis-source');
  await mkdir(sourceAof);
  sourceRedis = await startSpareRedis(undefined, { appendOnlyDir: sourceAof });
  before = await startServer({ env: { DATABASE_URL: databaseUrl(SOURCE_DB), REDIS_URL: sourceRedis.url } });
  const as: AuthorizationServer = await discover(before.issuer);
  const token = await adminToken(before.issuer);
  const api = await registerResourceServer(before.issuer, token, { identifier: uniqueResource('drill'), name: 'Drill', scopes: ['d:read'] });
  const internal = await registerClient(before.issuer, token, { client_name: 'Drill job', trust: 'internal', resources: [api.identifier], scope: 'd:read' });
  const partner = await registerClient(before.issuer, token, { client_name: 'Drill partner', trust: 'external', resources: [api.identifier], scope: 'd:read' });
  const jwt = await issueToken(as, internal.client_id, internal.client_secret, { scope: 'd:read' });
  const opaque = await issueToken(as, partner.client_id, partner.client_secret, { scope: 'd:read' });
  const revokedJwt = await issueToken(as, internal.client_id, internal.client_secret, { scope: 'd:read' });
  const revokedOpaque = await issueToken(as, partner.client_id, partner.client_secret, { scope: 'd:read' });
  expect(await revoke(as, internal.client_id, internal.client_secret, revokedJwt.accessToken)).toBe(200);
  expect(await revoke(as, partner.client_id, partner.client_secret, revokedOpaque.accessToken)).toBe(200);
  const jwksBefore = (await (await fetch(as.jwks_uri!)).json()) as { keys: { kid: string }[] };

  // Backup: a dump of the database while the server runs; Redis crashes, its AOF is what is left.
  const dump = join(dir, 'login.dump');
  await run('pg_dump', ['--format=custom', '--no-owner', `--file=${dump}`, databaseUrl(SOURCE_DB)]);
  await before.stop();
  await sourceRedis.stop();
  expect(await readdir(join(sourceAof, 'appendonlydir'))).toEqual(expect.arrayContaining([expect.stringMatching(/\.aof$/)]));

  // Restore into a fresh database and a fresh Redis that loads the copied AOF.
  await run('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${databaseUrl(RESTORED_DB)}`, dump]);
  const restoredAof = join(dir, 'redis-restored');
  await cp(join(sourceAof, 'appendonlydir'), join(restoredAof, 'appendonlydir'), { recursive: true });
  restoredRedis = await startSpareRedis(undefined, { appendOnlyDir: restoredAof });

  // After: the same issuer (its port, free again) and key-encryption key, on the restored stores.
  after = await startServer({ port: before.port, env: { DATABASE_URL: databaseUrl(RESTORED_DB), REDIS_URL: restoredRedis.url } });
  expect((await fetch(`${after.issuer}/readyz`)).status).toBe(200);
  const inspect = (value: string) => introspect(as, api.introspection.client_id, api.introspection.client_secret, value);

  // The same clients, with the same secrets; the same resource server and its introspection secret.
  const adminAfter = await adminToken(after.issuer);
  expect((await adminCall(after.issuer, adminAfter, 'GET', `/clients/${partner.client_id}`)).status).toBe(200);
  await issueToken(as, partner.client_id, partner.client_secret, { scope: 'd:read' });
  await issueToken(as, internal.client_id, internal.client_secret, { scope: 'd:read' });

  // The same signing keys: nothing new was generated, and JWTs signed before verify after.
  const jwksAfter = (await (await fetch(as.jwks_uri!)).json()) as { keys: { kid: string }[] };
  expect(jwksAfter.keys.map((k) => k.kid).sort()).toEqual(jwksBefore.keys.map((k) => k.kid).sort());

  // The same live tokens, and the revocations made before the backup.
  expect(await inspect(jwt.accessToken)).toMatchObject({ active: true, client_id: internal.client_id });
  expect(await inspect(opaque.accessToken)).toMatchObject({ active: true, client_id: partner.client_id });
  expect(await inspect(revokedJwt.accessToken)).toEqual({ active: false });
  expect(await inspect(revokedOpaque.accessToken)).toEqual({ active: false });
}, 90_000);
