/**
 * Revocation events end to end (docs/revocation-events.md): every kind of revocation reaches the
 * resource servers it concerns as a signed SET (verified with jose against the published JWKS), and
 * no other; RFC 8936 poll semantics; RFC 8935 push to a receiver on loopback, with its failures.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { listKeys, kidOf, sleep } from '../helpers/keys.js';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type TestClient } from '../helpers/login.js';
import { Redis } from 'ioredis';
import {
  adminCall,
  adminToken,
  discover,
  findResourceServer,
  introspect,
  issueToken,
  registerClient,
  registerResourceServer,
  revoke,
  uniqueResource,
} from '../helpers/oauth.js';
import { EventInbox, pollRequest } from '../helpers/security-events.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const TOKEN_REVOKED = 'urn:login-server:secevent:token-revoked';
const CLIENT_TOKENS_REVOKED = 'urn:login-server:secevent:client-tokens-revoked';
const SIGNING_KEY_REVOKED = 'urn:login-server:secevent:signing-key-revoked';
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const POLL_WAIT_SECONDS = 3;
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let jwksUri: string;
type Api = Awaited<ReturnType<typeof registerResourceServer>>;
let ledger: Api;
let orders: Api;
let ledgerInbox: EventInbox;
let ordersInbox: EventInbox;

beforeAll(async () => {
  server = await startServer({ env: { EVENTS_POLL_WAIT: String(POLL_WAIT_SECONDS), TRUST_PROXY: 'true' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  jwksUri = ((await (await fetch(`${server.issuer}/.well-known/ssf-configuration`)).json()) as { jwks_uri: string }).jwks_uri;
  // An opaque-token API and a JWT one.
  ledger = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('ledger'),
    name: 'Ledger',
    scopes: ['l:read'],
    token_format: 'opaque',
  });
  orders = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('orders'), name: 'Orders', scopes: ['o:read'] });
  ledgerInbox = new EventInbox(server.issuer, ledger, jwksUri);
  ordersInbox = new EventInbox(server.issuer, orders, jwksUri);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** A client of both APIs. */
async function newClient(trust: 'internal' | 'external') {
  return registerClient(server.issuer, admin, {
    client_name: `events ${trust}`,
    trust,
    resources: [ledger.identifier, orders.identifier],
    scope: 'l:read o:read',
  });
}

describe('discovery', () => {
  it('publishes the transmitter metadata', async () => {
    const response = await fetch(`${server.issuer}/.well-known/ssf-configuration`);
    expect(response.status).toBe(200);
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      spec_version: '1_0',
      issuer: server.issuer,
      jwks_uri: as.jwks_uri,
      delivery_methods_supported: ['urn:ietf:rfc:8936', 'urn:ietf:rfc:8935'],
      poll_endpoint: `${server.issuer}/events/poll`,
    });
  });
});

