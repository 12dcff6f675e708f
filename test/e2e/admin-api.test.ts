/** The admin API's first routes: authorisation, validation, problem+json, pagination. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminCall, adminToken, auditTrail, discover, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startServer, testAdmin, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let admin: string;

beforeAll(async () => {
  server = await startServer();
  admin = await adminToken(server.issuer);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('authorisation', () => {
  it('no token: 401 with WWW-Authenticate: Bearer, as problem+json', async () => {
    const answer = await adminCall(server.issuer, undefined, 'GET', '/clients');
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(answer.body).toMatchObject({ status: 401, title: 'Unauthorized' });
  });

  it('an invalid token: 401', async () => {
    const answer = await adminCall(server.issuer, 'not-a-token', 'GET', '/clients');
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('a revoked admin token: 401 at once', async () => {
    const as = await discover(server.issuer);
    const { clientId, clientSecret } = testAdmin(server.issuer);
    const { accessToken } = await issueToken(as, clientId, clientSecret, { scope: 'admin:read' });
    expect((await adminCall(server.issuer, accessToken, 'GET', '/clients')).status).toBe(200);
    expect(await revoke(as, clientId, clientSecret, accessToken)).toBe(200);
    expect((await adminCall(server.issuer, accessToken, 'GET', '/clients')).status).toBe(401);
  });

  it('a token for another audience: 401', async () => {
    const api = await adminCall(server.issuer, admin, 'POST', '/resource-servers', {
      identifier: uniqueResource('other'),
      name: 'Other',
      scopes: ['other:read'],
      token_format: 'opaque',
    });
    const client = await registerClient(server.issuer, admin, {
      client_name: 'Other caller',
      trust: 'internal',
      resources: [api.body.identifier],
      scope: 'other:read',
    });
    const as = await discover(server.issuer);
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'other:read' });
    expect((await adminCall(server.issuer, accessToken, 'GET', '/clients')).status).toBe(401);
  });

  it('admin:read only: reads work, writes answer 403 naming the missing scope', async () => {
    const reader = await registerClient(server.issuer, admin, {
      client_name: 'Dashboard',
      trust: 'internal',
      resources: [`${server.issuer}/admin`],
      scope: 'admin:read',
    });
    const as = await discover(server.issuer);
    const { accessToken } = await issueToken(as, reader.client_id, reader.client_secret, { scope: 'admin:read' });
    expect((await adminCall(server.issuer, accessToken, 'GET', '/resource-servers')).status).toBe(200);
    const write = await adminCall(server.issuer, accessToken, 'POST', '/clients', { client_name: 'x', trust: 'internal' });
    expect(write.status).toBe(403);
    expect(write.body.detail).toContain('admin:write');
  });
});

describe('resource servers', () => {
  it('creates one: 201 with the fields and introspection credentials shown once', async () => {
    const identifier = uniqueResource('payments');
    const answer = await adminCall(server.issuer, admin, 'POST', '/resource-servers', {
      identifier,
      name: 'Payments',
      scopes: ['payments:read', 'payments:refund'],
      sensitive_scopes: ['payments:refund'],
      access_token_ttl: 600,
      signing_alg: 'PS256',
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({
      identifier,
      name: 'Payments',
      scopes: ['payments:read', 'payments:refund'],
      sensitive_scopes: ['payments:refund'],
      token_format: 'jwt',
      access_token_ttl: 600,
      signing_alg: 'PS256',
    });
    expect(answer.body.introspection.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const fetched = await adminCall(server.issuer, admin, 'GET', `/resource-servers/${answer.body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.introspection).toEqual({ client_id: answer.body.introspection.client_id });
    expect(JSON.stringify(fetched.body)).not.toContain(answer.body.introspection.client_secret);
  });

  it('a duplicate identifier: 409', async () => {
    const body = { identifier: uniqueResource('dup'), name: 'Dup', scopes: ['a'] };
    expect((await adminCall(server.issuer, admin, 'POST', '/resource-servers', body)).status).toBe(201);
    const again = await adminCall(server.issuer, admin, 'POST', '/resource-servers', body);
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('invalid fields: 422 listing each with its path', async () => {
    const answer = await adminCall(server.issuer, admin, 'POST', '/resource-servers', {
      identifier: 'not a uri',
      name: '',
      scopes: ['ok', 'ok'],
      sensitive_scopes: ['missing'],
      token_format: 'paseto',
      signing_alg: 'HS256',
    });
    expect(answer.status).toBe(422);
    const paths = (answer.body.errors as Array<{ path: string }>).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['identifier', 'name', 'scopes', 'token_format', 'signing_alg']));
  });

  it('an unknown id: 404', async () => {
    expect((await adminCall(server.issuer, admin, 'GET', '/resource-servers/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await adminCall(server.issuer, admin, 'GET', '/resource-servers/not-a-uuid')).status).toBe(404);
  });
});

describe('clients', () => {
  it('creates an internal client: 201, client_id, secret shown once, defaults applied', async () => {
    const rs = await adminCall(server.issuer, admin, 'POST', '/resource-servers', {
      identifier: uniqueResource('reports'),
      name: 'Reports',
      scopes: ['reports:read'],
    });
    const answer = await adminCall(server.issuer, admin, 'POST', '/clients', {
      client_name: 'Nightly report',
      trust: 'internal',
      resources: [rs.body.identifier],
      scope: 'reports:read',
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({
      client_name: 'Nightly report',
      trust: 'internal',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      resources: [rs.body.identifier],
      scope: 'reports:read',
    });
    expect(typeof answer.body.client_secret).toBe('string');
    const fetched = await adminCall(server.issuer, admin, 'GET', `/clients/${answer.body.client_id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.client_secret).toBeUndefined();
  });

  it('an unknown resource or a scope no resource offers: 422', async () => {
    const unknown = await adminCall(server.issuer, admin, 'POST', '/clients', {
      client_name: 'x',
      trust: 'internal',
      resources: ['https://nowhere.example.test/'],
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors[0].path).toBe('resources.0');
    const rs = await adminCall(server.issuer, admin, 'POST', '/resource-servers', { identifier: uniqueResource('s'), name: 'S', scopes: ['s:read'] });
    const scope = await adminCall(server.issuer, admin, 'POST', '/clients', {
      client_name: 'x',
      trust: 'internal',
      resources: [rs.body.identifier],
      scope: 's:write',
    });
    expect(scope.status).toBe(422);
    expect(scope.body.errors[0].path).toBe('scope');
  });

  it('metadata oidc-provider would refuse is refused before it is stored: 422', async () => {
    const answer = await adminCall(server.issuer, admin, 'POST', '/clients', {
      client_name: 'Web app',
      trust: 'internal',
      grant_types: ['authorization_code'],
      // oidc-provider requires redirect_uris for the code flow.
    });
    expect(answer.status).toBe(422);
  });

  it('malformed JSON: 400; another content type: 415; a body over 1 MiB: 413', async () => {
    const post = (body: string, type: string) =>
      fetch(`${server.issuer}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': type }, body });
    const malformed = await post('{"client_name":', 'application/json');
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await post('client_name=x', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await post(JSON.stringify({ client_name: 'x'.repeat(1_100_000) }), 'application/json')).status).toBe(413);
  });

  it('lists with a cursor, visiting every client exactly once', async () => {
    const rs = await adminCall(server.issuer, admin, 'POST', '/resource-servers', { identifier: uniqueResource('page'), name: 'Page', scopes: ['p'] });
    const created = new Set<string>();
    for (let i = 0; i < 7; i++) {
      const c = await registerClient(server.issuer, admin, { client_name: `Paged ${i}`, trust: 'external', resources: [rs.body.identifier] });
      created.add(c.client_id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=3&cursor=${encodeURIComponent(cursor)}` : '?limit=3';
      const page = await adminCall(server.issuer, admin, 'GET', `/clients${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.items.map((c: { client_id: string }) => c.client_id));
      cursor = page.body.next_cursor;
      pages++;
      // Every page to the end: the run's other files share the database, so there may be hundreds.
    } while (cursor && pages < 5000);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of created) expect(seen).toContain(id);
  });

  it('limit is capped and a foreign cursor is a 422', async () => {
    const big = await adminCall(server.issuer, admin, 'GET', '/clients?limit=100000');
    expect(big.status).toBe(200);
    expect(big.body.items.length).toBeLessThanOrEqual(100);
    expect((await adminCall(server.issuer, admin, 'GET', '/clients?cursor=bogus')).status).toBe(422);
    expect((await adminCall(server.issuer, admin, 'GET', '/clients?limit=0')).status).toBe(422);
  });

  it('an unknown client: 404; an unknown admin route: 404 problem+json', async () => {
    expect((await adminCall(server.issuer, admin, 'GET', '/clients/nope')).status).toBe(404);
    const route = await adminCall(server.issuer, admin, 'GET', '/nothing-here');
    expect(route.status).toBe(404);
    expect(route.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });
});

describe('the audit trail', () => {
  it('narrows to a target, an actor or an action, page by page, and refuses an empty or over-long filter', async () => {
    const api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('audited'), name: 'Audited', scopes: ['a:read'] });
    const common = { trust: 'internal', resources: [api.identifier], scope: 'a:read' };
    const client = await registerClient(server.issuer, admin, { client_name: 'Audited', ...common });
    const other = await registerClient(server.issuer, admin, { client_name: 'Other', ...common });
    for (const name of ['Audited 2', 'Audited 3']) {
      expect((await adminCall(server.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { client_name: name })).status).toBe(200);
    }

    const aboutClient = await auditTrail(server.issuer, admin, { target: client.client_id });
    expect(aboutClient.map((e) => e.action)).toEqual(['client.create', 'client.update', 'client.update']);
    const updates = await auditTrail(server.issuer, admin, { target: client.client_id, action: 'client.update' });
    expect(updates.map((e) => e.details)).toHaveLength(2);
    // A client acts under its client id, a person as `account:<id>`.
    const byTestAdmin = await auditTrail(server.issuer, admin, { actor: testAdmin(server.issuer).clientId });
    expect(byTestAdmin.map((e) => e.target)).toEqual(expect.arrayContaining([client.client_id, other.client_id]));
    expect(new Set(byTestAdmin.map((e) => e.actor))).toEqual(new Set([testAdmin(server.issuer).clientId]));

    // One at a time, the cursor carries on within the filter.
    const first = await adminCall(server.issuer, admin, 'GET', `/audit?limit=1&target=${client.client_id}`);
    expect(first.body.items).toHaveLength(1);
    const second = await adminCall(server.issuer, admin, 'GET', `/audit?limit=1&target=${client.client_id}&cursor=${first.body.next_cursor}`);
    expect(second.body.items).toEqual([expect.objectContaining({ target: client.client_id, action: 'client.update' })]);

    for (const [query, name] of [
      ['target=', 'target'],
      [`actor=${'a'.repeat(513)}`, 'actor'],
    ]) {
      const refused = await adminCall(server.issuer, admin, 'GET', `/audit?${query}`);
      expect({ query, status: refused.status }).toEqual({ query, status: 422 });
      expect(refused.body.errors).toEqual([{ path: `query.${name}`, message: expect.any(String) }]);
    }
  });
});
