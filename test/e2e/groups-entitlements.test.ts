/**
 * Groups and entitlements end to end (docs/groups-and-entitlements.md): people in groups get exactly the
 * scopes (and roles) they are entitled to from two resource servers, in a JWT and an opaque token and
 * at introspection; leaving the group ends the tokens that held what only it gave; consent lists only
 * what the person may grant; a person administrator calls the admin API with their own token and is
 * named in the audit trail; an openid-client relying party reads the `groups` claim.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import {
  addMembers as addMembersAs,
  authorizePerson,
  createGroup as createGroupAs,
  entitle as entitleAs,
  exchangeCode,
  refreshFor,
} from '../helpers/groups.js';
import { authorizationUrl, Browser, createAccount, signIn, type TestClient } from '../helpers/login.js';
import {
  adminCall,
  adminToken,
  auditTrail,
  discover,
  findResourceServer,
  introspect,
  issueToken,
  registerClient,
  registerResourceServer,
  uniqueResource,
} from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
type Registered = Awaited<ReturnType<typeof registerResourceServer>>;
let hr: Registered;
let crm: Registered;
let finance: string;
let payrollTeam: string;
let web: TestClient & { client_secret: string };
type Person = Awaited<ReturnType<typeof createAccount>>;

const createGroup = (name: string, parentId?: string) => createGroupAs(server.issuer, admin, name, parentId);
const entitle = (resourceServerId: string, body: Record<string, unknown>, token = admin) => entitleAs(server.issuer, token, resourceServerId, body);
const addMembers = (groupId: string, accountIds: string[]) => addMembersAs(server.issuer, admin, groupId, accountIds);
const authorize = (app: TestClient, person: Person, scope: string, resources: string[]) => authorizePerson(as, app, person, scope, resources);
const exchange = (app: TestClient & { client_secret: string }, callback: URL, start: { verifier: string; state: string; nonce: string }, resource: string) =>
  exchangeCode(as, app, callback, start, resource);
const refresh = (app: TestClient & { client_secret: string }, refreshToken: string, resource: string) => refreshFor(as, app, refreshToken, resource);

/** The whole audit trail (the run's other files share the database and write to it too). */
const auditTrailOf = (token = admin) => auditTrail(server.issuer, token);

