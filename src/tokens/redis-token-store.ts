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
import { LOCKED_OUT, type LockedOut, type LockoutGuard } from '../limits/failure-counter.js';
import { randomUUID } from 'node:crypto';
import { parseRecordedEvent, type RecordedEvent } from '../security-events/revocation-event.js';
import { Cluster, type ChainableCommander, type Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { ENQUEUE_LUA } from '../security-events/event-queue.js';
import { RedisScript } from '../shared/redis-script.js';
import { sha256Base64Url } from '../shared/secrets.js';
import {
  ANNOUNCED_DESTROY_MODELS,
  grantsEndingWithSession,
  isOwnTokenRevocation,
  REVOCATION_SEARCH_MODELS,
  type RevocationRelay,
  type SameStepQueuing,
  signInsOfSession,
  type AccountRecord,
  type AccountRecords,
  type EndedSignIn,
  type FoundToken,
  type IntrospectableModel,
  type OwnTokenRevocation,
  type TokenOwner,
  type TokenStore,
} from './token-store.js';
import {
  accountKey,
  ANNOUNCEMENT_KEY_NAME,
  announcementKey,
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
  sessionDigestOfRecordKey,
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

/** How long a recorded revocation event waits for its relay before Redis drops it (7 days: the sweep relays it long before). */
const ANNOUNCEMENT_TTL_SECONDS = 7 * 24 * 60 * 60;

/**
 * Lua shared by the scripts that revoke: `announce` records a revocation event (src/security-events)
 * under KEYS-declared key `key` (in the revoked key's slot: see announcementKey) and answers its JSON,
 * or false when the event concerns no audience. `audiences_of` reads the audiences of a payload field:
 * an access token's `aud` (a string or a list), or the keys of a grant's `resources`.
 */
const ANNOUNCE_LUA = `
local function audiences_of(value, keys_of)
  local list = {}
  if type(value) == 'string' then table.insert(list, value)
  elseif type(value) == 'table' then
    if keys_of then for k, _ in pairs(value) do if type(k) == 'string' then table.insert(list, k) end end
    else for _, v in ipairs(value) do if type(v) == 'string' then table.insert(list, v) end end end
  end
  return list
end
local function announce(key, id, at, kind, field, subject, audiences)
  if #audiences == 0 then return false end
  local json = cjson.encode({ id = id, at = tonumber(at), event = { kind = kind, [field] = subject, audiences = audiences } })
  redis.call('SET', key, json, 'EX', ${ANNOUNCEMENT_TTL_SECONDS})
  return json
end`;

/**
 * Deletes a record and, if it existed, records its revocation event in the same step: an access token
 * (KEYS[1], event `token` with `jti` ARGV[3], audiences from `aud`) or a grant (event `grant` with
 * `gid`, audiences from `resources`). KEYS[2] is the event's key; ARGV: event id, time, subject,
 * kind, subject field, payload field, '1' when the audiences are that field's keys.
 */
const DESTROY_ANNOUNCED_SCRIPT = `${ANNOUNCE_LUA}
local stored = redis.call('HGET', KEYS[1], 'payload')
redis.call('DEL', KEYS[1])
if not stored then return false end
local ok, p = pcall(cjson.decode, stored)
if not ok or type(p) ~= 'table' then return false end
return announce(KEYS[2], ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[3], audiences_of(p[ARGV[6]], ARGV[7] == '1'))`;

/**
 * Revokes a grant (KEYS[1] its record, KEYS[2] its index: one slot) and records its event (KEYS[3])
 * when the record existed; answers the event JSON ('' for none) and the index members to delete.
 */
const REVOKE_GRANT_SCRIPT = `${ANNOUNCE_LUA}
local stored = redis.call('HGET', KEYS[1], 'payload')
local members = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
local json = false
if stored then
  local ok, p = pcall(cjson.decode, stored)
  if ok and type(p) == 'table' then json = announce(KEYS[3], ARGV[1], ARGV[2], 'grant', 'gid', ARGV[3], audiences_of(p.resources, true)) end
end
return { json or '', members }`;

/** Marks a JWT revoked (KEYS[1], until ARGV[1]) and records its event (KEYS[2], JSON ARGV[2]) in one step. */
const REVOKE_JWT_SCRIPT = `redis.call('SET', KEYS[1], 1, 'EXAT', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ${ANNOUNCEMENT_TTL_SECONDS})`;

/**
 * RFC 7009 revocation of a client credentials token by its client (`revokeOwnClientCredentials`): the
 * provider's lookup and destroy in one atomic step. KEYS[1..3] are the records of one value under
 * AccessToken, ClientCredentials and RefreshToken (tagged by the same digest, so in one slot), KEYS[4]
 * the key its event is recorded under (the same slot). ARGV: the caller's client id, the time at or
 * before which `exp` is expired, its bulk revocation time ('' for none), the event's id, time and
 * subject, the time in ms. The payload checks mirror the provider's (lib/models/formats/opaque.js):
 * anything it would read differently is `other`, and nothing changes. KEYS[5] and ARGV[8]: the caller's
 * failure counter and its limit (a LockoutGuard), checked before anything (`locked`: nothing changes);
 * without a guard, ARGV[8] is '' and KEYS[5] repeats KEYS[4].
 *
 * Then, on a standalone Redis only, the queues the event may go to straight away (none in a Cluster:
 * they are in other slots): KEYS[6..] three per queue, ARGV[9..] four per queue (its audience, the SET
 * id, the event's JSON, the retention in ms). When the token's audience is one of theirs, the event is
 * queued there by the enqueue Lua of event-queue.ts, before the delete (should the queue write fail,
 * the token stays and the call fails: never a revocation without its event), and the answer names the
 * queue (its 1-based index). Otherwise the event is recorded for the relay, as in a Cluster.
 */
const REVOKE_OWN_CLIENT_CREDENTIALS_SCRIPT = `${ANNOUNCE_LUA}${ENQUEUE_LUA}
if ARGV[8] ~= '' and tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[8]) then return 'locked' end
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
if type(p.aud) == 'string' then
  for i = 0, (#KEYS - 5) / 3 - 1 do
    if ARGV[9 + i * 4] == p.aud then
      enqueue(KEYS[6 + i * 3], KEYS[7 + i * 3], KEYS[8 + i * 3], ARGV[10 + i * 4], ARGV[11 + i * 4], tonumber(ARGV[7]), ARGV[12 + i * 4])
      redis.call('DEL', KEYS[2])
      return {'revoked', '', i + 1}
    end
  end
end
redis.call('DEL', KEYS[2])
return {'revoked', announce(KEYS[4], ARGV[4], ARGV[5], 'token', 'jti', ARGV[6], audiences_of(p.aud, false)) or ''}`;

/**
 * At most this many of a client's resources are offered to the revocation script as its event's
 * queues: each costs a SHA-256, a JSON event and seven script arguments per revocation, and a
 * client's tokens are nearly always for its default resource, the first. A token for another goes
 * the recorded way.
 */
const SAME_STEP_AUDIENCES = 8;

/**
 * A token's revocation event, with its fields in the order the two-step way queues them (the relay
 * reads the JSON the script's cjson made, and the queue stores it re-serialised in that order): an
 * event queued in the revocation's own step is then byte for byte what the relay would have queued.
 */
function tokenRevokedEvent(id: string, at: number, jti: string, audience: string): RecordedEvent {
  return { id, event: { audiences: [audience], kind: 'token', jti }, at };
}

/**
 * Deletes a record if it belongs to the account (ARGV[1]) and answers its payload; answers nil (and
 * deletes nothing) otherwise. One key: atomic, and a valid script in Redis Cluster.
 */
const TAKE_ACCOUNT_RECORD_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], 'payload')
if not stored then return false end
local ok, p = pcall(cjson.decode, stored)
if not ok or type(p) ~= 'table' or p.accountId ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return stored`;

/** Reads a record's payload and deletes the record, atomically (one key: valid in Redis Cluster too). */
const TAKE_RECORD_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], 'payload')
if stored then redis.call('DEL', KEYS[1]) end
return stored`;

