/**
 * Counts failed attempts per key in a window and says when a key must wait. In Redis, so every
 * instance shares the count; in process for the embedded single-instance mode.
 *
 * The semantics, the same in both: a policy of N failures allows N failures; once N are counted in the
 * window, every further attempt is refused (told how long to wait) and not counted, whatever it
 * carries, until the window ends. Deciding and counting are one atomic step ({@link FailureCounter.admit}),
 * so parallel attempts can never get past the limit between a check and a count.
 */
import { Cluster, type Redis } from 'ioredis';
import { measureStoreCall } from '../observability/store-health.js';
import { RedisScript } from '../shared/redis-script.js';

/** A window of counted failures. */
export interface FailureCounter {
  /**
   * One atomic step: when the key already has `maxFailures` failures in its window, answers the
   * seconds it must wait and counts nothing; otherwise counts one failure if `countFailure`, and
   * answers 0 (the attempt may go on).
   *
   * Callers that must refuse before doing expensive work count first (`countFailure: true`) and
   * {@link release} the count when the attempt turns out right; callers whose check is cheap check
   * first and pass its outcome.
   */
  admit(key: string, countFailure: boolean): Promise<number>;
  /** Takes back one failure counted up front by {@link admit} (the attempt turned out right). */
  release(key: string): Promise<void>;
  /** Forgets the key's failures (after a success). */
  reset(key: string): Promise<void>;
  /**
   * The key's limit, for the store step an attempt whose check was right leads to: that step refuses
   * (see {@link LockoutGuard}) instead of the attempt asking {@link admit} in a step of its own.
   */
  guard(key: string): LockoutGuard;
}

/**
 * A key's limit, checked by another store's step: that step does nothing and answers
 * {@link LOCKED_OUT} when the key has `maxFailures` failures in its window. A Redis script on the
 * counter's own connection reads `redisKey` in its step (one round trip for the attempt); any other
 * store asks {@link atLimit} first. Counting nothing, the check needs no atomic step with the count
 * (as {@link FailureCounter.admit} for a right attempt).
 */
export interface LockoutGuard {
  readonly maxFailures: number;
  /** The counter's key, for a script on this connection (a standalone Redis: in a Cluster, another slot). */
  readonly redisKey?: { readonly connection: object; readonly key: string };
  /** Whether the key is at its limit, read in a step of its own. */
  atLimit(): Promise<boolean>;
}

/** What a step given a {@link LockoutGuard} answers when the key is at its limit: it did nothing. */
export const LOCKED_OUT = Symbol('locked out');
/** The type of {@link LOCKED_OUT}. */
export type LockedOut = typeof LOCKED_OUT;

/** How many failures within how many seconds block a key for the rest of the window. */
export interface FailurePolicy {
  /** Failures allowed in a window; the attempt after the last one allowed is refused. */
  readonly maxFailures: number;
  readonly windowSeconds: number;
  /** The window restarts at every failure (a run of failures), instead of running from the first. */
  readonly restartWindowOnFailure?: boolean;
}

// KEYS[1]: the counter. ARGV: maxFailures, windowSeconds, restart window (1/0), count a failure (1/0).
// Answers 0 when admitted, else the milliseconds left in the window.
const ADMIT_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2]) * 1000
  end
  return ttl
end
if ARGV[4] == '1' then
  redis.call('INCR', KEYS[1])
  if ARGV[3] == '1' or count == 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
end
return 0
`;

// KEYS[1]: the counter. One failure fewer; the key goes when none is left (never below zero, never
// recreated without an expiry once the window has ended).
const RELEASE_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count <= 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('DECR', KEYS[1])
end
return 0
`;

const admitScript = new RedisScript(ADMIT_SCRIPT);
const releaseScript = new RedisScript(RELEASE_SCRIPT);

/** Failure counts in Redis: each step is one script, so it is atomic across every instance. */
export class RedisFailureCounter implements FailureCounter {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keyPrefix: string,
    private readonly policy: FailurePolicy,
  ) {}

  admit(key: string, countFailure: boolean): Promise<number> {
    if (!countFailure) {
      // The common case (a right secret, checked first): one read, and the script only for a key at its
      // limit (which answers the wait, and gives the key back its expiry if it lost it). Counting nothing,
      // the read needs no atomic step: a failure counted just after it is ordered after this attempt.
      // A promise chain rather than an async function: it runs on every token and introspection request.
      return measureStoreCall('redis', 'failures', () => this.redis.get(this.#key(key))).then((count) =>
        Number(count ?? '0') < this.policy.maxFailures ? 0 : this.#admitByScript(key, false),
      );
    }
    return this.#admitByScript(key, true);
  }

  async #admitByScript(key: string, countFailure: boolean): Promise<number> {
    const { maxFailures, windowSeconds, restartWindowOnFailure } = this.policy;
    const waitMs = (await measureStoreCall('redis', 'failures', () =>
      admitScript.run(this.redis, this.#key(key), maxFailures, windowSeconds, restartWindowOnFailure ? '1' : '0', countFailure ? '1' : '0'),
    )) as number;
    return waitMs > 0 ? Math.max(1, Math.ceil(waitMs / 1000)) : 0;
  }

  guard(key: string): LockoutGuard {
    const { maxFailures } = this.policy;
    const counterKey = this.#key(key);
    return {
      maxFailures,
      redisKey: this.redis instanceof Cluster ? undefined : { connection: this.redis, key: counterKey },
      atLimit: () => measureStoreCall('redis', 'failures', () => this.redis.get(counterKey)).then((count) => Number(count ?? '0') >= maxFailures),
    };
  }

  async release(key: string): Promise<void> {
    await measureStoreCall('redis', 'failures', () => releaseScript.run(this.redis, this.#key(key)));
  }

  async reset(key: string): Promise<void> {
    await measureStoreCall('redis', 'failures', () => this.redis.del(this.#key(key)));
  }

  #key(key: string): string {
    return `${this.keyPrefix}${key}`;
  }
}

const MAX_MEMORY_WINDOWS = 100_000;

/** Failure counts in this process (embedded mode: one instance). Each step runs without awaiting, so it is atomic too. */
export class MemoryFailureCounter implements FailureCounter {
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  constructor(private readonly policy: FailurePolicy) {}

  async admit(key: string, countFailure: boolean): Promise<number> {
    const window = this.#current(key);
    if (window && window.count >= this.policy.maxFailures) return Math.max(1, Math.ceil((window.endsAt - Date.now()) / 1000));
    if (!countFailure) return 0;
    if (this.#windows.size > MAX_MEMORY_WINDOWS) for (const stale of this.#windows.keys()) this.#current(stale);
    // Still too many live ones (a spray of made-up keys): the oldest give way first.
    while (this.#windows.size > MAX_MEMORY_WINDOWS) this.#windows.delete(this.#windows.keys().next().value!);
    const counted = window ?? { count: 0, endsAt: 0 };
    counted.count++;
    if (counted.endsAt === 0 || this.policy.restartWindowOnFailure) counted.endsAt = Date.now() + this.policy.windowSeconds * 1000;
    this.#windows.delete(key);
    this.#windows.set(key, counted);
    return 0;
  }

  guard(key: string): LockoutGuard {
    const { maxFailures } = this.policy;
    return { maxFailures, atLimit: async () => (this.#current(key)?.count ?? 0) >= maxFailures };
  }

  async release(key: string): Promise<void> {
    const window = this.#current(key);
    if (!window) return;
    if (window.count <= 1) this.#windows.delete(key);
    else window.count--;
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