const introspectAt = (rs: Registered, token: string) => introspect(as, rs.introspection.client_id, rs.introspection.client_secret, token);

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  hr = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('hr'),
    name: 'HR',
    scopes: ['hr:read', 'hr:payroll', 'hr:basic'],
    scope_descriptions: { 'hr:read': 'Read staff records', 'hr:payroll': 'See and change salaries' },
    enforce_entitlements: true,
  });
  crm = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('crm'),
    name: 'CRM',
    scopes: ['crm:read', 'crm:write'],
    token_format: 'opaque',
    enforce_entitlements: true,
  });
  finance = await createGroup(`Finance ${Math.random().toString(36).slice(2, 8)}`);
  payrollTeam = await createGroup(`Payroll team ${Math.random().toString(36).slice(2, 8)}`, finance);
  // Members of the subgroup have the parent's entitlements too.
  await entitle(hr.id, { group_id: finance, scopes: ['hr:read'], roles: ['viewer'] });
  await entitle(hr.id, { group_id: payrollTeam, scopes: ['hr:payroll'], roles: ['payroll-clerk'] });
  await entitle(crm.id, { group_id: finance, scopes: ['crm:read'], roles: ['crm-reader'] });
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Intranet',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [hr.identifier, crm.identifier],
    scope: 'openid groups offline_access hr:read hr:payroll hr:basic crm:read crm:write',
  });
  web = { ...registered, redirect_uri: REDIRECT_URI };
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('a person in a group', () => {
  let person: Person;
  let tokens: { jwt: string; opaque: string; refresh: string };

  beforeAll(async () => {
    person = await createAccount(server.issuer, admin);
    expect((await addMembers(payrollTeam, [person.id])).body).toEqual({ results: [{ account_id: person.id, status: 'added' }] });
    // One entitlement of their own, beside their groups'.
    await entitle(hr.id, { account_id: person.id, scopes: ['hr:basic'] });
  });

  it('gets exactly the entitled scopes of two resource servers, as a JWT and an opaque token, and the same at introspection', async () => {
    const { callback, start } = await authorize(web, person, 'openid groups offline_access hr:read hr:payroll hr:basic crm:read crm:write', [
      hr.identifier,
      crm.identifier,
    ]);
    const forHr = await exchange(web, callback, start, hr.identifier);
    // Internal app, JWT audience: a JWT with the three HR scopes and the roles of both groups.
    const jwtClaims = decodeJwt(forHr.access_token);
    expect(jwtClaims).toMatchObject({ sub: person.id, aud: hr.identifier, roles: ['payroll-clerk', 'viewer'] });
    expect(String(jwtClaims.scope).split(' ').sort()).toEqual(['hr:basic', 'hr:payroll', 'hr:read']);
    // The roles are for HR only: nothing about the CRM.
    expect(JSON.stringify(jwtClaims)).not.toContain('crm');
    // The ID token names the person's groups: the subgroup and its parent.
    const idClaims = oauth.getValidatedIdTokenClaims(forHr)!;
    expect([...(idClaims.groups as string[])].sort()).toEqual(
      [
        (await adminCall(server.issuer, admin, 'GET', `/groups/${finance}`)).body.name,
        (await adminCall(server.issuer, admin, 'GET', `/groups/${payrollTeam}`)).body.name,
      ].sort(),
    );

    const forCrm = await refresh(web, forHr.refresh_token!, crm.identifier);
    expect(forCrm.status).toBe(200);
    // crm:write was asked for, but nobody gave it: dropped, not widened.
    expect(forCrm.body.scope).toBe('crm:read');
    const opaque = forCrm.body.access_token as string;
    expect(opaque.split('.')).toHaveLength(1);
    tokens = { jwt: forHr.access_token, opaque, refresh: forCrm.body.refresh_token as string };

    expect(await introspectAt(hr, tokens.jwt)).toMatchObject({ active: true, sub: person.id, roles: ['payroll-clerk', 'viewer'] });
    expect(await introspectAt(crm, tokens.opaque)).toMatchObject({ active: true, sub: person.id, scope: 'crm:read', roles: ['crm-reader'] });
    // Limited to the audience: the HR API learns nothing of the CRM token.
    expect(await introspectAt(hr, tokens.opaque)).toEqual({ active: false });
  });

  it('removed from the group: the old opaque token is inactive at once, the JWT at introspection, and the next token lacks what the group gave', async () => {
    const removed = await adminCall(server.issuer, admin, 'POST', `/groups/${payrollTeam}/members/remove`, { account_ids: [person.id] });
    expect(removed.body).toEqual({ results: [{ account_id: person.id, status: 'removed' }] });

    expect(await introspectAt(crm, tokens.opaque)).toEqual({ active: false });
    expect(await introspectAt(hr, tokens.jwt)).toEqual({ active: false });

    // What is left is the person's own entitlement: the next HR token has it and no role.
    const next = await refresh(web, tokens.refresh, hr.identifier);
    expect(next.status).toBe(200);
    expect(next.body.scope).toBe('hr:basic');
    expect(decodeJwt(next.body.access_token as string).roles).toBeUndefined();
    // Nothing of the CRM is left: the request is denied rather than answered with an empty token.
    expect(await refresh(web, next.body.refresh_token as string, crm.identifier)).toMatchObject({ status: 400, body: { error: 'access_denied' } });

    const entries = await auditTrailOf();
    expect(entries.filter((e) => e.action === 'group.member_remove' && e.details.account_id === person.id)).toEqual([
      expect.objectContaining({ target: payrollTeam, details: expect.objectContaining({ email: person.email }) }),
    ]);
  });

  it('a person entitled to none of what they ask is denied (access_denied), and a client of its own is unchanged', async () => {
    const nobody = await createAccount(server.issuer, admin);
    const { callback } = await authorize(web, nobody, 'openid hr:payroll', [hr.identifier]);
    expect(callback.searchParams.get('error')).toBe('access_denied');

    // A client's own token (client credentials) has no person behind it: entitlements do not apply.
    const job = await registerClient(server.issuer, admin, { client_name: 'Payroll job', trust: 'internal', resources: [hr.identifier], scope: 'hr:payroll' });
    const own = await issueToken(as, job.client_id, job.client_secret, { resource: hr.identifier, scope: 'hr:payroll' });
    expect(own.scope).toBe('hr:payroll');
    expect(await introspectAt(hr, own.accessToken)).toMatchObject({ active: true, scope: 'hr:payroll' });
  });
});

