/**
 * The resource-server kit's in-process parts: the revocation list, the introspection cache's bounds,
 * the JWKS lifetime read from Cache-Control, the facts read from a SET's events, and the challenges.
 */
import { describe, expect, it } from '@jest/globals';
import { AccessDenied, refusalOf } from '../../resource-server-kit/src/errors.js';
import { factsOf } from '../../resource-server-kit/src/events/security-event.js';
import { IntrospectionCache } from '../../resource-server-kit/src/introspection-cache.js';
import { maxAgeOf } from '../../resource-server-kit/src/jwks-cache.js';
import { looksLikeJwt } from '../../resource-server-kit/src/kit.js';
import { RevocationList } from '../../resource-server-kit/src/revocation-list.js';

const now = () => Math.floor(Date.now() / 1000);

describe('RevocationList', () => {
  it('refuses a revoked jti or gid, and nothing else', () => {
    const list = new RevocationList();
    list.record({ jti: 'token-1' });
    list.record({ gid: 'grant-1' });
    expect(list.refuses({ jti: 'token-1', iat: now() })).toBe('the token was revoked');
    expect(list.refuses({ jti: 'token-2', gid: 'grant-1', iat: now() })).toBe('the grant of the token was revoked');
    expect(list.refuses({ jti: 'token-2', gid: 'grant-2', client_id: 'c', sub: 's', iat: now() })).toBeUndefined();
  });

  it('refuses a client’s or an account’s tokens issued before the cut-off, not those issued at or after it', () => {
    const list = new RevocationList();
    const cutoff = now();
    list.record({ clientId: 'client-1', revokedBefore: cutoff });
    list.record({ sub: 'person-1', revokedBefore: cutoff });
    expect(list.refuses({ client_id: 'client-1', iat: cutoff - 1 })).toBe("the client's tokens were revoked");
    expect(list.refuses({ client_id: 'client-1', iat: cutoff })).toBeUndefined();
    expect(list.refuses({ client_id: 'client-2', sub: 'person-1', iat: cutoff - 1 })).toBe("the account's tokens were revoked");
    // A token without iat cannot show it came after a cut-off.
    expect(list.refuses({ client_id: 'client-2' })).toBeDefined();
    // An older cut-off never lowers a newer one.
    list.record({ clientId: 'client-1', revokedBefore: cutoff - 100 });
    expect(list.refuses({ client_id: 'client-1', iat: cutoff - 50 })).toBe("the client's tokens were revoked");
  });

  it("an entitlement loss refuses only the person's tokens issued before it that carry a lost scope or role", () => {
    const list = new RevocationList();
    const cutoff = now();
    list.record({ sub: 'person-1', revokedBefore: cutoff, scopes: ['hr:payroll'], roles: ['payroll-clerk'] });
    const reason = 'the person lost a scope or role the token carries';
    expect(list.refuses({ sub: 'person-1', scope: 'hr:read hr:payroll', iat: cutoff - 1 })).toBe(reason);
    expect(list.refuses({ sub: 'person-1', scope: 'hr:read', roles: ['viewer', 'payroll-clerk'], iat: cutoff - 1 })).toBe(reason);
    // The same person's token without what they lost, a token issued after, another person's: accepted.
    expect(list.refuses({ sub: 'person-1', scope: 'hr:read', roles: ['viewer'], iat: cutoff - 1 })).toBeUndefined();
    expect(list.refuses({ sub: 'person-1', scope: 'hr:payroll', iat: cutoff })).toBeUndefined();
    expect(list.refuses({ sub: 'person-2', scope: 'hr:payroll', iat: cutoff - 1 })).toBeUndefined();
    // Roles that overflowed to introspection may hold the lost one: refused (fail closed).
    expect(list.refuses({ sub: 'person-1', scope: 'hr:read', _claim_names: { roles: 'roles' }, iat: cutoff - 1 })).toBe(
      'the person lost a role the token may carry',
    );
    // A later loss of another scope adds to the earlier one.
    list.record({ sub: 'person-1', revokedBefore: cutoff + 10, scopes: ['hr:read'] });
    expect(list.refuses({ sub: 'person-1', scope: 'hr:read', iat: cutoff + 5 })).toBe(reason);
    expect(list.refuses({ sub: 'person-1', scope: 'hr:payroll', iat: cutoff + 5 })).toBeUndefined();
  });

  it('keeps at most maxEntries of each kind, forgetting the oldest', () => {
    const list = new RevocationList({ maxEntries: 2 });
    for (const jti of ['a', 'b', 'c']) list.record({ jti });
    expect(list.refuses({ jti: 'a', iat: now() })).toBeUndefined();
    expect(list.refuses({ jti: 'c', iat: now() })).toBe('the token was revoked');
  });
});

