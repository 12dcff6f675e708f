/**
 * Revocation reaching the resource-server kit through the server's events (RFC 8936 poll, RFC 8935
 * push), with caching on: from the revocation's answer to the kit refusing the token, over TRIALS trials
 * per kind of revocation, for JWT and opaque tokens, for a polling and a pushed-to kit. Several
 * instances of one API (kits with the same credentials) each apply every revocation, and one started
 * after a revocation applies it at once. Also: the kit falls back to introspecting every opaque token
 * while its event channel is down.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { createResourceServerKit, ResourceServerKit, type ResourceServerKitOptions } from '../../resource-server-kit/src/index.js';
import * as forExpress from '../../resource-server-kit/src/middleware/express.js';
import { freePort } from '../helpers/free-port.js';
import { kidOf, kidOfToken, listKeys, sleep, within } from '../helpers/keys.js';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { bearer, pollRequest, untilRefused } from '../helpers/security-events.js';
import { startServer, type RunningServer } from '../helpers/server.js';

type Api = Awaited<ReturnType<typeof registerResourceServer>>;
type Client = { client_id: string; client_secret: string };

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let pollApi: Api;
let pushApi: Api;
let pollKit: ResourceServerKit;
let pushKit: ResourceServerKit;
let closeReceiver: () => Promise<unknown>;
const extraKits: ResourceServerKit[] = [];

const credentialsOf = (api: Api) => ({ clientId: api.introspection.client_id, clientSecret: api.introspection.client_secret });

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  pollApi = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('polled'), name: 'Polled', scopes: ['a:read'] });
  pushApi = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('pushed'), name: 'Pushed', scopes: ['a:read'] });
  const cache = { maxTtlMs: 60_000 };
  // No cool-down for unknown kids: the key trials revoke the signing key every time, and the key
  // promoted in its place may be newer than the kit's copy of the JWKS.
  const jwks = { cooldownMs: 0 };
  pollKit = await createResourceServerKit({ issuer: server.issuer, resource: pollApi.identifier, credentials: credentialsOf(pollApi), cache, jwks });

  const pushToken = randomBytes(24).toString('base64url');
  pushKit = await createResourceServerKit({
    issuer: server.issuer,
    resource: pushApi.identifier,
    credentials: credentialsOf(pushApi),
    cache,
    jwks,
    events: { mode: 'push', pushToken },
  });
  const app = express();
  app.post('/security-events', forExpress.pushReceiver(pushKit));
  const receiver = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => receiver.once('listening', resolve));
  closeReceiver = () => new Promise((resolve) => receiver.close(resolve));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/security-events`;
  const patched = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${pushApi.id}`, {
    events_endpoint: endpoint,
    events_endpoint_token: pushToken,
  });
  expect(patched.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await Promise.all([pollKit?.close(), pushKit?.close(), ...extraKits.map((kit) => kit.close())]);
  await closeReceiver?.();
  await server?.stop();
});

/** A client of both APIs: internal ones get JWTs, external ones opaque tokens. */
const newClient = (trust: 'internal' | 'external') =>
  registerClient(server.issuer, admin, { client_name: `kit events ${trust}`, trust, scope: 'a:read', resources: [pollApi.identifier, pushApi.identifier] });
const tokenOf = async (client: Client, api: Api) =>
  (await issueToken(as, client.client_id, client.client_secret, { resource: api.identifier, scope: 'a:read' })).accessToken;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

const latencies: Record<string, number[]> = {};
const record = (name: string, ms: number) => (latencies[name] ??= []).push(ms);
const summary = (name: string) => {
  const values = latencies[name];
  return `${name}: n=${values.length} p50=${percentile(values, 50).toFixed(0)} ms p99=${percentile(values, 99).toFixed(0)} ms max=${Math.max(...values).toFixed(0)} ms`;
};

/** The four combinations a trial measures: JWT or opaque, at the polling or the pushed-to kit. */
const combinations = [
  { name: 'jwt, poll', kit: () => pollKit, api: () => pollApi, trust: 'internal' },
  { name: 'opaque, poll', kit: () => pollKit, api: () => pollApi, trust: 'external' },
  { name: 'jwt, push', kit: () => pushKit, api: () => pushApi, trust: 'internal' },
  { name: 'opaque, push', kit: () => pushKit, api: () => pushApi, trust: 'external' },
] as const;

