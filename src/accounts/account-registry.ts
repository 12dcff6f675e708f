/**
 * Accounts held in process, so the refresh, userinfo and introspection paths never wait on
 * PostgreSQL: the same bounded cache as clients, dropped on every instance when an account changes.
 */
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import type { Logger } from '../observability/logger.js';
import { issuedAfterRevocation, RegistryCache } from '../shared/registry-cache.js';
import { isPossibleAccountId, type Account } from './account.js';
import { selectAccount } from './account-repository.js';

/** Cached access to accounts, for the provider's `findAccount` and for introspection. */
export class AccountRegistry {
  readonly #cache: RegistryCache<Account>;

  constructor(db: Db, ttlSeconds: number, logger: Logger) {
    this.#cache = new RegistryCache({ kind: 'account', ttlSeconds, logger, load: (id) => selectAccount(db, id), isPossibleId: isPossibleAccountId });
  }

  /** Drops cache entries whenever any instance publishes an account change. */
  follow(bus: ChangeBus): void {
    this.#cache.follow(bus);
  }

  /** The account if it may sign in and hold tokens now: it exists and is not disabled. */
  async getActive(id: string): Promise<Account | undefined> {
    const account = await this.#cache.get(id);
    return account && !account.disabled ? account : undefined;
  }

  /**
   * Whether a token issued to the account at `issuedAt` (epoch seconds) is still alive as far as the
   * account is concerned: it exists, is enabled, and its sessions were not ended since.
   */
  async allowsTokenIssuedAt(id: string, issuedAt: number): Promise<boolean> {
    const account = await this.getActive(id);
    if (!account) return false;
    return issuedAfterRevocation(account.tokensRevokedAt, issuedAt);
  }
}
