/**
 * The admin API's changes take effect on every instance at once: disabling, deleting, secret rotation
 * with and without grace, bulk revocation, resource server changes; and each lands in the audit trail
 * with no secret in it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuthorizationServer } from 'oauth4webapi';
import {
  adminCall,
  adminToken,
  clientCredentials,
  discover,
  introspect,
  issueToken,
  registerClient,
  registerResourceServer,
  uniqueResource,
} from '../helpers/oauth.js';
import { startServer, testAdmin, type RunningServer } from '../helpers/server.js';

let first: RunningServer;
let second: RunningServer;
let as: AuthorizationServer;
/** The same issuer, reached through the second process. */
let asSecond: AuthorizationServer;
let admin: string;
const secretsSeen: string[] = [];

type Api = Awaited<ReturnType<typeof registerResourceServer>>;
type Registered = Awaited<ReturnType<typeof registerClient>>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function newApi(overrides: Record<string, unknown> = {}): Promise<Api> {
  const api = await registerResourceServer(first.issuer, admin, {
    identifier: uniqueResource('life'),
    name: 'Lifecycle',
    scopes: ['l:read', 'l:write'],
    ...overrides,
  });
  secretsSeen.push(api.introspection.client_secret);
  return api;
}

async function newClient(api: Api, trust: 'internal' | 'external'): Promise<Registered> {
  const client = await registerClient(first.issuer, admin, { client_name: `Lifecycle ${trust}`, trust, resources: [api.identifier], scope: 'l:read l:write' });
  secretsSeen.push(client.client_secret);
  return client;
}

beforeAll(async () => {
  first = await startServer();
  second = await startServer({ issuerPort: first.port });
  as = await discover(first.issuer);
  const base = `http://localhost:${second.port}`;
  asSecond = { ...as, token_endpoint: `${base}/token`, introspection_endpoint: `${base}/token/introspection`, revocation_endpoint: `${base}/token/revocation` };
  admin = await adminToken(first.issuer);
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
});

