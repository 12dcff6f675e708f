/**
 * The failure counters, in Redis and in process, against one contract: N failures are allowed, the
 * attempt after the Nth is refused and not counted, deciding and counting are one atomic step (so
 * parallel attempts never get past the limit), and a Redis that cannot be reached refuses (throws).
 * Only what a caller sees is asserted (the seconds to wait), not how the count is stored.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { MemoryFailureCounter, RedisFailureCounter, type FailureCounter, type FailurePolicy } from '../../src/limits/failure-counter.js';
import { freePort } from '../helpers/free-port.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
const prefix = `${process.env.TEST_RUN_REDIS_PREFIX ?? 'test:'}${randomUUID()}:failures:`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const kinds: [string, (policy: FailurePolicy) => FailureCounter][] = [
  ['in process', (policy) => new MemoryFailureCounter(policy)],
  ['Redis', (policy) => new RedisFailureCounter(redis, `${prefix}${randomUUID()}:`, policy)],
];

describe.each(kinds)('a failure counter (%s)', (_, make) => {
  const policy: FailurePolicy = { maxFailures: 10, windowSeconds: 60 };

  it('allows exactly maxFailures failures; the next attempt, failing or not, waits for the rest of the window', async () => {
    const counter = make(policy);
    for (let i = 0; i < 10; i++) expect(await counter.admit('k', true)).toBe(0);
    const wait = await counter.admit('k', false);
    expect(wait).toBeGreaterThan(55);
    expect(wait).toBeLessThanOrEqual(60);
    expect(await counter.admit('k', true)).toBeGreaterThan(0);
    // Another key is not affected.
    expect(await counter.admit('other', false)).toBe(0);
  });

  it('counts first, atomically: of 14 parallel failures exactly 10 are admitted', async () => {
    const counter = make(policy);
    const waits = await Promise.all(Array.from({ length: 14 }, () => counter.admit('k', true)));
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    expect(waits.filter((w) => w > 0)).toHaveLength(4);
  });

  it('a refused attempt is not counted, and successes (not counted, or released) leave room', async () => {
    const counter = make(policy);
    for (let i = 0; i < 9; i++) await counter.admit('k', true);
    // Counted up front and taken back: still 9.
    expect(await counter.admit('k', true)).toBe(0);
    await counter.release('k');
    expect(await counter.admit('k', false)).toBe(0);
    expect(await counter.admit('k', true)).toBe(0);
    expect(await counter.admit('k', true)).toBeGreaterThan(0);
    await counter.reset('k');
    expect(await counter.admit('k', false)).toBe(0);
  });

  it('release never goes below zero', async () => {
    const counter = make(policy);
    await counter.release('k');
    await counter.release('k');
    for (let i = 0; i < 10; i++) expect(await counter.admit('k', true)).toBe(0);
    expect(await counter.admit('k', true)).toBeGreaterThan(0);
  });

  it('a window that restarts at every failure waits from the last one', async () => {
    const counter = make({ maxFailures: 2, windowSeconds: 2, restartWindowOnFailure: true });
    await counter.admit('k', true);
    await sleep(1_200);
    await counter.admit('k', true);
    // 1.2 s after the first failure, the wait is the whole window again.
    expect(await counter.admit('k', true)).toBe(2);
  });

  it.concurrent('counts the wait down, and admits again when the window is over', async () => {
    const counter = make({ maxFailures: 2, windowSeconds: 2 });
    await counter.admit('k', true);
    await counter.admit('k', true);
    expect(await counter.admit('k', false)).toBe(2);
    await sleep(1_200);
    expect(await counter.admit('k', false)).toBe(1);
    await sleep(1_000);
    // A new window: the old failures no longer count.
    expect(await counter.admit('k', true)).toBe(0);
    expect(await counter.admit('k', true)).toBe(0);
  });

  it.concurrent('runs a fixed window from the first failure: failures spread wider than the window never block', async () => {
    const counter = make({ maxFailures: 2, windowSeconds: 2 });
    expect(await counter.admit('k', true)).toBe(0);
    await sleep(1_300);
    expect(await counter.admit('k', true)).toBe(0);
    await sleep(1_300);
    // The first failure's window ended 0.6 s ago: this one opens a new window with a count of one.
    expect(await counter.admit('k', true)).toBe(0);
    expect(await counter.admit('k', false)).toBe(0);
  });
});

describe('a Redis failure counter', () => {
  it('refuses a right attempt at the limit even when the key lost its expiry, and gives the expiry back', async () => {
    const keyPrefix = `${prefix}${randomUUID()}:`;
    const counter = new RedisFailureCounter(redis, keyPrefix, { maxFailures: 3, windowSeconds: 60 });
    for (let i = 0; i < 3; i++) expect(await counter.admit('k', true)).toBe(0);
    await redis.persist(`${keyPrefix}k`);
    // A right attempt reads the count only while below the limit; at it, it waits the whole window.
    expect(await counter.admit('k', false)).toBe(60);
    expect(await redis.ttl(`${keyPrefix}k`)).toBeGreaterThan(55);
  });

  it('refuses when Redis cannot be reached: admit throws, it never admits', async () => {
    const port = await freePort();
    const away = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    away.on('error', () => {});
    const counter = new RedisFailureCounter(away, prefix, { maxFailures: 10, windowSeconds: 60 });
    await expect(counter.admit('k', true)).rejects.toThrow();
    await expect(counter.admit('k', false)).rejects.toThrow();
    away.disconnect();
  });
});
