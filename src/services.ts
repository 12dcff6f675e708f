/**
 * Composition: configuration -> stores -> registries -> keys -> provider. Shared by the server
 * (main.ts) and the command-line scripts, so they see the same wiring.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type Provider from 'oidc-provider';
import { AccountRegistry } from './accounts/account-registry.js';
import { adminAudience, ADMIN_SCOPES } from './admin/admin-auth.js';
import type { ClientMetadata } from './clients/client.js';
import { ClientRegistry } from './clients/client-registry.js';
import { selectClientWithSecrets } from './clients/client-repository.js';
import { createClient, updateClient, type ProviderMetadataValidator } from './clients/client-service.js';
import { OPENID_SCOPES } from './clients/client.js';
import type { Config } from './config.js';
import { ConfigError } from './config.js';
import { migrateToLatest, openDatabase, pingDatabase, type Db } from './db/database.js';
import { MemoryChangeBus, RedisChangeBus, type ChangeBus } from './events/change-bus.js';
import { ADDRESS_FAILURES, EMAIL_FAILURES, SignInLimiter } from './interactions/sign-in-limiter.js';
import { IssuerState } from './issuer/issuer-state.js';
import type { JwksDocument } from './issuer/jwks-endpoint.js';
import { JwtAccessTokenVerifier } from './issuer/jwt-access-token.js';
import { buildProvider, ID_TOKEN_TTL_SECONDS } from './issuer/provider.js';
import { installIntrospection } from './issuer/introspection.js';
import { instrumentProvider } from './issuer/provider-instrumentation.js';
import { installRevocation } from './issuer/revocation.js';
import { DEFAULT_JWT_TTL_SECONDS } from './issuer/token-policy.js';
import { keyEncryptionKeysById, resolveKeyEncryptionKeys, type KeyEncryptionKey } from './keys/key-encryption.js';
import { ensureSigningKeys, type KeyPolicy } from './keys/key-lifecycle.js';
import { KeyMaintenance } from './keys/key-maintenance.js';
import type { KeyRouteDependencies } from './keys/key-routes.js';
import { SYSTEM_ACTOR } from './audit/audit.js';
import type { Logger } from './observability/logger.js';
import { isStoreUnavailableError } from './observability/store-health.js';
import { ResourceServerRegistry } from './resource-servers/resource-server-registry.js';
import { createResourceServer } from './resource-servers/resource-server-service.js';
import { ConflictError, InvalidInputError } from './shared/errors.js';
import { MemoryFailureCounter, RedisFailureCounter, type FailureCounter } from './limits/failure-counter.js';
import { measuredTokenStore } from './tokens/measured-token-store.js';
import { MemoryTokenStore } from './tokens/memory-token-store.js';
import { RedisTokenStore } from './tokens/redis-token-store.js';
import type { TokenStore } from './tokens/token-store.js';

/** Everything a running server (or a script) works with. */
export interface Services {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  readonly tokenStore: TokenStore;
  readonly bus: ChangeBus;
  readonly clients: ClientRegistry;
  readonly accounts: AccountRegistry;
  readonly resourceServers: ResourceServerRegistry;
  readonly limiter: SignInLimiter;
  readonly currentProvider: () => Provider;
  /** The JWKS document of the signing keys in force. */
  readonly currentJwks: () => JwksDocument;
  readonly signingKeys: KeyRouteDependencies;
  readonly validateClientMetadata: ProviderMetadataValidator;
  readonly checkReadiness: () => Promise<void>;
  close(): Promise<void>;
}

/** Metadata of an admin client: client credentials for the admin audience, both admin scopes. */
export function adminClientMetadata(issuer: string): ClientMetadata {
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    post_logout_redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: ADMIN_SCOPES.join(' '),
    resources: [adminAudience(issuer)],
  };
}

/**
 * Prepares the database for serving: migrations (unless disabled), signing keys, the admin audience.
 * Run once before serving (by the primary process when there are several workers).
 */