/**
 * Trials per kind. The suite runs 20 to stay within its time; the issue-12 measurement (100 trials
 * per kind, p99 within 2 s) is `KIT_REVOCATION_TRIALS=100 npm test -- test/e2e/resource-server-kit-events.test.ts`
 * (docs/resource-servers.md has its figures).
 */
const TRIALS = Number(process.env.KIT_REVOCATION_TRIALS ?? 20);
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** A web app of both APIs that signs people in (authorization code, refresh tokens). */
const newWebApp = async (trust: 'internal' | 'external'): Promise<TestClient & { client_secret: string }> => ({
  ...(await registerClient(server.issuer, admin, {
    client_name: `kit events web app ${trust}`,
    trust,
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [pollApi.identifier, pushApi.identifier],
    scope: 'openid offline_access a:read',
  })),
  redirect_uri: REDIRECT_URI,
});

/** A person's sign-in to `app` for `api`: its access and refresh tokens. */
async function signedIn(app: TestClient & { client_secret: string }, person: { email: string; password: string }, api: Api) {
  const browser = new Browser(REDIRECT_URI);
  const start = await authorizationUrl(as, app, { scope: 'openid offline_access a:read', prompt: 'consent', resource: api.identifier });
  let page = await signIn(browser, await browser.navigate(start.url), person.email, person.password);
  if (page.status === 200 && page.body.includes('>Allow</button>')) page = await browser.navigate(formAction(page, 'Allow'), { form: {} });
  const params = oauth.validateAuthResponse(as, app, new URL(page.url), start.state);
  const response = await oauth.authorizationCodeGrantRequest(as, app, oauth.ClientSecretBasic(app.client_secret), params, REDIRECT_URI, start.verifier, {
    [oauth.allowInsecureRequests]: true,
    additionalParameters: { resource: api.identifier },
  });
  const tokens = await oauth.processAuthorizationCodeResponse(as, app, response, { expectedNonce: start.nonce, requireIdToken: true });
  return { access: tokens.access_token, refresh: tokens.refresh_token! };
}

