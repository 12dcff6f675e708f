/** Reading an exchanged token's chain (src/issuer/token-exchange-claims.ts): what introspection trusts to decide liveness. */
import { describe, expect, it } from '@jest/globals';
import { actorChainOf, exchangeFactsOf, MAX_ACTOR_CHAIN } from '../../src/issuer/token-exchange-claims.js';

const actor = (sub: string, act?: object) => ({ sub, client_id: sub, ...(act ? { act } : {}) });

describe('actorChainOf', () => {
  it('lists the actors, the latest first', () => {
    expect(actorChainOf(undefined)).toEqual([]);
    expect(actorChainOf(actor('ledger', actor('orders')))).toEqual(['ledger', 'orders']);
  });

  it(`refuses what is not a chain, or one deeper than ${MAX_ACTOR_CHAIN}`, () => {
    expect(actorChainOf('orders')).toBeUndefined();
    expect(actorChainOf({ client_id: 'orders' })).toBeUndefined();
    expect(actorChainOf(actor('ledger', { sub: 7 }))).toBeUndefined();
    let chain = actor('c0');
    for (let i = 1; i < MAX_ACTOR_CHAIN; i++) chain = actor(`c${i}`, chain);
    expect(actorChainOf(chain)).toHaveLength(MAX_ACTOR_CHAIN);
    expect(actorChainOf(actor('one-more', chain))).toBeUndefined();
  });
});

describe('exchangeFactsOf', () => {
  it('is undefined for a token not issued by exchange', () => {
    expect(exchangeFactsOf(undefined)).toBeUndefined();
    expect(exchangeFactsOf({ sub: 'person', client_id: 'web', gid: 'digest' })).toBeUndefined();
  });

  it("reads the subject's client, the actors and the grant digest", () => {
    expect(exchangeFactsOf({ subject_client_id: 'web', act: actor('ledger', actor('orders')), gid: 'digest' })).toEqual({
      subjectClientId: 'web',
      actorClientIds: ['ledger', 'orders'],
      grantDigest: 'digest',
    });
  });

  it('an unreadable chain names no live client, so the token is never alive by accident', () => {
    expect(exchangeFactsOf({ subject_client_id: 'web', act: 'orders' })?.actorClientIds).toEqual(['']);
  });
});
