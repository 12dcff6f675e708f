/**
 * A bounded in-process cache of records kept in PostgreSQL, so the token and introspection paths never
 * wait on it: entries expire after a TTL, are dropped on every instance when a change is published on
 * the change bus, and concurrent misses for one id share one query.
 */
import type { ChangeBus, ChangeEvent } from '../events/change-bus.js';
import type { Logger } from '../observability/logger.js';
import { recordStoreFailure } from '../observability/store-health.js';

interface CacheEntry<V> {
  readonly value: V | undefined;
  readonly loadedAt: number;
}

// Unknown ids are cached too (so a flood of them cannot reach PostgreSQL); the bound caps memory.
const MAX_ENTRIES = 10_000;
// Past its TTL, a known record keeps being served from the cache this long while it is read again (and
// while PostgreSQL is unreachable, that read failing); older, a lookup waits for the read.
const STALE_WHILE_DOWN_MS = 5 * 60_000;

/** How a {@link RegistryCache} loads and how long it keeps what it loaded. */
export interface RegistryCacheOptions<V> {
  /** The change events that drop entries (`id` is the record's id, or `*` for all). */
  readonly kind: ChangeEvent['kind'];
  readonly ttlSeconds: number;
  /** Reads the record from PostgreSQL; `undefined` when there is none. */
  readonly load: (id: string) => Promise<V | undefined>;
  /**
   * Whether a record could have this id. Ids that cannot (a NUL, the wrong shape, too long) are
   * unknown at once: no query (PostgreSQL would fail on some, and count as an outage), no cache entry.
   */
  readonly isPossibleId: (id: string) => boolean;
  readonly logger: Logger;
}

/** Cached lookups by id of one kind of record. */
export class RegistryCache<V> {
  readonly #entries = new Map<string, CacheEntry<V>>();
  readonly #inFlight = new Map<string, Promise<V | undefined>>();

  constructor(private readonly options: RegistryCacheOptions<V>) {}

  /** Drops entries whenever any instance publishes a change of this cache's kind. */
  follow(bus: ChangeBus): void {
    bus.subscribe((event) => {
      if (event.kind !== this.options.kind) return;
      if (event.id === '*') this.#entries.clear();
      else this.#entries.delete(event.id);
    });
  }

  /**
   * The record with this id; `undefined` when there is none. A fresh entry is answered as is, not
   * wrapped in a promise: the hot paths look clients up several times per request. An entry past its
   * TTL but loaded in the last STALE_WHILE_DOWN_MS is answered as is too while it is read again in the
   * background (the next lookup gets what that read found), so a request waits on PostgreSQL only for
   * a record this process does not hold: one it never read, one a change event dropped, or one
   * nobody looked up for minutes.
   */
  get(id: string): V | undefined | Promise<V | undefined> {
    if (!this.options.isPossibleId(id)) return undefined;
    const entry = this.#entries.get(id);
    const age = entry ? Date.now() - entry.loadedAt : Number.POSITIVE_INFINITY;
    if (entry && age < this.options.ttlSeconds * 1000) return entry.value;

    let loading = this.#inFlight.get(id);
    if (!loading) {
      loading = this.#load(id, entry).finally(() => this.#inFlight.delete(id));
      this.#inFlight.set(id, loading);
    }
    if (entry && age < STALE_WHILE_DOWN_MS) {
      // Its failure is the load's to log (and to count); the entry keeps being answered meanwhile.
      loading.catch(() => undefined);
      return entry.value;
    }
    return loading;
  }

  async #load(id: string, previous: CacheEntry<V> | undefined): Promise<V | undefined> {
    let value: V | undefined;
    try {
      value = await this.options.load(id);
    } catch (error) {
      recordStoreFailure('postgres');
      if (previous && Date.now() - previous.loadedAt < STALE_WHILE_DOWN_MS) {
        this.options.logger.warn({ err: error, kind: this.options.kind, id }, 'lookup failed; serving the cached entry');
        return previous.value;
      }
      throw error;
    }
    if (this.#entries.size >= MAX_ENTRIES) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.delete(id);
    this.#entries.set(id, { value, loadedAt: Date.now() });
    return value;
  }
}

/**
 * Whether a token issued at `issuedAt` outlives a bulk revocation at `tokensRevokedAt` (both epoch
 * seconds; `null`: never revoked). Tokens of the revocation's own second are dead too.
 */
export function issuedAfterRevocation(tokensRevokedAt: number | null, issuedAt: number): boolean {
  return tokensRevokedAt === null || issuedAt > tokensRevokedAt;
}
