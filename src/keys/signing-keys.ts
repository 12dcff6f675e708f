/**
 * Signing keys: generated here, stored in PostgreSQL with the private part encrypted, loaded into a
 * `KeyRing` that the issuer signs with and publishes. One key per algorithm and state: a key is never
 * used with two algorithms. States follow the lifecycle next -> current -> retired (or revoked); the
 * changes between them are in key-lifecycle.ts.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { SigningKeysTable } from '../db/schema.js';
import { decryptWithKek, encryptWithKek, type KeyEncryptionKey } from './key-encryption.js';

/** The JWS algorithms this server can sign with; a deployment enables some of them (`SIGNING_ALGS`). */
export const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/**
 * The algorithms enabled when `SIGNING_ALGS` is not set. Not EdDSA: its keys (OKP, Ed25519) break
 * widely deployed resource-server libraries that load the whole JWKS (cjose, used by Apache's
 * mod_oauth2 and mod_auth_openidc), so a deployment publishes them only when it asks for them.
 */
export const DEFAULT_SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256'];

/** The states whose keys are published (until a retired key's `expires_at`); `revoked` keys never are. */
const PUBLISHED_STATES = ['current', 'next', 'retired'] as const satisfies ReadonlyArray<SigningKeysTable['state']>;

/** The signing keys in force, as the issuer uses them. */
export interface KeyRing {
  /** The algorithms this deployment enables: only their keys are loaded, used and published. */
  readonly algs: readonly SigningAlg[];
  /** Private JWKs the provider may sign with and publishes (public parts): current keys first. */
  readonly privateJwks: JWK[];
  /** Public JWKs of every published key (current, next and retired). */
  readonly publicJwks: JWK[];
  /** The `kid` that signs new tokens, per enabled algorithm. */
  readonly currentKid: Readonly<Partial<Record<SigningAlg, string>>>;
  /** Names the published keys and their states: two key rings with equal fingerprints are the same. */
  readonly fingerprint: string;
}

// Serialises every change of signing keys across processes and hosts sharing the database.
const KEY_LOCK_ID = 7_300_001;

/** Runs `work` in a transaction holding the signing-key lock, waiting for the lock if another holds it. */
export async function withKeyLock<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${KEY_LOCK_ID})`.execute(trx);
    return work(trx);
  });
}

/**
 * Runs `work` in a transaction holding the signing-key lock, or does nothing and resolves
 * `undefined` when another process holds it (periodic work: that process is doing it).
 */
export async function tryWithKeyLock<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${KEY_LOCK_ID}) as locked`.execute(trx);
    return rows[0]?.locked ? work(trx) : undefined;
  });
}

async function generateSigningKey(alg: SigningAlg): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const options = alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true };
  const { privateKey, publicKey } = await generateKeyPair(alg, options);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const stamp = { kid, alg, use: 'sig' };
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), ...stamp }, publicJwk: { ...publicJwk, ...stamp } };
}

/** Associated data binding a sealed private key to its row. */
const sealingContext = (kid: string, kekId: string) => `signing-key:${kid}:${kekId}`;

/**
 * Generates a key for `alg` and stores it in `state` (`current` only when an algorithm has no key
 * at all yet; otherwise new keys start as `next`). Returns its `kid`.
 */
export async function insertSigningKey(db: Db, kek: KeyEncryptionKey, alg: SigningAlg, state: 'next' | 'current', now: Date): Promise<string> {
  const { kid, privateJwk, publicJwk } = await generateSigningKey(alg);
  await db
    .insertInto('signing_keys')
    .values({
      kid,
      alg,
      state,
      public_jwk: JSON.stringify(publicJwk),
      private_jwk_encrypted: encryptWithKek(kek, JSON.stringify(privateJwk), sealingContext(kid, kek.id)),
      kek_id: kek.id,
      // Set here (millisecond precision) so keyset cursors round-trip through JavaScript dates.
      created_at: now,
      activates_at: state === 'current' ? now : null,
    })
    .execute();
  return kid;
}

