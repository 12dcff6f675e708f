/** The entitlement policy (docs/groups-and-entitlements.md), case by case. */
import { describe, expect, it } from '@jest/globals';
import {
  boundedListClaim,
  decideEntitledScopes,
  holdsOnlyEntitledScopes,
  lostEntitlements,
  resolveEntitlements,
  rolesFor,
  type EntitlementResourceServer,
  type PersonEntitlements,
} from '../../src/issuer/entitlement-policy.js';

const payroll: EntitlementResourceServer = { scopes: ['pay:read', 'pay:write', 'pay:refund'], enforceEntitlements: true };
const legacy: EntitlementResourceServer = { ...payroll, enforceEntitlements: false };
const client = new Set(['openid', 'pay:read', 'pay:write', 'pay:refund']);
const clerk: PersonEntitlements = {
  scopes: new Set(['pay:read', 'pay:write']),
  grants: [
    { scopes: ['pay:read'], roles: ['reader'] },
    { scopes: ['pay:write', 'pay:read'], roles: ['clerk', 'reader'] },
    { scopes: [], roles: ['staff'] },
  ],
};
const nobody: PersonEntitlements = { scopes: new Set(), grants: [] };

describe('decideEntitledScopes', () => {
  it('a person gets only the scopes both the client may ask and the person is entitled to; the rest asked is refused', () => {
    expect(decideEntitledScopes(client, clerk, payroll, ['openid', 'pay:read', 'pay:refund'])).toEqual({
      offered: ['pay:read', 'pay:write'],
      refused: ['pay:refund'],
      denied: false,
    });
  });

  it('never widens: an entitlement the client is not registered for is not offered', () => {
    expect(decideEntitledScopes(new Set(['pay:read']), clerk, payroll, ['pay:read']).offered).toEqual(['pay:read']);
  });

  it('every requested scope of the resource server refused: denied', () => {
    expect(decideEntitledScopes(client, clerk, payroll, ['openid', 'pay:refund'])).toMatchObject({ offered: ['pay:read', 'pay:write'], denied: true });
    expect(decideEntitledScopes(client, nobody, payroll, ['pay:read'])).toMatchObject({ offered: [], refused: ['pay:read'], denied: true });
  });

  it('asking no scope of the resource server is not a denial (an OpenID-only request)', () => {
    expect(decideEntitledScopes(client, nobody, payroll, ['openid'])).toMatchObject({ offered: [], denied: false });
  });

  it('a scope nobody is entitled to is never offered to a person', () => {
    expect(decideEntitledScopes(client, clerk, payroll, ['pay:read']).offered).not.toContain('pay:refund');
  });

  it("a client's own token (no person) and a resource server that does not enforce are left as they were", () => {
    const unchanged = { offered: ['pay:read', 'pay:write', 'pay:refund'], refused: [], denied: false };
    expect(decideEntitledScopes(client, undefined, payroll, ['pay:refund'])).toEqual(unchanged);
    expect(decideEntitledScopes(client, nobody, legacy, ['pay:refund'])).toEqual(unchanged);
  });
});

describe('rolesFor', () => {
  it('the roles that go with what the token holds, and those given without scopes; sorted, once each', () => {
    expect(rolesFor(clerk, ['pay:read', 'pay:write'])).toEqual(['clerk', 'reader', 'staff']);
    expect(rolesFor(clerk, ['pay:read'])).toEqual(['clerk', 'reader', 'staff']);
  });

  it('a token narrower than the person carries no role of an entitlement it holds nothing of', () => {
    const narrow: PersonEntitlements = { scopes: new Set(['pay:read', 'pay:write']), grants: [{ scopes: ['pay:write'], roles: ['clerk'] }] };
    expect(rolesFor(narrow, ['pay:read'])).toEqual([]);
    expect(rolesFor(nobody, ['pay:read'])).toEqual([]);
  });
});

describe('holdsOnlyEntitledScopes', () => {
  it('a token is covered while every scope of the resource server it holds is still entitled', () => {
    expect(holdsOnlyEntitledScopes(clerk, payroll, ['pay:read', 'openid'])).toBe(true);
    expect(holdsOnlyEntitledScopes(clerk, payroll, ['pay:read', 'pay:refund'])).toBe(false);
    expect(holdsOnlyEntitledScopes(nobody, payroll, [])).toBe(true);
  });

  it('a resource server that does not enforce covers every token', () => {
    expect(holdsOnlyEntitledScopes(nobody, legacy, ['pay:refund'])).toBe(true);
  });
});

