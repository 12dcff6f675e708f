/**
 * The lifecycle of signing keys: `next` (published, not yet signing) -> `current` (signing) ->
 * `retired` (published until the last token it signed has expired) -> removed; or `revoked` at once
 * when compromised. Every change runs under the signing-key lock, lands together with its audit entry,
 * and is announced on the change bus so that every instance reloads its key ring.
 */
import type { Db } from '../db/database.js';
import { pageAfter, type PageCursor } from '../shared/pagination.js';
import { recordAudit } from '../audit/audit.js';
import { keyRotations, signingKeyRotationDue, signingKeys } from '../observability/metrics.js';
import type { ChangeContext } from '../shared/change-context.js';
import { recordRevocationEvent } from '../security-events/outbox.js';
import { ConflictError, NotFoundError } from '../shared/errors.js';
import type { KeyEncryptionKey } from './key-encryption.js';
import {
  insertSigningKey,
  resealPrivateKey,
  selectPublishedKeys,
  tryWithKeyLock,
  withKeyLock,
  type SigningAlg,
} from './signing-keys.js';

/**
 * Margin added to a retired key's time in the JWKS, for clocks that disagree and for instances that
 * keep signing with the old key until they follow the change (2 s at most).
 */
export const CLOCK_SKEW_SECONDS = 60;

/** The algorithms and timing rules of the lifecycle. */
export interface KeyPolicy {
  /** The enabled algorithms (`SIGNING_ALGS`): only their keys are generated, rotated and listed. */
  readonly algs: readonly SigningAlg[];
  /** Seconds resource servers may cache the JWKS: a `next` key is published this long before it signs. */
  readonly jwksMaxAgeSeconds: number;
  /** Seconds a key signs before the scheduler rotates it. */
  readonly rotationIntervalSeconds: number;
  /** The longest lifetime of a JWT any resource server is issued, in seconds (it changes with them). */
  readonly longestJwtLifetimeSeconds: () => number;
}

/** What a change of signing keys needs: who acts, the key that seals new keys, and the timing rules. */
export interface KeyChangeContext extends ChangeContext {
  readonly kek: KeyEncryptionKey;
  readonly policy: KeyPolicy;
}

/**
 * Thrown by a rotation that would promote a `next` key resource servers may not have fetched yet; a
 * conflict that passes on its own after `retryAfterSeconds`.
 */
export class NextKeyTooYoungError extends ConflictError {
  constructor(
    readonly alg: SigningAlg,
    readonly retryAfterSeconds: number,
    jwksMaxAgeSeconds: number,
  ) {
    super(
      `the next ${alg} key becomes safe to sign with in ${retryAfterSeconds} s: resource servers may cache the JWKS ` +
        `for ${jwksMaxAgeSeconds} s (JWKS_MAX_AGE); retry then, or force the rotation`,
      { retryAfterSeconds },
    );
  }
}

/** What a kid can look like: a JWK thumbprint, base64url (with room to spare for other hashes). */
const POSSIBLE_KID = /^[A-Za-z0-9_-]{1,128}$/;

/** Thrown when no key has the given `kid`. */
export class UnknownKeyError extends NotFoundError {
  constructor(kid: string) {
    super(`no signing key ${kid}`);
  }
}

/** Thrown when revoking a key that is already revoked. */
export class KeyAlreadyRevokedError extends ConflictError {
  constructor(kid: string) {
    super(`signing key ${kid} is already revoked`);
  }
}

/** A published key as the admin API lists it: facts for changes made, the schedule for the next rotation. */
export interface SigningKeyView {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly state: 'next' | 'current' | 'retired';
  readonly createdAt: Date;
  /** When it started signing; for a `next` key, when the scheduled rotation will promote it. */
  readonly activatesAt: Date | null;
  /** When it stopped signing; for the `current` key, when the scheduled rotation will retire it. */
  readonly retiresAt: Date | null;
  /** When a retired key leaves the JWKS. */
  readonly expiresAt: Date | null;
}

