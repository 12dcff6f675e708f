/**
 * Introspection answers kept in process, keyed by a SHA-256 digest of the token (the token itself is
 * never kept). Bounded three ways: a number of entries (least recently used go first), each active
 * answer's own `exp`, and a configured maximum age; inactive answers are kept only briefly.
 */
import { createHash } from 'node:crypto';

/** An active introspection answer as the kit keeps it. */
export type ActiveAnswer = Readonly<Record<string, unknown>> & { readonly active: true };

/** What the cache holds for a token: its active answer, or `inactive`. */
export type CachedAnswer = ActiveAnswer | 'inactive';

/** The bounds of the cache. */
export interface IntrospectionCacheOptions {
  /** Most answers kept. Default 10 000. */
  readonly maxEntries?: number;
  /** Longest an active answer is kept. Default 60 s. */
  readonly maxTtlMs?: number;
  /** How long an inactive answer is kept. Default 5 s. */
  readonly negativeTtlMs?: number;
}

interface Entry<T> {
  readonly answer: T | 'inactive';
  readonly expiresAt: number;
}

/** The cache key of `token`. */
export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('base64url');

/**
 * A bounded cache of introspection answers (or of verified JWT claims: anything whose `exp` bounds
 * how long it may be kept).
 */
export class IntrospectionCache<T extends Readonly<Record<string, unknown>> = ActiveAnswer> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly maxEntries: number;
  private readonly maxTtlMs: number;
  private readonly negativeTtlMs: number;

  constructor(options: IntrospectionCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxTtlMs = options.maxTtlMs ?? 60_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 5_000;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The answer cached under `key` and not yet expired. */
  get(key: string, now = Date.now()): T | 'inactive' | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    // Most recently used goes last, so the first key is the one to evict.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.answer;
  }

  /** Keeps `answer` under `key` for as long as its bounds allow (not at all for an answer already expired). */
  set(key: string, answer: T | 'inactive', now = Date.now()): void {
    let expiresAt: number;
    if (answer === 'inactive') expiresAt = now + this.negativeTtlMs;
    else {
      const exp = typeof answer.exp === 'number' ? answer.exp * 1000 : now;
      expiresAt = Math.min(exp, now + this.maxTtlMs);
    }
    if (expiresAt <= now) return;
    this.entries.delete(key);
    this.entries.set(key, { answer, expiresAt });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Drops every active answer `matches` selects; the number dropped. */
  dropWhere(matches: (answer: T) => boolean): number {
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.answer !== 'inactive' && matches(entry.answer)) {
        this.entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): void {
    this.entries.clear();
  }
}
