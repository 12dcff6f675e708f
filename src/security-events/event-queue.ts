/**
 * Each resource server's queue of security events: what it has not acknowledged yet (RFC 8936
 * poll, RFC 8935 push), also read by position without removal (the poll's `cursor` extension). In
 * Redis, three keys per resource server in one hash slot (tagged by its id), so every change of a
 * queue is one atomic script, in Redis Cluster too: a sorted set of SET ids by the time they were
 * queued, a hash of SET id to recorded event, and the last score given. Scores only grow within a
 * queue (the time queued, or one more than the last score when the clock has not moved on or went
 * back, as another instance's may), so a reader's position never has a newer event queued before it.
 * The keys expire when the queue has been untouched for its retention, and entries older than that
 * are dropped as new ones come.
 */
import { RedisScript } from '../shared/redis-script.js';
import { Cluster, type Redis } from 'ioredis';
import { isAfter, type QueuePosition } from './event-cursor.js';
import { parseRecordedEvent, type RecordedEvent } from './revocation-event.js';

/** A queued event as a resource server gets it: its SET id and the event. */
export interface QueuedEvent {
  readonly setId: string;
  readonly recorded: RecordedEvent;
}

/** A queued event read by position: also where it stands in its queue. */
export interface PositionedEvent extends QueuedEvent {
  readonly position: QueuePosition;
}

/** The per-resource-server queues of security events. */
export interface EventQueue {
  /**
   * Queues `recorded` for the resource server under `setId` (again: no change, so relaying an event
   * twice queues it once), dropping what has waited longer than `retentionSeconds`.
   */
  enqueue(resourceServerId: string, setId: string, recorded: RecordedEvent, retentionSeconds: number): Promise<void>;
  /** The oldest `max` (at least 1) events waiting for the resource server, and whether more wait. */
  peek(resourceServerId: string, max: number): Promise<{ events: QueuedEvent[]; more: boolean }>;
  /** Removes these SET ids from the resource server's queue (ids it does not hold change nothing); how many it removed. */
  remove(resourceServerId: string, setIds: readonly string[]): Promise<number>;
  /**
   * The oldest `max` (at least 1) events queued after `after` (`null`: from the oldest retained), in
   * queue order, and whether more follow; nothing is removed.
   */
  readAfter(resourceServerId: string, after: QueuePosition | null, max: number): Promise<{ events: PositionedEvent[]; more: boolean }>;
  /**
   * The Redis keys of the resource server's queue (ENQUEUE_LUA's `order`, `events` and `last`), when a
   * script sent on `connection` may write them itself, in the same step as another change: only on
   * the queue's own connection, to a standalone Redis (in a Cluster the queue has a slot of its own).
   * Absent, or `undefined`, otherwise: the event then goes through `enqueue`.
   */
  keysForScriptOn?(connection: object, resourceServerId: string): QueueKeys | undefined;
}

/** A queue's keys in Redis, in ENQUEUE_LUA's order. */
export type QueueKeys = readonly [order: string, events: string, lastScore: string];

/** At most this many stale entries are dropped per enqueue (a script's arguments are bounded). */
const TRIM_BATCH = 1000;

/**
 * Lua defining `enqueue(order, events, last, set_id, payload, now, retention_ms)`: what
 * {@link EventQueue.enqueue} does to a queue's three keys (see the file comment). The one source of the
 * enqueue logic: ENQUEUE_SCRIPT runs it, and the token store's revocation script composes it to queue a
 * revocation's event in the revocation's own step (a standalone Redis only: in a Cluster the queue's
 * keys are in another slot).
 *
 * The score: the time queued, unless the last score given (kept apart: the newest entry may have
 * been acknowledged) or the newest entry (queued before the last score was kept) is not older.
 */
export const ENQUEUE_LUA = `
local function enqueue(order, events, last_key, set_id, payload, now, retention_ms)
  local cutoff = now - tonumber(retention_ms)
  local old = redis.call('ZRANGEBYSCORE', order, '-inf', '(' .. cutoff, 'LIMIT', 0, ${TRIM_BATCH})
  if #old > 0 then
    redis.call('HDEL', events, unpack(old))
    redis.call('ZREM', order, unpack(old))
  end
  if not redis.call('ZSCORE', order, set_id) then
    local last = tonumber(redis.call('GET', last_key) or '-1')
    local newest = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
    if newest[2] then last = math.max(last, tonumber(newest[2])) end
    local score = now
    if score <= last then score = last + 1 end
    score = string.format('%.0f', score)
    redis.call('ZADD', order, score, set_id)
    redis.call('HSET', events, set_id, payload)
    redis.call('SET', last_key, score)
  end
  redis.call('PEXPIRE', order, retention_ms)
  redis.call('PEXPIRE', events, retention_ms)
  redis.call('PEXPIRE', last_key, retention_ms)
end`;

// KEYS: the queue's keys; ARGV: SET id, payload, the time (ms), the retention (ms).
const ENQUEUE_SCRIPT = `${ENQUEUE_LUA}
enqueue(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
return 1`;

const PEEK_SCRIPT = `
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = { redis.call('ZCARD', KEYS[1]) }
for _, id in ipairs(ids) do
  local value = redis.call('HGET', KEYS[2], id)
  if value then
    table.insert(out, id)
    table.insert(out, value)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out`;

// From the cursor's score on, as many more as share that score (those not after the cursor are left
// out by the caller, which compares SET ids byte-wise: Lua's comparison follows the server's locale).
const READ_AFTER_SCRIPT = `
local skip = 0
if ARGV[1] ~= '-inf' then skip = redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) end
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, skip + tonumber(ARGV[2]) + 1)
local out = {}
for i = 1, #rows, 2 do
  table.insert(out, rows[i])
  table.insert(out, rows[i + 1])
  table.insert(out, redis.call('HGET', KEYS[2], rows[i]) or '')
end
return out`;