interface KeyTimes {
  readonly kid: string;
  readonly created_at: Date;
  readonly activates_at: Date | null;
}

type SigningPair = { readonly current: KeyTimes; readonly next: KeyTimes };

const secondsBetween = (from: Date, to: Date) => (to.getTime() - from.getTime()) / 1000;
const addSeconds = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);

/** When the scheduler will rotate this pair: the current key has served its interval and the next one is old enough. */
function scheduledRotation(pair: SigningPair, policy: KeyPolicy): Date {
  const served = addSeconds(pair.current.activates_at ?? pair.current.created_at, policy.rotationIntervalSeconds);
  const published = addSeconds(pair.next.created_at, policy.jwksMaxAgeSeconds);
  return served > published ? served : published;
}

async function selectSigningPairs(db: Db, algs: readonly SigningAlg[]): Promise<Record<SigningAlg, SigningPair>> {
  const rows = await db
    .selectFrom('signing_keys')
    .select(['kid', 'alg', 'state', 'created_at', 'activates_at'])
    .where('state', 'in', ['current', 'next'])
    .where('alg', 'in', [...algs])
    .execute();
  const pairs: Partial<Record<SigningAlg, SigningPair>> = {};
  for (const alg of algs) {
    const current = rows.find((r) => r.alg === alg && r.state === 'current');
    const next = rows.find((r) => r.alg === alg && r.state === 'next');
    if (!current || !next) throw new Error(`the ${alg} signing keys lack a current or a next key`);
    pairs[alg] = { current, next };
  }
  // Only the enabled algorithms are present; callers index it with those alone.
  return pairs as Record<SigningAlg, SigningPair>;
}

/**
 * Sets the signing-key gauges from the database: how many current and next keys each enabled
 * algorithm has, and when its current key is due to be rotated out. Tolerates a missing key (that is
 * what it reports). Algorithms not enabled (SIGNING_ALGS) are not reported: no alert for them.
 */
export async function observeSigningKeys(db: Db, policy: KeyPolicy): Promise<void> {
  const rows = await db
    .selectFrom('signing_keys')
    .select(['alg', 'state', 'created_at', 'activates_at'])
    .where('state', 'in', ['current', 'next'])
    .execute();
  for (const alg of policy.algs) {
    for (const state of ['current', 'next'] as const) signingKeys.set({ alg, state }, rows.filter((r) => r.alg === alg && r.state === state).length);
    const current = rows.find((r) => r.alg === alg && r.state === 'current');
    if (current) {
      const due = addSeconds(current.activates_at ?? current.created_at, policy.rotationIntervalSeconds);
      signingKeyRotationDue.set({ alg }, due.getTime() / 1000);
    }
  }
}

/**
 * Makes sure every enabled algorithm has a `current` and a `next` key, generating what is missing.
 * Safe to call from several processes at once: they take turns under the lock.
 */
export async function ensureSigningKeys(db: Db, kek: KeyEncryptionKey, actor: string, algs: readonly SigningAlg[]): Promise<void> {
  await withKeyLock(db, async (trx) => {
    const rows = await trx.selectFrom('signing_keys').select(['alg', 'state']).where('state', 'in', ['current', 'next']).execute();
    const now = new Date();
    for (const alg of algs) {
      for (const state of ['current', 'next'] as const) {
        if (rows.some((r) => r.alg === alg && r.state === state)) continue;
        const kid = await insertSigningKey(trx, kek, alg, state, now);
        await recordAudit(trx, { actor, action: 'key.create', target: kid, details: { alg, state } });
      }
    }
  });
}