describe('every revocation reaches the resource servers it concerns, and no other', () => {
  it('an opaque access token revoked by its client: its audience gets its jti, the other API nothing', async () => {
    const client = await newClient('external');
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: ledger.identifier, scope: 'l:read' });
    const { jti } = await introspect(as, ledger.introspection.client_id, ledger.introspection.client_secret, accessToken);
    expect(typeof jti).toBe('string');
    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
    const set = await ledgerInbox.waitFor(TOKEN_REVOKED, { jti });
    expect(set).toMatchObject({ iss: server.issuer, aud: ledger.identifier });
    expect(JSON.stringify(set)).not.toContain(accessToken);
    expect(await ordersInbox.hasAnyMention(jti as string)).toBe(false);
  });

  it('a JWT access token revoked: its audience gets the JWT jti', async () => {
    const client = await newClient('internal');
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: orders.identifier, scope: 'o:read' });
    const { jti } = decodeJwt(accessToken);
    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
    await ordersInbox.waitFor(TOKEN_REVOKED, { jti });
    expect(await ledgerInbox.hasAnyMention(jti!)).toBe(false);
  });

  it('a grant revoked (a refresh token revoked): its API gets the gid JWT access tokens carry; the other API nothing', async () => {
    const webApp = await registerClient(server.issuer, admin, {
      client_name: 'events web app',
      trust: 'internal',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT_URI],
      resources: [orders.identifier],
      scope: 'openid offline_access o:read',
    });
    const client: TestClient & { client_secret: string } = { ...webApp, redirect_uri: REDIRECT_URI };
    const person = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const start = await authorizationUrl(as, client, { scope: 'openid offline_access o:read', prompt: 'consent', resource: orders.identifier });
    let page = await signIn(browser, await browser.navigate(start.url), person.email, person.password);
    if (page.status === 200 && page.body.includes('>Allow</button>')) page = await browser.navigate(formAction(page, 'Allow'), { form: {} });
    const params = oauth.validateAuthResponse(as, client, new URL(page.url), start.state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(client.client_secret), params, REDIRECT_URI, start.verifier, {
        ...insecure,
        additionalParameters: { resource: orders.identifier },
      }),
      { expectedNonce: start.nonce, requireIdToken: true },
    );
    const gid = decodeJwt(tokens.access_token).gid as string;
    expect(typeof gid).toBe('string');
    expect(await revoke(as, client.client_id, client.client_secret, tokens.refresh_token!)).toBe(200);
    await ordersInbox.waitFor(SESSION_REVOKED, { gid });
    expect(await ledgerInbox.hasAnyMention(gid)).toBe(false);
  }, 30_000);

  it.each([
    ['disabled', (id: string) => adminCall(server.issuer, admin, 'PATCH', `/clients/${id}`, { disabled: true })],
    ['bulk-revoked', (id: string) => adminCall(server.issuer, admin, 'POST', `/clients/${id}/revoke-tokens`)],
    ['deleted', (id: string) => adminCall(server.issuer, admin, 'DELETE', `/clients/${id}`)],
  ])('a client %s: every API gets its client_id and the instant before which its tokens are dead', async (_kind, act) => {
    const client = await newClient('internal');
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: orders.identifier, scope: 'o:read' });
    const { iat } = decodeJwt(accessToken);
    expect((await act(client.client_id)).status).toBeLessThan(300);
    for (const inbox of [ledgerInbox, ordersInbox]) {
      const set = await inbox.waitFor(CLIENT_TOKENS_REVOKED, { client_id: client.client_id });
      const revokedBefore = set.events[CLIENT_TOKENS_REVOKED].revoked_before as number;
      // The token just issued is dead: issued before the instant.
      expect(iat!).toBeLessThan(revokedBefore);
      expect(revokedBefore).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    }
  });

  it("queues nothing for the admin API's own audience: the server checks its admin tokens itself, and nobody polls that queue", async () => {
    const adminApi = await findResourceServer(server.issuer, admin, `${server.issuer}/admin`);
    expect(adminApi).toBeDefined();
    const client = await newClient('internal');
    expect((await adminCall(server.issuer, admin, 'POST', `/clients/${client.client_id}/revoke-tokens`)).status).toBe(204);
    await ordersInbox.waitFor(CLIENT_TOKENS_REVOKED, { client_id: client.client_id });
    const redis = new Redis(process.env.TEST_REDIS_URL!);
    try {
      const queueKeys = ['order', 'events'].map((part) => `${process.env.TEST_RUN_REDIS_PREFIX}secevents:{${adminApi!.id}}:${part}`);
      expect(await redis.exists(...queueKeys)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it.each([
    ['disabled', (id: string) => adminCall(server.issuer, admin, 'PATCH', `/accounts/${id}`, { disabled: true })],
    [
      'bulk-revoked (new password)',
      (id: string) => adminCall(server.issuer, admin, 'POST', `/accounts/${id}/password`, { password: 'a-new-password-0123456789' }),
    ],
    ['deleted', (id: string) => adminCall(server.issuer, admin, 'DELETE', `/accounts/${id}`)],
  ])('an account %s: every API gets its sub and the instant before which its tokens are dead', async (_kind, act) => {
    const person = await createAccount(server.issuer, admin);
    const before = Math.floor(Date.now() / 1000);
    expect((await act(person.id)).status).toBeLessThan(300);
    for (const inbox of [ledgerInbox, ordersInbox]) {
      const set = await inbox.waitFor(SESSION_REVOKED, { sub: person.id });
      expect(set.events[SESSION_REVOKED].revoked_before).toBeGreaterThan(before);
    }
  });

  it('a signing key revoked: every API gets its kid', async () => {
    const kid = kidOf(await listKeys(server.issuer, admin), 'ES256', 'next');
    expect((await adminCall(server.issuer, admin, 'POST', `/keys/${kid}/revoke`)).status).toBeLessThan(300);
    for (const inbox of [ledgerInbox, ordersInbox]) await inbox.waitFor(SIGNING_KEY_REVOKED, { kid });
  });
});

describe('poll (RFC 8936)', () => {
  let api: Api;
  let client: Awaited<ReturnType<typeof newClient>>;
  const poll = (body: unknown, credentials = api.introspection) => pollRequest(server.issuer, credentials, body);

  beforeAll(async () => {
    api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('poll'), name: 'Poll', scopes: ['p:read'], token_format: 'opaque' });
    client = await registerClient(server.issuer, admin, { client_name: 'poll', trust: 'external', resources: [api.identifier], scope: 'p:read' });
  });

  /** Issues and revokes a token of the API; resolves once revoked (its event is then waiting). */
  async function revokeOne(): Promise<void> {
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: api.identifier, scope: 'p:read' });
    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
  }

  /** Acknowledges everything waiting (client, account and key events of other tests reach every API). */
  async function drain(): Promise<void> {
    for (;;) {
      const answer = await poll({ returnImmediately: true });
      const ids = Object.keys(answer.body.sets);
      if (ids.length === 0) return;
      await poll({ ack: ids, maxEvents: 0 });
    }
  }

  it('maxEvents bounds an answer, moreAvailable says more wait, unacknowledged SETs come again, ack and setErrs remove them', async () => {
    await drain();
    for (let i = 0; i < 3; i++) await revokeOne();
    const first = await poll({ returnImmediately: true, maxEvents: 2 });
    expect(first.status).toBe(200);
    expect(Object.keys(first.body.sets)).toHaveLength(2);
    expect(first.body.moreAvailable).toBe(true);
    // Not acknowledged: answered again (at least once).
    const again = await poll({ returnImmediately: true, maxEvents: 2 });
    expect(Object.keys(again.body.sets).sort()).toEqual(Object.keys(first.body.sets).sort());
    const rest = await poll({ returnImmediately: true, maxEvents: 10, ack: Object.keys(first.body.sets) });
    const restIds = Object.keys(rest.body.sets);
    expect(restIds).toHaveLength(1);
    expect(restIds[0]).not.toBe(Object.keys(first.body.sets)[0]);
    expect(rest.body.moreAvailable).toBeUndefined();
    // A reported error acknowledges too (the receiver has seen it).
    const after = await poll({ returnImmediately: true, setErrs: { [restIds[0]]: { err: 'invalid_key', description: 'could not verify' } } });
    expect(after.body).toEqual({ sets: {} });
  });

  it('maxEvents 0 acknowledges only, answered at once', async () => {
    await drain();
    await revokeOne();
    const started = Date.now();
    const answer = await poll({ maxEvents: 0 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(answer.body).toEqual({ sets: {}, moreAvailable: true });
  });

  it("unknown ids and another API's ids in ack change nothing: the event stays for its own API", async () => {
    await drain();
    await revokeOne();
    const waiting = Object.keys((await poll({ returnImmediately: true })).body.sets);
    expect(waiting).toHaveLength(1);
    const foreign = await poll({ returnImmediately: true, ack: [...waiting, 'no-such-set-id'] }, ledger.introspection);
    expect(foreign.status).toBe(200);
    expect(Object.keys(foreign.body.sets)).not.toContain(waiting[0]);
    expect(Object.keys((await poll({ returnImmediately: true })).body.sets)).toEqual(waiting);
    expect((await poll({ ack: ['no-such-set-id', 'x'.repeat(256)], returnImmediately: true })).status).toBe(200);
  });

  it('returnImmediately answers at once when nothing waits; a long poll answers when the wait ends', async () => {
    await drain();
    let started = Date.now();
    expect((await poll({ returnImmediately: true })).body).toEqual({ sets: {} });
    expect(Date.now() - started).toBeLessThan(1_000);
    started = Date.now();
    const empty = await poll({});
    const waited = Date.now() - started;
    // Other tests' client and account events may end the wait early; otherwise it lasts the configured wait.
    if (Object.keys(empty.body.sets).length === 0) expect(waited).toBeGreaterThanOrEqual(POLL_WAIT_SECONDS * 1000 - 100);
    expect(waited).toBeLessThan(POLL_WAIT_SECONDS * 1000 + 1_500);
  });

  it('a long poll answers as soon as an event arrives', async () => {
    await drain();
    const answered = poll({}).then((answer) => ({ answer, at: Date.now() }));
    await sleep(300);
    await revokeOne();
    const revokedAt = Date.now();
    const { answer, at } = await answered;
    expect(Object.keys(answer.body.sets).length).toBeGreaterThan(0);
    expect(at - revokedAt).toBeLessThan(1_000);
  });

  it.each([
    ['a body that is not JSON', '{"maxEvents":'],
    ['a negative maxEvents', { maxEvents: -1 }],
    ['a fractional maxEvents', { maxEvents: 1.5 }],
    ['returnImmediately not a boolean', { returnImmediately: 'yes' }],
    ['ack not a list', { ack: 'abc' }],
    ['ack of non-strings', { ack: [1, 2] }],
    ['setErrs without err', { setErrs: { abc: { description: 'x' } } }],
    ['a body that is a list', [1]],
    ['a body that is null', 'null'],
  ])('%s: 400 invalid_request', async (_case, body) => {
    const answer = await poll(body);
    expect(answer.status).toBe(400);
    expect(answer.body.err).toBe('invalid_request');
    expect(typeof answer.body.description).toBe('string');
  });

  it("refuses wrong credentials, an application client's credentials and other methods", async () => {
    expect((await poll({}, { client_id: api.introspection.client_id, client_secret: 'wrong' })).status).toBe(401);
    expect((await poll({}, { client_id: client.client_id, client_secret: client.client_secret })).status).toBe(401);
    const noAuth = await fetch(`${server.issuer}/events/poll`, { method: 'POST', body: '{}' });
    expect(noAuth.status).toBe(401);
    expect(noAuth.headers.get('www-authenticate')).toMatch(/^Basic/);
    const get = await fetch(`${server.issuer}/events/poll`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});

describe("read by cursor (this server's extension of the poll)", () => {
  let api: Api;
  let client: Awaited<ReturnType<typeof newClient>>;
  let inbox: EventInbox;
  const poll = (body: unknown, credentials = api.introspection) => pollRequest(server.issuer, credentials, body);

  beforeAll(async () => {
    api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('cursor'), name: 'Cursor', scopes: ['c:read'] });
    client = await registerClient(server.issuer, admin, { client_name: 'cursor', trust: 'internal', resources: [api.identifier], scope: 'c:read' });
    inbox = new EventInbox(server.issuer, api, jwksUri);
  });

  /** Issues and revokes a JWT of the API (RFC 7009); its jti. */
  async function revokeOne(): Promise<string> {
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: api.identifier, scope: 'c:read' });
    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
    return decodeJwt(accessToken).jti!;
  }

  /** Reads from `cursor` to the end, `maxEvents` at a time: the SET ids in the order answered, the revoked jtis, and the cursor at the end. */
  async function readAll(cursor: string, maxEvents: number, credentials = api.introspection) {
    const ids: string[] = [];
    const jtis: string[] = [];
    for (let page = 0; page < 1000; page++) {
      const answer = await poll({ cursor, maxEvents, returnImmediately: true }, credentials);
      expect(answer.status).toBe(200);
      expect(Object.keys(answer.body.sets).length).toBeLessThanOrEqual(maxEvents);
      for (const [setId, set] of Object.entries(answer.body.sets as Record<string, string>)) {
        ids.push(setId);
        const revoked = decodeJwt(set).events as Record<string, Record<string, string>>;
        if (revoked[TOKEN_REVOKED]) jtis.push(revoked[TOKEN_REVOKED].jti);
      }
      expect(typeof answer.body.cursor).toBe('string');
      cursor = answer.body.cursor;
      if (!answer.body.moreAvailable) return { ids, jtis, cursor };
    }
    throw new Error('the walk did not end');
  }

  it('a walk one SET at a time visits every event once, in the order revoked; reading removes nothing', async () => {
    const revoked = [await revokeOne(), await revokeOne(), await revokeOne()];
    const walk = await readAll('', 1);
    expect(new Set(walk.ids).size).toBe(walk.ids.length);
    expect(walk.jtis.filter((jti) => revoked.includes(jti))).toEqual(revoked);
    // Each SET verifies as one for this API, its jti its id.
    for (const set of Object.values((await poll({ cursor: '', returnImmediately: true })).body.sets as Record<string, string>)) {
      expect((await inbox.verify(set)).aud).toBe(api.identifier);
    }

    // A second reader from the start, in bigger pages, reads the same events in the same order.
    expect((await readAll('', 100)).ids).toEqual(walk.ids);
    // So does a plain RFC 8936 poll: nothing was taken off the queue.
    const plain = await poll({ returnImmediately: true, maxEvents: 100 });
    expect(Object.keys(plain.body.sets)).toEqual(expect.arrayContaining(walk.ids));

    // At the end: nothing answered, the cursor unchanged, at once.
    const started = Date.now();
    const atEnd = await poll({ cursor: walk.cursor, returnImmediately: true });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(atEnd.body).toEqual({ sets: {}, cursor: walk.cursor });

    // Then a new revocation is the one event after it.
    const next = await revokeOne();
    const after = await readAll(walk.cursor, 1);
    expect(after.jtis).toEqual([next]);
  });

  it('a long poll with a cursor answers as soon as an event after it arrives, or when the wait ends', async () => {
    const { cursor } = await readAll('', 100);
    const answered = poll({ cursor }).then((answer) => ({ answer, at: Date.now() }));
    await sleep(300);
    const jti = await revokeOne();
    const revokedAt = Date.now();
    const { answer, at } = await answered;
    expect(at - revokedAt).toBeLessThan(1_000);
    expect(answer.body.cursor).not.toBe(cursor);
    const sets = Object.values(answer.body.sets as Record<string, string>).map((set) => decodeJwt(set).events as Record<string, Record<string, string>>);
    expect(sets.some((events) => events[TOKEN_REVOKED]?.jti === jti)).toBe(true);

    const started = Date.now();
    const quiet = await poll({ cursor: answer.body.cursor });
    const waited = Date.now() - started;
    // Other tests' client and account events (sent to every API) may end the wait early.
    if (Object.keys(quiet.body.sets).length === 0) {
      expect(waited).toBeGreaterThanOrEqual(POLL_WAIT_SECONDS * 1000 - 100);
      expect(quiet.body.cursor).toBe(answer.body.cursor);
    }
    expect(waited).toBeLessThan(POLL_WAIT_SECONDS * 1000 + 1_500);
  });

  it("another API's credentials with this API's cursor read their own queue only", async () => {
    await revokeOne();
    const mine = await readAll('', 100);
    // An event for the other API only, queued after this API's cursor was made.
    const other = await newClient('internal');
    const { accessToken } = await issueToken(as, other.client_id, other.client_secret, { resource: ledger.identifier, scope: 'l:read' });
    const { jti } = await introspect(as, ledger.introspection.client_id, ledger.introspection.client_secret, accessToken);
    expect(await revoke(as, other.client_id, other.client_secret, accessToken)).toBe(200);

    // The cursor only positions: the credentials choose the queue.
    const read = await poll({ cursor: mine.cursor, returnImmediately: true, maxEvents: 100 }, ledger.introspection);
    expect(read.status).toBe(200);
    const sets = read.body.sets as Record<string, string>;
    for (const setId of Object.keys(sets)) expect(mine.ids).not.toContain(setId);
    const verified = await Promise.all(Object.values(sets).map((set) => ledgerInbox.verify(set)));
    for (const set of verified) expect(set.aud).toBe(ledger.identifier);
    expect(verified.some((set) => set.events[TOKEN_REVOKED]?.jti === jti)).toBe(true);
  });

  it.each([
    ['with ack', (cursor: string) => ({ cursor, ack: ['x'] })],
    ['with an empty ack', (cursor: string) => ({ cursor, ack: [] })],
    ['with setErrs', (cursor: string) => ({ cursor, setErrs: { x: { err: 'invalid_key', description: 'no' } } })],
    ['not a string', () => ({ cursor: 42 })],
    ['not base64url', () => ({ cursor: 'not a cursor!' })],
    ['base64url the server did not make', () => ({ cursor: Buffer.from('{"score":0,"setId":"x"}').toString('base64url') })],
    ['with a character base64url does not have', (cursor: string) => ({ cursor: `${cursor}.` })],
    ['whose SET id has characters none has', () => ({ cursor: Buffer.from('1.1.a b').toString('base64url') })],
    ['too long', () => ({ cursor: 'A'.repeat(2_000) })],
  ])('a cursor %s: 400 invalid_request', async (_case, body) => {
    await revokeOne();
    const { cursor } = await readAll('', 100);
    const answer = await poll({ ...body(cursor), returnImmediately: true });
    expect(answer.status).toBe(400);
    expect(answer.body.err).toBe('invalid_request');
    expect(answer.body.description).toMatch(/^cursor/);
  });

  it('needs the same credentials as a poll', async () => {
    expect((await poll({ cursor: '' }, { client_id: api.introspection.client_id, client_secret: 'wrong' })).status).toBe(401);
    expect((await poll({ cursor: '' }, { client_id: client.client_id, client_secret: client.client_secret })).status).toBe(401);
  });
});

