/**
 * When signing keys change on their own: the scheduled promotion of a `next` key, the removal of a
 * retired one, and the manual rotation's guard, in process on a real database of the test's own.
 * Time passing is simulated by moving every stored key time back (what the keys' rows would look like
 * that much later); the functions under test read the real clock.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { pino } from 'pino';
import { migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';
import { MemoryChangeBus, type ChangeEvent } from '../../src/events/change-bus.js';
import { keyEncryptionKeyFromBase64 } from '../../src/keys/key-encryption.js';
import {
  ensureSigningKeys,
  listSigningKeys,
  maintainSigningKeys,
  NextKeyTooYoungError,
  revokeSigningKey,
  rotateSigningKeys,
  type KeyChangeContext,
  type KeyPolicy,
} from '../../src/keys/key-lifecycle.js';
import { KeyMaintenance } from '../../src/keys/key-maintenance.js';
import { SIGNING_ALGS, withKeyLock, type SigningAlg } from '../../src/keys/signing-keys.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';

const ROTATION_INTERVAL = 3600;
const JWKS_MAX_AGE = 900;

let database: ScratchDatabase;
let db: Db;
let events: ChangeEvent[];
let longestJwtLifetime: number;
let change: KeyChangeContext;

const policy: KeyPolicy = {
  jwksMaxAgeSeconds: JWKS_MAX_AGE,
  rotationIntervalSeconds: ROTATION_INTERVAL,
  longestJwtLifetimeSeconds: () => longestJwtLifetime,
  // Every algorithm enabled: scheduling is per algorithm, and each must follow it.
  algs: SIGNING_ALGS,
};

beforeAll(async () => {
  database = await createScratchDatabase('key_scheduling');
  db = await openDatabase(database.url, '');
  await migrateToLatest(db);
});

afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

beforeEach(async () => {
  await db.deleteFrom('signing_keys').execute();
  await db.deleteFrom('audit_events').execute();
  const kek = keyEncryptionKeyFromBase64(randomBytes(32).toString('base64'));
  events = [];
  const bus = new MemoryChangeBus();
  bus.subscribe((event) => events.push(event));
  longestJwtLifetime = 600;
  change = { db, bus, actor: 'test', kek, policy };
  await ensureSigningKeys(db, kek, 'test', SIGNING_ALGS);
});

afterEach(async () => {
  await database.setReachable(true);
});

/** Lets `seconds` pass for the stored keys: every time they hold moves that far into the past. */
async function elapse(seconds: number): Promise<void> {
  const shift = sql`make_interval(secs => ${seconds})`;
  await sql`
    update signing_keys set
      created_at = created_at - ${shift},
      activates_at = activates_at - ${shift},
      retires_at = retires_at - ${shift},
      expires_at = expires_at - ${shift}
  `.execute(db);
}

interface StoredKey {
  kid: string;
  alg: string;
  state: string;
  created_at: Date;
  activates_at: Date | null;
  expires_at: Date | null;
}

async function storedKeys(): Promise<StoredKey[]> {
  return db.selectFrom('signing_keys').select(['kid', 'alg', 'state', 'created_at', 'activates_at', 'expires_at']).execute();
}

/** The kid in `state` for each algorithm. */
async function kidsIn(state: 'current' | 'next' | 'retired'): Promise<Record<SigningAlg, string>> {
  const keys = await storedKeys();
  return Object.fromEntries(SIGNING_ALGS.map((alg) => [alg, keys.find((k) => k.alg === alg && k.state === state)?.kid])) as Record<SigningAlg, string>;
}

async function publishedKids(): Promise<string[]> {
  return (await listSigningKeys(db, policy, 100, undefined)).map((key) => key.kid);
}

async function auditActions(action: string): Promise<number> {
  const rows = await db.selectFrom('audit_events').select('id').where('action', '=', action).execute();
  return rows.length;
}