describe('consent', () => {
  it('lists only the scopes the person may grant, each as registered with its description', async () => {
    const partner = await registerClient(server.issuer, admin, {
      client_name: 'Partner',
      trust: 'external',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      resources: [hr.identifier],
      scope: 'openid hr:read hr:payroll hr:basic',
    });
    const person = await createAccount(server.issuer, admin);
    await addMembers(finance, [person.id]);
    const browser = new Browser(REDIRECT_URI);
    const start = await authorizationUrl(
      as,
      { ...partner, redirect_uri: REDIRECT_URI },
      { scope: 'openid hr:read hr:payroll hr:basic', resource: hr.identifier },
    );
    const consent = await signIn(browser, await browser.navigate(start.url), person.email, person.password);
    expect(consent.status).toBe(200);
    expect(consent.body).toContain('<code>hr:read</code>: Read staff records');
    expect(consent.body).not.toContain('hr:payroll');
    expect(consent.body).not.toContain('hr:basic');
    expect(consent.headers.get('content-security-policy')).toContain("default-src 'none'");
  });
});

describe('people as administrators', () => {
  let adminApi: { id: string; identifier: string };
  let console: TestClient & { client_secret: string };
  let admins: string;
  let person: Person;

  beforeAll(async () => {
    adminApi = (await findResourceServer(server.issuer, admin, `${server.issuer}/admin`))!;
    const registered = await registerClient(server.issuer, admin, {
      client_name: 'Admin console',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      resources: [adminApi.identifier],
      scope: 'openid admin:read admin:write',
    });
    console = { ...registered, redirect_uri: REDIRECT_URI };
    admins = await createGroup(`Admins ${Math.random().toString(36).slice(2, 8)}`);
    await entitle(adminApi.id, { group_id: admins, scopes: ['admin:read', 'admin:write'] });
    person = await createAccount(server.issuer, admin);
    await addMembers(admins, [person.id]);
  });

  it('a person in the admins group signs in (code + PKCE), calls the admin API with their token, and is named in the audit trail', async () => {
    const { callback, start } = await authorize(console, person, 'openid admin:read admin:write', [adminApi.identifier]);
    const { access_token: token } = await exchange(console, callback, start, adminApi.identifier);
    expect((await adminCall(server.issuer, token, 'GET', '/groups')).status).toBe(200);
    const created = await adminCall(server.issuer, token, 'POST', '/groups', { name: `Made by a person ${Math.random()}` });
    expect(created.status).toBe(201);
    // The person reads the audit trail with their own token too.
    const entry = (await auditTrailOf(token)).find((e) => e.target === created.body.id);
    expect(entry).toMatchObject({ action: 'group.create', actor: `account:${person.id} via ${console.client_id}` });
  });

  it('a person outside the group gets no admin scope: access_denied', async () => {
    const outsider = await createAccount(server.issuer, admin);
    const { callback } = await authorize(console, outsider, 'openid admin:read', [adminApi.identifier]);
    expect(callback.searchParams.get('error')).toBe('access_denied');
  });

  it('deleting the group that makes the last person administrator is refused (409)', async () => {
    const answer = await adminCall(server.issuer, admin, 'DELETE', `/groups/${admins}`);
    expect(answer.status).toBe(409);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect((await adminCall(server.issuer, admin, 'GET', `/groups/${admins}`)).status).toBe(200);
  });
});

describe('bad input', () => {
  it('a cycle or a second level of nesting is refused (422)', async () => {
    const parent = await createGroup(`Parent ${Math.random()}`);
    const child = await createGroup(`Child ${Math.random()}`, parent);
    const cycle = await adminCall(server.issuer, admin, 'PATCH', `/groups/${parent}`, { parent_id: child });
    expect(cycle.status).toBe(422);
    expect(cycle.body.errors).toEqual([expect.objectContaining({ path: 'parent_id' })]);
    expect((await adminCall(server.issuer, admin, 'PATCH', `/groups/${parent}`, { parent_id: parent })).status).toBe(422);
    expect((await adminCall(server.issuer, admin, 'POST', '/groups', { name: `Grandchild ${Math.random()}`, parent_id: child })).status).toBe(422);
  });

  it('a duplicate name, whatever its case, is a 409', async () => {
    const name = `Sales ${Math.random().toString(36).slice(2)}`;
    await createGroup(name);
    expect((await adminCall(server.issuer, admin, 'POST', '/groups', { name: name.toUpperCase() })).status).toBe(409);
  });

  it('a bulk add reports unknown accounts per item and adds the known ones', async () => {
    const group = await createGroup(`Bulk ${Math.random()}`);
    const [a, b] = [await createAccount(server.issuer, admin), await createAccount(server.issuer, admin)];
    const unknown = '0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f';
    const answer = await addMembers(group, [a.id, unknown, b.id, 'not-a-uuid']);
    expect(answer.status).toBe(200);
    expect(answer.body.results).toEqual([
      { account_id: a.id, status: 'added' },
      { account_id: unknown, status: 'unknown_account' },
      { account_id: b.id, status: 'added' },
      { account_id: 'not-a-uuid', status: 'unknown_account' },
    ]);
    expect((await addMembers(group, [a.id])).body.results).toEqual([{ account_id: a.id, status: 'already_member' }]);
    const members = await adminCall(server.issuer, admin, 'GET', `/groups/${group}/members?limit=1`);
    expect(members.body.items).toHaveLength(1);
    const rest = await adminCall(server.issuer, admin, 'GET', `/groups/${group}/members?cursor=${members.body.next_cursor}`);
    // Added together: in account id order, each once across the pages.
    expect([...members.body.items, ...rest.body.items].map((m: { account_id: string }) => m.account_id)).toEqual([a.id, b.id].sort());
  });

  it('an entitlement to a scope the resource server does not have is a 422; a second one for the same group a 409', async () => {
    const group = await createGroup(`Ent ${Math.random()}`);
    expect((await adminCall(server.issuer, admin, 'POST', `/resource-servers/${crm.id}/entitlements`, { group_id: group, scopes: ['hr:read'] })).status).toBe(
      422,
    );
    await entitle(crm.id, { group_id: group, scopes: ['crm:read'] });
    expect((await adminCall(server.issuer, admin, 'POST', `/resource-servers/${crm.id}/entitlements`, { group_id: group, scopes: ['crm:write'] })).status).toBe(
      409,
    );
  });
});

