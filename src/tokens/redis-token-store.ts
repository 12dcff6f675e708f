/**
 * The token store in Redis (7.0 or later: grant indexes use `EXPIRE ... NX` and `GT`), standalone or
 * Cluster.
 *
 * Each record is a hash under `${prefix}${model}:{${sha256(id)}}` with the fields `payload` (JSON,
 * without the id) and `consumed` (epoch seconds, once consumed). Index entries for uids and user codes
 * hold the digest of the id. Every key written for a token carries the token's TTL, so Redis forgets
 * it on time. Key names and their hash tags are in token-keys.ts: no command or transaction here spans
 * two hash slots, which Redis Cluster would refuse (CROSSSLOT).
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { sha256Base64Url } from '../shared/secrets.js';
import {
  isOwnTokenRevocation,
  REVOCATION_SEARCH_MODELS,
  signInsOfSession,
  type EndedSignIn,
  type FoundToken,
  type IntrospectableModel,
  type OwnTokenRevocation,
  type TokenOwner,
  type TokenStore,
} from './token-store.js';
import {
  accountKey,
  assertTokenModel,
  epochSeconds,
  grantDigestOfRecordKey,
  grantKeys,
  grantKeysOfDigest,
  matchesLookup,
  planUpsert,
  recordKey,
  restorePayload,
  revokedJwtKey,
  uidKey,
  userCodeKey,
  type GrantKeys,
} from './token-keys.js';

/**
 * TTL of a grant index holding a token that never expires. A large TTL rather than none: the index is
 * then never without a TTL once written, so `EXPIRE NX` below fires only when the index is new.
 */
const NEVER_SECONDS = 100 * 365 * 24 * 60 * 60;

/**
 * Marks a record consumed only if it exists: a bare `HSET` on a record that expired or was revoked
 * since it was read would create a hash without a TTL that nothing ever deletes. One key, so it is
 * also a valid script in Redis Cluster.
 */
const CONSUME_SCRIPT = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'consumed', ARGV[1]) end";

/**
 * Replaces a record: deletes it (a `consumed` mark and an old TTL go with it), writes the payload, and
 * sets the TTL when there is one (ARGV[2], empty for none). A script rather than MULTI/EXEC: it is as
 * atomic (a concurrent find sees the old record or the new one, never none), and unlike a transaction
 * it rides ioredis's auto-pipeline, so the upserts of concurrent requests share one write to Redis.
 */
const UPSERT_SCRIPT =
  "redis.call('DEL', KEYS[1]) redis.call('HSET', KEYS[1], 'payload', ARGV[1]) if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end";

/**
 * Adds members (ARGV[2..]) to a set that lives as long as its longest-lived member (TTL ARGV[1]). GT
 * alone would not do: it treats a key without a TTL (a set SADD just created) as never expiring, so NX
 * gives a new set its first TTL. A one-key script, like UPSERT_SCRIPT: atomic, and auto-pipelined.
 */
const JOIN_SET_SCRIPT =
  "redis.call('SADD', KEYS[1], unpack(ARGV, 2)) redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX') redis.call('EXPIRE', KEYS[1], ARGV[1], 'GT')";

/**
 * RFC 7009 revocation of a client credentials token by its client (`revokeOwnClientCredentials`): the
 * provider's lookup and destroy in one atomic step. KEYS are the records of one value under
 * AccessToken, ClientCredentials and RefreshToken: tagged by the same digest, so in one slot and a
 * valid script in Redis Cluster. ARGV: the caller's client id, the time at or before which `exp` is
 * expired, and its bulk revocation time ('' for none). The payload checks mirror the provider's
 * (lib/models/formats/opaque.js): anything it would read differently is `other`, and nothing changes.
 */
const REVOKE_OWN_CLIENT_CREDENTIALS_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return 'other' end
local stored = redis.call('HGET', KEYS[2], 'payload')
if not stored then return 'absent' end
local ok, p = pcall(cjson.decode, stored)
if not ok or type(p) ~= 'table' or p.kind ~= 'ClientCredentials' or type(p.clientId) ~= 'string'
  or type(p.iat) ~= 'number' or type(p.exp) ~= 'number' or p.jti ~= nil or p.nbf ~= nil
  or p.format ~= nil or p.jwt ~= nil or p['jwt-ietf'] ~= nil or p.paseto ~= nil then return 'other' end