/** A push receiver on loopback: what each path answers, and every request it got. */
interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

describe('push (RFC 8935)', () => {
  let receiver: Server;
  let base: string;
  const received: Received[] = [];
  let flakyFailures = 0;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const path = req.url ?? '';
        received.push({ path, headers: req.headers, body });
        if (path === '/slow') return; // never answers: the pusher times out
        if (path === '/fail') return void res.writeHead(500).end('boom');
        if (path === '/redirect') return void res.writeHead(302, { location: '/ok' }).end();
        if (path === '/flaky' && flakyFailures++ < 2) return void res.writeHead(503).end();
        res.writeHead(202).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await new Promise((resolve) => receiver.once('listening', resolve));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  /** An API pushed to `path` of the receiver, a client of it, and its inbox. */
  async function pushedApi(path: string) {
    const api = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('push'),
      name: 'Push',
      scopes: ['s:read'],
      token_format: 'opaque',
    });
    const patched = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, {
      events_endpoint: `${base}${path}`,
      events_endpoint_token: `push-credential-${api.id}`,
    });
    expect(patched.status).toBe(200);
    expect(patched.body.events_endpoint).toBe(`${base}${path}`);
    expect(JSON.stringify(patched.body)).not.toContain('push-credential');
    const client = await registerClient(server.issuer, admin, { client_name: 'push', trust: 'external', resources: [api.identifier], scope: 's:read' });
    const revokeOne = async () => {
      const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: api.identifier, scope: 's:read' });
      const { jti } = await introspect(as, api.introspection.client_id, api.introspection.client_secret, accessToken);
      expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
      return jti as string;
    };
    return { api, revokeOne, inbox: new EventInbox(server.issuer, api, jwksUri) };
  }

  const pushesOf = (api: Api, path: string) => received.filter((r) => r.path === path && r.headers.authorization === `Bearer push-credential-${api.id}`);

  it('pushes the SET with its media type and bearer credential; a 202 acknowledges it', async () => {
    const { api, revokeOne, inbox } = await pushedApi('/ok');
    const jti = await revokeOne();
    const deadline = Date.now() + 2_000;
    while (pushesOf(api, '/ok').length === 0 && Date.now() < deadline) await sleep(20);
    const [push] = pushesOf(api, '/ok');
    expect(push.headers['content-type']).toBe('application/secevent+jwt');
    const set = await inbox.verify(push.body);
    expect(set.events[TOKEN_REVOKED]).toMatchObject({ jti });
    // Acknowledged by the 202: not waiting for a poll.
    await sleep(200);
    expect(await inbox.hasAnyMention(jti)).toBe(false);
  });

  it('retries a failing endpoint and stops at its 202', async () => {
    const { api, revokeOne, inbox } = await pushedApi('/flaky');
    const jti = await revokeOne();
    await sleep(3_000);
    expect(pushesOf(api, '/flaky')).toHaveLength(3);
    expect(await inbox.hasAnyMention(jti)).toBe(false);
  });

  it('500s, redirects (never followed) and timeouts: bounded retries, then the event waits for a poll', async () => {
    const apis = await Promise.all(['/fail', '/redirect', '/slow'].map(async (path) => ({ path, ...(await pushedApi(path)) })));
    const before = received.filter((r) => r.path === '/ok').length;
    const jtis = await Promise.all(apis.map((api) => api.revokeOne()));
    // 5 attempts: 0.5 + 1 + 2 + 4 s of pauses, and up to 3 s each for the timeouts.
    await sleep(24_000);
    for (const [index, { api, path, inbox }] of apis.entries()) {
      expect(pushesOf(api, path)).toHaveLength(5);
      await inbox.waitFor(TOKEN_REVOKED, { jti: jtis[index] }, 1_000);
    }
    // The redirect was never followed.
    expect(received.filter((r) => r.path === '/ok').length).toBe(before);
    await sleep(2_000);
    for (const { api, path } of apis) expect(pushesOf(api, path)).toHaveLength(5);
  }, 60_000);

  it('refuses a push endpoint that is not https (but for loopback outside production)', async () => {
    const api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('push'), name: 'Push', scopes: ['s:read'] });
    for (const endpoint of ['http://events.example.test/push', 'ftp://127.0.0.1/x', 'not a url']) {
      expect((await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { events_endpoint: endpoint })).status).toBe(422);
    }
    expect((await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { events_endpoint_token: 'short' })).status).toBe(422);
    const removed = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${api.id}`, { events_endpoint: null, events_endpoint_token: null });
    expect(removed.status).toBe(200);
    expect(removed.body.events_endpoint).toBeNull();
  });
});
