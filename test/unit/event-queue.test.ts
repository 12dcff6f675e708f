/**
 * The per-resource-server event queues, in process, in Redis and in a Redis Cluster (which refuses a
 * script whose keys are in two hash slots), against one contract: queuing an event twice queues it
 * once, a peek answers the oldest first and says when more wait, removal takes only the ids the
 * queue holds (another queue's ids change nothing), and entries past the retention go. Read by
 * position (the poll's cursor extension), a walk visits each event once, in the order queued, even
 * when events come within the same millisecond or with equal scores, and removes nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import type { QueuePosition } from '../../src/security-events/event-cursor.js';
import { MemoryEventQueue, RedisEventQueue, type EventQueue } from '../../src/security-events/event-queue.js';
import type { RecordedEvent } from '../../src/security-events/revocation-event.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';

const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, enableAutoPipelining: true });
const prefix = `${process.env.TEST_RUN_REDIS_PREFIX ?? 'test:'}${randomUUID()}:`;
let redisCluster: RedisCluster;
let cluster: Cluster;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  redisCluster = await startRedisCluster();
  cluster = new Cluster(redisCluster.nodes, { enableAutoPipelining: true, redisOptions: { maxRetriesPerRequest: 1 } });
}, 60_000);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await cluster.quit();
  await redisCluster.stop();
});

const event = (jti: string): RecordedEvent => ({
  id: randomUUID(),
  at: Math.floor(Date.now() / 1000),
  event: { kind: 'token', jti, audiences: ['https://a.test/'] },
});

const kinds: [string, () => EventQueue][] = [
  ['in process', () => new MemoryEventQueue()],
  ['Redis', () => new RedisEventQueue(redis, prefix)],
  ['Redis Cluster', () => new RedisEventQueue(cluster, prefix)],
];

describe.each(kinds)('an event queue (%s)', (_, make) => {
  it('queues an event once however often it is relayed, answers the oldest first, and removes only what it holds', async () => {
    const queue = make();
    const [rs, other] = [randomUUID(), randomUUID()];
    await queue.enqueue(rs, 'set-1', event('one'), 3600);
    await sleep(2);
    await queue.enqueue(rs, 'set-2', event('two'), 3600);
    await queue.enqueue(rs, 'set-1', event('one again'), 3600);
    await queue.enqueue(other, 'set-3', event('three'), 3600);

    const first = await queue.peek(rs, 1);
    expect(first.events.map((e) => e.setId)).toEqual(['set-1']);
    expect(first.events[0].recorded.event).toMatchObject({ jti: 'one' });
    expect(first.more).toBe(true);
    expect((await queue.peek(rs, 10)).events.map((e) => e.setId)).toEqual(['set-1', 'set-2']);

    // Another queue's id, and an unknown one, remove nothing.
    expect(await queue.remove(rs, ['set-3', 'unknown'])).toBe(0);
    expect((await queue.peek(other, 10)).events.map((e) => e.setId)).toEqual(['set-3']);
    expect(await queue.remove(rs, ['set-1'])).toBe(1);
    expect(await queue.peek(rs, 10)).toMatchObject({ events: [{ setId: 'set-2' }], more: false });
  });

  it('drops events past the retention as new ones come', async () => {
    const queue = make();
    const rs = randomUUID();
    await queue.enqueue(rs, 'old', event('old'), 1);
    await sleep(1_100);
    await queue.enqueue(rs, 'new', event('new'), 1);
    expect((await queue.peek(rs, 10)).events.map((e) => e.setId)).toEqual(['new']);
  });
});

/** Every SET id after `from`, read `pageSize` at a time by position. */
async function walk(queue: EventQueue, rs: string, from: QueuePosition | null, pageSize: number): Promise<{ ids: string[]; last: QueuePosition | null }> {
  const ids: string[] = [];
  let position = from;
  for (let pages = 0; pages < 1000; pages++) {
    const { events, more } = await queue.readAfter(rs, position, pageSize);
    ids.push(...events.map((e) => e.setId));
    position = events.at(-1)?.position ?? position;
    if (!more) break;
  }
  return { ids, last: position };
}

