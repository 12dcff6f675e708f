/**
 * Each resource server's queue of security events: what it has not acknowledged yet (RFC 8936
 * poll, RFC 8935 push). In Redis, two keys per resource server in one hash slot (tagged by its id), so
 * every change of a queue is one atomic script, in Redis Cluster too: a sorted set of SET ids by the
 * time they were queued, and a hash of SET id to recorded event. Both expire when the queue has been
 * untouched for its retention, and entries older than that are dropped as new ones come.
 */
import { RedisScript } from '../shared/redis-script.js';
import type { Cluster, Redis } from 'ioredis';
import { parseRecordedEvent, type RecordedEvent } from './revocation-event.js';

/** A queued event as a resource server gets it: its SET id and the event. */
export interface QueuedEvent {
  readonly setId: string;
  readonly recorded: RecordedEvent;
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
}

/** At most this many stale entries are dropped per enqueue (a script's arguments are bounded). */
const TRIM_BATCH = 1000;

const ENQUEUE_SCRIPT = `
local cutoff = tonumber(ARGV[3]) - tonumber(ARGV[4])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, ${TRIM_BATCH})
if #old > 0 then
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('ZREM', KEYS[1], unpack(old))
end
if redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
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

const REMOVE_SCRIPT = `
local removed = redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return removed`;

const enqueueScript = new RedisScript(ENQUEUE_SCRIPT);
const peekScript = new RedisScript(PEEK_SCRIPT);
const removeScript = new RedisScript(REMOVE_SCRIPT);

/** {@link EventQueue} in Redis (standalone or Cluster), shared by every instance. */
export class RedisEventQueue implements EventQueue {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keyPrefix: string,
  ) {}

  /** The two keys of a resource server's queue, in one slot (the tag is its id). */
  #keys(resourceServerId: string): [order: string, events: string] {
    const base = `${this.keyPrefix}secevents:{${resourceServerId}}`;
    return [`${base}:order`, `${base}:events`];
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
}

/** {@link EventQueue} in process, for the embedded mode (one instance, lost on restart like its tokens). */
export class MemoryEventQueue implements EventQueue {
  readonly #queues = new Map<string, Map<string, { queuedAt: number; recorded: RecordedEvent }>>();

  async enqueue(resourceServerId: string, setId: string, recorded: RecordedEvent, retentionSeconds: number): Promise<void> {
    const queue = this.#queues.get(resourceServerId) ?? new Map<string, { queuedAt: number; recorded: RecordedEvent }>();
    this.#queues.set(resourceServerId, queue);
    const cutoff = Date.now() - retentionSeconds * 1000;
    for (const [id, entry] of queue) if (entry.queuedAt < cutoff) queue.delete(id);
    if (!queue.has(setId)) queue.set(setId, { queuedAt: Date.now(), recorded: structuredClone(recorded) });
  }

  async peek(resourceServerId: string, max: number): Promise<{ events: QueuedEvent[]; more: boolean }> {
    const queue = [...(this.#queues.get(resourceServerId) ?? new Map<string, { queuedAt: number; recorded: RecordedEvent }>()).entries()];
    const events = queue.slice(0, Math.max(1, max)).map(([setId, { recorded }]) => ({ setId, recorded: structuredClone(recorded) }));
    return { events, more: queue.length > events.length };
  }

  async remove(resourceServerId: string, setIds: readonly string[]): Promise<number> {
    const queue = this.#queues.get(resourceServerId);
    let removed = 0;
    for (const id of setIds) if (queue?.delete(id)) removed++;
    return removed;
  }
}