describe('IntrospectionCache', () => {
  const active = (exp: number) => ({ active: true as const, exp, sub: 's', client_id: 'c' });

  it('keeps an answer until the earlier of its exp and the maximum age, an inactive one for the negative TTL', () => {
    const cache = new IntrospectionCache({ maxTtlMs: 60_000, negativeTtlMs: 5_000 });
    const t = 1_000_000_000_000;
    cache.set('soon', active(t / 1000 + 10), t);
    cache.set('late', active(t / 1000 + 3600), t);
    cache.set('gone', active(t / 1000 - 1), t);
    cache.set('no', 'inactive', t);
    expect(cache.get('soon', t + 9_999)).toMatchObject({ active: true });
    expect(cache.get('soon', t + 10_000)).toBeUndefined();
    expect(cache.get('late', t + 59_999)).toMatchObject({ active: true });
    expect(cache.get('late', t + 60_000)).toBeUndefined();
    expect(cache.get('gone', t)).toBeUndefined();
    expect(cache.get('no', t + 4_999)).toBe('inactive');
    expect(cache.get('no', t + 5_000)).toBeUndefined();
  });

  it('evicts the least recently used beyond maxEntries, and drops what an event covers', () => {
    const cache = new IntrospectionCache({ maxEntries: 2 });
    const exp = now() + 3600;
    cache.set('a', active(exp));
    cache.set('b', { ...active(exp), client_id: 'other' });
    cache.get('a');
    cache.set('c', active(exp));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.dropWhere((answer) => answer.client_id === 'c')).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe('reading the wire', () => {
  it('takes the JWKS lifetime from Cache-Control', () => {
    expect(maxAgeOf('public, max-age=600')).toBe(600_000);
    expect(maxAgeOf('no-store')).toBe(0);
    expect(maxAgeOf(null)).toBeUndefined();
    expect(maxAgeOf('public')).toBeUndefined();
  });

  it('reads the revocation facts of an event whatever its type, and ignores an event naming none', () => {
    expect(factsOf({ jti: 'j', event_timestamp: 1 })).toMatchObject({ jti: 'j' });
    expect(factsOf({ client_id: 'c', revoked_before: 5, reason: 'disabled' })).toMatchObject({ clientId: 'c', revokedBefore: 5 });
    expect(factsOf({ sub: 'p', revoked_before: 5 })).toMatchObject({ sub: 'p', revokedBefore: 5 });
    expect(factsOf({ kid: 'k' })).toMatchObject({ kid: 'k' });
    expect(factsOf({ sub: 'p', scope: 'a:read a:write', roles: ['clerk'], revoked_before: 5, reason: 'group-deleted' })).toMatchObject({
      sub: 'p',
      revokedBefore: 5,
      scopes: ['a:read', 'a:write'],
      roles: ['clerk'],
    });
    expect(factsOf({ sub: 'p' })).toBeUndefined();
    expect(factsOf({ event_timestamp: 1 })).toBeUndefined();
  });

  it('tells JWTs from opaque tokens by their three parts', () => {
    expect(looksLikeJwt('a.b.c')).toBe(true);
    expect(looksLikeJwt('abc')).toBe(false);
    expect(looksLikeJwt('a.b')).toBe(false);
    expect(looksLikeJwt('a.b.c.d.e')).toBe(false);
  });
});

describe('challenges (RFC 6750 section 3, RFC 9449 section 7.1)', () => {
  const options = { realm: 'api', dpopAlgorithms: ['ES256'] };

  it('names no error when there were no credentials, and offers both schemes', () => {
    const refusal = refusalOf(new AccessDenied(undefined, 'an access token is required'), options);
    expect(refusal.status).toBe(401);
    expect(refusal.headers['www-authenticate']).toEqual(['Bearer realm="api"', 'DPoP realm="api", algs="ES256"']);
  });

  it('writes error, description and scope, keeping quotes out of the description', () => {
    const refusal = refusalOf(new AccessDenied('insufficient_scope', 'needs "write"', 'Bearer', 'orders:write'), options);
    expect(refusal.status).toBe(403);
    expect(refusal.headers['www-authenticate']).toEqual([
      'Bearer realm="api", error="insufficient_scope", error_description="needs  write ", scope="orders:write"',
    ]);
  });

  it('answers 503 with Retry-After and no challenge when the kit cannot tell', () => {
    const refusal = refusalOf(new AccessDenied('temporarily_unavailable', 'down'), options);
    expect(refusal).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });
    expect(refusal.headers['www-authenticate']).toBeUndefined();
  });
});
