/**
 * The Redis adapter of the second peer: what a team would write first for oidc-provider on Redis, and
 * nothing more. One plain ioredis connection (no auto-pipelining), one string key per record holding
 * its JSON payload with the record's TTL. No digests of token values, no hash tags, no grant or
 * account indexes, no metrics: the benchmark's peers issue, introspect and revoke client_credentials
 * tokens only, which have no grant, uid or user code.
 */
import { Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';

/** An adapter factory for oidc-provider's `adapter` setting, on Redis at `url` under `prefix`. */
export function redisAdapterFactory(url: string, prefix: string): (model: string) => Adapter {
  const redis = new Redis(url);
  return (model) => {
    const key = (id: string) => `${prefix}${model}:${id}`;
    const none = async () => undefined;
    return {
      upsert: async (id, payload, expiresIn) => {
        const json = JSON.stringify(payload);
        await (expiresIn ? redis.set(key(id), json, 'EX', expiresIn) : redis.set(key(id), json));
      },
      find: async (id) => {
        const json = await redis.get(key(id));
        return json === null ? undefined : (JSON.parse(json) as AdapterPayload);
      },
      consume: async (id) => {
        const json = await redis.get(key(id));
        if (json !== null) await redis.set(key(id), JSON.stringify({ ...(JSON.parse(json) as AdapterPayload), consumed: Math.floor(Date.now() / 1000) }), 'KEEPTTL');
      },
      destroy: async (id) => {
        await redis.del(key(id));
      },
      findByUid: none,
      findByUserCode: none,
      // client_credentials tokens belong to no grant.
      revokeByGrantId: async () => {},
    };
  };
}
