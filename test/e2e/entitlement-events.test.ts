/**
 * Entitlement losses announced as revocation events (docs/revocation-events.md, docs/groups-and-entitlements.md):
 * a person removed from a group (alone or in bulk), a group deleted, a subgroup moved from its parent,
 * an entitlement narrowed or deleted: each enforcing resource server where the person lost a scope or
 * a role receives one `entitlements-revoked` SET (polled as RFC 8936 says, verified with jose against
 * the JWKS), and no other resource server hears of it. The resource-server kit, validating JWTs
 * offline, then refuses the person's old JWT that holds the lost scope within seconds, and keeps
 * accepting their JWT that does not.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { createResourceServerKit, EVENT_TYPES, type ResourceServerKit } from '../../resource-server-kit/src/index.js';
import { addMembers, authorizePerson, createGroup, entitle, exchangeCode, refreshFor } from '../helpers/groups.js';
import { sleep } from '../helpers/keys.js';
import { createAccount, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { bearer, EventInbox, untilRefused, type VerifiedSet } from '../helpers/security-events.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const ENTITLEMENTS_REVOKED = 'urn:login-server:secevent:entitlements-revoked';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

type Api = Awaited<ReturnType<typeof registerResourceServer>>;
type Person = Awaited<ReturnType<typeof createAccount>>;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
/** Enforcing: the kit validates its JWTs offline. */
let hr: Api;
/** Enforcing: polled by the test only. */
let ledger: Api;
/** Enforcing, but no change below takes anything of it from the people of the first test. */
let crm: Api;
/** Not enforcing: entitlements decide nothing there, so it never hears of them. */
let legacy: Api;
/** Enforcing, opaque tokens: a second kit caches their introspection answers. */
let files: Api;
let filesKit: ResourceServerKit;
let inboxes: Record<'hr' | 'ledger' | 'crm' | 'legacy', EventInbox>;
let kit: ResourceServerKit;
let web: TestClient & { client_secret: string };

const unique = (name: string) => `${name} ${Math.random().toString(36).slice(2, 8)}`;
const subjectOf = (set: VerifiedSet) => set.events[ENTITLEMENTS_REVOKED];

/** Every entitlements-revoked event received so far naming `sub` (after polling what waits now). */
async function lossesOf(inbox: EventInbox, sub: string): Promise<Record<string, unknown>[]> {
  await inbox.poll();
  return inbox.received.filter((set) => subjectOf(set)?.sub === sub).map(subjectOf);
}

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  const register = (name: string, scopes: string[], enforce = true) =>
    registerResourceServer(server.issuer, admin, { identifier: uniqueResource(name), name, scopes, enforce_entitlements: enforce });
  [hr, ledger, crm, legacy, files] = await Promise.all([
    register('hr', ['hr:read', 'hr:payroll']),
    register('ledger', ['ledger:read', 'ledger:write']),
    register('crm', ['crm:read']),
    register('legacy', ['legacy:read'], false),
    registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('files'),
      name: 'files',
      scopes: ['files:read', 'files:write'],
      token_format: 'opaque',
      enforce_entitlements: true,
    }),
  ]);
  const ssf = (await (await fetch(`${server.issuer}/.well-known/ssf-configuration`)).json()) as { jwks_uri: string; events_supported: string[] };
  const inbox = (api: Api) => new EventInbox(server.issuer, api, ssf.jwks_uri);
  inboxes = { hr: inbox(hr), ledger: inbox(ledger), crm: inbox(crm), legacy: inbox(legacy) };
  // Polling every half second (answered at once) rather than long polling: the test's own long poll
  // of the same queue gets each event before the kit acknowledges it.
  const kitOf = (api: Api) =>
    createResourceServerKit({
      issuer: server.issuer,
      resource: api.identifier,
      credentials: { clientId: api.introspection.client_id, clientSecret: api.introspection.client_secret },
      cache: { maxTtlMs: 60_000 },
      events: { pollIntervalMs: 500 },
    });
  [kit, filesKit] = await Promise.all([kitOf(hr), kitOf(files)]);
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Staff portal',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [hr.identifier, ledger.identifier, crm.identifier, legacy.identifier, files.identifier],
    scope: 'openid offline_access hr:read hr:payroll ledger:read ledger:write crm:read legacy:read files:read files:write',
  });
  web = { ...registered, redirect_uri: REDIRECT_URI };
}, 60_000);