describe.each(kinds)('reading an event queue by position (%s)', (_, make) => {
  it('visits every event once, in the order queued (many within a millisecond), and removes nothing', async () => {
    const queue = make();
    const [rs, other] = [randomUUID(), randomUUID()];
    // Ids in descending order: the order queued, not the ids' order, is what a reader follows.
    const ids = Array.from({ length: 40 }, (_, i) => `set-${String(99 - i).padStart(2, '0')}`);
    await Promise.all(ids.map((id) => queue.enqueue(rs, id, event(id), 3600)));
    await queue.enqueue(other, 'set-other', event('other'), 3600);

    const queued = (await queue.peek(rs, 100)).events.map((e) => e.setId);
    expect(new Set(queued)).toEqual(new Set(ids));
    for (const pageSize of [1, 7, 100]) expect((await walk(queue, rs, null, pageSize)).ids).toEqual(queued);

    const { last } = await walk(queue, rs, null, 100);
    expect(await queue.readAfter(rs, last, 10)).toEqual({ events: [], more: false });
    // Queued after the reader's position, whatever its id and whatever the clock says: it is read next.
    await queue.enqueue(rs, 'set-00', event('late'), 3600);
    expect((await walk(queue, rs, last, 1)).ids).toEqual(['set-00']);
    expect((await queue.peek(rs, 100)).events).toHaveLength(41);
    expect((await walk(queue, other, null, 10)).ids).toEqual(['set-other']);
  });

  it('does not answer again, after an acknowledged newest event, at a position already passed', async () => {
    const queue = make();
    const rs = randomUUID();
    await queue.enqueue(rs, 'set-b', event('b'), 3600);
    const { last } = await walk(queue, rs, null, 10);
    await queue.remove(rs, ['set-b']);
    await queue.enqueue(rs, 'set-a', event('a'), 3600);
    expect((await walk(queue, rs, last, 10)).ids).toEqual(['set-a']);
  });
});

describe('a Redis queue written before positions existed (equal scores, no last score)', () => {
  it('is walked once in (score, SET id) order, and new events come after it', async () => {
    const queue = new RedisEventQueue(redis, prefix);
    const rs = randomUUID();
    const base = `${prefix}secevents:{${rs}}`;
    const at = Date.now() + 60_000;
    for (const id of ['set-c', 'set-a', 'set-b']) {
      await redis.zadd(`${base}:order`, at, id);
      await redis.hset(`${base}:events`, id, JSON.stringify(event(id)));
    }
    expect((await walk(queue, rs, null, 1)).ids).toEqual(['set-a', 'set-b', 'set-c']);
    const { last } = await walk(queue, rs, null, 2);
    await queue.enqueue(rs, 'set-0', event('new'), 3600);
    expect((await walk(queue, rs, last, 1)).ids).toEqual(['set-0']);
  });
});

describe("a queue's keys for a script of another change (a revocation queuing its event in its own step)", () => {
  it('are offered only on the queue’s own connection to a standalone Redis: never in a Cluster (another slot), never on another connection', async () => {
    const rs = randomUUID();
    const other = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
    try {
      const base = `${prefix}secevents:{${rs}}`;
      expect(new RedisEventQueue(redis, prefix).keysForScriptOn(redis, rs)).toEqual([`${base}:order`, `${base}:events`, `${base}:last`]);
      expect(new RedisEventQueue(redis, prefix).keysForScriptOn(other, rs)).toBeUndefined();
      expect(new RedisEventQueue(cluster, prefix).keysForScriptOn(cluster, rs)).toBeUndefined();
      expect('keysForScriptOn' in new MemoryEventQueue()).toBe(false);
    } finally {
      other.disconnect();
    }
  });
});