export async function prepareDatabase(config: Config, logger: Logger, db: Db, kek: KeyEncryptionKey): Promise<void> {
  if (config.migrateOnStart) {
    const applied = await migrateToLatest(db);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  }
  await ensureSigningKeys(db, kek, SYSTEM_ACTOR);
  const audience = adminAudience(config.issuer);
  const existing = await db.selectFrom('resource_servers').select('id').where('identifier', '=', audience).executeTakeFirst();
  if (!existing) {
    try {
      // Admin tokens are opaque: revoking one ends its use at once.
      await createResourceServer(
        { db, bus: new MemoryChangeBus(), actor: SYSTEM_ACTOR },
        {
          identifier: audience,
          name: 'Admin API',
          scopes: [...ADMIN_SCOPES],
          sensitiveScopes: [],
          tokenFormat: 'opaque',
          accessTokenTtl: 900,
          signingAlg: 'RS256',
        },
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }
}

/** Client authentication: at most this many failures per client and address in a window. */
const CLIENT_AUTH_FAILURES = { maxFailures: 20, windowSeconds: 60 } as const;

/**
 * Connection options that fail fast: while Redis is away a command errors at once (no offline queue
 * growing in memory) or after a 1 s timeout, so requests answer 503 within 2 s. ioredis keeps
 * reconnecting in the background and recovers by itself.
 */
const REDIS_OPTIONS = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1_000,
  connectTimeout: 1_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
  // Batches the commands issued in one tick into one round trip (see RedisTokenStore).
  enableAutoPipelining: true,
} satisfies RedisOptions;

/** The short-lived state: tokens, change events and failure counters, in Redis or in process. */
interface ShortLivedStores {
  tokenStore: TokenStore;
  bus: ChangeBus;
  clientAuthFailures: FailureCounter;
  limiter: SignInLimiter;
  redis?: Redis | Cluster;
}

async function openShortLivedStores(config: Config, logger: Logger): Promise<ShortLivedStores> {
  if (!config.redisUrl && !config.redisClusterNodes) {
    logger.warn('REDIS_URL is not set: tokens live in this process only (one instance, lost on restart)');
    return {
      tokenStore: new MemoryTokenStore(),
      bus: new MemoryChangeBus(),
      clientAuthFailures: new MemoryFailureCounter(CLIENT_AUTH_FAILURES),
      limiter: new SignInLimiter(new MemoryFailureCounter(EMAIL_FAILURES), new MemoryFailureCounter(ADDRESS_FAILURES)),
    };
  }
  const redis = config.redisClusterNodes
    ? new Cluster([...config.redisClusterNodes], { lazyConnect: true, enableOfflineQueue: false, enableAutoPipelining: true, redisOptions: REDIS_OPTIONS })
    : new Redis(config.redisUrl!, REDIS_OPTIONS);
  // Without a listener, ioredis reports every failed reconnection as an unhandled error event.
  redis.on('error', (error: Error) => logger.warn({ err: error }, 'redis connection error'));
  await redis.connect();
  return {
    tokenStore: measuredTokenStore(new RedisTokenStore(redis, config.redisKeyPrefix)),
    bus: await RedisChangeBus.connect(redis, config.redisKeyPrefix),
    clientAuthFailures: new RedisFailureCounter(redis, `${config.redisKeyPrefix}failures:`, CLIENT_AUTH_FAILURES),
    limiter: new SignInLimiter(
      new RedisFailureCounter(redis, `${config.redisKeyPrefix}signin:email:`, EMAIL_FAILURES),
      new RedisFailureCounter(redis, `${config.redisKeyPrefix}signin:address:`, ADDRESS_FAILURES),
    ),
    redis,
  };
}

/**
 * Opens the stores and builds the provider.
 * @param options.prepare migrate and create missing keys first (see `prepareDatabase`).
 * @param options.background follow key changes made elsewhere and run the periodic key work: what a
 *   server does, and a one-shot script does not.
 */
export async function createServices(config: Config, logger: Logger, options: { prepare: boolean; background: boolean }): Promise<Services> {
  if (config.workers > 1 && !config.databaseUrl) throw new ConfigError('DATABASE_URL', 'is required when WORKERS > 1 (the embedded database serves one process)');
  if (config.workers > 1 && !config.redisUrl) throw new ConfigError('REDIS_URL', 'is required when WORKERS > 1 (the in-process store serves one process)');

  const keks = resolveKeyEncryptionKeys(config);
  const kek = keks[0];
  const db = await openDatabase(config.databaseUrl, config.pgliteDir);
  if (options.prepare) await prepareDatabase(config, logger, db, kek);

  const { tokenStore, bus, clientAuthFailures, limiter, redis } = await openShortLivedStores(config, logger);
  const clients = new ClientRegistry(db, config.registryCacheTtlSeconds, logger);
  clients.follow(bus);
  const accounts = new AccountRegistry(db, config.registryCacheTtlSeconds, logger);
  accounts.follow(bus);
  const resourceServers = new ResourceServerRegistry(db, [], config.registryCacheTtlSeconds, logger);
  await resourceServers.start(bus);

  const issuerState = await IssuerState.start({
    db,
    bus,
    logger,
    keks: keyEncryptionKeysById(keks),
    follow: options.background,
    buildProvider: (keyRing) => {
      const provider = buildProvider({ issuer: config.issuer, clients, accounts, resourceServers, tokenStore, keyRing, keyEncryptionKeys: keks, clientAuthFailures });
      instrumentProvider(provider, clients, logger);
      const verifier = new JwtAccessTokenVerifier(keyRing, config.issuer);
      installIntrospection(provider, { clients, accounts, resourceServers, tokenStore, verifier });
      installRevocation(provider, { tokenStore, verifier });
      // The provider answers these as a bare server_error; the cause belongs in our logs.
      provider.on('server_error', (_ctx: unknown, error: Error) => {
        // An outage fails every request alike: one short line each, not a stack trace each.
        if (isStoreUnavailableError(error)) logger.warn({ reason: error.message }, 'store unavailable');
        else logger.error({ err: error }, 'provider server error');
      });
      return provider;
    },
  });
  const currentProvider = () => issuerState.provider;
  const keyPolicy: KeyPolicy = {
    jwksMaxAgeSeconds: config.jwksMaxAgeSeconds,
    rotationIntervalSeconds: config.keyRotationIntervalSeconds,
    // ID tokens are JWTs too: a logout's id_token_hint must still verify while the token lives.
    longestJwtLifetimeSeconds: () => Math.max(resourceServers.longestJwtLifetime(DEFAULT_JWT_TTL_SECONDS), ID_TOKEN_TTL_SECONDS),
  };
  const keyMaintenance = new KeyMaintenance({ db, bus, actor: SYSTEM_ACTOR, kek, policy: keyPolicy }, logger);
  if (options.background) keyMaintenance.start();

  const validateClientMetadata: ProviderMetadataValidator = async (clientId, metadata) => {
    const { resources: _resources, scope, ...rfc7591 } = metadata;
    // Validated as the adapter will serve it: with only the OpenID scopes (see client-registry.ts).
    const openidScope = scope.split(' ').filter((s) => (OPENID_SCOPES as readonly string[]).includes(s)).join(' ');
    const probe = usesSecret(metadata) ? { client_secret: 'x'.repeat(43) } : {};
    try {
      await (currentProvider().Client as unknown as { validate(m: unknown): Promise<unknown> }).validate({ client_id: clientId, ...rfc7591, ...(openidScope ? { scope: openidScope } : {}), ...probe });
    } catch (error) {
      const description = (error as { error_description?: string }).error_description ?? 'invalid client metadata';
      throw new InvalidInputError('(body)', description);
    }
  };

  const services: Services = {
    config,
    logger,
    db,
    tokenStore,
    bus,
    clients,
    accounts,
    resourceServers,
    limiter,
    currentProvider,
    currentJwks: () => issuerState.jwks,
    signingKeys: { db, bus, kek, policy: keyPolicy, refresh: () => issuerState.refresh() },
    validateClientMetadata,
    checkReadiness: async () => {
      await Promise.all([
        pingDatabase(db).catch(() => Promise.reject(new Error('PostgreSQL does not answer'))),
        tokenStore.ping().catch(() => Promise.reject(new Error('the token store does not answer'))),
      ]);
    },
    close: async () => {
      await issuerState.close();
      await keyMaintenance.close();
      await bus.close();
      await tokenStore.close();
      redis?.disconnect();
      await db.destroy();
    },
  };

  if (config.adminBootstrap) await ensureBootstrapAdmin(services, config.adminBootstrap);
  return services;
}

const usesSecret = (metadata: ClientMetadata) => metadata.token_endpoint_auth_method.startsWith('client_secret');

/**
 * Makes sure the admin client named by ADMIN_BOOTSTRAP_* exists (automated deployments), and that it
 * is an admin client of this issuer: when ISSUER changes, its audience follows.
 */
async function ensureBootstrapAdmin(services: Services, admin: { clientId: string; clientSecret: string }): Promise<void> {
  const change = { db: services.db, bus: services.bus, actor: SYSTEM_ACTOR };
  const metadata = adminClientMetadata(services.config.issuer);
  const existing = await selectClientWithSecrets(services.db, admin.clientId);
  if (existing) {
    const sameAudience = existing.metadata.resources.join(' ') === metadata.resources.join(' ') && existing.metadata.scope === metadata.scope;
    if (!sameAudience) {
      await updateClient(change, services.validateClientMetadata, admin.clientId, {
        clientName: existing.clientName,
        trust: 'internal',
        metadata,
        disabled: existing.disabled,
      });
    }
    return;
  }
  try {
    await createClient(change, services.validateClientMetadata, { clientName: 'Bootstrap admin', trust: 'internal', metadata }, { clientId: admin.clientId, secret: admin.clientSecret });
    services.logger.info({ clientId: admin.clientId }, 'bootstrap admin client created');
  } catch (error) {
    // Another instance created it at the same moment.
    if (!(error instanceof ConflictError)) throw error;
  }
}