/** next -> current, current -> retired (published until its last token expires), and a new next. */
async function rotatePair(trx: Db, change: KeyChangeContext, alg: SigningAlg, pair: SigningPair, now: Date, forced: boolean): Promise<void> {
  const expiresAt = addSeconds(now, change.policy.longestJwtLifetimeSeconds() + CLOCK_SKEW_SECONDS);
  await trx.updateTable('signing_keys').set({ state: 'retired', retires_at: now, expires_at: expiresAt }).where('kid', '=', pair.current.kid).execute();
  await trx.updateTable('signing_keys').set({ state: 'current', activates_at: now }).where('kid', '=', pair.next.kid).execute();
  const nextKid = await insertSigningKey(trx, change.kek, alg, 'next', now);
  await recordAudit(trx, {
    actor: change.actor,
    action: 'key.rotate',
    target: pair.next.kid,
    details: { alg, forced, retired_kid: pair.current.kid, next_kid: nextKid, retired_expires_at: expiresAt.toISOString() },
  });
}

const announceKeyChange = (change: ChangeContext) => change.bus.publish({ kind: 'keys', id: '*' });

/**
 * Rotates every algorithm. Unless `force`, refuses (NextKeyTooYoungError) while any `next` key has
 * been published for less than the JWKS cache lifetime: a resource server could meet a token signed
 * by a key its cached JWKS does not hold.
 */
export async function rotateSigningKeys(change: KeyChangeContext, options: { force: boolean }): Promise<void> {
  await withKeyLock(change.db, async (trx) => {
    const now = new Date();
    const pairs = await selectSigningPairs(trx, change.policy.algs);
    if (!options.force) {
      const waits = change.policy.algs.map((alg) => ({ alg, seconds: change.policy.jwksMaxAgeSeconds - secondsBetween(pairs[alg].next.created_at, now) }));
      const longest = waits.reduce((a, b) => (b.seconds > a.seconds ? b : a));
      if (longest.seconds > 0) throw new NextKeyTooYoungError(longest.alg, Math.ceil(longest.seconds), change.policy.jwksMaxAgeSeconds);
    }
    for (const alg of change.policy.algs) await rotatePair(trx, change, alg, pairs[alg], now, options.force);
  });
  keyRotations.inc({ kind: options.force ? 'forced_rotate' : 'rotate' }, change.policy.algs.length);
  await announceKeyChange(change);
}

/**
 * Revokes a compromised key: it leaves the JWKS at once, and the tokens it signed stop verifying. A
 * revoked `current` key is replaced by its `next` at once (however young), a revoked `next` by a new
 * one. The row stays, unpublished, until every token it could have signed has expired.
 */
export async function revokeSigningKey(change: KeyChangeContext, kid: string): Promise<void> {
  // Kids are JWK thumbprints (base64url): any other id names no key, and is not sent to PostgreSQL
  // (which refuses a NUL with an error, not an empty answer).
  if (!POSSIBLE_KID.test(kid)) throw new UnknownKeyError(kid);
  await withKeyLock(change.db, async (trx) => {
    const row = await trx.selectFrom('signing_keys').select(['kid', 'alg', 'state']).where('kid', '=', kid).executeTakeFirst();
    // A key of an algorithm this deployment does not enable is not one of its keys.
    if (!row || !change.policy.algs.includes(row.alg as SigningAlg)) throw new UnknownKeyError(kid);
    if (row.state === 'revoked') throw new KeyAlreadyRevokedError(kid);
    const alg = row.alg as SigningAlg;
    const now = new Date();
    const pairs = await selectSigningPairs(trx, change.policy.algs);
    await trx
      .updateTable('signing_keys')
      .set({ state: 'revoked', expires_at: addSeconds(now, change.policy.longestJwtLifetimeSeconds() + CLOCK_SKEW_SECONDS) })
      .where('kid', '=', kid)
      .execute();
    const replacements: Record<string, string> = {};
    if (row.state === 'current') {
      await trx.updateTable('signing_keys').set({ state: 'current', activates_at: now }).where('kid', '=', pairs[alg].next.kid).execute();
      replacements.current_kid = pairs[alg].next.kid;
    }
    if (row.state === 'current' || row.state === 'next') {
      replacements.next_kid = await insertSigningKey(trx, change.kek, alg, 'next', now);
    }
    await recordAudit(trx, { actor: change.actor, action: 'key.revoke', target: kid, details: { alg, state: row.state, ...replacements } });
    await recordRevocationEvent(trx, { kind: 'key', kid });
  });
  keyRotations.inc({ kind: 'revoke' });
  await announceKeyChange(change);
}

