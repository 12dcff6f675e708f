/**
 * Clients held in process so the token and introspection paths never wait on PostgreSQL: a bounded
 * cache, dropped on every instance when a change is published, and expiring on its own after a TTL.
 * It is also the oidc-provider adapter for the Client model and the judge of client secrets.
 */
import { randomBytes } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import type { Logger } from '../observability/logger.js';
import { issuedAfterRevocation, RegistryCache } from '../shared/registry-cache.js';
import { secretMatchesAnyDigest } from '../shared/secrets.js';
import type { ClientWithSecrets } from './client.js';
import { isPossibleClientId, OPENID_SCOPES } from './client.js';
import { selectClientWithSecrets } from './client-repository.js';

const OPENID_SCOPE_SET = new Set<string>(OPENID_SCOPES);
// Random per process: even if the provider compared against it, nobody could present it.
const SECRET_MARKER = randomBytes(32).toString('base64url');

/** Cached access to clients, shared by the provider adapter, client auth and introspection. */
export class ClientRegistry {
  readonly #cache: RegistryCache<ClientWithSecrets>;

  constructor(db: Db, ttlSeconds: number, logger: Logger) {
    this.#cache = new RegistryCache({
      kind: 'client',
      ttlSeconds,
      logger,
      load: (clientId) => selectClientWithSecrets(db, clientId),
      isPossibleId: isPossibleClientId,
    });
  }

  /** Drops cache entries whenever any instance publishes a client change. */
  follow(bus: ChangeBus): void {
    this.#cache.follow(bus);
  }

  /** The client with this id, from the cache when fresh; `undefined` when there is none. */
  async get(clientId: string): Promise<ClientWithSecrets | undefined> {
    return this.#cache.get(clientId);
  }

  /** The client if it may act now: it exists and is not disabled. */
  async getActive(clientId: string): Promise<ClientWithSecrets | undefined> {
    return this.lookupActive(clientId);
  }

  /**
   * As `get`, but a client the cache holds fresh is answered at once rather than as a promise: the
   * token path looks its client up several times per request, and each promise costs.
   */
  lookup(clientId: string): ClientWithSecrets | undefined | Promise<ClientWithSecrets | undefined> {
    return this.#cache.get(clientId);
  }

  /** As `getActive`, answered at once when the cache holds the client fresh (see `lookup`). */
  lookupActive(clientId: string): ClientWithSecrets | undefined | Promise<ClientWithSecrets | undefined> {
    const client = this.#cache.get(clientId);
    return client instanceof Promise ? client.then(activeOnly) : activeOnly(client);
  }

  /**
   * Whether `presented` is one of the client's valid secrets (constant-time); answered at once when
   * the cache holds the client fresh (see `lookup`).
   */
  verifySecret(clientId: string, presented: string): boolean | Promise<boolean> {
    const client = this.lookupActive(clientId);
    return client instanceof Promise ? client.then((active) => secretMatches(active, presented)) : secretMatches(client, presented);
  }

  /**
   * Whether a token the client received at `issuedAt` (epoch seconds) is still alive as far as the
   * client is concerned: the client exists, is enabled, and has had no bulk revocation since.
   */
  async allowsTokenIssuedAt(clientId: string, issuedAt: number): Promise<boolean> {
    return this.allowsTokenIssuedAtNow(clientId, issuedAt);
  }

  /** As `allowsTokenIssuedAt`, answered at once when the cache holds the client fresh (see `lookup`). */
  allowsTokenIssuedAtNow(clientId: string, issuedAt: number): boolean | Promise<boolean> {
    const client = this.lookupActive(clientId);
    const allows = (active: ClientWithSecrets | undefined) => active !== undefined && issuedAfterRevocation(active.tokensRevokedAt, issuedAt);
    return client instanceof Promise ? client.then(allows) : allows(client);
  }

  /** The oidc-provider adapter for the Client model (read-only: clients change through the admin API). */
  providerAdapter(): Adapter {
    const refuse = async () => {
      throw new Error('clients are managed through the admin API');
    };
    return {
      find: async (id: string) => {
        const client = await this.lookupActive(id);
        return client && toProviderMetadata(client);
      },
      upsert: refuse,
      consume: refuse,
      destroy: refuse,
      revokeByGrantId: refuse,
      findByUid: async () => undefined,
      findByUserCode: async () => undefined,
    };
  }
}

const activeOnly = (client: ClientWithSecrets | undefined) => (client && !client.disabled ? client : undefined);

/**
 * The metadata oidc-provider sees. It never holds a real secret: `client_secret` is a marker that
 * satisfies the provider's schema, and secrets are checked by `verifySecret` (see issuer/provider.ts,
 * which routes the provider's secret comparison there). HMAC algorithms keyed by the client secret are
 * disabled for the same reason.
 */
function toProviderMetadata(client: ClientWithSecrets): AdapterPayload {
  const m = client.metadata;
  const base: AdapterPayload = {
    client_id: client.clientId,
    client_name: client.clientName,
    grant_types: m.grant_types,
    response_types: m.response_types as AdapterPayload['response_types'],
    redirect_uris: m.redirect_uris,
    post_logout_redirect_uris: m.post_logout_redirect_uris,
    token_endpoint_auth_method: m.token_endpoint_auth_method,
    // The provider knows only the OpenID scopes; resource scopes are enforced in getResourceServerInfo.
    scope:
      m.scope
        .split(' ')
        .filter((scope) => OPENID_SCOPE_SET.has(scope))
        .join(' ') || undefined,
  };
  if (m.jwks) base.jwks = m.jwks;
  if (m.jwks_uri) base.jwks_uri = m.jwks_uri;
  if (m.backchannel_logout_uri) base.backchannel_logout_uri = m.backchannel_logout_uri;
  if (m.backchannel_logout_session_required !== undefined) base.backchannel_logout_session_required = m.backchannel_logout_session_required;
  if (m.token_endpoint_auth_method.startsWith('client_secret')) base.client_secret = SECRET_MARKER;
  return base;
}

function secretMatches(client: ClientWithSecrets | undefined, presented: string): boolean {
  if (!client) return false;
  const now = Date.now() / 1000;
  const valid = client.secretDigests.filter((s) => s.expiresAt === null || s.expiresAt > now).map((s) => s.digest);
  return secretMatchesAnyDigest(presented, valid);
}
