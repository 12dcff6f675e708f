/**
 * The failure counter behind sign-in throttling and client-authentication lockout: the Redis one
 * (every instance shares the count) and the in-process one (embedded mode) must behave alike. Both
 * run the same scenarios, in real time against a real Redis; only what a caller sees is asserted (the
 * seconds to wait), not how the count is stored.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { MemoryFailureCounter, RedisFailureCounter, type FailureCounter, type FailurePolicy } from '../../src/limits/failure-counter.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const runPrefix = process.env.TEST_RUN_REDIS_PREFIX ?? 'test:failure-counter:';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Opened here, not in beforeAll: concurrent tests may start before hooks run.
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });

afterAll(async () => {
  await redis.quit();
});

const implementations: Array<[string, (policy: FailurePolicy) => FailureCounter]> = [
  ['RedisFailureCounter', (policy) => new RedisFailureCounter(redis, `${runPrefix}failures:${randomUUID()}:`, policy)],
  ['MemoryFailureCounter', (policy) => new MemoryFailureCounter(policy)],
];

/** Records `n` failures one after another; answers what each one said. */
async function fail(counter: FailureCounter, key: string, n: number): Promise<number[]> {
  const answers: number[] = [];
  for (let i = 0; i < n; i++) answers.push(await counter.recordFailure(key));
  return answers;
}

// The scenarios that wait for a window to pass run concurrently (each on keys of its own): seconds, not tens of them.
describe.each(implementations)('%s', (_name, create) => {
  it('lets a key fail up to the limit, then blocks it for the window, and keeps other keys apart', async () => {
    const counter = create({ maxFailures: 3, windowSeconds: 60 });
    expect(await fail(counter, 'alice', 2)).toEqual([0, 0]);
    expect(await counter.retryAfter('alice')).toBe(0);

    const wait = await counter.recordFailure('alice');
    expect(wait).toBeGreaterThanOrEqual(59);
    expect(wait).toBeLessThanOrEqual(60);
    const retryAfter = await counter.retryAfter('alice');
    expect(retryAfter).toBeGreaterThanOrEqual(59);
    expect(retryAfter).toBeLessThanOrEqual(60);

    expect(await counter.retryAfter('bob')).toBe(0);
    expect(await counter.recordFailure('bob')).toBe(0);
  });

  it('counts failures made at the same moment, every one of them', async () => {
    const counter = create({ maxFailures: 5, windowSeconds: 60 });
    const answers = await Promise.all(Array.from({ length: 8 }, () => counter.recordFailure('burst')));
    // The 5th to the 8th failure are over the limit, whichever order they landed in.
    expect(answers.filter((wait) => wait > 0)).toHaveLength(4);
    expect(await counter.retryAfter('burst')).toBeGreaterThan(0);
  });

  it('forgets a key on reset: no wait, and a full allowance again', async () => {
    const counter = create({ maxFailures: 3, windowSeconds: 60 });
    await fail(counter, 'carol', 3);
    expect(await counter.retryAfter('carol')).toBeGreaterThan(0);

    await counter.reset('carol');
    expect(await counter.retryAfter('carol')).toBe(0);
    expect(await fail(counter, 'carol', 2)).toEqual([0, 0]);
    expect(await counter.recordFailure('carol')).toBeGreaterThan(0);
  });

  it.concurrent('counts the wait down, and unblocks the key when the window is over', async () => {
    const counter = create({ maxFailures: 2, windowSeconds: 2 });
    await fail(counter, 'dave', 2);
    expect(await counter.retryAfter('dave')).toBe(2);

    await sleep(1_200);
    expect(await counter.retryAfter('dave')).toBe(1);

    await sleep(1_000);
    expect(await counter.retryAfter('dave')).toBe(0);
    // A new window: the old failures no longer count.
    expect(await counter.recordFailure('dave')).toBe(0);
  });

  it.concurrent('runs a fixed window from the first failure: failures spread wider than the window never block', async () => {
    const counter = create({ maxFailures: 3, windowSeconds: 2 });
    expect(await counter.recordFailure('erin')).toBe(0);
    await sleep(1_300);
    expect(await counter.recordFailure('erin')).toBe(0);
    await sleep(1_300);
    // The first failure's window ended 0.6 s ago: this one opens a new window with a count of one.
    expect(await counter.recordFailure('erin')).toBe(0);
    expect(await counter.retryAfter('erin')).toBe(0);
  });

  it.concurrent('with restartWindowOnFailure, counts a run of failures however long, each within the window of the last', async () => {
    const counter = create({ maxFailures: 3, windowSeconds: 2, restartWindowOnFailure: true });
    expect(await counter.recordFailure('frank')).toBe(0);
    await sleep(1_300);
    expect(await counter.recordFailure('frank')).toBe(0);
    await sleep(1_300);
    // 2.6 s after the first failure, but 1.3 s after the last: still one run, and the third failure.
    const wait = await counter.recordFailure('frank');
    expect(wait).toBe(2);
    expect(await counter.retryAfter('frank')).toBeGreaterThan(0);
  });
});