afterAll(async () => {
  await Promise.all([kit?.close(), filesKit?.close()]);
  await server?.stop();
});

it('the SSF configuration lists the entitlements-revoked event type, as the kit names it', async () => {
  const ssf = (await (await fetch(`${server.issuer}/.well-known/ssf-configuration`)).json()) as { events_supported: string[] };
  expect(ssf.events_supported).toContain(ENTITLEMENTS_REVOKED);
  expect(EVENT_TYPES.entitlementsRevoked).toBe(ENTITLEMENTS_REVOKED);
});

describe('a person removed from a group', () => {
  let person: Person;
  let payroll: string;
  let wide: string;
  let narrow: string;
  let wideOpaque: string;
  let narrowOpaque: string;

  beforeAll(async () => {
    person = await createAccount(server.issuer, admin);
    payroll = await createGroup(server.issuer, admin, unique('Payroll'));
    const staff = await createGroup(server.issuer, admin, unique('Staff'));
    await entitle(server.issuer, admin, hr.id, { group_id: payroll, scopes: ['hr:payroll'], roles: ['payroll-clerk'] });
    await entitle(server.issuer, admin, ledger.id, { group_id: payroll, scopes: ['ledger:write'] });
    await entitle(server.issuer, admin, hr.id, { group_id: staff, scopes: ['hr:read'], roles: ['viewer'] });
    await entitle(server.issuer, admin, crm.id, { group_id: staff, scopes: ['crm:read'] });
    await entitle(server.issuer, admin, files.id, { group_id: payroll, scopes: ['files:write'] });
    await entitle(server.issuer, admin, files.id, { group_id: staff, scopes: ['files:read'] });
    for (const group of [payroll, staff]) expect((await addMembers(server.issuer, admin, group, [person.id])).status).toBe(200);

    // A JWT with the payroll scope and role, and one of the same grant with only what the staff group gives.
    const { callback, start } = await authorizePerson(as, web, person, 'openid offline_access hr:read hr:payroll files:read files:write', [
      hr.identifier,
      files.identifier,
    ]);
    const tokens = await exchangeCode(as, web, callback, start, hr.identifier);
    wide = tokens.access_token;
    let refreshToken = tokens.refresh_token!;
    // Each refresh for `resource` narrowed to `scope`: its access token (the refresh token rotates).
    const refreshed = async (resource: string, scope: string) => {
      const answer = await refreshFor(as, web, refreshToken, resource, scope);
      expect(answer.status).toBe(200);
      refreshToken = (answer.body.refresh_token as string | undefined) ?? refreshToken;
      return answer.body.access_token as string;
    };
    narrow = await refreshed(hr.identifier, 'hr:read');
    // The same for the opaque tokens of the files API (the kit caches their introspection answers).
    wideOpaque = await refreshed(files.identifier, 'files:read files:write');
    narrowOpaque = await refreshed(files.identifier, 'files:read');
    expect(decodeJwt(wide)).toMatchObject({ sub: person.id, scope: expect.stringContaining('hr:payroll'), roles: ['payroll-clerk', 'viewer'] });
    expect(decodeJwt(narrow)).toMatchObject({ sub: person.id, scope: 'hr:read', roles: ['viewer'] });
    // Nothing about the person waits anywhere yet (their group memberships gave, took nothing).
    for (const inbox of Object.values(inboxes)) expect(await inbox.hasAnyMention(person.id)).toBe(false);
  }, 60_000);

  it('the concerned resource servers receive a verified SET naming the person and what they lost; the kit refuses the JWT that held it, within seconds', async () => {
    expect((await kit.verify(bearer(wide))).scopes).toContain('hr:payroll');
    expect((await kit.verify(bearer(narrow))).scopes).toEqual(['hr:read']);
    expect([...(await filesKit.verify(bearer(wideOpaque))).scopes].sort()).toEqual(['files:read', 'files:write']);
    expect((await filesKit.verify(bearer(narrowOpaque))).scopes).toEqual(['files:read']);
    expect((await filesKit.verify(bearer(wideOpaque))).cached).toBe(true);
    // The test's long poll waits before the change, as a resource server's would.
    const polled = inboxes.hr.poll({ returnImmediately: false });
    await sleep(200);

    const removed = await adminCall(server.issuer, admin, 'DELETE', `/groups/${payroll}/members/${person.id}`);
    expect(removed.status).toBe(204);
    const since = performance.now();
    const refusedAfterMs = await untilRefused(kit, wide, since);
    console.log(`entitlements-revoked: the kit refused the JWT ${refusedAfterMs.toFixed(0)} ms after the removal's answer`);
    expect(refusedAfterMs).toBeLessThan(5_000);
    await expect(kit.verify(bearer(wide))).rejects.toMatchObject({ code: 'invalid_token', message: 'the person lost a scope or role the token carries' });
    // The person's other token, without what they lost, is still good.
    expect((await kit.verify(bearer(narrow))).subject).toBe(person.id);
    // The cached introspection answer of the opaque token that held files:write is dropped too (not
    // kept for the cache's 60 s); the narrower one's stays cached.
    const opaqueRefusedAfterMs = await untilRefused(filesKit, wideOpaque, since);
    console.log(`entitlements-revoked: the kit refused the cached opaque token ${opaqueRefusedAfterMs.toFixed(0)} ms after the removal's answer`);
    expect(opaqueRefusedAfterMs).toBeLessThan(5_000);
    expect(await filesKit.verify(bearer(narrowOpaque))).toMatchObject({ subject: person.id, cached: true });

    const sets = await polled;
    const hrSet = sets.find((set) => subjectOf(set)?.sub === person.id)!;
    expect(hrSet).toBeDefined();
    expect(hrSet.aud).toBe(hr.identifier);
    const iat = decodeJwt(wide).iat!;
    expect(subjectOf(hrSet)).toEqual({
      sub: person.id,
      scope: 'hr:payroll',
      roles: ['payroll-clerk'],
      revoked_before: expect.any(Number),
      reason: 'group-membership-removed',
      event_timestamp: expect.any(Number),
    });
    expect(subjectOf(hrSet).revoked_before).toBeGreaterThan(iat);
    expect(subjectOf(hrSet).revoked_before).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);

    const ledgerSet = await inboxes.ledger.waitFor(ENTITLEMENTS_REVOKED, { sub: person.id });
    expect(subjectOf(ledgerSet)).toMatchObject({ sub: person.id, scope: 'ledger:write', reason: 'group-membership-removed' });
    expect(subjectOf(ledgerSet)).not.toHaveProperty('roles');
  });

  it('resource servers the change does not concern hear nothing of it', async () => {
    // The CRM scope came from the staff group, which the person is still in; the legacy API does not enforce.
    expect(await inboxes.crm.hasAnyMention(person.id)).toBe(false);
    expect(await inboxes.legacy.hasAnyMention(person.id)).toBe(false);
    // One event per resource server: no second one at HR.
    expect(await lossesOf(inboxes.hr, person.id)).toHaveLength(1);
  });
});