describe('revocation reaches the kit (caching on): p99 within 2 s over the trials', () => {
  afterAll(() => console.log(`resource-server-kit revocation latency:\n${Object.keys(latencies).map(summary).join('\n')}`));

  it('a token revoked by its client (RFC 7009)', async () => {
    const clients = { internal: await newClient('internal'), external: await newClient('external') };
    for (let trial = 0; trial < TRIALS; trial++) {
      await Promise.all(
        combinations.map(async ({ name, kit, api, trust }) => {
          const client = clients[trust];
          const token = await tokenOf(client, api());
          expect((await kit().verify(bearer(token))).format).toBe(trust === 'internal' ? 'jwt' : 'opaque');
          expect((await kit().verify(bearer(token))).cached).toBe(true);
          expect(await revoke(as, client.client_id, client.client_secret, token)).toBe(200);
          record(`token, ${name}`, await untilRefused(kit(), token, performance.now()));
        }),
      );
    }
    for (const { name } of combinations) expect(percentile(latencies[`token, ${name}`], 99)).toBeLessThanOrEqual(2000);
  }, 240_000);

  it("a client's tokens revoked (admin API)", async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const clients = { internal: await newClient('internal'), external: await newClient('external') };
      const issued = await Promise.all(
        combinations.map(async (combination) => {
          const token = await tokenOf(clients[combination.trust], combination.api());
          await combination.kit().verify(bearer(token));
          return { ...combination, token };
        }),
      );
      await Promise.all(
        (['internal', 'external'] as const).map(async (trust) => {
          expect((await adminCall(server.issuer, admin, 'POST', `/clients/${clients[trust].client_id}/revoke-tokens`)).status).toBe(204);
          const since = performance.now();
          await Promise.all(
            issued.filter((i) => i.trust === trust).map(async ({ name, kit, token }) => record(`client, ${name}`, await untilRefused(kit(), token, since))),
          );
        }),
      );
    }
    for (const { name } of combinations) expect(percentile(latencies[`client, ${name}`], 99)).toBeLessThanOrEqual(2000);
  }, 240_000);

  // A person's sign-in per measure: each trial takes the next of the four combinations, TRIALS trials per kind.
  it("a person's grant revoked (its refresh token revoked), and a person's account disabled", async () => {
    const apps = { internal: await newWebApp('internal'), external: await newWebApp('external') };
    for (let trial = 0; trial < TRIALS; trial++) {
      const { name, kit, api, trust } = combinations[trial % combinations.length];
      const app = apps[trust];
      const person = await createAccount(server.issuer, admin);

      const grant = await signedIn(app, person, api());
      expect((await kit().verify(bearer(grant.access))).format).toBe(trust === 'internal' ? 'jwt' : 'opaque');
      expect(await revoke(as, app.client_id, app.client_secret, grant.refresh)).toBe(200);
      record(`grant, ${name}`, await untilRefused(kit(), grant.access, performance.now()));

      const session = await signedIn(app, person, api());
      await kit().verify(bearer(session.access));
      expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${person.id}`, { disabled: true })).status).toBe(200);
      record(`account, ${name}`, await untilRefused(kit(), session.access, performance.now()));
    }
    for (const kind of ['grant', 'account']) {
      const all = combinations.flatMap(({ name }) => latencies[`${kind}, ${name}`]);
      expect(all).toHaveLength(TRIALS);
      expect(percentile(all, 99)).toBeLessThanOrEqual(2000);
    }
  }, 300_000);

  it('a signing key revoked (admin API): its JWTs are refused', async () => {
    const client = await newClient('internal');
    for (let trial = 0; trial < TRIALS; trial++) {
      const current = kidOf(await listKeys(server.issuer, admin), 'RS256', 'current');
      let tokens: string[] = [];
      // After the previous trial's revocation, the promoted key must be the one signing.
      await within(5000, async () => {
        tokens = await Promise.all([tokenOf(client, pollApi), tokenOf(client, pushApi)]);
        return tokens.every((token) => kidOfToken(token) === current);
      });
      await pollKit.verify(bearer(tokens[0]));
      await pushKit.verify(bearer(tokens[1]));
      expect((await adminCall(server.issuer, admin, 'POST', `/keys/${current}/revoke`)).status).toBe(204);
      const since = performance.now();
      await Promise.all([
        untilRefused(pollKit, tokens[0], since).then((ms) => record('key, jwt, poll', ms)),
        untilRefused(pushKit, tokens[1], since).then((ms) => record('key, jwt, push', ms)),
      ]);
    }
    for (const name of ['key, jwt, poll', 'key, jwt, push']) expect(percentile(latencies[name], 99)).toBeLessThanOrEqual(2000);
  }, 300_000);
});

describe('several instances of one API, polling with the same credentials', () => {
  let api: Api;
  let instances: ResourceServerKit[];
  const options = (extra: Partial<ResourceServerKitOptions> = {}): ResourceServerKitOptions => ({
    issuer: server.issuer,
    resource: api.identifier,
    credentials: credentialsOf(api),
    cache: { maxTtlMs: 60_000 },
    ...extra,
  });
  const newInstance = async (extra: Partial<ResourceServerKitOptions> = {}) => {
    const kit = await createResourceServerKit(options(extra));
    extraKits.push(kit);
    return kit;
  };
  const clientOf = (trust: 'internal' | 'external') =>
    registerClient(server.issuer, admin, { client_name: `instances ${trust}`, trust, scope: 'a:read', resources: [api.identifier] });

  beforeAll(async () => {
    api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('scaled'), name: 'Scaled', scopes: ['a:read'] });
    // Long polling ones, which all wait when an event comes, and ones polling every 250 ms, which are
    // not all asking at that moment: with acknowledgements, the first to get an event takes it from the others.
    instances = [
      await newInstance(),
      await newInstance(),
      await newInstance({ events: { pollIntervalMs: 250 } }),
      await newInstance({ events: { pollIntervalMs: 250 } }),
    ];
  });

  /** Milliseconds until every instance refuses `token`, each measured from `since`. */
  const untilAllRefuse = (kits: ResourceServerKit[], token: string, since: number) => Promise.all(kits.map((kit) => untilRefused(kit, token, since)));

  it('a token revoked by its client (RFC 7009) is refused by every instance, JWT and opaque', async () => {
    const clients = { internal: await clientOf('internal'), external: await clientOf('external') };
    for (let trial = 0; trial < 5; trial++) {
      for (const trust of ['internal', 'external'] as const) {
        const token = await tokenOf(clients[trust], api);
        for (const kit of instances) expect((await kit.verify(bearer(token))).format).toBe(trust === 'internal' ? 'jwt' : 'opaque');
        for (const kit of instances) expect((await kit.verify(bearer(token))).cached).toBe(true);
        expect(await revoke(as, clients[trust].client_id, clients[trust].client_secret, token)).toBe(200);
        const delays = await untilAllRefuse(instances, token, performance.now());
        for (const ms of delays) expect(ms).toBeLessThanOrEqual(2000);
      }
    }
  }, 60_000);

  it("a client's tokens revoked (admin API) are refused by every instance", async () => {
    const internal = await clientOf('internal');
    const external = await clientOf('external');
    const tokens = [await tokenOf(internal, api), await tokenOf(external, api)];
    for (const token of tokens) for (const kit of instances) await kit.verify(bearer(token));
    for (const client of [internal, external])
      expect((await adminCall(server.issuer, admin, 'POST', `/clients/${client.client_id}/revoke-tokens`)).status).toBe(204);
    const since = performance.now();
    for (const token of tokens) for (const ms of await untilAllRefuse(instances, token, since)) expect(ms).toBeLessThanOrEqual(2000);
  }, 60_000);

  it('an instance started after a revocation refuses the revoked JWT at once: it reads the events the issuer retains', async () => {
    const client = await clientOf('internal');
    const token = await tokenOf(client, api);
    expect(await revoke(as, client.client_id, client.client_secret, token)).toBe(200);
    await untilAllRefuse(instances, token, performance.now());
    const since = performance.now();
    const restarted = await newInstance();
    expect(await untilRefused(restarted, token, since)).toBeLessThanOrEqual(2000);
  });

  it('an acknowledging kit (events.acknowledge) still applies revocations; its acknowledgement removes the event for every reader', async () => {
    const alone = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('acked'), name: 'Acked', scopes: ['a:read'] });
    const client = await registerClient(server.issuer, admin, { client_name: 'acked', trust: 'internal', scope: 'a:read', resources: [alone.identifier] });
    const kit = await createResourceServerKit({
      issuer: server.issuer,
      resource: alone.identifier,
      credentials: credentialsOf(alone),
      events: { acknowledge: true },
    });
    extraKits.push(kit);
    const { accessToken } = await issueToken(as, client.client_id, client.client_secret, { resource: alone.identifier, scope: 'a:read' });
    await kit.verify(bearer(accessToken));
    expect(await revoke(as, client.client_id, client.client_secret, accessToken)).toBe(200);
    expect(await untilRefused(kit, accessToken, performance.now())).toBeLessThanOrEqual(2000);
    // Acknowledged (on its next poll): nothing left to read from the start.
    await within(5000, async () => {
      const read = await pollRequest(server.issuer, alone.introspection, { cursor: '', returnImmediately: true });
      return Object.keys(read.body.sets).length === 0;
    });
  });
});

describe('when the event channel is down', () => {
  it('the kit stops trusting its cache after the bound and introspects every opaque token (fail closed)', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, string>;
    let introspections = 0;
    const states: string[] = [];
    const options: ResourceServerKitOptions = {
      issuer: server.issuer,
      resource: pollApi.identifier,
      credentials: credentialsOf(pollApi),
      events: { staleAfterMs: 1000 },
      hooks: { onIntrospection: () => introspections++, onEventChannel: ({ state }) => states.push(state) },
    };
    // Its poll endpoint is a port nobody listens on: every poll fails, as when the issuer is unreachable.
    const token = await tokenOf(await newClient('external'), pollApi);
    const kit = new ResourceServerKit(options, {
      jwksUri: metadata.jwks_uri,
      introspectionEndpoint: metadata.introspection_endpoint,
      pollEndpoint: `http://127.0.0.1:${await freePort()}/events/poll`,
      ssfConfiguration: `${server.issuer}/.well-known/ssf-configuration`,
    });
    extraKits.push(kit);
    kit.start();
    await kit.verify(bearer(token));
    expect((await kit.verify(bearer(token))).cached).toBe(true);
    expect(introspections).toBe(1);
    await sleep(1200);
    expect(kit.eventsStale()).toBe(true);
    for (let i = 0; i < 3; i++) expect((await kit.verify(bearer(token))).cached).toBe(false);
    expect(introspections).toBe(4);
    expect(states).toContain('stale');
  });
});
