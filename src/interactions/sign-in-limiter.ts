/**
 * Sign-in throttling. Two counters, both of failures only:
 * - per email (whether or not an account has it, so the limit reveals nothing): after
 *   {@link MAX_CONSECUTIVE_FAILURES} failures in a row, sign-in for that email pauses for
 *   {@link EMAIL_COOLDOWN_SECONDS}; a success resets it;
 * - per client address: {@link MAX_ADDRESS_FAILURES} failures in {@link ADDRESS_WINDOW_SECONDS} pause
 *   that address until the window ends.
 * Counted in Redis when there is one (shared by every instance), in process otherwise. Attempts made
 * while paused are not counted, so hammering does not extend the pause for the real person.
 */
import type { Redis } from 'ioredis';
import { sha256Base64Url } from '../shared/secrets.js';

export const MAX_CONSECUTIVE_FAILURES = 10;
export const EMAIL_COOLDOWN_SECONDS = 15 * 60;
export const MAX_ADDRESS_FAILURES = 50;
export const ADDRESS_WINDOW_SECONDS = 15 * 60;

/** Counts failed sign-ins and says when to pause. */
export interface SignInLimiter {
  /** Seconds until a sign-in for `email` from `address` may be tried, or 0 when it may be now. */
  retryAfter(email: string, address: string): Promise<number>;
  /** Counts a failed sign-in. */
  recordFailure(email: string, address: string): Promise<void>;
  /** Ends the run of failures for `email`. */
  recordSuccess(email: string): Promise<void>;
}

// Keys hold digests: neither an email nor an address is written to the store in clear.
const emailKey = (email: string) => `signin:email:${sha256Base64Url(email.trim().toLowerCase())}`;
const addressKey = (address: string) => `signin:address:${sha256Base64Url(address)}`;

/** {@link SignInLimiter} in Redis, shared by every instance. */
export class RedisSignInLimiter implements SignInLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  async retryAfter(email: string, address: string): Promise<number> {
    const [emailCount, emailTtl, addressCount, addressTtl] = (await this.redis
      .pipeline()
      .get(this.keyPrefix + emailKey(email))
      .ttl(this.keyPrefix + emailKey(email))
      .get(this.keyPrefix + addressKey(address))
      .ttl(this.keyPrefix + addressKey(address))
      .exec())!.map(([error, value]) => {
      if (error) throw error;
      return Number(value ?? 0);
    }) as [number, number, number, number];
    return Math.max(
      emailCount >= MAX_CONSECUTIVE_FAILURES ? Math.max(emailTtl, 1) : 0,
      addressCount >= MAX_ADDRESS_FAILURES ? Math.max(addressTtl, 1) : 0,
    );
  }

  async recordFailure(email: string, address: string): Promise<void> {
    const byEmail = this.keyPrefix + emailKey(email);
    const byAddress = this.keyPrefix + addressKey(address);
    // The email's pause runs from its last failure; the address window from its first.
    const replies = await this.redis
      .multi()
      .incr(byEmail)
      .expire(byEmail, EMAIL_COOLDOWN_SECONDS)
      .incr(byAddress)
      .expire(byAddress, ADDRESS_WINDOW_SECONDS, 'NX')
      .exec();
    for (const [error] of replies ?? []) if (error) throw error;
  }

  async recordSuccess(email: string): Promise<void> {
    await this.redis.del(this.keyPrefix + emailKey(email));
  }
}

// Bounds the memory a spray of made-up emails can take; the oldest counters give way first.
const MAX_MEMORY_COUNTERS = 100_000;

/** {@link SignInLimiter} in process memory, for the embedded single-instance mode. */
export class MemorySignInLimiter implements SignInLimiter {
  readonly #counters = new Map<string, { count: number; expiresAt: number }>();

  async retryAfter(email: string, address: string): Promise<number> {
    return Math.max(this.#pause(emailKey(email), MAX_CONSECUTIVE_FAILURES), this.#pause(addressKey(address), MAX_ADDRESS_FAILURES));
  }

  async recordFailure(email: string, address: string): Promise<void> {
    const now = Date.now();
    const byEmail = this.#live(emailKey(email), now);
    this.#counters.set(emailKey(email), { count: (byEmail?.count ?? 0) + 1, expiresAt: now + EMAIL_COOLDOWN_SECONDS * 1000 });
    const byAddress = this.#live(addressKey(address), now);
    this.#counters.set(addressKey(address), {
      count: (byAddress?.count ?? 0) + 1,
      expiresAt: byAddress?.expiresAt ?? now + ADDRESS_WINDOW_SECONDS * 1000,
    });
    while (this.#counters.size > MAX_MEMORY_COUNTERS) this.#counters.delete(this.#counters.keys().next().value!);
  }

  async recordSuccess(email: string): Promise<void> {
    this.#counters.delete(emailKey(email));
  }

  #live(key: string, now: number) {
    const counter = this.#counters.get(key);
    if (counter && counter.expiresAt > now) return counter;
    this.#counters.delete(key);
    return undefined;
  }

  #pause(key: string, limit: number): number {
    const counter = this.#live(key, Date.now());
    return counter && counter.count >= limit ? Math.ceil((counter.expiresAt - Date.now()) / 1000) : 0;
  }
}
