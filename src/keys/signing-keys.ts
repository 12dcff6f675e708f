/**
 * Signing keys: generated here, stored in PostgreSQL with the private part encrypted, loaded into a
 * `KeyRing` that the issuer signs with and publishes. One key per algorithm and state: a key is never
 * used with two algorithms. States follow the lifecycle next -> current -> retired (or revoked).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { decryptWithKek, encryptWithKek, type KeyEncryptionKey } from './key-encryption.js';

/** The JWS algorithms a resource server may choose for its JWT access tokens. */
export const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** The signing keys in force, as the issuer uses them. */
export interface KeyRing {
  /** Private JWKs the provider may sign with and publishes (public parts): current keys first. */
  readonly privateJwks: JWK[];
  /** Public JWKs of every published key (current, next and retired). */
  readonly publicJwks: JWK[];
  /** The `kid` that signs new tokens, per algorithm. */
  readonly currentKid: Readonly<Record<SigningAlg, string>>;
}

// Serialises key generation across processes and hosts sharing the database.
const KEY_LOCK_ID = 7_300_001;

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

async function insertKey(db: Db, kek: KeyEncryptionKey, alg: SigningAlg, state: 'next' | 'current'): Promise<void> {
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
      activates_at: state === 'current' ? new Date() : null,
    })
    .execute();
}

/**
 * Makes sure every algorithm has a `current` and a `next` key, generating what is missing.
 * Safe to call from several processes at once: they take turns under an advisory lock.
 */
export async function ensureSigningKeys(db: Db, kek: KeyEncryptionKey): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${KEY_LOCK_ID})`.execute(trx);
    const rows = await trx
      .selectFrom('signing_keys')
      .select(['alg', 'state'])
      .where('state', 'in', ['current', 'next'])
      .execute();
    for (const alg of SIGNING_ALGS) {
      for (const state of ['current', 'next'] as const) {
        if (!rows.some((r) => r.alg === alg && r.state === state)) await insertKey(trx, kek, alg, state);
      }
    }
  });
}

/**
 * Loads the published keys and decrypts their private parts.
 * @param keks every key-encryption key that may have sealed a stored key, by id.
 */
export async function loadKeyRing(db: Db, keks: ReadonlyMap<string, KeyEncryptionKey>): Promise<KeyRing> {
  const rows = await db
    .selectFrom('signing_keys')
    .selectAll()
    .where('state', 'in', ['current', 'next', 'retired'])
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    // current first: oidc-provider signs ID tokens with the first key matching the algorithm.
    .orderBy(sql`case state when 'current' then 0 when 'next' then 1 else 2 end`)
    .orderBy('created_at', 'desc')
    .execute();

  const currentKid: Partial<Record<SigningAlg, string>> = {};
  const privateJwks: JWK[] = [];
  for (const row of rows) {
    const kek = keks.get(row.kek_id);
    if (!kek) throw new Error(`signing key ${row.kid} is sealed by key-encryption key ${row.kek_id}, which is not configured`);
    privateJwks.push(JSON.parse(decryptWithKek(kek, row.private_jwk_encrypted, sealingContext(row.kid, row.kek_id))) as JWK);
    if (row.state === 'current') currentKid[row.alg as SigningAlg] ??= row.kid;
  }
  for (const alg of SIGNING_ALGS) {
    if (!currentKid[alg]) throw new Error(`no current signing key for ${alg}`);
  }
  return {
    privateJwks,
    publicJwks: rows.map((r) => r.public_jwk as JWK),
    currentKid: currentKid as Record<SigningAlg, string>,
  };
}