describe('the groups claim', () => {
  it('an openid-client relying party reads it; a person in 500 groups gets an ID token under 8 KiB that points to userinfo for them', async () => {
    const person = await createAccount(server.issuer, admin);
    const names: string[] = [];
    const prefix = `Team-${Math.random().toString(36).slice(2, 8)}-with-a-rather-long-descriptive-name`;
    for (let start = 0; start < 500; start += 25) {
      const batch = await Promise.all(Array.from({ length: 25 }, (_, i) => createGroup(`${prefix}-${String(start + i).padStart(3, '0')}`)));
      for (const id of batch) expect((await addMembers(id, [person.id])).body.results[0].status).toBe('added');
      names.push(...batch);
    }
    // The ID token carries the scopes' claims when the access token is for an API (else they are at userinfo).
    const directory = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('directory'),
      name: 'Directory',
      scopes: ['directory:read'],
    });
    const app = await registerClient(server.issuer, admin, {
      client_name: 'Directory',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      resources: [directory.identifier],
      scope: 'openid groups directory:read',
    });
    const config = await client.discovery(new URL(server.issuer), app.client_id, app.client_secret, client.ClientSecretBasic(app.client_secret), {
      execute: [client.allowInsecureRequests],
    });
    const verifier = client.randomPKCECodeVerifier();
    const checks = { pkceCodeVerifier: verifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid groups directory:read',
      resource: directory.identifier,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
    });
    const browser = new Browser(REDIRECT_URI);
    const callback = await signIn(browser, await browser.navigate(url.href), person.email, person.password);
    const tokens = await client.authorizationCodeGrant(config, new URL(callback.url), { ...checks, idTokenExpected: true });
    expect(Buffer.byteLength(tokens.id_token!)).toBeLessThan(8 * 1024);
    const claims = tokens.claims()!;
    expect(claims.groups).toBeUndefined();
    expect(claims._claim_names).toEqual({ groups: 'groups' });
    expect(claims._claim_sources).toEqual({ groups: { endpoint: as.userinfo_endpoint } });
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo.groups).toHaveLength(500);
    expect((userinfo.groups as string[]).every((name) => name.startsWith(prefix))).toBe(true);
  }, 120_000);

  it('by id when the client asks for ids', async () => {
    const person = await createAccount(server.issuer, admin);
    const group = await createGroup(`Ids ${Math.random()}`);
    await addMembers(group, [person.id]);
    const app = await registerClient(server.issuer, admin, {
      client_name: 'Id reader',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      scope: 'openid groups',
      groups_claim: 'ids',
    });
    const testClient = { ...app, redirect_uri: REDIRECT_URI };
    const { callback, start } = await authorize(testClient, person, 'openid groups', []);
    const code = oauth.validateAuthResponse(as, testClient, callback, start.state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      testClient,
      oauth.ClientSecretBasic(app.client_secret),
      code,
      REDIRECT_URI,
      start.verifier,
      insecure,
    );
    const result = await oauth.processAuthorizationCodeResponse(as, testClient, response, { expectedNonce: start.nonce, requireIdToken: true });
    // No API token: the claims of the scopes are at userinfo (OpenID Connect Core 5.4).
    const userinfo = await oauth.processUserInfoResponse(as, testClient, person.id, await oauth.userInfoRequest(as, testClient, result.access_token, insecure));
    expect(userinfo.groups).toEqual([group]);
  });
});