/** A stored key's sealed private part and what opens it. */
export interface SealedPrivateKey {
  readonly kid: string;
  readonly kek_id: string;
  readonly private_jwk_encrypted: string;
}

/** The private JWK of a stored key; `keks` must hold the key-encryption key that sealed it. */
export function unsealPrivateJwk(row: SealedPrivateKey, keks: ReadonlyMap<string, KeyEncryptionKey>): JWK {
  return JSON.parse(decryptWithKek(kekFor(row, keks), row.private_jwk_encrypted, sealingContext(row.kid, row.kek_id))) as JWK;
}

/** The private part of a stored key sealed again, under `to`. */
export function resealPrivateKey(row: SealedPrivateKey, keks: ReadonlyMap<string, KeyEncryptionKey>, to: KeyEncryptionKey): string {
  return encryptWithKek(to, JSON.stringify(unsealPrivateJwk(row, keks)), sealingContext(row.kid, to.id));
}

function kekFor(row: SealedPrivateKey, keks: ReadonlyMap<string, KeyEncryptionKey>): KeyEncryptionKey {
  const kek = keks.get(row.kek_id);
  if (!kek) {
    throw new Error(
      `signing key ${row.kid} is sealed by key-encryption key ${row.kek_id}, which is not configured ` +
        '(give it as KEY_ENCRYPTION_KEY_PREVIOUS until `npm run keys:rewrap` has run)',
    );
  }
  return kek;
}

/**
 * The published keys of the enabled algorithms: a retired key leaves the JWKS at its `expires_at`,
 * even before the janitor deletes it. Keys of other algorithms (left from an earlier setting) stay
 * stored and unpublished.
 */
export function selectPublishedKeys(db: Db, now: Date, algs: readonly SigningAlg[]) {
  return db
    .selectFrom('signing_keys')
    .where('state', 'in', PUBLISHED_STATES)
    .where('alg', 'in', [...algs])
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
}

const fingerprintOf = (rows: ReadonlyArray<{ kid: string; state: string }>): string =>
  rows
    .map((row) => `${row.kid}:${row.state}`)
    .sort()
    .join(',');

/** The fingerprint of the key ring `loadKeyRing` would load now: a cheap query to poll for changes. */
export async function keyRingFingerprint(db: Db, algs: readonly SigningAlg[]): Promise<string> {
  return fingerprintOf(await selectPublishedKeys(db, new Date(), algs).select(['kid', 'state']).execute());
}

/**
 * Loads the published keys and decrypts their private parts.
 * @param keks every key-encryption key that may have sealed a stored key, by id.
 * @param algs the enabled algorithms.
 */
export async function loadKeyRing(db: Db, keks: ReadonlyMap<string, KeyEncryptionKey>, algs: readonly SigningAlg[]): Promise<KeyRing> {
  const rows = await selectPublishedKeys(db, new Date(), algs)
    .selectAll()
    // current first: oidc-provider signs ID tokens with the first key matching the algorithm. The
    // order is total, so every instance publishes the same document (and the same ETag).
    .orderBy(sql`case state when 'current' then 0 when 'next' then 1 else 2 end`)
    .orderBy('created_at', 'desc')
    .orderBy('kid')
    .execute();

  const currentKid: Partial<Record<SigningAlg, string>> = {};
  const privateJwks: JWK[] = [];
  for (const row of rows) {
    privateJwks.push(unsealPrivateJwk(row, keks));
    if (row.state === 'current') currentKid[row.alg as SigningAlg] ??= row.kid;
  }
  for (const alg of algs) {
    if (!currentKid[alg]) throw new Error(`no current signing key for ${alg}`);
  }
  return {
    algs,
    privateJwks,
    publicJwks: rows.map((r) => r.public_jwk as JWK),
    currentKid,
    fingerprint: fingerprintOf(rows),
  };
}
