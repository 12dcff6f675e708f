/**
 * Composition: configuration -> stores -> registries -> keys -> provider. Wiring only, shared by the
 * server (main.ts) and the command-line scripts, so they see the same wiring.
 */
import type { SigningAlg } from './keys/signing-keys.js';
import type Provider from 'oidc-provider';
import { AccountRegistry } from './accounts/account-registry.js';
import { ensureAccountPageClient } from './account-page/account-page-client.js';
import { ensureAdminAudience, ensureBootstrapAdmin } from './admin/admin-bootstrap.js';
import { SYSTEM_ACTOR } from './audit/audit.js';
import { ClientRegistry } from './clients/client-registry.js';
import type { ProviderMetadataValidator } from './clients/client-service.js';
import type { Config } from './config.js';
import { migrateToLatest, openDatabase, pingDatabase, type Db } from './db/database.js';
import type { ChangeBus } from './events/change-bus.js';
import type { FactorSettings } from './factors/factor-service.js';
import { SERVICE_NAME } from './interactions/pages.js';
import type { SignInLimiter } from './interactions/sign-in-limiter.js';
import { clientSecretCheck, type ClientSecretCheck } from './issuer/client-authentication.js';
import { providerMetadataValidator } from './issuer/client-metadata.js';
import { installIntrospection } from './issuer/introspection.js';
import { IssuerState } from './issuer/issuer-state.js';
import type { JwksDocument } from './issuer/jwks-endpoint.js';
import { JwtAccessTokenSigner, JwtAccessTokenVerifier } from './issuer/jwt-access-token.js';
import { logoutDeliveringFetch } from './issuer/backchannel-logout.js';
import { buildProvider, ID_TOKEN_TTL_SECONDS } from './issuer/provider.js';
import { instrumentProvider } from './issuer/provider-instrumentation.js';
import { installRevocation } from './issuer/revocation.js';
import { installTokenExchange } from './issuer/token-exchange.js';
import { DEFAULT_JWT_TTL_SECONDS } from './issuer/token-policy.js';
import { keyEncryptionKeysById, resolveKeyEncryptionKeys, type KeyEncryptionKey } from './keys/key-encryption.js';
import { ensureSigningKeys, type KeyPolicy } from './keys/key-lifecycle.js';
import { KeyMaintenance } from './keys/key-maintenance.js';
import type { KeyRouteDependencies } from './keys/key-routes.js';
import type { Logger } from './observability/logger.js';
import { readinessCheck } from './observability/readiness.js';
import { isStoreUnavailableError, logStoreUnavailable } from './observability/store-health.js';
import { ResourceServerRegistry } from './resource-servers/resource-server-registry.js';
import { EntitlementRegistry } from './groups/entitlement-registry.js';
import { openShortLivedStores } from './stores.js';
import type { TokenStore } from './tokens/token-store.js';
import { MemoryEventQueue, RedisEventQueue } from './security-events/event-queue.js';
import { SecurityEvents } from './security-events/security-events.js';
import { SetSigner } from './security-events/set-signer.js';

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
  /** Groups, memberships and entitlements, held in process (src/groups/). */
  readonly entitlements: EntitlementRegistry;
  readonly limiter: SignInLimiter;
  /** The one client secret check (with lockout) of every path that authenticates clients. */
  readonly checkClientSecret: ClientSecretCheck;
  readonly currentProvider: () => Provider;
  /** The JWT access token verifier of the provider in force (shared with the dedicated paths). */
  readonly currentJwtVerifier: () => JwtAccessTokenVerifier;
  /** The JWT access token signer of the key ring in force (its current keys, parsed once; dedicated-issuance.ts). */
  readonly currentJwtSigner: () => JwtAccessTokenSigner;
  /** The JWKS document of the signing keys in force. */
  readonly currentJwks: () => JwksDocument;
  /** The kid signing with each enabled algorithm now (the provider in force signs with it). */
  readonly currentKid: () => Partial<Record<SigningAlg, string>>;
  readonly signingKeys: KeyRouteDependencies;
  readonly validateClientMetadata: ProviderMetadataValidator;
  /** What the factor services (src/factors/) need: the issuer (WebAuthn RP), the key-encryption keys (TOTP secrets). */
  readonly factorSettings: FactorSettings;
  readonly checkReadiness: () => Promise<void>;
  /** Revocation events: their relay, polls and pushes (docs/revocation-events.md). */
  readonly securityEvents: SecurityEvents;
  close(): Promise<void>;
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
  await ensureSigningKeys(db, kek, SYSTEM_ACTOR, config.signingAlgs);
  await ensureAdminAudience(db, config.issuer);
}

/**
 * Opens the stores and builds the provider.
 * @param options.prepare migrate and create missing keys first (see `prepareDatabase`).
 * @param options.background follow key changes made elsewhere and run the periodic key work: what a
 *   server does, and a one-shot script does not.
 */
