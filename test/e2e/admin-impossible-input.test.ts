/**
 * Issue 11, item 9 (attack review): input PostgreSQL cannot hold never reaches it. A tampered list
 * cursor and a NUL, an unpaired surrogate or over-deep nesting in any JSON field answer 422
 * problem+json naming the field; a path id that cannot exist answers 404. Each is decided by
 * validation: no 500, no store error counted, and the same answers while PostgreSQL is down.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminCall, adminToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startSparePostgres, type SparePostgres } from '../helpers/spare-postgres.js';

const NUL = '\u0000';
const LONE_SURROGATE = '\ud800';
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const PASSWORD = 'correct horse battery staple';

interface Fixtures {
  resourceServer: { id: string; identifier: string };
  clientId: string;
  accountId: string;
}

async function createFixtures(issuer: string, admin: string): Promise<Fixtures> {
  const resourceServer = await registerResourceServer(issuer, admin, { identifier: uniqueResource('impossible'), name: 'Impossible', scopes: ['i:read'] });
  const client = await registerClient(issuer, admin, { client_name: 'Target', trust: 'internal', resources: [resourceServer.identifier], scope: 'i:read' });
  const account = await adminCall(issuer, admin, 'POST', '/accounts', { email: `target-${Date.now()}@example.test`, name: 'Target', password: PASSWORD });
  expect(account.status).toBe(201);
  return { resourceServer, clientId: client.client_id, accountId: account.body.id };
}

type Call = readonly [method: string, path: string, body?: unknown];

/** Bodies with one field PostgreSQL cannot store, for every kind of text field; the path its error names. */
function unstorableBodies(f: Fixtures): Array<readonly [name: string, call: Call, errorPath: string]> {
  const client = { client_name: 'Valid', trust: 'internal', resources: [f.resourceServer.identifier], scope: 'i:read' };
  const webApp = {
    client_name: 'Web',
    trust: 'external',
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
    redirect_uris: ['https://app.example.test/cb'],
  };
  const jwtClient = {
    ...client,
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] },
  };
  let deep: unknown = 'bottom';
  for (let level = 0; level < 1_000; level++) deep = [deep];
  const resourceServer = { identifier: uniqueResource('nul'), name: 'Valid', scopes: ['n:read'] };
  const account = { email: 'valid@example.test', name: 'Valid', password: PASSWORD };
  return [
    ['client_name (text column)', ['POST', '/clients', { ...client, client_name: `a${NUL}b` }], 'client_name'],
    ['client_name with an unpaired surrogate', ['POST', '/clients', { ...client, client_name: `a${LONE_SURROGATE}b` }], 'client_name'],
    ['scope', ['POST', '/clients', { ...client, scope: `i:read${NUL}` }], 'scope'],
    ['a redirect URI (jsonb)', ['POST', '/clients', { ...webApp, redirect_uris: [`${NUL}https://app.example.test/cb`] }], 'redirect_uris.0'],
    [
      'a JWKS member value (jsonb, no schema of its own)',
      ['POST', '/clients', { ...jwtClient, jwks: { keys: [{ ...jwtClient.jwks.keys[0], kid: `k${NUL}` }] } }],
      'jwks.keys.0.kid',
    ],
    ['a JWKS member name', ['POST', '/clients', { ...jwtClient, jwks: { keys: [{ ...jwtClient.jwks.keys[0], [`x${NUL}`]: 'y' }] } }], 'jwks.keys.0'],
    [
      'a JWKS nested 1 000 levels deep',
      ['POST', '/clients', { ...jwtClient, jwks: { keys: [{ ...jwtClient.jwks.keys[0], x5c: deep }] } }],
      expect.stringMatching(/^jwks\.keys\.0\.x5c(\.0)+$/) as unknown as string,
    ],
    ['an unknown field name', ['POST', '/clients', { ...client, [`client_name${NUL}`]: 'x' }], '(body)'],
    ['client_name in a PATCH', ['PATCH', `/clients/${f.clientId}`, { client_name: `a${NUL}` }], 'client_name'],
    ['resource server name', ['POST', '/resource-servers', { ...resourceServer, name: `a${NUL}` }], 'name'],
    [
      'resource server identifier (text, unique)',
      ['POST', '/resource-servers', { ...resourceServer, identifier: `${resourceServer.identifier}${NUL}` }],
      'identifier',
    ],
    ['a scope of a resource server (jsonb)', ['POST', '/resource-servers', { ...resourceServer, scopes: [`n${NUL}`] }], 'scopes.0'],
    ['resource server name in a PATCH', ['PATCH', `/resource-servers/${f.resourceServer.id}`, { name: `a${NUL}` }], 'name'],
    ['account name', ['POST', '/accounts', { ...account, name: `a${NUL}` }], 'name'],
    ['account name with an unpaired surrogate', ['POST', '/accounts', { ...account, name: `a${LONE_SURROGATE}` }], 'name'],
    ['account email', ['POST', '/accounts', { ...account, email: `a${NUL}@example.test` }], 'email'],
    ['account name in a PATCH', ['PATCH', `/accounts/${f.accountId}`, { name: `a${NUL}` }], 'name'],
    ['account email in a PATCH', ['PATCH', `/accounts/${f.accountId}`, { email: `a${NUL}@example.test` }], 'email'],
    ['a password', ['POST', `/accounts/${f.accountId}/password`, { password: `${PASSWORD}${NUL}` }], 'password'],
    ['a field name in a secret rotation', ['POST', `/clients/${f.clientId}/secret`, { [`grace${NUL}`]: 1 }], '(body)'],
  ];
}