/** Held for the interval after a periodic scan for leftover events (see relayLeftoverAnnouncements). */
const LEFTOVER_SCAN_LEASE_KEY = 'secevent-leftover-scan';

/** How the keys of Session records begin (see recordKey). */
const SESSION_RECORD_PREFIX = 'Session:{';

// KEYS: the records of one value under several models (one hash tag, so one slot). Answers the
// 1-based index of the first that exists, its payload and its consumed time (nil when not consumed), or 0.
// Behind a LockoutGuard (ARGV[1], its limit, given): KEYS[1] is the caller's failure counter, read
// first (-1 when at the limit: nothing read), and the records follow (their index counts from KEYS[2]).
const FIND_FIRST_SCRIPT = `
local first = 1
if ARGV[1] then
  if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return -1 end
  first = 2
end
for i = first, #KEYS do
  local found = redis.call('HMGET', KEYS[i], 'payload', 'consumed')
  if found[1] then return {i - first + 1, found[1], found[2]} end
end
return 0
`;

const consumeScript = new RedisScript(CONSUME_SCRIPT);
const findFirstScript = new RedisScript(FIND_FIRST_SCRIPT);
const upsertScript = new RedisScript(UPSERT_SCRIPT);
const joinSetScript = new RedisScript(JOIN_SET_SCRIPT);
const revokeOwnClientCredentialsScript = new RedisScript(REVOKE_OWN_CLIENT_CREDENTIALS_SCRIPT);
const destroyAnnouncedScript = new RedisScript(DESTROY_ANNOUNCED_SCRIPT);
const revokeGrantScript = new RedisScript(REVOKE_GRANT_SCRIPT);
const revokeJwtScript = new RedisScript(REVOKE_JWT_SCRIPT);

