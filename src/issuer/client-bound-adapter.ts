/**
 * Makes every stored token answer to its client: a token of a deleted or disabled client, or one
 * issued before the client's tokens were revoked in bulk, is not found. One check at the adapter
 * covers every place oidc-provider honours a token (introspection, refresh, userinfo, admin auth).
 */
import type { Adapter } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';

/** Wraps `adapter` so lookups hide tokens their client no longer allows. */
export function clientBoundAdapter(adapter: Adapter, clients: ClientRegistry): Adapter {
  const allowed = <T extends { clientId?: string; iat?: number } | undefined | void>(payload: T): T | undefined | Promise<T | undefined> => {
    if (!payload || payload.clientId === undefined || payload.iat === undefined) return payload;
    const allows = clients.allowsTokenIssuedAtNow(payload.clientId, payload.iat);
    return allows instanceof Promise ? allows.then((yes) => (yes ? payload : undefined)) : allows ? payload : undefined;
  };
  return {
    upsert: (id, payload, expiresIn) => adapter.upsert(id, payload, expiresIn),
    find: async (id) => allowed(await adapter.find(id)),
    findByUid: async (uid) => allowed(await adapter.findByUid(uid)),
    findByUserCode: async (userCode) => allowed(await adapter.findByUserCode(userCode)),
    consume: (id) => adapter.consume(id),
    destroy: (id) => adapter.destroy(id),
    revokeByGrantId: (grantId) => adapter.revokeByGrantId(grantId),
  };
}