describe('resolveEntitlements', () => {
  const finance = { scopes: ['pay:read'], roles: ['reader'] };
  const payrollTeam = { scopes: ['pay:write'], roles: ['clerk'] };
  const own = { scopes: ['pay:refund'], roles: [] };
  const index = {
    byGroup: new Map([
      ['finance', finance],
      ['payroll-team', payrollTeam],
    ]),
    byAccount: new Map([['ann', own]]),
  };
  const parents = new Map<string, string | null>([
    ['finance', null],
    ['payroll-team', 'finance'],
  ]);

  it("is the union of the person's own entitlement, their groups' and their groups' parents', each grant once", () => {
    const ann = resolveEntitlements(index, (id) => parents.get(id), 'ann', ['payroll-team', 'finance']);
    expect([...ann.scopes].sort()).toEqual(['pay:read', 'pay:refund', 'pay:write']);
    expect(ann.grants).toHaveLength(3);
  });

  it('a group that no longer exists gives nothing, nor does its parent through it', () => {
    expect([...resolveEntitlements(index, (id) => (id === 'finance' ? null : undefined), 'bob', ['payroll-team', 'finance']).scopes]).toEqual(['pay:read']);
    expect(resolveEntitlements(index, () => undefined, 'bob', ['payroll-team']).grants).toEqual([]);
  });
});

describe('lostEntitlements', () => {
  const person = (...grants: { scopes: string[]; roles: string[] }[]): PersonEntitlements => ({
    scopes: new Set(grants.flatMap((grant) => grant.scopes)),
    grants,
  });
  const reader = { scopes: ['pay:read'], roles: ['reader'] };
  const clerkGrant = { scopes: ['pay:write', 'pay:read'], roles: ['clerk', 'reader'] };

  it('names the scopes and roles that no entitlement gives any more, sorted', () => {
    expect(lostEntitlements(person(reader, clerkGrant), person(reader))).toEqual({ scopes: ['pay:write'], roles: ['clerk'] });
    expect(lostEntitlements(person(reader, clerkGrant), nobody)).toEqual({ scopes: ['pay:read', 'pay:write'], roles: ['clerk', 'reader'] });
  });

  it('nothing lost (what is kept through another group, or gained) is undefined: no event', () => {
    expect(lostEntitlements(person(reader, clerkGrant), person(clerkGrant))).toBeUndefined();
    expect(lostEntitlements(person(reader), person(reader, clerkGrant))).toBeUndefined();
    expect(lostEntitlements(nobody, nobody)).toBeUndefined();
  });

  it('a role lost while every scope is kept is a loss (tokens carry it); so is a scope lost while the roles are kept', () => {
    expect(lostEntitlements(person(reader, { scopes: ['pay:read'], roles: [] }), person({ scopes: ['pay:read'], roles: [] }))).toEqual({
      scopes: [],
      roles: ['reader'],
    });
    expect(lostEntitlements(person(clerkGrant), person({ scopes: ['pay:read'], roles: ['clerk', 'reader'] }))).toEqual({ scopes: ['pay:write'], roles: [] });
  });
});

describe('boundedListClaim', () => {
  const endpoint = 'https://login.example/me';

  it('the list itself while it fits', () => {
    expect(boundedListClaim('groups', ['a', 'b'], endpoint)).toEqual({ groups: ['a', 'b'] });
  });

  it('past the bound, never a partial list: a distributed claim naming where the whole list is', () => {
    const many = Array.from({ length: 500 }, (_, i) => `group-${i}`);
    const claim = boundedListClaim('groups', many, endpoint);
    expect(claim).toEqual({ _claim_names: { groups: 'groups' }, _claim_sources: { groups: { endpoint } } });
    expect(JSON.stringify(claim).length).toBeLessThan(200);
  });

  it('counts bytes, not characters', () => {
    expect(boundedListClaim('roles', ['é'.repeat(10)], endpoint, 20)).toHaveProperty('_claim_names');
    expect(boundedListClaim('roles', ['e'.repeat(10)], endpoint, 20)).toEqual({ roles: ['e'.repeat(10)] });
  });
});