/** Seconds from now to `date`. */
const secondsUntil = (date: Date | null) => (date!.getTime() - Date.now()) / 1000;

describe('scheduled rotation', () => {
  it('promotes every next key once its current key has signed for the rotation interval, and not before', async () => {
    const before = { current: await kidsIn('current'), next: await kidsIn('next') };
    expect(await maintainSigningKeys(change)).toEqual({ rotated: 0, removed: 0 });

    // The admin API shows when: the current key retires, and the next activates, one interval after it started.
    for (const key of await listSigningKeys(db, policy, 100, undefined)) {
      if (key.state === 'current') expect(secondsUntil(key.retiresAt)).toBeCloseTo(ROTATION_INTERVAL, -1);
      if (key.state === 'next') expect(secondsUntil(key.activatesAt)).toBeCloseTo(ROTATION_INTERVAL, -1);
    }

    await elapse(ROTATION_INTERVAL - 30);
    expect(await maintainSigningKeys(change)).toEqual({ rotated: 0, removed: 0 });
    expect(await kidsIn('current')).toEqual(before.current);
    expect(events).toEqual([]);

    await elapse(60);
    expect(await maintainSigningKeys(change)).toEqual({ rotated: SIGNING_ALGS.length, removed: 0 });
    expect(await kidsIn('current')).toEqual(before.next);
    expect(await kidsIn('retired')).toEqual(before.current);
    const next = await kidsIn('next');
    for (const alg of SIGNING_ALGS) {
      expect(next[alg]).toBeDefined();
      expect([before.current[alg], before.next[alg]]).not.toContain(next[alg]);
    }
    // Every instance is told to reload its key ring, and the audit trail has one entry per algorithm.
    expect(events).toEqual([{ kind: 'keys', id: '*' }]);
    expect(await auditActions('key.rotate')).toBe(SIGNING_ALGS.length);
  });

  it('does not promote a next key published for less than JWKS_MAX_AGE, however long the current key has signed', async () => {
    await elapse(ROTATION_INTERVAL - 600);
    // A compromised next key is replaced by a brand-new one, which resource servers have not fetched yet.
    const young = await kidsIn('next');
    await revokeSigningKey(change, young.ES256);
    const replacement = (await kidsIn('next')).ES256;
    const es256Current = (await kidsIn('current')).ES256;

    await elapse(610);
    expect(await maintainSigningKeys(change)).toEqual({ rotated: SIGNING_ALGS.length - 1, removed: 0 });
    expect((await kidsIn('current')).ES256).toBe(es256Current);
    const listed = (await listSigningKeys(db, policy, 100, undefined)).find((key) => key.kid === replacement)!;
    expect(secondsUntil(listed.activatesAt)).toBeCloseTo(JWKS_MAX_AGE - 610, -1);

    await elapse(JWKS_MAX_AGE - 610 - 30);
    // (The revoked key is gone by now: it outlived every token it could have signed.)
    expect(await maintainSigningKeys(change)).toMatchObject({ rotated: 0 });
    await elapse(60);
    expect(await maintainSigningKeys(change)).toMatchObject({ rotated: 1 });
    expect((await kidsIn('current')).ES256).toBe(replacement);
  });

  it('is done by one instance at a time: a pass finding the key lock taken does nothing', async () => {
    await elapse(ROTATION_INTERVAL + 10);
    const current = await kidsIn('current');
    // Another instance's change holds the lock (on another connection of the pool).
    await withKeyLock(db, async () => {
      expect(await maintainSigningKeys(change)).toBeUndefined();
    });
    expect(await kidsIn('current')).toEqual(current);
    expect(await maintainSigningKeys(change)).toEqual({ rotated: SIGNING_ALGS.length, removed: 0 });
  });
});