export async function createServices(config: Config, logger: Logger, options: { prepare: boolean; background: boolean }): Promise<Services> {
  const keks = resolveKeyEncryptionKeys(config);
  const kek = keks[0];
  const db = await openDatabase(config.databaseUrl, config.pgliteDir);
  if (options.prepare) await prepareDatabase(config, logger, db, kek);

  const shortLived = await openShortLivedStores(config, logger);
  const { tokenStore, bus, clientAuthFailures, limiter, userCodeFailures, devicePolls, redis } = shortLived;
  const clients = new ClientRegistry(db, config.registryCacheTtlSeconds, logger);
  clients.follow(bus);
  const accounts = new AccountRegistry(db, config.registryCacheTtlSeconds, logger);
  accounts.follow(bus);
  const resourceServers = new ResourceServerRegistry(db, [], config.registryCacheTtlSeconds, logger);
  await resourceServers.start(bus);
  const entitlements = new EntitlementRegistry(db, config.registryCacheTtlSeconds, logger);
  await entitlements.start(bus);
  // Made once, outside the provider: its lockout state survives the provider's rebuild on a key change.
  const checkClientSecret = clientSecretCheck({ clients, failures: clientAuthFailures });
  // One verifier per provider: what it remembers of verified tokens goes when the keys change.
  const verifiers = new WeakMap<Provider, JwtAccessTokenVerifier>();
  // One signer per provider too: the current keys of its key ring, parsed once (the provider's keystore holds its own).
  const signers = new WeakMap<Provider, JwtAccessTokenSigner>();

  const outboundFetch = logoutDeliveringFetch(config.logoutDelivery, logger);
  const issuerState = await IssuerState.start({
    db,
    bus,
    logger,
    keks: keyEncryptionKeysById(keks),
    algs: config.signingAlgs,
    follow: options.background,
    buildProvider: (keyRing) => {
      const provider = buildProvider({
        issuer: config.issuer,
        clients,
        accounts,
        resourceServers,
        entitlements,
        tokenStore,
        keyRing,
        keyEncryptionKeys: keks,
        clientSecretCheck: checkClientSecret,
        userCodeFailures,
        devicePolls,
        deviceCodeTtlSeconds: config.deviceCodeTtlSeconds,
        fetch: outboundFetch,
      });
      instrumentProvider(provider, clients, logger);
      const verifier = new JwtAccessTokenVerifier(keyRing, config.issuer);
      // What introspection and token exchange read a token against (the same rules for both).
      const tokenEndpoint = { issuer: config.issuer, clients, accounts, resourceServers, entitlements, tokenStore, verifier };
      installIntrospection(provider, tokenEndpoint);
      installRevocation(provider, { tokenStore, verifier });
      installTokenExchange(provider, { ...tokenEndpoint, currentKid: () => keyRing.currentKid });
      verifiers.set(provider, verifier);
      signers.set(provider, new JwtAccessTokenSigner(keyRing));
      // The provider answers these as a bare server_error; the cause belongs in our logs.
      provider.on('server_error', (_ctx: unknown, error: Error) => {
        // An outage fails every request alike: a short line now and then, not a stack trace each.
        if (isStoreUnavailableError(error)) logStoreUnavailable(logger, error);
        else logger.error({ err: error }, 'provider server error');
      });
      return provider;
    },
  });
  const currentProvider = () => issuerState.provider;
  const keyPolicy: KeyPolicy = {
    algs: config.signingAlgs,
    jwksMaxAgeSeconds: config.jwksMaxAgeSeconds,
    rotationIntervalSeconds: config.keyRotationIntervalSeconds,
    // ID tokens are JWTs too: a logout's id_token_hint must still verify while the token lives.
    longestJwtLifetimeSeconds: () => Math.max(resourceServers.longestJwtLifetime(DEFAULT_JWT_TTL_SECONDS), ID_TOKEN_TTL_SECONDS),
  };
  const keyMaintenance = new KeyMaintenance({ db, bus, actor: SYSTEM_ACTOR, kek, policy: keyPolicy }, logger);
  if (options.background) keyMaintenance.start();

  const validateClientMetadata = providerMetadataValidator(currentProvider);

  const securityEvents = new SecurityEvents({
    issuer: config.issuer,
    db,
    bus,
    queue: redis ? new RedisEventQueue(redis, config.redisKeyPrefix) : new MemoryEventQueue(),
    tokenStore,
    resourceServers,
    signer: new SetSigner(config.issuer, () => issuerState.keyRing),
    keks: keyEncryptionKeysById(keks),
    pushPolicy: config.eventsPush,
    pollWaitMs: config.eventsPollWaitSeconds * 1000,
    logger,
  });
  // A server relays and delivers events; a one-shot script leaves what it recorded to the servers.
  if (options.background) securityEvents.start();

  const services: Services = {
    config,
    logger,
    db,
    tokenStore,
    bus,
    clients,
    accounts,
    resourceServers,
    entitlements,
    limiter,
    checkClientSecret,
    currentProvider,
    currentJwtVerifier: () => verifiers.get(issuerState.provider)!,
    currentJwtSigner: () => signers.get(issuerState.provider)!,
    currentJwks: () => issuerState.jwks,
    currentKid: () => issuerState.keyRing.currentKid,
    signingKeys: { db, bus, kek, policy: keyPolicy, refresh: () => issuerState.refresh() },
    validateClientMetadata,
    securityEvents,
    factorSettings: { issuer: config.issuer, keyEncryptionKeys: keks, serviceName: SERVICE_NAME },
    checkReadiness: readinessCheck([
      { store: 'postgres', failure: 'PostgreSQL does not answer', check: () => pingDatabase(db) },
      { store: redis ? 'redis' : 'memory', failure: 'the token store does not answer', check: () => shortLived.ping() },
    ]),
    close: async () => {
      await securityEvents.close();
      await issuerState.close();
      await keyMaintenance.close();
      await bus.close();
      await tokenStore.close();
      redis?.disconnect();
      await db.destroy();
    },
  };

  if (config.adminBootstrap) await ensureBootstrapAdmin({ ...services, issuer: config.issuer }, config.adminBootstrap);
  // A server (not a one-shot script) serves the account page, a client of its own issuer.
  if (options.background) await ensureAccountPageClient({ ...services, issuer: config.issuer });
  return services;
}
