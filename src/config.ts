/**
 * The one place the environment is read. Every setting is validated at start; a missing or invalid
 * value stops the process with a message naming the variable, so the server never runs half-configured.
 */
import { availableParallelism } from 'node:os';
import type { LogoutDeliveryPolicy } from './issuer/backchannel-logout.js';
import type { PushDeliveryPolicy } from './security-events/push-delivery.js';
import { z } from 'zod';
import { CLIENT_ID_PATTERN } from './clients/client.js';
import { DEFAULT_SIGNING_ALGS, SIGNING_ALGS, type SigningAlg } from './keys/signing-keys.js';

/** A configuration problem found at start; `variable` names the environment variable at fault. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** The validated settings the server runs with. */
export interface Config {
  readonly production: boolean;
  readonly port: number;
  readonly issuer: string;
  /** PostgreSQL URL, or `undefined` for the embedded PGlite database in `pgliteDir`. */
  readonly databaseUrl: string | undefined;
  readonly pgliteDir: string;
  /** Redis URL, or `undefined` for the in-process token store (one instance only). */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and channel, so several deployments (or test runs) share one Redis. */
  readonly redisKeyPrefix: string;
  /** base64 of 32 bytes, or `undefined` to use (and create) the development key in `keysDir`. */
  readonly keyEncryptionKey: string | undefined;
  /** base64 of 32 bytes: a retired key-encryption key still accepted for decryption while keys are rewrapped. */
  readonly previousKeyEncryptionKey: string | undefined;
  readonly keysDir: string;
  /** Server processes on this host; `WORKERS=auto` is one per core available to this process. */
  readonly workers: number;
  readonly migrateOnStart: boolean;
  readonly adminBootstrap: { clientId: string; clientSecret: string } | undefined;
  readonly logLevel: string;
  /** Seconds a client, resource server or account stays in the in-process cache without a change event. */
  readonly registryCacheTtlSeconds: number;
  /** Port of the Prometheus endpoint (0: any free port, logged at start). */
  readonly metricsPort: number;
  /**
   * Address the Prometheus endpoint listens on: loopback by default (never the public port); `0.0.0.0`
   * or `::` where a scraper outside the host (a Kubernetes pod's) must reach it.
   */
  readonly metricsHost: string;
  /** Redis Cluster seed nodes; when set, they replace REDIS_URL. */
  readonly redisClusterNodes: ReadonlyArray<{ host: string; port: number }> | undefined;
  /**
   * Behind our own reverse proxy: a person's address (for sign-in limits) is the last entry of
   * `X-Forwarded-For`, which that proxy appended, rather than the proxy's own address.
   */
  readonly trustProxy: boolean;
  /** Where back-channel logout tokens may go (see issuer/backchannel-logout.ts). */
  readonly logoutDelivery: LogoutDeliveryPolicy;
  /** Where security events may be pushed (see security-events/push-delivery.ts). */
  readonly eventsPush: PushDeliveryPolicy;
  /** Longest wait of a long poll of security events (RFC 8936), in seconds. */
  readonly eventsPollWaitSeconds: number;
  /**
   * Seconds resource servers may cache the JWKS (its `Cache-Control: max-age`), and so how long a
   * `next` key is published before it may sign.
   */
  readonly jwksMaxAgeSeconds: number;
  /** Seconds a key signs before the next one takes over by itself. */
  readonly keyRotationIntervalSeconds: number;
  /**
   * The JWS algorithms this deployment signs with and publishes keys for; resource servers may pick
   * only these. Always includes RS256, which OpenID Connect requires for ID tokens.
   */
  readonly signingAlgs: readonly SigningAlg[];
  /**
   * The hottest requests (introspection, and opaque client_credentials issuance, with a client secret) are answered by dedicated paths in front
   * of oidc-provider, which answers everything else (docs/dedicated-paths.md). `false`: the provider
   * answers everything.
   */
  readonly dedicatedPaths: boolean;
}

