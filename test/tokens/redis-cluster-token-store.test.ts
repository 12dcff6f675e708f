/**
 * RedisTokenStore on a Redis Cluster of three masters, started for this file: Cluster refuses a
 * transaction or script whose keys are in different hash slots, which a standalone Redis lets pass.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster } from 'ioredis';
import { RedisFailureCounter } from '../../src/limits/failure-counter.js';
import { RedisTokenStore } from '../../src/tokens/redis-token-store.js';
import { grantKeys } from '../../src/tokens/token-keys.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { describeTokenStoreContract, newTokenValue, payloadFor } from './token-store.contract.js';

const prefix = 'test:';

let redisCluster: RedisCluster;

beforeAll(async () => {
  redisCluster = await startRedisCluster();
});

afterAll(async () => {
  await redisCluster.stop();
});

/** A client of the cluster, auto-pipelining as RedisTokenStore asks. The cluster goes with the file, and its keys with it. */
function connect(): Cluster {
  return new Cluster(redisCluster.nodes, { enableAutoPipelining: true, redisOptions: { maxRetriesPerRequest: 1 } });
}

describeTokenStoreContract('RedisTokenStore on Redis Cluster', async () => {
  const cluster = connect();
  const store = new RedisTokenStore(cluster, prefix);
  return {
    store,
    // In a Cluster, the counter's key is in another slot: the store reads it in a step of its own.
    failures: new RedisFailureCounter(cluster, `${prefix}failures:`, { maxFailures: 2, windowSeconds: 60 }),
    cleanup: async () => {
      await store.close();
      await cluster.quit();
    },
  };
});

describe('RedisTokenStore on Redis Cluster: grants', () => {
  let cluster: Cluster;
  let store: RedisTokenStore;

  beforeAll(() => {
    cluster = connect();
    store = new RedisTokenStore(cluster, prefix);
  });

  afterAll(async () => {
    await cluster.quit();
  });

  async function slotOf(key: string): Promise<number> {
    return await cluster.cluster('KEYSLOT', key);
  }

  it('keeps the Grant record and the grant index in one hash slot', async () => {
    const grant = grantKeys(newTokenValue());

    expect(await slotOf(prefix + grant.record)).toBe(await slotOf(prefix + grant.index));
  });

  it('revokes a grant whose token keys span several slots, leaving none of its keys', async () => {
    const grantId = newTokenValue();
    await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId), 60);
    for (const model of ['AccessToken', 'RefreshToken', 'AuthorizationCode']) {
      const id = newTokenValue();
      await store.adapter(model).upsert(id, payloadFor(model, id, { grantId }), 60);
    }
    const deviceCode = newTokenValue();
    await store.adapter('DeviceCode').upsert(deviceCode, payloadFor('DeviceCode', deviceCode, { grantId, userCode: 'WDJB-MJHT' }), 60);
    const grant = grantKeys(grantId);
    const members = await cluster.smembers(prefix + grant.index);
    // The record keys of four tokens and the user code entry: spread by their own digests.
    expect(members).toHaveLength(5);
    expect(new Set(await Promise.all(members.map(slotOf))).size).toBeGreaterThan(1);

    await store.adapter('AccessToken').revokeByGrantId(grantId);

    const remaining = await Promise.all([prefix + grant.record, prefix + grant.index, ...members].map((key) => cluster.exists(key)));
    expect(remaining.every((exists) => exists === 0)).toBe(true);
  });
});
