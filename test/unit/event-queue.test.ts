/**
 * The per-resource-server event queues, in process, in Redis and in a Redis Cluster (which refuses a
 * script whose keys are in two hash slots), against one contract: queuing an event twice queues it
 * once, a peek answers the oldest first and says when more wait, removal takes only the ids the
 * queue holds (another queue's ids change nothing), and entries past the retention go.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
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