const intInRange = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

const urlWithScheme = (schemes: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return schemes.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL with scheme ${schemes.join(' or ')}`,
  );

const booleanFlag = z.enum(['true', 'false']).transform((v) => v === 'true');

const keyEncryptionKey = z.string().refine((v) => Buffer.from(v, 'base64').length === 32, 'must be base64 of exactly 32 bytes');

const DAY_SECONDS = 86_400;
const MAX_WORKERS = 64;

const envSchema = z.object({
  NODE_ENV: z.string().optional(),
  PORT: intInRange(0, 65535).optional(),
  ISSUER: urlWithScheme(['http:', 'https:'])
    .refine((v) => !v.endsWith('/'), 'must not end with a slash')
    .refine((v) => !new URL(v).search && !new URL(v).hash, 'must not have a query or fragment')
    .optional(),
  DATABASE_URL: urlWithScheme(['postgres:', 'postgresql:']).optional(),
  PGLITE_DIR: z.string().min(1).optional(),
  REDIS_URL: urlWithScheme(['redis:', 'rediss:']).optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]*$/, 'may hold only letters, digits, ":", "_" and "-"')
    .optional(),
  KEY_ENCRYPTION_KEY: keyEncryptionKey.optional(),
  KEY_ENCRYPTION_KEY_PREVIOUS: keyEncryptionKey.optional(),
  KEYS_DIR: z.string().min(1).optional(),
  WORKERS: z.union([z.literal('auto'), intInRange(1, MAX_WORKERS)], { error: `must be a whole number between 1 and ${MAX_WORKERS}, or auto` }).optional(),
  MIGRATE_ON_START: booleanFlag.optional(),
  ADMIN_BOOTSTRAP_CLIENT_ID: z.string().regex(CLIENT_ID_PATTERN, 'must be 1-128 URL-safe characters').optional(),
  ADMIN_BOOTSTRAP_CLIENT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  REGISTRY_CACHE_TTL: intInRange(1, 3600).optional(),
  METRICS_PORT: intInRange(0, 65535).optional(),
  METRICS_HOST: z.union([z.ipv4(), z.ipv6()], 'must be an IP address to listen on, e.g. 127.0.0.1, 0.0.0.0 or ::').optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[A-Za-z0-9.:[\]-]+:\d{1,5}(,[A-Za-z0-9.:[\]-]+:\d{1,5})*$/, 'must be host:port,host:port,...')
    .optional(),
  TRUST_PROXY: booleanFlag.optional(),
  BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS: booleanFlag.optional(),
  EVENTS_PUSH_PRIVATE_NETWORKS: booleanFlag.optional(),
  EVENTS_POLL_WAIT: intInRange(0, 60).optional(),
  JWKS_MAX_AGE: intInRange(0, 7 * DAY_SECONDS).optional(),
  KEY_ROTATION_INTERVAL: intInRange(1, 3650 * DAY_SECONDS).optional(),
  SIGNING_ALGS: z
    .string()
    .transform((value) => value.split(',').map((alg) => alg.trim()))
    .refine((algs) => algs.every((alg) => (SIGNING_ALGS as readonly string[]).includes(alg)), `must be a comma-separated list of ${SIGNING_ALGS.join(', ')}`)
    .refine((algs) => new Set(algs).size === algs.length, 'must not name an algorithm twice')
    .refine((algs) => algs.includes('RS256'), 'must include RS256 (OpenID Connect requires it for ID tokens)')
    .transform((algs) => algs as SigningAlg[])
    .optional(),
  DEDICATED_PATHS: booleanFlag.optional(),
});

/**
 * Reads and validates the configuration from `env`.
 * @param cores - What `WORKERS=auto` counts: the cores available to this process (`os.availableParallelism()`).
 * @throws ConfigError naming the first variable that is missing or invalid.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cores: number = availableParallelism()): Config {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const workers = e.WORKERS === 'auto' ? Math.max(1, Math.min(MAX_WORKERS, cores)) : (e.WORKERS ?? 1);

  if (production) {
    // Production refuses every embedded or generated default: each would silently lose data or keys.
    for (const variable of ['DATABASE_URL', 'KEY_ENCRYPTION_KEY', 'ISSUER'] as const) {
      if (!e[variable]) throw new ConfigError(variable, 'is required when NODE_ENV=production');
    }
    if (!e.REDIS_URL && !e.REDIS_CLUSTER_NODES) throw new ConfigError('REDIS_URL', 'is required when NODE_ENV=production (or REDIS_CLUSTER_NODES)');
  }
  if (workers > 1) {
    // Every worker must see the same clients, keys and tokens: the embedded stores serve one process.
    if (!e.DATABASE_URL) throw new ConfigError('DATABASE_URL', 'is required when WORKERS > 1 (the embedded database serves one process)');
    if (!e.REDIS_URL && !e.REDIS_CLUSTER_NODES) {
      throw new ConfigError('REDIS_URL', 'is required when WORKERS > 1, or REDIS_CLUSTER_NODES (the in-process store serves one process)');
    }
  }
  if (Boolean(e.ADMIN_BOOTSTRAP_CLIENT_ID) !== Boolean(e.ADMIN_BOOTSTRAP_CLIENT_SECRET)) {
    const missing = e.ADMIN_BOOTSTRAP_CLIENT_ID ? 'ADMIN_BOOTSTRAP_CLIENT_SECRET' : 'ADMIN_BOOTSTRAP_CLIENT_ID';
    throw new ConfigError(missing, 'must be set together with its pair');
  }

  const port = e.PORT ?? 3000;
  return {
    production,
    port,
    issuer: e.ISSUER ?? `http://localhost:${port}`,
    databaseUrl: e.DATABASE_URL,
    pgliteDir: e.PGLITE_DIR ?? './data/pglite',
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX ?? 'login:',
    keyEncryptionKey: e.KEY_ENCRYPTION_KEY,
    previousKeyEncryptionKey: e.KEY_ENCRYPTION_KEY_PREVIOUS,
    keysDir: e.KEYS_DIR ?? './keys',
    workers,
    migrateOnStart: e.MIGRATE_ON_START ?? true,
    adminBootstrap:
      e.ADMIN_BOOTSTRAP_CLIENT_ID && e.ADMIN_BOOTSTRAP_CLIENT_SECRET
        ? { clientId: e.ADMIN_BOOTSTRAP_CLIENT_ID, clientSecret: e.ADMIN_BOOTSTRAP_CLIENT_SECRET }
        : undefined,
    logLevel: e.LOG_LEVEL ?? 'info',
    registryCacheTtlSeconds: e.REGISTRY_CACHE_TTL ?? 60,
    metricsPort: e.METRICS_PORT ?? 9464,
    metricsHost: e.METRICS_HOST ?? '127.0.0.1',
    redisClusterNodes: e.REDIS_CLUSTER_NODES?.split(',').map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(node.slice(at + 1)) };
    }),
    trustProxy: e.TRUST_PROXY ?? false,
    logoutDelivery: { allowLoopback: !production, allowPrivateNetworks: e.BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS ?? false },
    eventsPush: { allowLoopback: !production, allowPrivateNetworks: e.EVENTS_PUSH_PRIVATE_NETWORKS ?? false },
    eventsPollWaitSeconds: e.EVENTS_POLL_WAIT ?? 30,
    jwksMaxAgeSeconds: e.JWKS_MAX_AGE ?? 600,
    keyRotationIntervalSeconds: e.KEY_ROTATION_INTERVAL ?? 30 * DAY_SECONDS,
    signingAlgs: e.SIGNING_ALGS ?? DEFAULT_SIGNING_ALGS,
    dedicatedPaths: e.DEDICATED_PATHS ?? true,
  };
}
