import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisFailureCounter } from '../../src/limits/failure-counter.js';
import { RedisTokenStore } from '../../src/tokens/redis-token-store.js';
import { sha256Base64Url } from '../../src/shared/secrets.js';
import { grantKeys } from '../../src/tokens/token-keys.js';
import { describeTokenStoreContract, newTokenValue, payloadFor, writeSampleTokens } from './token-store.contract.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A connection, auto-pipelining as RedisTokenStore asks, and a key prefix of its own, so runs and
 * suites never see each other's keys.
 */
function connect(): { redis: Redis; prefix: string } {
  return { redis: new Redis(redisUrl, { maxRetriesPerRequest: 1, enableAutoPipelining: true }), prefix: `test:${randomUUID()}:` };
}

async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

async function deleteUnder(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
}

/** Every key under `prefix` with everything it holds, as a store dump would show them. */
async function dumpUnder(redis: Redis, prefix: string): Promise<string[]> {
  const dump: string[] = [];
  for (const key of await keysUnder(redis, prefix)) {
    const type = await redis.type(key);
    if (type === 'hash') dump.push(key, ...Object.entries(await redis.hgetall(key)).flat());
    else if (type === 'set') dump.push(key, ...(await redis.smembers(key)));
    else if (type === 'string') dump.push(key, (await redis.get(key)) ?? '');
    else throw new Error(`unexpected ${type} at ${key}`);
  }
  return dump;
}

describeTokenStoreContract('RedisTokenStore', async () => {
  const { redis, prefix } = connect();
  const store = new RedisTokenStore(redis, prefix);
  return {
    store,
    failures: new RedisFailureCounter(redis, `${prefix}failures:`, { maxFailures: 2, windowSeconds: 60 }),
    cleanup: async () => {
      await store.close();
      await deleteUnder(redis, prefix);
      await redis.quit();
    },
  };
});

describe('RedisTokenStore keys and values', () => {
  const { redis, prefix } = connect();
  const store = new RedisTokenStore(redis, prefix);

  beforeAll(async () => {
    await redis.ping();
  });

  afterAll(async () => {
    await deleteUnder(redis, prefix);
    await redis.quit();
  });

  it('shows no token value in clear in any key or value', async () => {
    const tokens = await writeSampleTokens(store);

    const dump = await dumpUnder(redis, prefix);
    expect(dump.length).toBeGreaterThan(0);
    for (const token of tokens) {
      expect(dump.filter((entry) => entry.includes(token))).toEqual([]);
    }
  });

  it('gives every key it writes a TTL', async () => {
    await writeSampleTokens(store);
    // Consuming what is not there must not leave a record behind that nothing would expire.
    await store.adapter('AuthorizationCode').consume(newTokenValue());

    const keys = await keysUnder(redis, prefix);
    expect(keys.length).toBeGreaterThan(0);
    const withoutTtl: string[] = [];
    for (const key of keys) {
      if ((await redis.ttl(key)) <= 0) withoutTtl.push(key);
    }
    expect(withoutTtl).toEqual([]);
  });

  it('keeps a grant index as long as its longest-lived token', async () => {
    const grantId = newTokenValue();
    for (const [model, ttl] of [
      ['AccessToken', 60],
      ['RefreshToken', 600],
      ['AuthorizationCode', 30],
    ] as const) {
      const id = newTokenValue();
      await store.adapter(model).upsert(id, payloadFor(model, id, { grantId }), ttl);
    }

    const ttl = await redis.ttl(prefix + grantKeys(grantId).index);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it('leaves the shared connection open when closed', async () => {
    await store.close();

    expect(await redis.ping()).toBe('PONG');
  });
});

describe('RedisTokenStore scripts', () => {
  const { redis, prefix } = connect();
  const store = new RedisTokenStore(redis, prefix);

  afterAll(async () => {
    await deleteUnder(redis, prefix);
    await redis.quit();
  });

  it('writes and consumes after Redis forgot its scripts (restart, SCRIPT FLUSH): sent in full once more', async () => {
    const adapter = store.adapter('AuthorizationCode');
    const id = newTokenValue();
    await adapter.upsert(id, payloadFor('AuthorizationCode', id), 60);
    await redis.script('FLUSH');
    const again = newTokenValue();
    await adapter.upsert(again, payloadFor('AuthorizationCode', again), 60);
    await adapter.consume(again);
    expect(await adapter.find(again)).toMatchObject({ consumed: expect.any(Number) });
    expect(await redis.ttl(`${prefix}AuthorizationCode:{${sha256Base64Url(again)}}`)).toBeGreaterThan(0);
  });
});

describe('RedisTokenStore leftover events', () => {
  const { redis, prefix } = connect();
  // Two instances sharing one Redis and prefix; every relay to them fails until told otherwise.
  const instances = [new RedisTokenStore(redis, prefix), new RedisTokenStore(redis, prefix)];
  const relayed: string[] = [];
  let relayFails = true;
  for (const instance of instances) {
    instance.announceTo(async (recorded) => {
      if (relayFails) throw new Error('queue away');
      relayed.push(recorded.id);
    });
  }

  afterAll(async () => {
    await deleteUnder(redis, prefix);
    await redis.quit();
  });

  /** A revocation whose event could not be relayed: it stays recorded in Redis. */
  async function leaveOne(): Promise<void> {
    const value = newTokenValue();
    await instances[0].adapter('AccessToken').upsert(value, payloadFor('AccessToken', value, { aud: 'https://a.test/' }), 60);
    relayFails = true;
    await instances[0].adapter('AccessToken').destroy(value);
    relayFails = false;
  }

  it('the periodic look (a SCAN of every key) runs on one instance per interval; a look at start runs at once', async () => {
    await leaveOne();
    expect(await instances[0].relayLeftoverAnnouncements(60_000)).toBe(1);
    await leaveOne();
    // The other instance, within the interval: it does not scan, and the event waits.
    expect(await instances[1].relayLeftoverAnnouncements(60_000)).toBe(0);
    expect(relayed).toHaveLength(1);
    // The look an instance makes when it starts does not wait for the interval.
    expect(await instances[1].relayLeftoverAnnouncements()).toBe(1);
    expect(relayed).toHaveLength(2);
  });
});
