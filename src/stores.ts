/**
 * Opening the stores: the short-lived state (tokens, change events, failure counters) in Redis, or in
 * this process when no Redis is configured (one instance only).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';
import { MemoryChangeBus, RedisChangeBus, type ChangeBus } from './events/change-bus.js';
import { ADDRESS_FAILURES, EMAIL_FAILURES, SignInLimiter } from './interactions/sign-in-limiter.js';
import { CLIENT_AUTH_FAILURES } from './issuer/client-authentication.js';
import { DEVICE_POLLS, USER_CODE_FAILURES } from './issuer/device-flow.js';
import { MemoryFailureCounter, RedisFailureCounter, type FailureCounter } from './limits/failure-counter.js';
import type { Logger } from './observability/logger.js';
import { isStoreUnavailableError, logStoreUnavailable } from './observability/store-health.js';
import { measuredTokenStore } from './tokens/measured-token-store.js';
import { MemoryTokenStore } from './tokens/memory-token-store.js';
import { RedisTokenStore } from './tokens/redis-token-store.js';
import type { TokenStore } from './tokens/token-store.js';

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
export interface ShortLivedStores {
  tokenStore: TokenStore;
  bus: ChangeBus;
  clientAuthFailures: FailureCounter;
  limiter: SignInLimiter;
  /** Wrong device flow user codes, per address. */
  userCodeFailures: FailureCounter;
  /** Device code polls, per device code, to answer slow_down. */
  devicePolls: FailureCounter;
  redis?: Redis | Cluster;
  /** Resolves when every key can be served: the readiness probe of the short-lived stores. */
  ping(): Promise<void>;
}

/** Slots of a Redis Cluster: every one must have a master for every key to be served. */
const CLUSTER_SLOTS = 16_384;

/**
 * Whether a Redis Cluster can serve every key: every slot has a master the client is connected to,
 * each of those masters answers PING, and the cluster itself says `cluster_state:ok`. Pinging one node
 * (what a standalone check does) says nothing of the other shards; and the cluster's own state turns
 * to fail only after its node timeout (15 s by default), while ioredis drops a lost master from its
 * pool at once. One round trip to each master, in parallel.
 */
async function pingCluster(cluster: Cluster): Promise<void> {
  const connected = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const masters = new Set<Redis>();
  for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
    const key = cluster.slots[slot]?.[0];
    const master = key === undefined ? undefined : connected.get(key);
    if (!master) throw new Error(`no reachable Redis Cluster master serves slot ${slot}`);
    masters.add(master);
  }
  const [first] = masters;
  const [info] = await Promise.all([first.cluster('INFO'), ...[...masters].map((master) => master.ping())]);
  if (!/^cluster_state:ok\r?$/m.test(String(info))) throw new Error('the Redis Cluster is not ok');
}

/** Opens Redis (a server or a Cluster) when configured, else the in-process stores of one instance. */
export async function openShortLivedStores(config: Config, logger: Logger): Promise<ShortLivedStores> {
  if (!config.redisUrl && !config.redisClusterNodes) {
    logger.warn('REDIS_URL is not set: tokens live in this process only (one instance, lost on restart)');
    return {
      tokenStore: new MemoryTokenStore(),
      bus: new MemoryChangeBus(),
      clientAuthFailures: new MemoryFailureCounter(CLIENT_AUTH_FAILURES),
      limiter: new SignInLimiter(new MemoryFailureCounter(EMAIL_FAILURES), new MemoryFailureCounter(ADDRESS_FAILURES)),
      userCodeFailures: new MemoryFailureCounter(USER_CODE_FAILURES),
      devicePolls: new MemoryFailureCounter(DEVICE_POLLS),
      ping: async () => undefined,
    };
  }
  const redis = config.redisClusterNodes
    ? new Cluster([...config.redisClusterNodes], { lazyConnect: true, enableOfflineQueue: false, enableAutoPipelining: true, redisOptions: REDIS_OPTIONS })
    : new Redis(config.redisUrl!, REDIS_OPTIONS);
  // Without a listener, ioredis reports every failed reconnection as an unhandled error event. Each
  // reconnection attempt of an outage fails alike: the outage's short line, not a stack per attempt.
  redis.on('error', (error: Error) =>
    isStoreUnavailableError(error) ? logStoreUnavailable(logger, error) : logger.warn({ err: error }, 'redis connection error'),
  );
  await redis.connect();
  return {
    tokenStore: measuredTokenStore(new RedisTokenStore(redis, config.redisKeyPrefix)),
    bus: await RedisChangeBus.connect(redis, config.redisKeyPrefix),
    clientAuthFailures: new RedisFailureCounter(redis, `${config.redisKeyPrefix}failures:`, CLIENT_AUTH_FAILURES),
    limiter: new SignInLimiter(
      new RedisFailureCounter(redis, `${config.redisKeyPrefix}signin:email:`, EMAIL_FAILURES),
      new RedisFailureCounter(redis, `${config.redisKeyPrefix}signin:address:`, ADDRESS_FAILURES),
    ),
    userCodeFailures: new RedisFailureCounter(redis, `${config.redisKeyPrefix}usercode:address:`, USER_CODE_FAILURES),
    devicePolls: new RedisFailureCounter(redis, `${config.redisKeyPrefix}device:polls:`, DEVICE_POLLS),
    redis,
    ping: redis instanceof Cluster ? () => pingCluster(redis) : async () => void (await redis.ping()),
  };
}
