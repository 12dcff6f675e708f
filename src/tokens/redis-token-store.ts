/**
 * The token store in Redis (7.0 or later: grant sets use `EXPIRE ... NX` and `GT`).
 *
 * Each record is a hash under `${prefix}${model}:${sha256(id)}` with the fields `payload` (JSON, without
 * the id) and `consumed` (epoch seconds, once consumed). Index entries for uids and user codes hold the
 * digest of the id. Every key written for a token carries the token's TTL, so Redis forgets it on time.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { TokenStore } from './token-store.js';
import {
  accountKey,
  assertTokenModel,
  digest,
  epochSeconds,
  grantKey,
  isGrantKey,
  matchesLookup,
  planUpsert,
  recordKey,
  restorePayload,
  revokedJwtKey,
  uidKey,
  userCodeKey,
} from './token-keys.js';

/**
 * TTL of a grant set holding a token that never expires. A large TTL rather than none: the set is
 * then never without a TTL once written, so `EXPIRE NX` below fires only when the set is new.
 */
const NEVER_SECONDS = 100 * 365 * 24 * 60 * 60;

/**
 * Marks a record consumed only if it exists: a bare `HSET` on a record that expired or was revoked
 * since it was read would create a hash without a TTL that nothing ever deletes. One key, so it is
 * also a valid script in Redis Cluster.
 */
const CONSUME_SCRIPT = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'consumed', ARGV[1]) end";

/**
 * Adds `members` to the set at `setKey`, which lives as long as its longest-lived member. GT alone
 * would not do: it treats a key without a TTL (a set SADD just created) as never expiring, so NX
 * gives a new set its first TTL.
 */
function joinSet(multi: ChainableCommander, setKey: string, members: readonly string[], ttl: number): void {
  multi.sadd(setKey, ...members).expire(setKey, ttl, 'NX').expire(setKey, ttl, 'GT');
}

/** Runs a transaction or pipeline, throwing the first command error (ioredis resolves with them). */
async function execAll(commands: ChainableCommander): Promise<void> {
  const replies = await commands.exec();
  if (replies === null) throw new Error('Redis transaction aborted');
  for (const [error] of replies) {
    if (error) throw error;
  }
}

/**
 * {@link TokenStore} in Redis, shareable by any number of instances.
 *
 * The connection belongs to the caller, who may share it with other components: `close()` leaves it
 * open, and the caller quits it after closing everything that uses it.
 */
export class RedisTokenStore implements TokenStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  /**
   * @param redis - An ioredis connection to a standalone Redis (not Cluster: upserts are one `MULTI`
   *   across keys that digests spread over every hash slot).
   * @param keyPrefix - Prepended to every key, e.g. `login:`, so several deployments can share a Redis.
   */
  constructor(redis: Redis, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = keyPrefix;
  }

  adapter(model: string): Adapter {
    assertTokenModel(model);
    return {
      upsert: (id, payload, expiresIn) => this.#upsert(model, id, payload, expiresIn),
      find: (id) => this.#findRecord(recordKey(model, digest(id)), id),
      findByUid: (uid) => this.#findByIndex(model, uidKey(model, uid), 'uid', uid),
      findByUserCode: (userCode) => this.#findByIndex(model, userCodeKey(model, userCode), 'userCode', userCode),
      consume: async (id) => {
        await this.#redis.eval(CONSUME_SCRIPT, 1, this.#key(recordKey(model, digest(id))), epochSeconds());
      },
      destroy: async (id) => {
        await this.#redis.del(this.#key(recordKey(model, digest(id))));
      },
      revokeByGrantId: (grantId) => this.#deleteMembers(this.#key(grantKey(grantId))),
    };
  }

  async revokeAccount(accountId: string): Promise<void> {
    const accountSetKey = this.#key(accountKey(accountId));
    const members = await this.#redis.smembers(accountSetKey);
    for (const member of members) {
      if (isGrantKey(member.slice(this.#prefix.length))) await this.#deleteMembers(member);
    }
    await this.#deleteMembers(accountSetKey);
  }

  async revokeJwt(jti: string, expiresAt: number): Promise<void> {
    if (expiresAt <= epochSeconds()) return;
    await this.#redis.set(this.#key(revokedJwtKey(jti)), 1, 'EXAT', expiresAt);
  }

  async isJwtRevoked(jti: string): Promise<boolean> {
    return (await this.#redis.exists(this.#key(revokedJwtKey(jti)))) === 1;
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  /** Owns no connection or timer: the shared connection stays open for its owner to quit. */
  async close(): Promise<void> {}

  #key(key: string): string {
    return this.#prefix + key;
  }

  async #upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    const plan = planUpsert(model, id, payload, expiresIn);
    const key = this.#key(plan.key);
    const indexKeys = plan.indexKeys.map((indexKey) => this.#key(indexKey));
    // One transaction: the record, its index entries and its grant membership appear together.
    const multi = this.#redis.multi();
    // Deleted first so an upsert replaces the record, including a `consumed` mark and an old TTL.
    multi.del(key).hset(key, 'payload', JSON.stringify(plan.stored));
    if (plan.ttl !== undefined) multi.expire(key, plan.ttl);
    for (const indexKey of indexKeys) {
      if (plan.ttl === undefined) multi.set(indexKey, plan.idDigest);
      else multi.set(indexKey, plan.idDigest, 'EX', plan.ttl);
    }
    const ttl = plan.ttl ?? NEVER_SECONDS;
    if (plan.grantKey !== undefined) joinSet(multi, this.#key(plan.grantKey), [key, ...indexKeys], ttl);
    if (plan.accountKey !== undefined) joinSet(multi, this.#key(plan.accountKey), plan.accountMembers.map((member) => this.#key(member)), ttl);
    await execAll(multi);
  }

  async #findRecord(key: string, id: string | undefined): Promise<AdapterPayload | undefined> {
    const hash = await this.#redis.hgetall(this.#key(key));
    if (hash.payload === undefined) return undefined;
    const consumed = hash.consumed === undefined ? undefined : Number(hash.consumed);
    return restorePayload(JSON.parse(hash.payload) as AdapterPayload, consumed, id);
  }

  async #findByIndex(
    model: string,
    indexKey: string,
    field: 'uid' | 'userCode',
    value: string,
  ): Promise<AdapterPayload | undefined> {
    const idDigest = await this.#redis.get(this.#key(indexKey));
    if (idDigest === null) return undefined;
    const payload = await this.#findRecord(recordKey(model, idDigest), undefined);
    return payload && matchesLookup(payload, field, value) ? payload : undefined;
  }

  /** Deletes every key listed in the set at `setKey` (a grant's tokens, an account's grants and sessions). */
  async #deleteMembers(setKey: string): Promise<void> {
    const members = await this.#redis.smembers(setKey);
    if (members.length === 0) return;
    // Not one Lua script: in Redis Cluster a script may only touch keys of one hash slot, and token
    // keys are spread over every slot by their digest; a pipeline of single-key commands is not bound
    // so. SREM of what was read rather than DEL of the set: a token joining the grant meanwhile keeps
    // its membership (and is revoked next time) instead of silently losing it. An emptied set is gone.
    const pipeline = this.#redis.pipeline();
    for (const member of members) pipeline.del(member);
    pipeline.srem(setKey, ...members);
    await execAll(pipeline);
  }
}