describe('other changes that take entitlements away', () => {
  it('a bulk removal: one event per person who lost something; a person who keeps the scope through another group gets none', async () => {
    const [ann, bob, cy] = await Promise.all([1, 2, 3].map(() => createAccount(server.issuer, admin)));
    const readers = await createGroup(server.issuer, admin, unique('Readers'));
    const alsoReaders = await createGroup(server.issuer, admin, unique('Also readers'));
    await entitle(server.issuer, admin, ledger.id, { group_id: readers, scopes: ['ledger:read'] });
    await entitle(server.issuer, admin, ledger.id, { group_id: alsoReaders, scopes: ['ledger:read'] });
    await addMembers(server.issuer, admin, readers, [ann.id, bob.id, cy.id]);
    await addMembers(server.issuer, admin, alsoReaders, [cy.id]);

    const answer = await adminCall(server.issuer, admin, 'POST', `/groups/${readers}/members/remove`, { account_ids: [ann.id, bob.id, cy.id] });
    expect(answer.body.results.map((result: { status: string }) => result.status)).toEqual(['removed', 'removed', 'removed']);
    for (const person of [ann, bob]) {
      const set = await inboxes.ledger.waitFor(ENTITLEMENTS_REVOKED, { sub: person.id });
      expect(subjectOf(set)).toMatchObject({ scope: 'ledger:read', reason: 'group-membership-removed' });
    }
    expect(await lossesOf(inboxes.ledger, cy.id)).toEqual([]);
    for (const person of [ann, bob]) expect(await lossesOf(inboxes.ledger, person.id)).toHaveLength(1);
  });

  it("a group deleted: its members' losses, at the resource servers it gave something", async () => {
    const person = await createAccount(server.issuer, admin);
    const contractors = await createGroup(server.issuer, admin, unique('Contractors'));
    await entitle(server.issuer, admin, ledger.id, { group_id: contractors, scopes: ['ledger:read'], roles: ['contractor'] });
    await addMembers(server.issuer, admin, contractors, [person.id]);

    expect((await adminCall(server.issuer, admin, 'DELETE', `/groups/${contractors}`)).status).toBe(204);
    const set = await inboxes.ledger.waitFor(ENTITLEMENTS_REVOKED, { sub: person.id });
    expect(subjectOf(set)).toMatchObject({ scope: 'ledger:read', roles: ['contractor'], reason: 'group-deleted' });
    expect(await inboxes.hr.hasAnyMention(person.id)).toBe(false);
  });

  it("a subgroup moved out of its parent: its members lose the parent's entitlements", async () => {
    const person = await createAccount(server.issuer, admin);
    const finance = await createGroup(server.issuer, admin, unique('Finance'));
    const payables = await createGroup(server.issuer, admin, unique('Payables'), finance);
    await entitle(server.issuer, admin, ledger.id, { group_id: finance, scopes: ['ledger:read'], roles: ['finance'] });
    await addMembers(server.issuer, admin, payables, [person.id]);

    // A rename takes nothing away: no event.
    const renamed = await adminCall(server.issuer, admin, 'PATCH', `/groups/${payables}`, { name: unique('Payables team') });
    expect(renamed.status).toBe(200);
    expect(await lossesOf(inboxes.ledger, person.id)).toEqual([]);

    expect((await adminCall(server.issuer, admin, 'PATCH', `/groups/${payables}`, { parent_id: null })).status).toBe(200);
    const set = await inboxes.ledger.waitFor(ENTITLEMENTS_REVOKED, { sub: person.id });
    expect(subjectOf(set)).toMatchObject({ scope: 'ledger:read', roles: ['finance'], reason: 'group-moved' });
  });

  it("an entitlement narrowed, then deleted: each time, what its group's members (subgroups' included) and its account lost", async () => {
    const [member, subMember, single] = await Promise.all([1, 2, 3].map(() => createAccount(server.issuer, admin)));
    const auditors = await createGroup(server.issuer, admin, unique('Auditors'));
    const external = await createGroup(server.issuer, admin, unique('External auditors'), auditors);
    await addMembers(server.issuer, admin, auditors, [member.id]);
    await addMembers(server.issuer, admin, external, [subMember.id]);
    const forGroup = await entitle(server.issuer, admin, ledger.id, { group_id: auditors, scopes: ['ledger:read', 'ledger:write'], roles: ['auditor'] });
    const forAccount = await entitle(server.issuer, admin, crm.id, { account_id: single.id, scopes: ['crm:read'], roles: ['crm-reader'] });

    const narrowed = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${ledger.id}/entitlements/${forGroup.id}`, { scopes: ['ledger:read'] });
    expect(narrowed.status).toBe(200);
    for (const person of [member, subMember]) {
      const set = await inboxes.ledger.waitFor(ENTITLEMENTS_REVOKED, { sub: person.id, reason: 'entitlement-changed' });
      // The role stays (the entitlement still gives it): only the scope is lost.
      expect(subjectOf(set)).toMatchObject({ scope: 'ledger:write' });
      expect(subjectOf(set)).not.toHaveProperty('roles');
    }

    expect((await adminCall(server.issuer, admin, 'DELETE', `/resource-servers/${ledger.id}/entitlements/${forGroup.id}`)).status).toBe(204);
    for (const person of [member, subMember]) {
      const set = await inboxes.ledger.waitFor(ENTITLEMENTS_REVOKED, { sub: person.id, reason: 'entitlement-removed' });
      expect(subjectOf(set)).toMatchObject({ scope: 'ledger:read', roles: ['auditor'] });
    }

    expect((await adminCall(server.issuer, admin, 'DELETE', `/resource-servers/${crm.id}/entitlements/${forAccount.id}`)).status).toBe(204);
    const set = await inboxes.crm.waitFor(ENTITLEMENTS_REVOKED, { sub: single.id });
    expect(subjectOf(set)).toMatchObject({ scope: 'crm:read', roles: ['crm-reader'], reason: 'entitlement-removed' });
    // Isolation: the CRM heard nothing of the ledger's auditors, the ledger nothing of the CRM's person.
    expect(await inboxes.crm.hasAnyMention(member.id)).toBe(false);
    expect(await inboxes.ledger.hasAnyMention(single.id)).toBe(false);
  });
});