if p.clientId ~= ARGV[1] then return 'foreign' end
if p.exp <= tonumber(ARGV[2]) then return 'expired' end
if ARGV[3] ~= '' and p.iat <= tonumber(ARGV[3]) then return 'hidden' end
redis.call('DEL', KEYS[2])
return 'revoked'`;

/** How the keys of Session records begin (see recordKey). */
const SESSION_RECORD_PREFIX = 'Session:{';

/**
 * A Lua script, sent by its SHA-1 (EVALSHA) rather than in full on every call; in full (EVAL) only
 * when Redis answers NOSCRIPT (a new server, a restart, SCRIPT FLUSH), which also loads it. Its keys
 * must share a slot (Redis Cluster).
 */
class Script {
  readonly #sha: string;

  constructor(readonly lua: string) {
    // SHA-1 is how Redis names scripts, not a security measure.
    this.#sha = createHash('sha1').update(lua).digest('hex');
  }

  run(redis: Redis | Cluster, key: string, ...args: (string | number)[]): Promise<unknown> {
    return this.runKeys(redis, [key], ...args);
  }

  runKeys(redis: Redis | Cluster, keys: readonly string[], ...args: (string | number)[]): Promise<unknown> {
    return redis.evalsha(this.#sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    });
  }
}

// KEYS: the records of one value under several models (one hash tag, so one slot). Answers the
// 1-based index of the first that exists, its payload and its consumed time (nil when not consumed), or 0.
const FIND_FIRST_SCRIPT = `
for i, key in ipairs(KEYS) do
  local found = redis.call('HMGET', key, 'payload', 'consumed')
  if found[1] then return {i, found[1], found[2]} end