/** A resource server identifier of 2 000 characters that takes 6 000 bytes: too large for its unique index. */
const hugeIdentifier = () =>
  `${uniqueResource('huge')}${Array.from({ length: 1_950 }, (_, i) => String.fromCodePoint(0x4e00 + ((i * 7919) % 20_000))).join('')}`;

/** Tampered cursors for each list, with ids of the wrong kind for its key column. */
function tamperedCursors(): Array<readonly [list: string, cursor: string]> {
  const at = '2026-01-01T00:00:00.000Z';
  const uuid = '00000000-0000-4000-8000-000000000000';
  const lists: Array<readonly [string, string]> = [
    ['/clients', 'client-id'],
    ['/resource-servers', uuid],
    ['/accounts', uuid],
    ['/audit', '1'],
    ['/keys', 'kid'],
  ];
  return lists.flatMap(([list, validId]): Array<readonly [string, string]> => [
    [list, cursorOf({ createdAt: at, id: `a${NUL}` })],
    [list, cursorOf({ createdAt: at, id: list === '/clients' || list === '/keys' ? 'x'.repeat(129) : 'not-a-number-or-uuid' })],
    [list, cursorOf({ createdAt: at, id: 12 })],
    [list, cursorOf({ createdAt: '+275760-09-13T00:00:00.000Z', id: validId })],
    [list, cursorOf({ createdAt: '-271821-04-20T00:00:00.000Z', id: validId })],
    [list, cursorOf({ createdAt: `2026-01-01${NUL}`, id: validId })],
    [list, cursorOf({ createdAt: 'Tuesday', id: validId })],
    [list, cursorOf({ createdAt: at, id: validId, extra: 1 })],
  ]);
}

/** Every route with a path id, each with ids no row can have (a body it would accept otherwise). */
function impossibleIds(): Call[] {
  const overLong = 'x'.repeat(129);
  const textIds = ['%00', `a%00b`, overLong, '%F0%9F%98%80', '%ED%A0%80'];
  const uuidIds = ['%00', `00000000-0000-4000-8000-00000000000%00`, 'not-a-uuid', overLong, '00000000-0000-4000-8000-000000000000x'];
  return [
    ...textIds.flatMap((id): Call[] => [
      ['GET', `/clients/${id}`],
      ['PATCH', `/clients/${id}`, { client_name: 'x' }],
      ['DELETE', `/clients/${id}`],
      ['POST', `/clients/${id}/secret`, {}],
      ['POST', `/clients/${id}/revoke-tokens`],
      ['POST', `/keys/${id}/revoke`],
    ]),
    ...uuidIds.flatMap((id): Call[] => [
      ['GET', `/resource-servers/${id}`],
      ['PATCH', `/resource-servers/${id}`, { name: 'x' }],
      ['DELETE', `/resource-servers/${id}`],
      ['POST', `/resource-servers/${id}/secret`, {}],
      ['GET', `/accounts/${id}`],
      ['PATCH', `/accounts/${id}`, { name: 'x' }],
      ['DELETE', `/accounts/${id}`],
      ['POST', `/accounts/${id}/password`, { password: PASSWORD }],
    ]),
  ];
}

const problem = (status: number, title: string) => ({ type: 'about:blank', title, status, detail: expect.any(String) });

async function expectInvalid(issuer: string, admin: string, [method, path, body]: Call, errorPath: string, label: string): Promise<void> {
  const answer = await adminCall(issuer, admin, method, path, body);
  expect({ label, status: answer.status, type: answer.headers.get('content-type') }).toEqual({
    label,
    status: 422,
    type: expect.stringMatching(/^application\/problem\+json/),
  });
  expect(answer.body).toMatchObject({ ...problem(422, 'Unprocessable Content'), detail: 'invalid fields' });
  expect(answer.body.errors).toEqual(expect.arrayContaining([{ path: errorPath, message: expect.any(String) }]));
}

async function expectCursorRefused(issuer: string, admin: string, list: string, cursor: string): Promise<void> {
  const answer = await adminCall(issuer, admin, 'GET', `${list}?cursor=${encodeURIComponent(cursor)}`);
  expect({ list, cursor, status: answer.status, type: answer.headers.get('content-type') }).toEqual({
    list,
    cursor,
    status: 422,
    type: expect.stringMatching(/^application\/problem\+json/),
  });
  expect(answer.body).toEqual({
    ...problem(422, 'Unprocessable Content'),
    detail: 'invalid fields',
    errors: [{ path: 'query.cursor', message: 'is not a cursor from a previous page' }],
  });
}

