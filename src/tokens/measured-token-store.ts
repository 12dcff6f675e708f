/**
 * A token store that times every call and records failures (see store-health.ts), so a Redis outage
 * shows in metrics and turns the answer into a 503. Wraps any TokenStore.
 */
import type { Adapter } from 'oidc-provider';
import { measureStoreCall } from '../observability/store-health.js';
import type { TokenStore } from './token-store.js';

/** Wraps `store`. */
export function measuredTokenStore(store: TokenStore): TokenStore {
  const measured = <T>(operation: string, call: () => Promise<T>) => measureStoreCall('redis', operation, call);
  return {
    adapter(model: string): Adapter {
      const adapter = store.adapter(model);
      return {
        upsert: (id, payload, expiresIn) => measured('upsert', () => adapter.upsert(id, payload, expiresIn)),
        find: (id) => measured('find', () => adapter.find(id)),
        findByUid: (uid) => measured('findByUid', () => adapter.findByUid(uid)),
        findByUserCode: (userCode) => measured('findByUserCode', () => adapter.findByUserCode(userCode)),
        consume: (id) => measured('consume', () => adapter.consume(id)),
        destroy: (id) => measured('destroy', () => adapter.destroy(id)),
        revokeByGrantId: (grantId) => measured('revokeByGrantId', () => adapter.revokeByGrantId(grantId)),
      };
    },
    take: (model, id) => measured('take', () => store.take(model, id)),
    revokeAccount: (accountId, options) => measured('revokeAccount', () => store.revokeAccount(accountId, options)),
    listAccount: (accountId) => measured('listAccount', () => store.listAccount(accountId)),
    endSession: (accountId, sessionDigest) => measured('endSession', () => store.endSession(accountId, sessionDigest)),
    revokeGrant: (accountId, grantDigest) => measured('revokeGrant', () => store.revokeGrant(accountId, grantDigest)),
    revokeOwnClientCredentials: (token, owner, guard) => measured('revokeOwnClientCredentials', () => store.revokeOwnClientCredentials(token, owner, guard)),
    findIntrospectable: (models, token, guard) => measured('findIntrospectable', () => store.findIntrospectable(models, token, guard)),
    revokeJwt: (jti, expiresAt, audiences) => measured('revokeJwt', () => store.revokeJwt(jti, expiresAt, audiences)),
    announceTo: (relay, sameStep) => store.announceTo(relay, sameStep),
    relayLeftoverAnnouncements: (notWithinMs) => measured('relayLeftoverAnnouncements', () => store.relayLeftoverAnnouncements(notWithinMs)),
    isGrantActive: (grantDigest) => measured('isGrantActive', () => store.isGrantActive(grantDigest)),
    grantOfDigest: (grantDigest) => measured('grantOfDigest', () => store.grantOfDigest(grantDigest)),
    isJwtRevoked: (jti) => measured('isJwtRevoked', () => store.isJwtRevoked(jti)),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