describe('retired keys', () => {
  it('stay published until the longest JWT they signed has expired (plus clock skew), then leave the JWKS and are removed', async () => {
    longestJwtLifetime = 1200;
    await elapse(ROTATION_INTERVAL + 10);
    await maintainSigningKeys(change);
    const retired = Object.values(await kidsIn('retired'));
    // A margin of 60 s for clocks that disagree and instances that follow the change late.
    const keepFor = longestJwtLifetime + 60;
    for (const key of (await storedKeys()).filter((k) => retired.includes(k.kid))) {
      expect(secondsUntil(key.expires_at)).toBeCloseTo(keepFor, -1);
    }
    // Resource servers shorten their JWT lifetime later: what was already signed still counts.
    longestJwtLifetime = 60;

    await elapse(keepFor - 30);
    expect(await maintainSigningKeys(change)).toEqual({ rotated: 0, removed: 0 });
    expect(await publishedKids()).toEqual(expect.arrayContaining(retired));

    await elapse(60);
    // Out of the JWKS at once, even before a maintenance pass deletes the rows.
    expect((await publishedKids()).filter((kid) => retired.includes(kid))).toEqual([]);
    events.length = 0;
    expect(await maintainSigningKeys(change)).toEqual({ rotated: 0, removed: SIGNING_ALGS.length });
    expect((await storedKeys()).filter((k) => retired.includes(k.kid))).toEqual([]);
    expect(await auditActions('key.remove')).toBe(SIGNING_ALGS.length);
    expect(events).toEqual([{ kind: 'keys', id: '*' }]);
  });
});

describe('manual rotation', () => {
  it('refuses while the next keys are younger than JWKS_MAX_AGE, saying how long to wait, unless forced', async () => {
    const error = await rotateSigningKeys(change, { force: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NextKeyTooYoungError);
    expect((error as NextKeyTooYoungError).retryAfterSeconds).toBeGreaterThan(JWKS_MAX_AGE - 30);
    expect((error as NextKeyTooYoungError).retryAfterSeconds).toBeLessThanOrEqual(JWKS_MAX_AGE);

    await elapse(JWKS_MAX_AGE - 300);
    const later = await rotateSigningKeys(change, { force: false }).catch((e: unknown) => e);
    expect((later as NextKeyTooYoungError).retryAfterSeconds).toBeGreaterThan(270);
    expect((later as NextKeyTooYoungError).retryAfterSeconds).toBeLessThanOrEqual(300);
    expect(events).toEqual([]);

    const next = await kidsIn('next');
    await rotateSigningKeys(change, { force: true });
    expect(await kidsIn('current')).toEqual(next);
    expect(events).toEqual([{ kind: 'keys', id: '*' }]);

    // The forced rotation published new next keys just now: the guard applies to them in turn.
    await expect(rotateSigningKeys(change, { force: false })).rejects.toBeInstanceOf(NextKeyTooYoungError);
    await elapse(JWKS_MAX_AGE + 1);
    const promoted = await kidsIn('next');
    await rotateSigningKeys(change, { force: false });
    expect(await kidsIn('current')).toEqual(promoted);
  });
});

describe('KeyMaintenance', () => {
  function capture() {
    const lines: string[] = [];
    return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) };
  }

  it('runs a pass as soon as it starts: due keys rotate, and the pass is logged', async () => {
    await elapse(ROTATION_INTERVAL + 10);
    const next = await kidsIn('next');
    const { lines, logger } = capture();
    const maintenance = new KeyMaintenance(change, logger);
    maintenance.start();
    await maintenance.close();
    expect(await kidsIn('current')).toEqual(next);
    const logged = lines.map((line) => JSON.parse(line) as { msg: string; rotated?: number });
    expect(logged).toContainEqual(expect.objectContaining({ msg: 'signing keys maintained', rotated: SIGNING_ALGS.length }));
  });

  it('logs a failed pass instead of crashing when PostgreSQL is down', async () => {
    const { lines, logger } = capture();
    const maintenance = new KeyMaintenance(change, logger);
    await database.setReachable(false);
    maintenance.start();
    await maintenance.close();
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toContain('signing key maintenance failed');
  });
});