describe('clients', () => {
  it('disabling stops new tokens and kills held ones on every instance; enabling restores it', async () => {
    const api = await newApi();
    const client = await newClient(api, 'internal');
    const opaque = await issueToken(as, client.client_id, client.client_secret, { scope: 'l:write' });
    const jwt = await issueToken(as, client.client_id, client.client_secret, { scope: 'l:read' });
    await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' }); // warms the second cache

    const disabled = await adminCall(first.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { disabled: true });
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled).toBe(true);

    for (const server of [as, asSecond]) {
      expect(await clientCredentials(server, client.client_id, client.client_secret, { scope: 'l:read' })).toMatchObject({
        ok: false,
        status: 401,
        error: 'invalid_client',
      });
      for (const token of [opaque.accessToken, jwt.accessToken]) {
        expect(await introspect(server, api.introspection.client_id, api.introspection.client_secret, token)).toEqual({ active: false });
      }
    }

    expect((await adminCall(first.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { disabled: false })).status).toBe(200);
    await expect(issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' })).resolves.toBeDefined();
  });

  it('a partial update is validated as a whole and changes only what it names', async () => {
    const api = await newApi();
    const client = await newClient(api, 'external');
    const renamed = await adminCall(first.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { client_name: 'Renamed partner', scope: 'l:read' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ client_name: 'Renamed partner', scope: 'l:read', trust: 'external', resources: [api.identifier] });
    expect(await clientCredentials(asSecond, client.client_id, client.client_secret, { scope: 'l:write' })).toMatchObject({
      ok: false,
      error: 'invalid_scope',
    });

    const incoherent = await adminCall(first.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { resources: [] });
    expect(incoherent.status).toBe(422);
    expect(incoherent.body.errors[0].path).toBe('resources');
    expect((await adminCall(first.issuer, admin, 'PATCH', `/clients/${client.client_id}`, { trust: 'partner' })).status).toBe(422);
    expect((await adminCall(first.issuer, admin, 'PATCH', '/clients/no-such-client', { client_name: 'x' })).status).toBe(404);
  });

  it('deleting a client: 204, then 404, no token, held tokens inactive everywhere', async () => {
    const api = await newApi();
    const client = await newClient(api, 'external');
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'l:read' });
    expect((await adminCall(first.issuer, admin, 'DELETE', `/clients/${client.client_id}`)).status).toBe(204);
    expect((await adminCall(first.issuer, admin, 'GET', `/clients/${client.client_id}`)).status).toBe(404);
    expect((await adminCall(first.issuer, admin, 'DELETE', `/clients/${client.client_id}`)).status).toBe(404);
    expect(await clientCredentials(asSecond, client.client_id, client.client_secret)).toMatchObject({ ok: false, error: 'invalid_client' });
    expect(await introspect(asSecond, api.introspection.client_id, api.introspection.client_secret, accessToken)).toEqual({ active: false });
  });

  it('a secret rotated without grace stops working everywhere at once', async () => {
    const api = await newApi();
    const client = await newClient(api, 'internal');
    await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' });
    const rotated = await adminCall(first.issuer, admin, 'POST', `/clients/${client.client_id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    secretsSeen.push(rotated.body.client_secret);
    for (const server of [as, asSecond]) {
      expect(await clientCredentials(server, client.client_id, client.client_secret)).toMatchObject({ ok: false, status: 401, error: 'invalid_client' });
      await expect(issueToken(server, client.client_id, rotated.body.client_secret, { scope: 'l:read' })).resolves.toBeDefined();
    }
  });

  it('with grace_seconds the old secret keeps working until the grace ends', async () => {
    const api = await newApi();
    const client = await newClient(api, 'internal');
    const rotated = await adminCall(first.issuer, admin, 'POST', `/clients/${client.client_id}/secret`, { grace_seconds: 2 });
    expect(rotated.status).toBe(200);
    secretsSeen.push(rotated.body.client_secret);
    await expect(issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' })).resolves.toBeDefined();
    await expect(issueToken(asSecond, client.client_id, rotated.body.client_secret, { scope: 'l:read' })).resolves.toBeDefined();
    await sleep(2_200);
    expect(await clientCredentials(asSecond, client.client_id, client.client_secret)).toMatchObject({ ok: false, error: 'invalid_client' });
    await expect(issueToken(asSecond, client.client_id, rotated.body.client_secret, { scope: 'l:read' })).resolves.toBeDefined();
    expect((await adminCall(first.issuer, admin, 'POST', `/clients/${client.client_id}/secret`, { grace_seconds: -1 })).status).toBe(422);
  });

  it('revoke-tokens kills every token it holds, JWTs included; later tokens work', async () => {
    const api = await newApi();
    const client = await newClient(api, 'internal');
    const jwt = await issueToken(as, client.client_id, client.client_secret, { scope: 'l:read' });
    const opaque = await issueToken(as, client.client_id, client.client_secret, { scope: 'l:write', resource: api.identifier });
    expect(jwt.accessToken.split('.')).toHaveLength(3);
    expect((await adminCall(first.issuer, admin, 'POST', `/clients/${client.client_id}/revoke-tokens`)).status).toBe(204);
    for (const token of [jwt.accessToken, opaque.accessToken]) {
      expect(await introspect(asSecond, api.introspection.client_id, api.introspection.client_secret, token)).toEqual({ active: false });
    }
    // Revocation covers every token issued up to and including the second it happened.
    await sleep(1_100);
    const fresh = await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' });
    expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, fresh.accessToken)).toMatchObject({ active: true });
  });
});

describe('resource servers', () => {
  it('a change governs the next token on every instance', async () => {
    const api = await newApi();
    const client = await newClient(api, 'internal');
    const before = await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' });
    expect(before.accessToken.split('.')).toHaveLength(3);
    const changed = await adminCall(first.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { token_format: 'opaque', access_token_ttl: 90 });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ token_format: 'opaque', access_token_ttl: 90, identifier: api.identifier, scopes: ['l:read', 'l:write'] });
    const after = await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' });
    expect(after.accessToken.split('.')).not.toHaveLength(3);
    expect(after.expiresIn).toBe(90);

    const sensitive = await adminCall(first.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { token_format: 'jwt', sensitive_scopes: ['l:write'] });
    expect(sensitive.status).toBe(200);
    expect((await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:write' })).accessToken.split('.')).not.toHaveLength(3);
    expect((await issueToken(asSecond, client.client_id, client.client_secret, { scope: 'l:read' })).accessToken.split('.')).toHaveLength(3);
  });

  it('the identifier never changes, sensitive scopes stay a subset, the admin audience is protected', async () => {
    const api = await newApi();
    expect((await adminCall(first.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { identifier: uniqueResource('moved') })).status).toBe(422);
    expect((await adminCall(first.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { sensitive_scopes: ['l:delete'] })).status).toBe(422);
    // Every page: the list is oldest first and holds the resource servers of the run's earlier files too.
    let adminApi: { id: string; identifier: string } | undefined;
    for (let cursor: string | null = ''; cursor !== null && adminApi === undefined;) {
      const list = await adminCall(first.issuer, admin, 'GET', `/resource-servers?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      adminApi = (list.body.items as Array<{ id: string; identifier: string }>).find((rs) => rs.identifier === `${first.issuer}/admin`);
      cursor = list.body.next_cursor as string | null;
    }
    expect(adminApi).toBeDefined();
    expect((await adminCall(first.issuer, admin, 'PATCH', `/resource-servers/${adminApi!.id}`, { token_format: 'jwt' })).status).toBe(409);
    expect((await adminCall(first.issuer, admin, 'DELETE', `/resource-servers/${adminApi!.id}`)).status).toBe(409);
  });

  it('deleting one that clients use is a 409; once unused, 204', async () => {
    const api = await newApi();
    const client = await newClient(api, 'external');
    const conflict = await adminCall(first.issuer, admin, 'DELETE', `/resource-servers/${api.id}`);
    expect(conflict.status).toBe(409);
    expect(conflict.body.detail).toContain(client.client_id);
    expect((await adminCall(first.issuer, admin, 'DELETE', `/clients/${client.client_id}`)).status).toBe(204);
    expect((await adminCall(first.issuer, admin, 'DELETE', `/resource-servers/${api.id}`)).status).toBe(204);
    expect((await adminCall(first.issuer, admin, 'GET', `/resource-servers/${api.id}`)).status).toBe(404);
  });

  it('a new introspection secret replaces the old one at once', async () => {
    const api = await newApi();
    const client = await newClient(api, 'external');
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { scope: 'l:read' });
    const rotated = await adminCall(first.issuer, admin, 'POST', `/resource-servers/${api.id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.client_id).toBe(api.introspection.client_id);
    secretsSeen.push(rotated.body.client_secret);
    await expect(introspect(asSecond, api.introspection.client_id, api.introspection.client_secret, accessToken)).rejects.toThrow(/401/);
    expect(await introspect(asSecond, api.introspection.client_id, rotated.body.client_secret, accessToken)).toMatchObject({ active: true });
  });
});

describe('audit trail', () => {
  it('records each kind of write with actor and target, visits every event once, and holds no secret', async () => {
    const events: Array<{ id: string; actor: string; action: string; target: string; at: string }> = [];
    let cursor: string | null = null;
    let raw = '';
    do {
      const page = await adminCall(first.issuer, admin, 'GET', `/audit?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      raw += JSON.stringify(page.body);
      events.push(...page.body.items);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    const actions = new Set(events.map((e) => e.action));
    for (const action of [
      'resource_server.create',
      'resource_server.update',
      'resource_server.delete',
      'client.create',
      'client.update',
      'client.disable',
      'client.enable',
      'client.delete',
      'client.secret.rotate',
      'client.tokens.revoke',
    ]) {
      expect(actions).toContain(action);
    }
    // Other servers of the run (this file again, with DEDICATED_PATHS=false) write to the same audit log.
    expect(events.filter((e) => e.action === 'client.disable').map((e) => e.actor)).toContain(testAdmin(first.issuer).clientId);
    expect(secretsSeen.length).toBeGreaterThan(5);
    for (const secret of secretsSeen) expect(raw).not.toContain(secret);
  });
});
