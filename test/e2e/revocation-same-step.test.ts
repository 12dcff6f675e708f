/**
 * A client revoking its own opaque token on the dedicated path, on a standalone Redis: the token's
 * deletion and the queuing of its revocation event are one Redis command (docs/dedicated-paths.md,
 * "Revocation"), and what is queued is what the two-step way (record, then relay) queues: the same
 * SET id rule, the same payload bytes, scores in revocation order, the same retention. Polls, cursor
 * reads, waiting polls on another instance and pushes get it as before; a token whose audience the
 * path did not offer still goes the recorded way.
 *
 * Two servers on a Redis of this file's own (so that MONITOR sees their commands only) and one
 * issuer: `dedicated` answers revocations on the dedicated path, `stock` leaves them to oidc-provider,
 * whose `destroy` records the event and relays it (the two-step way).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import * as oauth from 'oauth4webapi';
import { setIdFor, type RecordedEvent } from '../../src/security-events/revocation-event.js';
import { sleep } from '../helpers/keys.js';
import { adminCall, adminToken, discover, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { EventInbox, pollRequest } from '../helpers/security-events.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startSpareRedis, type SpareRedis } from '../helpers/spare-redis.js';

const TOKEN_REVOKED = 'urn:login-server:secevent:token-revoked';
const PREFIX = 'samestep:';
/** A queue's retention for a resource server without its own token lifetime: 24 h (security-events.ts). */
const RETENTION_MS = 24 * 60 * 60 * 1000;

type Api = Awaited<ReturnType<typeof registerResourceServer>>;
type Client = Awaited<ReturnType<typeof registerClient>>;

let redis: SpareRedis;
let dedicated: RunningServer;
let stock: RunningServer;
let dedicatedAs: oauth.AuthorizationServer;
let stockAs: oauth.AuthorizationServer;
let admin: string;
let jwksUri: string;
let api: Api;
let client: Client;
let reader: Redis;
let monitor: Redis;
/** Every command either server sent to Redis since the monitor started (not those a script ran), as MONITOR shows them. */
const commands: string[][] = [];

const env = () => ({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX, EVENTS_POLL_WAIT: '5' });

beforeAll(async () => {
  redis = await startSpareRedis();
  dedicated = await startServer({ env: { ...env(), DEDICATED_PATHS: 'true' } });
  stock = await startServer({ issuerPort: dedicated.port, env: { ...env(), DEDICATED_PATHS: 'false' } });
  dedicatedAs = await discover(dedicated.issuer);
  stockAs = { ...dedicatedAs, revocation_endpoint: dedicatedAs.revocation_endpoint!.replace(`:${dedicated.port}/`, `:${stock.port}/`) };
  admin = await adminToken(dedicated.issuer);
  jwksUri = ((await (await fetch(`${dedicated.issuer}/.well-known/ssf-configuration`)).json()) as { jwks_uri: string }).jwks_uri;
  api = await opaqueApi('same');
  client = await clientOf('same step', [api]);
  reader = new Redis(redis.url);
  monitor = await reader.monitor();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') commands.push(args);
  });
}, 60_000);

afterAll(async () => {
  monitor?.disconnect();
  reader?.disconnect();
  await dedicated?.stop();
  await stock?.stop();
  await redis?.stop();
});

/** The `jti` of an opaque token's event: the first 32 characters of its value's SHA-256 (what introspection answers). */
const digestOf = (token: string) => createHash('sha256').update(token).digest('base64url');

/** A new resource server of opaque tokens with the scope `s:read`. */
const opaqueApi = (name: string): Promise<Api> =>
  registerResourceServer(dedicated.issuer, admin, { identifier: uniqueResource(name), name, scopes: ['s:read'], token_format: 'opaque' });

/** A new external client of `resources` (the first its default) with the scope `s:read`. */
const clientOf = (name: string, resources: readonly Api[]): Promise<Client> =>
  registerClient(dedicated.issuer, admin, { client_name: name, trust: 'external', resources: resources.map((rs) => rs.identifier), scope: 's:read' });

/** A token of `owner` for `resource` (the default: the API), issued by the dedicated server. */
async function newToken(owner: Client = client, resource: string = api.identifier): Promise<string> {
  return (await issueToken(dedicatedAs, owner.client_id, owner.client_secret, { resource, scope: 's:read' })).accessToken;
}

/** The commands the servers sent while `act` ran and shortly after (the bus notice goes on the next turn), that name one of `marks`. */
async function commandsNaming(marks: readonly string[], act: () => Promise<void>): Promise<string[][]> {
  await sleep(200);
  commands.length = 0;
  await act();
  await sleep(300);
  return commands.filter((args) => args.some((arg) => marks.some((mark) => arg.includes(mark))));
}