/**
 * The periodic work, done by whichever instance gets the lock: rotates the algorithms that are due
 * and deletes retired and revoked keys past their `expires_at`.
 * @returns how many keys it rotated and removed, or `undefined` when another instance held the lock.
 */
export async function maintainSigningKeys(change: KeyChangeContext): Promise<{ rotated: number; removed: number } | undefined> {
  const outcome = await tryWithKeyLock(change.db, async (trx) => {
    const now = new Date();
    const pairs = await selectSigningPairs(trx, change.policy.algs);
    let rotated = 0;
    for (const alg of change.policy.algs) {
      if (scheduledRotation(pairs[alg], change.policy) > now) continue;
      await rotatePair(trx, change, alg, pairs[alg], now, false);
      rotated++;
    }
    const removed = await trx
      .deleteFrom('signing_keys')
      .where('state', 'in', ['retired', 'revoked'])
      .where('expires_at', '<=', now)
      .returning(['kid', 'alg', 'state'])
      .execute();
    for (const key of removed) {
      await recordAudit(trx, { actor: change.actor, action: 'key.remove', target: key.kid, details: { alg: key.alg, state: key.state } });
    }
    return { rotated, removed: removed.length };
  });
  if (outcome && outcome.rotated + outcome.removed > 0) {
    keyRotations.inc({ kind: 'rotate' }, outcome.rotated);
    keyRotations.inc({ kind: 'remove' }, outcome.removed);
    await announceKeyChange(change);
  }
  return outcome;
}

/** A page of published keys in creation order, `limit + 1` of them (see `toPage`). */
export async function listSigningKeys(db: Db, policy: KeyPolicy, limit: number, after: PageCursor | undefined): Promise<SigningKeyView[]> {
  const query = selectPublishedKeys(db, new Date(), policy.algs).select(['kid', 'alg', 'state', 'created_at', 'activates_at', 'retires_at', 'expires_at']);
  const [rows, pairs] = await Promise.all([
    pageAfter(query, after, limit, { createdAtColumn: 'created_at', idColumn: 'kid' }).execute(),
    selectSigningPairs(db, policy.algs),
  ]);
  return rows.map((row) => {
    const alg = row.alg as SigningAlg;
    const state = row.state as SigningKeyView['state'];
    const scheduled = scheduledRotation(pairs[alg], policy);
    return {
      kid: row.kid,
      alg,
      state,
      createdAt: row.created_at,
      activatesAt: state === 'next' ? scheduled : row.activates_at,
      retiresAt: state === 'current' ? scheduled : row.retires_at,
      expiresAt: row.expires_at,
    };
  });
}

/**
 * Re-encrypts every stored private key that `to` did not seal, in one transaction.
 * @param keks every key-encryption key that may have sealed a stored key, by id.
 * @returns how many keys were rewrapped.
 */
export async function rewrapSigningKeys(db: Db, keks: ReadonlyMap<string, KeyEncryptionKey>, to: KeyEncryptionKey, actor: string): Promise<number> {
  return withKeyLock(db, async (trx) => {
    const rows = await trx.selectFrom('signing_keys').select(['kid', 'kek_id', 'private_jwk_encrypted']).where('kek_id', '!=', to.id).execute();
    for (const row of rows) {
      await trx
        .updateTable('signing_keys')
        .set({ private_jwk_encrypted: resealPrivateKey(row, keks, to), kek_id: to.id })
        .where('kid', '=', row.kid)
        .execute();
    }
    if (rows.length > 0) {
      await recordAudit(trx, {
        actor,
        action: 'key.rewrap',
        target: to.id,
        details: { rewrapped: rows.length, from_kek_ids: [...new Set(rows.map((r) => r.kek_id))] },
      });
    }
    return rows.length;
  });
}