/** How the subject and audiences of each announced model's event are read from its payload (see DESTROY_ANNOUNCED_SCRIPT). */
const DESTROY_EVENTS: Readonly<Record<string, readonly [kind: string, field: string, payloadField: string, keysOf: '0' | '1']>> = {
  AccessToken: ['token', 'jti', 'aud', '0'],
  ClientCredentials: ['token', 'jti', 'aud', '0'],
  Grant: ['grant', 'gid', 'resources', '1'],
};

/**
 * The subject of the event of a destroyed record whose id has digest `idDigest`: for an opaque token,
 * the id introspection answers as its `jti` (opaqueTokenId: the first 32 characters of the digest);
 * for a grant, the digest itself (what JWT access tokens carry as `gid`).
 */
const subjectOf = (model: string, idDigest: string) => (model === 'Grant' ? idDigest : idDigest.slice(0, 32));
const takeAccountRecordScript = new RedisScript(TAKE_ACCOUNT_RECORD_SCRIPT);
const takeRecordScript = new RedisScript(TAKE_RECORD_SCRIPT);

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
  #relay: RevocationRelay | undefined;
  #sameStep: SameStepQueuing | undefined;

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
        const idDigest = sha256Base64Url(id);
        const key = this.#key(recordKey(model, idDigest));
        const announced = DESTROY_EVENTS[model];
        if (!ANNOUNCED_DESTROY_MODELS.has(model) || !announced) {
          await this.#redis.del(key);
          return;
        }
        const eventKey = this.#key(announcementKey(idDigest, randomUUID()));
        const eventId = eventKey.slice(eventKey.lastIndexOf(':') + 1);
        const json = await destroyAnnouncedScript.runKeys(this.#redis, [key, eventKey], eventId, epochSeconds(), subjectOf(model, idDigest), ...announced);
        await this.#relayRecorded(eventKey, json);
      },
      revokeByGrantId: (grantId) => this.#revokeGrant(grantKeys(grantId), sha256Base64Url(grantId)),
    };
  }

  /**
   * Deletes the account's Grant and Session records (and their index entries), revoking every grant as
   * `revokeByGrantId` does. The account set is read and deleted in one transaction on its slot; when a
   * session is kept, only the other members leave the set (SREM), so the kept session stays listed.
   */
  async revokeAccount(accountId: string, options: { readonly keepSession?: string } = {}): Promise<EndedSignIn[]> {
    const setKey = this.#key(accountKey(accountId));
    let members: string[];
    if (options.keepSession === undefined) {
      [members] = (await exec(this.#redis.multi().smembers(setKey).del(setKey))) as [string[]];
    } else {
      const kept = await this.#keysOfSession(accountId, options.keepSession);
      members = (await this.#redis.smembers(setKey)).filter((member) => !kept.includes(member));
      if (members.length > 0) await this.#redis.srem(setKey, ...members);
    }
    const ended = await Promise.all(
      members.map(async (member): Promise<EndedSignIn[]> => {
        const grantDigest = grantDigestOfRecordKey(member.slice(this.#prefix.length));
        if (grantDigest !== undefined) {
          await this.#revokeGrant(grantKeysOfDigest(grantDigest), grantDigest);
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

  /**
   * Reads the account set, then every Session and Grant record it lists: the records spread over every
   * slot, so they are read by single-key commands issued together (auto-pipelined, one batch per node).
   */
  async listAccount(accountId: string): Promise<AccountRecords> {
    const members = await this.#redis.smembers(this.#key(accountKey(accountId)));
    const read = async (member: string, model: 'Session' | 'Grant'): Promise<AccountRecord[]> => {
      const key = member.slice(this.#prefix.length);
      const digest = model === 'Session' ? sessionDigestOfRecordKey(key) : grantDigestOfRecordKey(key);
      if (digest === undefined || !member.startsWith(this.#prefix)) return [];
      const payload = await this.#findRecord(key, undefined);
      return payload?.accountId === accountId ? [{ digest, payload }] : [];
    };
    const [sessions, grants] = await Promise.all([
      Promise.all(members.map((member) => read(member, 'Session'))),
      Promise.all(members.map((member) => read(member, 'Grant'))),
    ]);
    return { sessions: sessions.flat(), grants: grants.flat() };
  }

  async take(model: string, id: string): Promise<AdapterPayload | undefined> {
    assertTokenModel(model);
    const stored = await takeRecordScript.run(this.#redis, this.#key(recordKey(model, sha256Base64Url(id))));
    return typeof stored === 'string' ? restorePayload(JSON.parse(stored) as AdapterPayload, undefined, id) : undefined;
  }

  async endSession(accountId: string, sessionDigest: string): Promise<EndedSignIn[] | undefined> {
    const key = this.#key(recordKey('Session', sessionDigest));
    const stored = await takeAccountRecordScript.run(this.#redis, key, accountId);
    if (typeof stored !== 'string') return undefined;
    const payload = JSON.parse(stored) as AdapterPayload;
    const indexKeys = typeof payload.uid === 'string' ? [this.#key(uidKey('Session', payload.uid))] : [];
    await Promise.all([
      ...indexKeys.map((indexKey) => this.#redis.del(indexKey)),
      this.#redis.srem(this.#key(accountKey(accountId)), key, ...indexKeys),
      ...grantsEndingWithSession(payload).map((grantId) => this.#revokeGrant(grantKeys(grantId), sha256Base64Url(grantId))),
    ]);
    return signInsOfSession(payload);
  }

  async revokeGrant(accountId: string, grantDigest: string): Promise<boolean> {
    const grant = grantKeysOfDigest(grantDigest);
    const payload = await this.#findRecord(grant.record, undefined);
    if (payload?.accountId !== accountId) return false;
    await Promise.all([this.#revokeGrant(grant, grantDigest), this.#redis.srem(this.#key(accountKey(accountId)), this.#key(grant.record))]);
    return true;
  }

  async revokeOwnClientCredentials(token: string, owner: TokenOwner, guard?: LockoutGuard): Promise<OwnTokenRevocation | LockedOut> {
    const guardKey = this.#guardKeyOf(guard);
    // A guard this step cannot read (another connection, a Cluster): read first, in a step of its own.
    if (guard && guardKey === undefined && (await guard.atLimit())) return LOCKED_OUT;
    const digest = sha256Base64Url(token);
    const keys = REVOCATION_SEARCH_MODELS.map((model) => this.#key(recordKey(model, digest)));
    const eventId = randomUUID();
    const eventKey = this.#key(announcementKey(digest, eventId));
    const at = epochSeconds();
    const jti = digest.slice(0, 32);
    const queues =
      this.#sameStep && owner.audiences && !(this.#redis instanceof Cluster)
        ? this.#sameStep.queuesFor(this.#redis, eventId, owner.audiences.slice(0, SAME_STEP_AUDIENCES))
        : [];
    const events = queues.map((queue) => tokenRevokedEvent(eventId, at, jti, queue.audience));
    const reply = await revokeOwnClientCredentialsScript.runKeys(
      this.#redis,
      [...keys, eventKey, guardKey ?? eventKey, ...queues.flatMap((queue) => queue.keys)],
      owner.clientId,
      owner.expiredAtOrBefore,
      owner.tokensRevokedAt ?? '',
      eventId,
      at,
      jti,
      Date.now(),
      guardKey === undefined ? '' : guard!.maxFailures,
      ...queues.flatMap((queue, i) => [queue.audience, queue.setId, JSON.stringify(events[i]), queue.retentionMs]),
    );
    if (reply === 'locked') return LOCKED_OUT;
    const [outcome, json, queuedAt] = Array.isArray(reply) ? (reply as [unknown, unknown, unknown]) : [reply];
    if (!isOwnTokenRevocation(outcome)) throw new Error(`unexpected revocation outcome ${String(outcome)}`);
    if (typeof queuedAt === 'number' && queues[queuedAt - 1]) queues[queuedAt - 1].queued(events[queuedAt - 1]);
    else await this.#relayRecorded(eventKey, json);
    return outcome;
  }

  findIntrospectable(models: readonly IntrospectableModel[], token: string, guard?: LockoutGuard): Promise<FoundToken | undefined | LockedOut> {
    const guardKey = this.#guardKeyOf(guard);
    if (guard && guardKey === undefined) {
      // A guard this command cannot read (another connection, a Cluster): read beside it, in the same round trip.
      return Promise.all([guard.atLimit(), this.findIntrospectable(models, token)]).then(([atLimit, found]) => (atLimit ? LOCKED_OUT : found));
    }
    const digest = sha256Base64Url(token);
    const keys = models.map((model) => this.#key(recordKey(model, digest)));
    // A promise chain rather than an async function: one promise fewer on every introspection.
    return (
      guardKey === undefined ? findFirstScript.runKeys(this.#redis, keys) : findFirstScript.runKeys(this.#redis, [guardKey, ...keys], guard!.maxFailures)
    ).then((reply) => {
      if (reply === -1) return LOCKED_OUT;
      if (!Array.isArray(reply)) return undefined;
      const [index, payload, consumed] = reply as [number, string, string | null];
      const model = models[index - 1];
      return { model, payload: restorePayload(JSON.parse(payload) as AdapterPayload, consumed === null ? undefined : Number(consumed), token) };
    });
  }

  async revokeJwt(jti: string, expiresAt: number, audiences: readonly string[]): Promise<void> {
    if (expiresAt <= epochSeconds()) return;
    const key = this.#key(revokedJwtKey(jti));
    if (audiences.length === 0) {
      await this.#redis.set(key, 1, 'EXAT', expiresAt);
      return;
    }
    const recorded: RecordedEvent = { id: randomUUID(), at: epochSeconds(), event: { kind: 'token', jti, audiences: [...audiences] } };
    const eventKey = this.#key(announcementKey(sha256Base64Url(jti), recorded.id));
    const json = JSON.stringify(recorded);
    await revokeJwtScript.runKeys(this.#redis, [key, eventKey], expiresAt, json);
    await this.#relayRecorded(eventKey, json);
  }

  announceTo(relay: RevocationRelay, sameStep?: SameStepQueuing): void {
    this.#relay = relay;
    this.#sameStep = sameStep;
  }

  /**
   * Scans every master for recorded events left unrelayed (SCAN, so Redis keeps serving meanwhile),
   * relays and deletes each. With `notWithinMs`, the first instance to set the lease key (SET NX
   * with that expiry) scans, and the others skip until it expires.
   */
  async relayLeftoverAnnouncements(notWithinMs?: number): Promise<number> {
    if (notWithinMs !== undefined && (await this.#redis.set(this.#key(LEFTOVER_SCAN_LEASE_KEY), '1', 'PX', notWithinMs, 'NX')) === null) return 0;
    const nodes: Redis[] = this.#redis instanceof Cluster ? this.#redis.nodes('master') : [this.#redis];
    let relayed = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${this.#prefix}${ANNOUNCEMENT_KEY_NAME}:*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const json = await this.#redis.get(key);
          if (json !== null && (await this.#relayRecorded(key, json))) relayed++;
        }
      } while (cursor !== '0');
    }
    return relayed;
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

  /** The guard's counter key when a script of this store may read it in its own step: on this very connection, a standalone Redis. */
  #guardKeyOf(guard: LockoutGuard | undefined): string | undefined {
    return guard?.redisKey?.connection === this.#redis && !(this.#redis instanceof Cluster) ? guard.redisKey.key : undefined;
  }

  #key(key: string): string {
    return this.#prefix + key;
  }

  /** The keys (prefixed) of the account's session with this digest: its record and its uid index entry; none if it is not the account's. */
  async #keysOfSession(accountId: string, sessionDigest: string): Promise<string[]> {
    const key = recordKey('Session', sessionDigest);
    const payload = await this.#findRecord(key, undefined);
    if (payload?.accountId !== accountId) return [];
    return [this.#key(key), ...(typeof payload.uid === 'string' ? [this.#key(uidKey('Session', payload.uid))] : [])];
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
   * The revocation proper is one script on the grant's slot, atomic and one round trip: it reads
   * the grant index, deletes the index and the Grant record, and records the grant's revocation event. oidc-provider loads the Grant on every use of a token bound
   * to it (refresh, code exchange, introspection, userinfo) and refuses the token once the Grant is
   * gone, so that transaction alone revokes every token of the grant at once. The token keys, spread
   * over every slot, cannot join it; deleting them afterwards is cleanup, one DEL each, issued together.
   * A token written for the grant meanwhile is refused the same way and expires with its TTL.
   */
  async #revokeGrant(grant: GrantKeys, grantDigest: string): Promise<void> {
    const index = this.#key(grant.index);
    const eventId = randomUUID();
    const eventKey = this.#key(announcementKey(grantDigest, eventId));
    const [json, members] = (await revokeGrantScript.runKeys(
      this.#redis,
      [this.#key(grant.record), index, eventKey],
      eventId,
      epochSeconds(),
      grantDigest,
    )) as [string, string[]];
    await Promise.all([this.#relayRecorded(eventKey, json), ...members.map((member) => this.#redis.del(member))]);
  }

  /**
   * Hands a recorded event (`json`, as a script answered it: nothing when the revocation concerned no
   * audience) to the relay, then deletes its key. Resolves whether it was relayed: when the relay
   * fails or there is none, the key stays for relayLeftoverAnnouncements (the relay logged why).
   */
  async #relayRecorded(eventKey: string, json: unknown): Promise<boolean> {
    if (typeof json !== 'string' || json === '' || !this.#relay) return false;
    const recorded = parseRecordedEvent(json);
    try {
      if (recorded) await this.#relay(recorded);
    } catch {
      return false;
    }
    // Cleanup, not part of the revocation: the answer does not wait for it. Should it fail, the
    // leftover scan relays the event again, which queues nothing twice (SET ids come from the event).
    this.#redis.del(eventKey).catch(() => undefined);
    return true;
  }
}