/** A queue's keys (src/security-events/event-queue.ts). */
const queueKeys = (rsId: string) => ['order', 'events', 'last'].map((part) => `${PREFIX}secevents:{${rsId}}:${part}`);

/** The queue of `rsId` as Redis holds it: SET ids in score order, with score and stored payload. */
async function queued(rsId: string): Promise<{ setId: string; score: number; payload: string }[]> {
  const [order, events] = queueKeys(rsId);
  const rows = await reader.zrange(order, '0', '-1', 'WITHSCORES');
  const payloads = await reader.hgetall(events);
  const entries: { setId: string; score: number; payload: string }[] = [];
  for (let i = 0; i < rows.length; i += 2) entries.push({ setId: rows[i], score: Number(rows[i + 1]), payload: payloads[rows[i]] });
  return entries;
}

describe('a client revoking its own opaque token, on a standalone Redis', () => {
  it('deletes the token and queues its event in one Redis command', async () => {
    // The first call of a script on a new Redis sends it twice (EVALSHA, then EVAL to load it).
    expect(await revoke(dedicatedAs, client.client_id, client.client_secret, await newToken())).toBe(200);
    const token = await newToken();
    const marks = [digestOf(token), `{${api.id}}`];
    const named = await commandsNaming(marks, async () => {
      expect(await revoke(dedicatedAs, client.client_id, client.client_secret, token)).toBe(200);
    });
    // The two-step way sent three: the revocation script (which recorded the event), the queue's
    // script, and the deletion of the recorded event.
    expect(named).toHaveLength(1);
    const [command] = named;
    expect(command[0].toLowerCase()).toMatch(/^eval(sha)?$/);
    expect(command).toContain(`${PREFIX}ClientCredentials:{${digestOf(token)}}`);
    expect(command).toEqual(expect.arrayContaining(queueKeys(api.id)));
    // Nothing is left recorded for a relay.
    expect(await reader.keys(`${PREFIX}secevent-outbox:*`)).toEqual([]);
    expect(await reader.keys(`${PREFIX}*${digestOf(token)}*`)).toEqual([]);
  }, 30_000);

  it('queues what the two-step way queues: SET id, payload bytes, score order, retention', async () => {
    const { id: rsId } = api;
    const before = new Set((await queued(rsId)).map((entry) => entry.setId));
    // Alternately on the dedicated path (one command) and the provider's (record, then relay).
    const ways = [dedicatedAs, stockAs, dedicatedAs, stockAs, dedicatedAs];
    const jtis: string[] = [];
    for (const way of ways) {
      const token = await newToken();
      jtis.push(digestOf(token).slice(0, 32));
      expect(await revoke(way, client.client_id, client.client_secret, token)).toBe(200);
      // Each way gives the queue the same retention.
      for (const key of queueKeys(rsId)) {
        const ttl = await reader.pttl(key);
        expect(ttl).toBeGreaterThan(RETENTION_MS - 60_000);
        expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
      }
    }
    const entries = (await queued(rsId)).filter((entry) => !before.has(entry.setId));
    // In revocation order, scores only growing.
    expect(entries.map((entry) => (JSON.parse(entry.payload) as { event: { jti: string } }).event.jti)).toEqual(jtis);
    for (let i = 1; i < entries.length; i++) expect(entries[i].score).toBeGreaterThan(entries[i - 1].score);
    const shapes = entries.map(({ setId, payload }) => {
      const recorded = JSON.parse(payload) as RecordedEvent & { event: { jti: string; audiences: string[] } };
      // The relay's SET id rule, and the event of this token for this API alone.
      expect(setId).toBe(setIdFor(recorded, rsId));
      expect(recorded.event).toEqual({ kind: 'token', jti: expect.any(String), audiences: [api.identifier] });
      expect(typeof recorded.at).toBe('number');
      return payload.replace(recorded.id, '<id>').replace(recorded.event.jti, '<jti>').replace(`"at":${recorded.at}`, '"at":0');
    });
    // Byte for byte the same but for the event's own id, time and subject, whichever way queued it.
    expect(new Set(shapes).size).toBe(1);

    // And a resource server reads them alike: verified SETs with those ids, by poll and by cursor.
    const inbox = new EventInbox(dedicated.issuer, api, jwksUri);
    for (const jti of jtis) await inbox.waitFor(TOKEN_REVOKED, { jti });
    const read = await pollRequest(stock.issuer, api.introspection, { cursor: '', returnImmediately: true, maxEvents: 100 });
    expect(read.status).toBe(200);
    expect(Object.keys(read.body.sets as object)).toEqual(expect.arrayContaining(entries.map((entry) => entry.setId)));
  }, 60_000);

  it('wakes a poll waiting on the other instance, which reads the event after its cursor', async () => {
    let cursor = '';
    for (let more = true; more;) {
      const page = await pollRequest(stock.issuer, api.introspection, { cursor, returnImmediately: true, maxEvents: 100 });
      cursor = page.body.cursor as string;
      more = page.body.moreAvailable === true;
    }
    const waiting = pollRequest(stock.issuer, api.introspection, { cursor, returnImmediately: false, maxEvents: 10 });
    await sleep(200);
    const token = await newToken();
    const started = Date.now();
    expect(await revoke(dedicatedAs, client.client_id, client.client_secret, token)).toBe(200);
    const answer = await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);
    const sets = Object.values(answer.body.sets as Record<string, string>);
    expect(sets).toHaveLength(1);
    const set = await new EventInbox(dedicated.issuer, api, jwksUri).verify(sets[0]);
    expect(set.events[TOKEN_REVOKED]).toMatchObject({ jti: digestOf(token).slice(0, 32) });
  }, 30_000);

  describe('push', () => {
    let receiver: Server;
    const pushed: string[] = [];

    beforeAll(async () => {
      receiver = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          pushed.push(body);
          res.writeHead(202).end();
        });
      });
      receiver.listen(0, '127.0.0.1');
      await new Promise((resolve) => receiver.once('listening', resolve));
    });

    afterAll(async () => {
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    });

    it('starts the push of a resource server with an events endpoint, which acknowledges it', async () => {
      const pushedApi = await opaqueApi('pushed');
      const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
      const patched = await adminCall(dedicated.issuer, admin, 'PATCH', `/resource-servers/${pushedApi.id}`, { events_endpoint: endpoint });
      expect(patched.status).toBe(200);
      const owner = await clientOf('pushed', [pushedApi]);
      await sleep(300);
      const token = await newToken(owner, pushedApi.identifier);
      const named = await commandsNaming([digestOf(token), `{${pushedApi.id}}`], async () => {
        expect(await revoke(dedicatedAs, owner.client_id, owner.client_secret, token)).toBe(200);
        const deadline = Date.now() + 5_000;
        while (pushed.length === 0 && Date.now() < deadline) await sleep(20);
      });
      const set = await new EventInbox(dedicated.issuer, pushedApi, jwksUri).verify(pushed[0]);
      expect(set.events[TOKEN_REVOKED]).toMatchObject({ jti: digestOf(token).slice(0, 32) });
      // One command for the revocation; after the 202, the queue lets the event go.
      expect(named[0]).toEqual(expect.arrayContaining(queueKeys(pushedApi.id)));
      expect(named.filter((args) => args.includes(`${PREFIX}ClientCredentials:{${digestOf(token)}}`))).toHaveLength(1);
      expect(await queued(pushedApi.id)).toEqual([]);
    }, 30_000);
  });

  it('records and relays, as before, the event of a token whose audience the path did not offer', async () => {
    // A client of two APIs, whose token for the second outlives the client's use of that API: the
    // path offers the client's resources, and the token's audience is no longer among them.
    const other = await opaqueApi('other');
    const owner = await clientOf('two apis', [api, other]);
    const token = await newToken(owner, other.identifier);
    expect((await adminCall(dedicated.issuer, admin, 'PATCH', `/clients/${owner.client_id}`, { resources: [api.identifier] })).status).toBe(200);
    await sleep(500);
    const named = await commandsNaming([digestOf(token), `{${other.id}}`, `{${api.id}}`], async () => {
      expect(await revoke(dedicatedAs, owner.client_id, owner.client_secret, token)).toBe(200);
    });
    // The revocation script (offered the client's API's queue, not this one: it recorded the event),
    // the relay's queue script, the recorded event's deletion.
    expect(named).toHaveLength(3);
    expect(named[0]).toEqual(expect.arrayContaining(queueKeys(api.id)));
    expect(named[0]).not.toEqual(expect.arrayContaining(queueKeys(other.id)));
    expect(named[1]).toEqual(expect.arrayContaining(queueKeys(other.id)));
    expect(named[2][0].toLowerCase()).toBe('del');
    expect(named[2][1]).toMatch(new RegExp(`^${PREFIX}secevent-outbox:`));
    await new EventInbox(dedicated.issuer, other, jwksUri).waitFor(TOKEN_REVOKED, { jti: digestOf(token).slice(0, 32) });
    expect(await reader.keys(`${PREFIX}secevent-outbox:*`)).toEqual([]);
  }, 30_000);
});