end
return 0
`;

const consumeScript = new Script(CONSUME_SCRIPT);
const findFirstScript = new Script(FIND_FIRST_SCRIPT);
const upsertScript = new Script(UPSERT_SCRIPT);
const joinSetScript = new Script(JOIN_SET_SCRIPT);
const revokeOwnClientCredentialsScript = new Script(REVOKE_OWN_CLIENT_CREDENTIALS_SCRIPT);

/** Runs a transaction and returns its replies, throwing the first command error (ioredis resolves with them). */
async function exec(transaction: ChainableCommander): Promise<unknown[]> {
  const replies = await transaction.exec();
  if (replies === null) throw new Error('Redis transaction aborted');
  return replies.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

/**
 * {@link TokenStore} in Redis, shareable by any number of instances.
 *
 * Construct the client with `enableAutoPipelining: true`: an upsert and a grant revocation issue
 * several single-slot commands at once, which auto-pipelining sends in one batch per node (without it
 * they still go out without waiting for each other, but one write each).
 *
 * The connection belongs to the caller, who may share it with other components: `close()` leaves it
 * open, and the caller quits it after closing everything that uses it.
 */
export class RedisTokenStore implements TokenStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;

  /**
   * @param redis - An ioredis connection to a standalone Redis or a Redis Cluster.
   * @param keyPrefix - Prepended to every key, e.g. `login:`, so several deployments can share a Redis.
   *   Without `{` or `}`: a hash tag in the prefix would override the tags that place keys in slots.
   */
  constructor(redis: Redis | Cluster, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = keyPrefix;
  }

  adapter(model: string): Adapter {
    assertTokenModel(model);
    return {
      upsert: (id, payload, expiresIn) => this.#upsert(model, id, payload, expiresIn),
      find: (id) => this.#findRecord(recordKey(model, sha256Base64Url(id)), id),
      findByUid: (uid) => this.#findByIndex(model, uidKey(model, uid), 'uid', uid),
      findByUserCode: (userCode) => this.#findByIndex(model, userCodeKey(model, userCode), 'userCode', userCode),
      consume: async (id) => {
        await consumeScript.run(this.#redis, this.#key(recordKey(model, sha256Base64Url(id))), epochSeconds());
      },
      destroy: async (id) => {
        await this.#redis.del(this.#key(recordKey(model, sha256Base64Url(id))));
      },
      revokeByGrantId: (grantId) => this.#revokeGrant(grantKeys(grantId)),
    };
  }

  /**
   * Deletes the account's Grant and Session records (and their index entries), revoking every grant as
   * `revokeByGrantId` does. The account set is read and deleted in one transaction on its slot.
   */
  async revokeAccount(accountId: string): Promise<EndedSignIn[]> {
    const setKey = this.#key(accountKey(accountId));
    const [members] = await exec(this.#redis.multi().smembers(setKey).del(setKey));
    const ended = await Promise.all(
      (members as string[]).map(async (member): Promise<EndedSignIn[]> => {
        const grantDigest = grantDigestOfRecordKey(member.slice(this.#prefix.length));
        if (grantDigest !== undefined) {
          await this.#revokeGrant(grantKeysOfDigest(grantDigest));
          return [];
        }
        if (!member.startsWith(this.#key(SESSION_RECORD_PREFIX))) {
          await this.#redis.del(member);
          return [];
        }
        // A session: read as it is deleted, for its clients to be told.
        const [stored] = await exec(this.#redis.multi().hget(member, 'payload').del(member));
        return typeof stored === 'string' ? signInsOfSession(JSON.parse(stored) as AdapterPayload) : [];
      }),
    );
    return ended.flat();
  }

  async revokeOwnClientCredentials(token: string, owner: TokenOwner): Promise<OwnTokenRevocation> {
    const digest = sha256Base64Url(token);
    const keys = REVOCATION_SEARCH_MODELS.map((model) => this.#key(recordKey(model, digest)));
    const outcome = await revokeOwnClientCredentialsScript.runKeys(this.#redis, keys, owner.clientId, owner.expiredAtOrBefore, owner.tokensRevokedAt ?? '');
    if (!isOwnTokenRevocation(outcome)) throw new Error(`unexpected revocation outcome ${String(outcome)}`);
    return outcome;
  }

  async findIntrospectable(models: readonly IntrospectableModel[], token: string): Promise<FoundToken | undefined> {
    const digest = sha256Base64Url(token);
    const reply = await findFirstScript.runKeys(
      this.#redis,
      models.map((model) => this.#key(recordKey(model, digest))),
    );
    if (!Array.isArray(reply)) return undefined;
    const [index, payload, consumed] = reply as [number, string, string | null];
    const model = models[index - 1];
    return { model, payload: restorePayload(JSON.parse(payload) as AdapterPayload, consumed === null ? undefined : Number(consumed), token) };
  }

  async revokeJwt(jti: string, expiresAt: number): Promise<void> {
    if (expiresAt <= epochSeconds()) return;
    await this.#redis.set(this.#key(revokedJwtKey(jti)), 1, 'EXAT', expiresAt);
  }

  async isGrantActive(grantDigest: string): Promise<boolean> {
    return (await this.#redis.exists(this.#key(grantKeysOfDigest(grantDigest).record))) === 1;
  }

  async grantOfDigest(grantDigest: string): Promise<AdapterPayload | undefined> {
    return this.#findRecord(grantKeysOfDigest(grantDigest).record, undefined);
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

  /**
   * Writes the record, its index entries and its grant membership: each in a slot of its own, so not
   * one transaction but single-slot writes issued together (auto-pipelined, see the class). A failure part way leaves keys that expire
   * with the token; one that misses the grant index does not outlive a revocation either, as that
   * deletes the Grant record (see `#revokeByGrantId`).
   */
  async #upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    const plan = planUpsert(model, id, payload, expiresIn);
    const key = this.#key(plan.key);
    const indexKeys = plan.indexKeys.map((indexKey) => this.#key(indexKey));
    const writes: Promise<unknown>[] = [upsertScript.run(this.#redis, key, JSON.stringify(plan.stored), plan.ttl ?? '')];
    for (const indexKey of indexKeys) {
      writes.push(plan.ttl === undefined ? this.#redis.set(indexKey, plan.idDigest) : this.#redis.set(indexKey, plan.idDigest, 'EX', plan.ttl));
    }
    for (const setKey of [plan.grantIndexKey, plan.accountKey]) {
      if (setKey !== undefined) writes.push(this.#joinSet(this.#key(setKey), [key, ...indexKeys], plan.ttl ?? NEVER_SECONDS));
    }
    await Promise.all(writes);
  }

  /** Adds members to a set (a grant index, an account set) kept as long as its longest-lived member. */
  #joinSet(setKey: string, members: readonly string[], ttl: number): Promise<unknown> {
    return joinSetScript.run(this.#redis, setKey, ttl, ...members);
  }

  async #findRecord(key: string, id: string | undefined): Promise<AdapterPayload | undefined> {
    const hash = await this.#redis.hgetall(this.#key(key));
    if (hash.payload === undefined) return undefined;
    const consumed = hash.consumed === undefined ? undefined : Number(hash.consumed);
    return restorePayload(JSON.parse(hash.payload) as AdapterPayload, consumed, id);
  }

  async #findByIndex(model: string, indexKey: string, field: 'uid' | 'userCode', value: string): Promise<AdapterPayload | undefined> {
    const idDigest = await this.#redis.get(this.#key(indexKey));
    if (idDigest === null) return undefined;
    const payload = await this.#findRecord(recordKey(model, idDigest), undefined);
    return payload && matchesLookup(payload, field, value) ? payload : undefined;
  }

  /**
   * The revocation proper is one transaction on the grant's slot, atomic and one round trip: it reads
   * the grant index and deletes the index and the Grant record. oidc-provider loads the Grant on every use of a token bound
   * to it (refresh, code exchange, introspection, userinfo) and refuses the token once the Grant is
   * gone, so that transaction alone revokes every token of the grant at once. The token keys, spread
   * over every slot, cannot join it; deleting them afterwards is cleanup, one DEL each, issued together.
   * A token written for the grant meanwhile is refused the same way and expires with its TTL.
   */
  async #revokeGrant(grant: GrantKeys): Promise<void> {
    const index = this.#key(grant.index);
    const [members] = await exec(this.#redis.multi().smembers(index).del(this.#key(grant.record), index));
    await Promise.all((members as string[]).map((member) => this.#redis.del(member)));
  }
}
