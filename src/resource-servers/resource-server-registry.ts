/**
 * Every resource server, held in process so the token and introspection paths never wait on
 * PostgreSQL. Reloaded when any instance publishes a change, and at least every `ttlSeconds`.
 */
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import type { Logger } from '../observability/logger.js';
import { CoalescedRun } from '../shared/coalesced-run.js';
import type { ResourceServer } from './resource-server.js';
import { selectAllResourceServers } from './resource-server-repository.js';

/** Finds resource servers by identifier or by the client id they introspect with. */
export class ResourceServerRegistry {
  #byIdentifier = new Map<string, ResourceServer>();
  #byIntrospectionClient = new Map<string, ResourceServer>();
  #loadedAt = 0;
  readonly #reloads: CoalescedRun;

  constructor(
    private readonly db: Db,
    private readonly builtIn: readonly ResourceServer[],
    private readonly ttlSeconds: number,
    logger: Logger,
  ) {
    this.#reloads = new CoalescedRun(
      () => this.reload(),
      (error) => logger.warn({ err: error }, 'resource server reload failed; serving cached entries'),
    );
  }

  /** Loads every resource server and follows change events on `bus`. */
  async start(bus: ChangeBus): Promise<void> {
    bus.subscribe((event) => {
      if (event.kind === 'resource-server') this.#reloads.request();
    });
    await this.reload();
  }

  /** Reads every resource server from PostgreSQL again. */
  async reload(): Promise<void> {
    const all = [...this.builtIn, ...(await selectAllResourceServers(this.db))];
    this.#byIdentifier = new Map(all.map((rs) => [rs.identifier, rs]));
    this.#byIntrospectionClient = new Map(all.map((rs) => [rs.introspectionClientId, rs]));
    this.#loadedAt = Date.now();
  }

  /** The resource server with this identifier (RFC 8707 resource indicator), if any. */
  byIdentifier(identifier: string): ResourceServer | undefined {
    this.#refreshIfStale();
    return this.#byIdentifier.get(identifier);
  }

  /** The resource server that introspects with this client id, if any. */
  byIntrospectionClientId(clientId: string): ResourceServer | undefined {
    this.#refreshIfStale();
    return this.#byIntrospectionClient.get(clientId);
  }

  /** Every resource server (client, account and key revocation events go to all of them). */
  all(): ResourceServer[] {
    this.#refreshIfStale();
    return [...this.#byIdentifier.values()];
  }

  /** The longest JWT access token lifetime any resource server can issue, in seconds. */
  longestJwtLifetime(defaultTtl: number): number {
    let longest = defaultTtl;
    for (const rs of this.#byIdentifier.values()) {
      if (rs.tokenFormat === 'jwt') longest = Math.max(longest, rs.accessTokenTtl ?? defaultTtl);
    }
    return longest;
  }

  // A stale cache keeps answering while it refreshes: the TTL bounds staleness when an event is lost,
  // it is not a reason to make a request wait on PostgreSQL.
  #refreshIfStale(): void {
    if (Date.now() - this.#loadedAt > this.ttlSeconds * 1000) this.#reloads.request();
  }

  /** Resolves when any reload in progress has finished (see CoalescedRun#settled). */
  settled(): Promise<void> | undefined {
    return this.#reloads.settled();
  }
}
