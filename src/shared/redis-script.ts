/** Lua scripts for Redis, sent the cheap way. */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * A Lua script, sent by its SHA-1 (EVALSHA) rather than in full on every call; in full (EVAL) only
 * when Redis answers NOSCRIPT (a new server, a restart, SCRIPT FLUSH), which also loads it. Its keys
 * must share a slot (Redis Cluster).
 */
export class RedisScript {
  readonly #sha: string;

  constructor(readonly lua: string) {
    // SHA-1 is how Redis names scripts, not a security measure.
    this.#sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script on one key. */
  run(redis: Redis | Cluster, key: string, ...args: (string | number)[]): Promise<unknown> {
    return this.runKeys(redis, [key], ...args);
  }

  /** Runs the script on `keys` (all in one slot). */
  runKeys(redis: Redis | Cluster, keys: readonly string[], ...args: (string | number)[]): Promise<unknown> {
    return redis.evalsha(this.#sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    });
  }
}