async function expectNoSuchId(issuer: string, admin: string, method: string, path: string, body?: unknown): Promise<void> {
  const answer = await adminCall(issuer, admin, method, path, body);
  expect({ method, path, status: answer.status, type: answer.headers.get('content-type') }).toEqual({
    method,
    path,
    status: 404,
    type: expect.stringMatching(/^application\/problem\+json/),
  });
  expect(answer.body).toMatchObject(problem(404, 'Not Found'));
  expect(answer.body.detail).not.toBe('no such route');
}

/** login_store_errors_total, summed over stores, from the server's /metrics. */
async function storeErrors(server: RunningServer): Promise<number> {
  const port = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output())?.[1];
  expect(port).toBeDefined();
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return metrics
    .split('\n')
    .filter((line) => line.startsWith('login_store_errors_total'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

describe('input PostgreSQL cannot hold', () => {
  let server: RunningServer;
  let admin: string;
  let fixtures: Fixtures;
  let storeErrorsBefore: number;

  beforeAll(async () => {
    server = await startServer();
    admin = await adminToken(server.issuer);
    fixtures = await createFixtures(server.issuer, admin);
    storeErrorsBefore = await storeErrors(server);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('a tampered list cursor: 422 naming query.cursor, on every list', async () => {
    for (const [list, cursor] of tamperedCursors()) await expectCursorRefused(server.issuer, admin, list, cursor);
  });

  it('a NUL in a query parameter: 422 naming it', async () => {
    for (const query of ['limit=1%00', 'cursor=%00', 'x=%00']) {
      const answer = await adminCall(server.issuer, admin, 'GET', `/clients?${query}`);
      expect({ query, status: answer.status }).toEqual({ query, status: 422 });
      expect(answer.body.errors).toEqual(expect.arrayContaining([{ path: `query.${query.split('=')[0]}`, message: expect.any(String) }]));
    }
    const rotate = await adminCall(server.issuer, admin, 'POST', '/keys/rotate?force=true%00');
    expect(rotate.status).toBe(422);
    expect(rotate.body.errors).toEqual(expect.arrayContaining([{ path: 'query.force', message: expect.any(String) }]));
  });

  it('a NUL, an unpaired surrogate or over-deep nesting in any JSON field: 422 naming the field, nothing stored', async () => {
    for (const [name, call, errorPath] of unstorableBodies(fixtures)) await expectInvalid(server.issuer, admin, call, errorPath, name);
    // The refused changes changed nothing.
    expect((await adminCall(server.issuer, admin, 'GET', `/clients/${fixtures.clientId}`)).body.client_name).toBe('Target');
    expect((await adminCall(server.issuer, admin, 'GET', `/resource-servers/${fixtures.resourceServer.id}`)).body.name).toBe('Impossible');
    expect((await adminCall(server.issuer, admin, 'GET', `/accounts/${fixtures.accountId}`)).body.name).toBe('Target');
  });

  it('a resource server identifier too large for its unique index: 422 naming it', async () => {
    await expectInvalid(
      server.issuer,
      admin,
      ['POST', '/resource-servers', { identifier: hugeIdentifier(), name: 'Huge', scopes: ['h'] }],
      'identifier',
      'huge identifier',
    );
  });

  it('a path id no row can have (NUL, wrong kind, over-long, not UTF-8): 404 problem+json on every route with an id', async () => {
    for (const [method, path, body] of impossibleIds()) await expectNoSuchId(server.issuer, admin, method, path, body);
  });

  it('counts none of it as a store error, and logs no failed request', async () => {
    expect(await storeErrors(server)).toBe(storeErrorsBefore);
    expect(server.output()).not.toContain('admin request failed');
  });
});

describe('input PostgreSQL cannot hold, while PostgreSQL is down', () => {
  let postgres: SparePostgres;
  let server: RunningServer;
  let admin: string;
  let fixtures: Fixtures;

  beforeAll(async () => {
    postgres = await startSparePostgres();
    server = await startServer({ env: { DATABASE_URL: postgres.url } });
    admin = await adminToken(server.issuer);
    fixtures = await createFixtures(server.issuer, admin);
    await postgres.stop();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await postgres?.destroy();
  });

  // A 503 here would mean the answer waited for a query; these are decided by validation alone.
  it('still answers 422 for tampered cursors and unstorable fields, and 404 for impossible ids', async () => {
    const [list, cursor] = tamperedCursors()[0];
    await expectCursorRefused(server.issuer, admin, list, cursor);
    const [, call, errorPath] = unstorableBodies(fixtures).find(([name]) => name === 'resource server name')!;
    await expectInvalid(server.issuer, admin, call, errorPath, 'resource server name');
    for (const [method, path, body] of impossibleIds().filter(([, p]) => p.includes('%00'))) await expectNoSuchId(server.issuer, admin, method, path, body);
    // The control: a possible id does need the database.
    expect((await adminCall(server.issuer, admin, 'GET', `/accounts/${fixtures.accountId}`)).status).toBe(503);
  });
});
