/**
 * Counts failed attempts per key in a fixed window and says when a key must wait. In Redis, so every
 * instance shares the count; in process for the embedded single-instance mode.
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { measureStoreCall } from '../observability/store-health.js';

/** A window of counted failures. */
export interface FailureCounter {
  /** Seconds the key must still wait, or 0 when it may try. */
  retryAfter(key: string): Promise<number>;
  /** Counts one failure for the key; answers the seconds it must now wait (0 while under the limit). */
  recordFailure(key: string): Promise<number>;
  /** Forgets the key's failures (after a success). */
  reset(key: string): Promise<void>;
}

/** How many failures within how many seconds block a key for the rest of the window. */
export interface FailurePolicy {
  readonly maxFailures: number;
  readonly windowSeconds: number;
  /** The window restarts at every failure (a run of failures), instead of running from the first. */
  readonly restartWindowOnFailure?: boolean;
}

/** Failure counts in Redis: `INCR` plus an expiry set on the first failure of a window. */
export class RedisFailureCounter implements FailureCounter {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keyPrefix: string,
    private readonly policy: FailurePolicy,
  ) {}

  async retryAfter(key: string): Promise<number> {
    const [[, count], [, ttl]] = (await measureStoreCall('redis', 'failures', () => this.redis.multi().get(this.#key(key)).ttl(this.#key(key)).exec())) as [
      [null, string | null],
      [null, number],
    ];
    return Number(count ?? 0) >= this.policy.maxFailures ? Math.max(1, ttl) : 0;
  }

  async recordFailure(key: string): Promise<number> {
    const results = (await measureStoreCall('redis', 'failures', () =>
      this.#expire(this.redis.multi().incr(this.#key(key)), key).ttl(this.#key(key)).exec(),
    )) as [
      [null, number],
      [null, number],
      [null, number],
    ];
    const [[, count], , [, ttl]] = results;
    return count >= this.policy.maxFailures ? Math.max(1, ttl) : 0;
  }

  async reset(key: string): Promise<void> {
    await measureStoreCall('redis', 'failures', () => this.redis.del(this.#key(key)));
  }

  #key(key: string): string {
    return `${this.keyPrefix}${key}`;
  }

  #expire(multi: ChainableCommander, key: string): ChainableCommander {
    return this.policy.restartWindowOnFailure
      ? multi.expire(this.#key(key), this.policy.windowSeconds)
      : multi.expire(this.#key(key), this.policy.windowSeconds, 'NX');
  }
}

const MAX_MEMORY_WINDOWS = 100_000;

/** Failure counts in this process (embedded mode: one instance). */
export class MemoryFailureCounter implements FailureCounter {
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  constructor(private readonly policy: FailurePolicy) {}

  async retryAfter(key: string): Promise<number> {
    const window = this.#current(key);
    return window && window.count >= this.policy.maxFailures ? Math.max(1, Math.ceil((window.endsAt - Date.now()) / 1000)) : 0;
  }

  async recordFailure(key: string): Promise<number> {
    if (this.#windows.size > MAX_MEMORY_WINDOWS) for (const stale of this.#windows.keys()) this.#current(stale);
    // Still too many live ones (a spray of made-up keys): the oldest give way first.
    while (this.#windows.size > MAX_MEMORY_WINDOWS) this.#windows.delete(this.#windows.keys().next().value!);
    const window = this.#current(key) ?? { count: 0, endsAt: 0 };
    window.count++;
    if (window.endsAt === 0 || this.policy.restartWindowOnFailure) window.endsAt = Date.now() + this.policy.windowSeconds * 1000;
    this.#windows.delete(key);
    this.#windows.set(key, window);
    return this.retryAfter(key);
  }

  async reset(key: string): Promise<void> {
    this.#windows.delete(key);
  }

  #current(key: string) {
    const window = this.#windows.get(key);
    if (window && window.endsAt <= Date.now()) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }
}