const REMOVE_SCRIPT = `
local removed = redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return removed`;

const enqueueScript = new RedisScript(ENQUEUE_SCRIPT);
const peekScript = new RedisScript(PEEK_SCRIPT);
const removeScript = new RedisScript(REMOVE_SCRIPT);
const readAfterScript = new RedisScript(READ_AFTER_SCRIPT);

/** {@link EventQueue} in Redis (standalone or Cluster), shared by every instance. */
export class RedisEventQueue implements EventQueue {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keyPrefix: string,
  ) {}

  /** The keys of a resource server's queue, in one slot (the tag is its id). */
  #keys(resourceServerId: string): QueueKeys {
    const base = `${this.keyPrefix}secevents:{${resourceServerId}}`;
    return [`${base}:order`, `${base}:events`, `${base}:last`];
  }

  keysForScriptOn(connection: object, resourceServerId: string): QueueKeys | undefined {
    return connection === this.redis && !(this.redis instanceof Cluster) ? this.#keys(resourceServerId) : undefined;
  }

  async enqueue(resourceServerId: string, setId: string, recorded: RecordedEvent, retentionSeconds: number): Promise<void> {
    await enqueueScript.runKeys(this.redis, this.#keys(resourceServerId), setId, JSON.stringify(recorded), Date.now(), retentionSeconds * 1000);
  }

  async peek(resourceServerId: string, max: number): Promise<{ events: QueuedEvent[]; more: boolean }> {
    const reply = (await peekScript.runKeys(this.redis, this.#keys(resourceServerId), Math.max(1, max))) as [number, ...string[]];
    const [total, ...pairs] = reply;
    const events: QueuedEvent[] = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const recorded = parseRecordedEvent(pairs[i + 1]);
      if (recorded) events.push({ setId: pairs[i], recorded });
    }
    return { events, more: total > events.length };
  }

  async remove(resourceServerId: string, setIds: readonly string[]): Promise<number> {
    if (setIds.length === 0) return 0;
    return Number(await removeScript.runKeys(this.redis, this.#keys(resourceServerId), ...setIds));
  }

  async readAfter(resourceServerId: string, after: QueuePosition | null, max: number): Promise<{ events: PositionedEvent[]; more: boolean }> {
    const limit = Math.max(1, max);
    const from = after === null ? '-inf' : String(after.score);
    const rows = (await readAfterScript.runKeys(this.redis, this.#keys(resourceServerId), from, limit)) as string[];
    const following: PositionedEvent[] = [];
    for (let i = 0; i + 2 < rows.length; i += 3) {
      const position = { score: Number(rows[i + 1]), setId: rows[i] };
      if (!isAfter(position.score, position.setId, after)) continue;
      // An entry whose event is gone (removed in between) is passed over: it cannot be answered.
      const recorded = rows[i + 2] === '' ? undefined : parseRecordedEvent(rows[i + 2]);
      if (recorded) following.push({ setId: position.setId, recorded, position });
    }
    return { events: following.slice(0, limit), more: following.length > limit };
  }
}

/** {@link EventQueue} in process, for the embedded mode (one instance, lost on restart like its tokens). */
export class MemoryEventQueue implements EventQueue {
  /** Per resource server: its entries in queue order (scores only grow, as in Redis), and the last score given. */
  readonly #queues = new Map<string, { entries: Map<string, { score: number; recorded: RecordedEvent }>; lastScore: number }>();

  async enqueue(resourceServerId: string, setId: string, recorded: RecordedEvent, retentionSeconds: number): Promise<void> {
    const queue = this.#queues.get(resourceServerId) ?? { entries: new Map<string, { score: number; recorded: RecordedEvent }>(), lastScore: -1 };
    this.#queues.set(resourceServerId, queue);
    const now = Date.now();
    const cutoff = now - retentionSeconds * 1000;
    for (const [id, entry] of queue.entries) if (entry.score < cutoff) queue.entries.delete(id);
    if (queue.entries.has(setId)) return;
    queue.lastScore = Math.max(now, queue.lastScore + 1);
    queue.entries.set(setId, { score: queue.lastScore, recorded: structuredClone(recorded) });
  }

  async peek(resourceServerId: string, max: number): Promise<{ events: QueuedEvent[]; more: boolean }> {
    const queue = this.#entries(resourceServerId);
    const events = queue.slice(0, Math.max(1, max)).map(([setId, { recorded }]) => ({ setId, recorded: structuredClone(recorded) }));
    return { events, more: queue.length > events.length };
  }

  async remove(resourceServerId: string, setIds: readonly string[]): Promise<number> {
    const queue = this.#queues.get(resourceServerId);
    let removed = 0;
    for (const id of setIds) if (queue?.entries.delete(id)) removed++;
    return removed;
  }

  async readAfter(resourceServerId: string, after: QueuePosition | null, max: number): Promise<{ events: PositionedEvent[]; more: boolean }> {
    const limit = Math.max(1, max);
    const following = this.#entries(resourceServerId).filter(([setId, { score }]) => isAfter(score, setId, after));
    const events = following
      .slice(0, limit)
      .map(([setId, { score, recorded }]) => ({ setId, recorded: structuredClone(recorded), position: { score, setId } }));
    return { events, more: following.length > limit };
  }

  /** A resource server's entries, in queue order. */
  #entries(resourceServerId: string): [setId: string, entry: { score: number; recorded: RecordedEvent }][] {
    return [...(this.#queues.get(resourceServerId)?.entries.entries() ?? [])];
  }
}
