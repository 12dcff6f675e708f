/**
 * Signing keys end to end: the admin routes, the JWKS's caching headers, the 409 on a next key younger
 * than JWKS_MAX_AGE, revocation of a retired and of the current key, the periodic pass (scheduled
 * rotation and the janitor), encryption at rest, and rewrapping under a new key-encryption key (signing
 * keys, push credentials and TOTP secrets).
 *
 * Every file of the run shares the keys: each test leaves a current and a next key per algorithm.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRemoteJWKSet, jwtVerify, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { Secret, TOTP } from 'otpauth';
import pg from 'pg';
import { keyEncryptionKeyFromBase64 } from '../../src/keys/key-encryption.js';
import { unsealPrivateJwk } from '../../src/keys/signing-keys.js';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type Page, type RequestOptions } from '../helpers/login.js';
import { kidOf, kidOfToken, listKeys, onInstance, publishedKids, sleep, within } from '../helpers/keys.js';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, TEST_KEY_ENCRYPTION_KEY, testServerEnv, type RunningServer } from '../helpers/server.js';

const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
/** Every instance of this file's issuer enables every algorithm, EdDSA included (not a default). */
const ALL_ALGS = { SIGNING_ALGS: ALGS.join(',') };
const JWKS_MAX_AGE = 3;

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let api: { identifier: string; introspection: { client_id: string; client_secret: string } };
let client: { client_id: string; client_secret: string };
let db: pg.Client;
const otherServers: RunningServer[] = [];

beforeAll(async () => {
  server = await startServer({ env: { ...ALL_ALGS, JWKS_MAX_AGE: String(JWKS_MAX_AGE) } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('keys'), name: 'Keys', scopes: ['keys:read'] });
  client = await registerClient(server.issuer, admin, { client_name: 'Key watcher', trust: 'internal', resources: [api.identifier], scope: 'keys:read' });
  db = new pg.Client({ connectionString: process.env.TEST_RUN_DATABASE_URL });
  await db.connect();
}, 60_000);

afterAll(async () => {
  await Promise.all([server, ...otherServers].map((s) => s?.stop()));
  await db?.end();
});

/** Another instance of the same issuer, stopped after the file. */
async function startInstance(env: Record<string, string> = {}): Promise<RunningServer> {
  const instance = await startServer({ issuerPort: server.port, env: { ...ALL_ALGS, ...env } });
  otherServers.push(instance);
  return instance;
}

const issueJwt = async (from: oauth.AuthorizationServer = as) =>
  (await issueToken(from, client.client_id, client.client_secret, { scope: 'keys:read' })).accessToken;
const introspectToken = (token: string) => introspect(as, api.introspection.client_id, api.introspection.client_secret, token);
const keys = () => listKeys(server.issuer, admin);
const rotate = (query = '') => adminCall(server.issuer, admin, 'POST', `/keys/rotate${query}`);
const revokeKey = (kid: string) => adminCall(server.issuer, admin, 'POST', `/keys/${kid}/revoke`);
const auditEntries = async (action: string, target: string) =>
  (
    await db.query<{ actor: string; details: Record<string, unknown> }>('select actor, details from audit_events where action = $1 and target = $2', [
      action,
      target,
    ])
  ).rows;
/** A resource server that has just started: nothing cached yet. */
const freshResourceServerVerify = (token: string) =>
  jwtVerify(token, createRemoteJWKSet(new URL(as.jwks_uri!)), { issuer: server.issuer, audience: api.identifier });

describe('GET /admin/keys', () => {
  it('lists one current and one next key per algorithm, with their timeline', async () => {
    const listed = await keys();
    for (const alg of ALGS) {
      const current = listed.filter((k) => k.alg === alg && k.state === 'current');
      const next = listed.filter((k) => k.alg === alg && k.state === 'next');
      expect([current.length, next.length]).toEqual([1, 1]);
      expect(Date.parse(current[0].activates_at!)).toBeLessThanOrEqual(Date.now());
      // The schedule: the next key takes over when the current one retires, once it has been published for JWKS_MAX_AGE.
      expect(next[0].activates_at).toBe(current[0].retires_at);
      expect(Date.parse(next[0].activates_at!)).toBeGreaterThanOrEqual(Date.parse(next[0].created_at) + JWKS_MAX_AGE * 1000);
    }
    for (const key of listed) expect(Object.keys(key).sort()).toEqual(['activates_at', 'alg', 'created_at', 'expires_at', 'kid', 'retires_at', 'state']);
    expect((await publishedKids(as.jwks_uri!)).sort()).toEqual(listed.map((k) => k.kid).sort());
  });

  it('pages with a cursor, visiting every key once', async () => {
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const answer = await adminCall(server.issuer, admin, 'GET', `/keys?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      paged.push(...answer.body.items.map((k: { kid: string }) => k.kid));
      cursor = answer.body.next_cursor;
    } while (cursor);
    expect(paged).toEqual((await keys()).map((k) => k.kid));
  });
});

describe('the JWKS', () => {
  it('is cacheable for JWKS_MAX_AGE, with a strong ETag: If-None-Match answers 304 until the keys change', async () => {
    const first = await fetch(as.jwks_uri!);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe(`public, max-age=${JWKS_MAX_AGE}`);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(((await first.json()) as { keys: unknown[] }).keys.length).toBeGreaterThanOrEqual(8);

    const revalidated = await fetch(as.jwks_uri!, { headers: { 'if-none-match': etag } });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('etag')).toBe(etag);
    expect(await revalidated.text()).toBe('');

    expect((await rotate('?force=true')).status).toBe(204);
    const changed = await fetch(as.jwks_uri!, { headers: { 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    const kids = ((await changed.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining((await keys()).map((k) => k.kid)));
  });
});

describe('POST /admin/keys/rotate', () => {
  it('refuses to promote a next key younger than JWKS_MAX_AGE (409 with Retry-After) unless forced', async () => {
    expect((await rotate('?force=true')).status).toBe(204);
    const before = await keys();

    const refused = await rotate();
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.body.detail).toContain('JWKS_MAX_AGE');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(JWKS_MAX_AGE);
    expect(await keys()).toEqual(before);

    await sleep(retryAfter * 1000 + 100);
    expect((await rotate()).status).toBe(204);
    const after = await keys();
    for (const alg of ALGS) {
      expect(kidOf(after, alg, 'current')).toBe(kidOf(before, alg, 'next'));
      expect(after.find((k) => k.kid === kidOf(before, alg, 'current'))?.state).toBe('retired');
    }
    expect(await auditEntries('key.rotate', kidOf(after, 'RS256', 'current'))).toEqual([
      {
        actor: expect.stringMatching(/^test-admin-/),
        details: expect.objectContaining({ alg: 'RS256', forced: false, retired_kid: kidOf(before, 'RS256', 'current') }),
      },
    ]);
  });
});

describe('POST /admin/keys/{kid}/revoke', () => {
  it('a retired key leaves the JWKS at once and its tokens introspect inactive; the signing keys stay', async () => {
    const token = await issueJwt();
    const kid = kidOfToken(token);
    expect((await rotate('?force=true')).status).toBe(204);
    expect((await keys()).find((k) => k.kid === kid)?.state).toBe('retired');
    expect(await introspectToken(token)).toMatchObject({ active: true });
    await expect(freshResourceServerVerify(token)).resolves.toBeDefined();
    const before = await keys();

    const answer = await revokeKey(kid);
    expect(answer.status).toBe(204);
    expect(await publishedKids(as.jwks_uri!)).not.toContain(kid);
    expect(await introspectToken(token)).toEqual({ active: false });
    await expect(freshResourceServerVerify(token)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(await keys()).toEqual(before.filter((k) => k.kid !== kid));
    expect(await auditEntries('key.revoke', kid)).toEqual([{ actor: expect.stringMatching(/^test-admin-/), details: { alg: 'RS256', state: 'retired' } }]);

    expect((await revokeKey(kid)).status).toBe(409);
    expect((await revokeKey('no-such-kid')).status).toBe(404);
    // A kid that cannot exist (a NUL, too long) is unknown too: a 404, not a 500 from PostgreSQL.
    for (const impossible of ['%00abc', 'x'.repeat(129), '%C3%BC']) expect((await revokeKey(impossible)).status).toBe(404);
  });

  it('the current key: the next one signs at once, on every instance within 2 s, and a new next is published', async () => {
    const second = await startInstance({ JWKS_MAX_AGE: String(JWKS_MAX_AGE) });
    const secondAs = { ...as, token_endpoint: onInstance(as.token_endpoint!, second.port) };
    const token = await issueJwt();
    const revoked = kidOfToken(token);
    const before = await keys();
    expect(kidOf(before, 'RS256', 'current')).toBe(revoked);
    const promoted = kidOf(before, 'RS256', 'next');

    expect((await revokeKey(revoked)).status).toBe(204);
    expect(await publishedKids(as.jwks_uri!)).not.toContain(revoked);
    expect(await introspectToken(token)).toEqual({ active: false });
    expect(kidOfToken(await issueJwt())).toBe(promoted);
    await within(2000, async () => {
      const kids = await publishedKids(onInstance(as.jwks_uri!, second.port));
      return !kids.includes(revoked) && kidOfToken(await issueJwt(secondAs)) === promoted;
    });

    const after = await keys();
    expect(kidOf(after, 'RS256', 'current')).toBe(promoted);
    expect(before.map((k) => k.kid)).not.toContain(kidOf(after, 'RS256', 'next'));
    // The other algorithms are untouched.
    for (const alg of ALGS.filter((a) => a !== 'RS256')) expect(kidOf(after, alg, 'current')).toBe(kidOf(before, alg, 'current'));
    expect(await auditEntries('key.revoke', revoked)).toEqual([
      {
        actor: expect.stringMatching(/^test-admin-/),
        details: { alg: 'RS256', state: 'current', current_kid: promoted, next_kid: kidOf(after, 'RS256', 'next') },
      },
    ]);
  }, 30_000);
});

describe('the periodic pass of every instance', () => {
  it('the janitor removes a retired key once it has expired', async () => {
    const retired = (await keys()).find((k) => k.state === 'retired')!;
    // As if its last token had expired: the key ring drops it at its expires_at, the janitor then deletes it.
    await db.query("update signing_keys set expires_at = now() - interval '1 second' where kid = $1", [retired.kid]);
    await within(2000, async () => !(await publishedKids(as.jwks_uri!)).includes(retired.kid));
    expect((await keys()).map((k) => k.kid)).not.toContain(retired.kid);

    await startInstance(); // its first pass runs as it starts
    await within(5000, async () => (await db.query('select 1 from signing_keys where kid = $1', [retired.kid])).rowCount === 0);
    expect(await auditEntries('key.remove', retired.kid)).toEqual([{ actor: 'system', details: { alg: retired.alg, state: 'retired' } }]);
  }, 30_000);

  it('rotates by itself once the current key has served KEY_ROTATION_INTERVAL and the next one has been published for JWKS_MAX_AGE', async () => {
    const before = await keys();
    const youngestNext = Math.max(...before.filter((k) => k.state === 'next').map((k) => Date.parse(k.created_at)));
    await sleep(Math.max(0, youngestNext + 1000 - Date.now()));

    const scheduler = await startInstance({ KEY_ROTATION_INTERVAL: '1', JWKS_MAX_AGE: '1' });
    await within(5000, async () => {
      const now = await keys();
      return ALGS.every((alg) => kidOf(now, alg, 'current') === kidOf(before, alg, 'next'));
    });
    // It would rotate again at its next pass (60 s later): the rest of the run keeps these keys.
    await scheduler.stop();
    for (const alg of ALGS) {
      expect(await auditEntries('key.rotate', kidOf(before, alg, 'next'))).toEqual([
        { actor: 'system', details: expect.objectContaining({ alg, forced: false }) },
      ]);
    }
    expect(kidOfToken(await issueJwt())).toBe(kidOf(before, 'RS256', 'next'));
  }, 30_000);
});

describe('encryption at rest', () => {
  it('no private key material is stored in clear: only AES-256-GCM ciphertext under the key-encryption key', async () => {
    const kek = keyEncryptionKeyFromBase64(TEST_KEY_ENCRYPTION_KEY);
    const { rows } = await db.query<{ kid: string; kek_id: string; private_jwk_encrypted: string; public_jwk: JWK }>('select * from signing_keys');
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const privateMaterial: string[] = [];
    for (const row of rows) {
      expect(row.kek_id).toBe(kek.id);
      expect(() => JSON.parse(row.private_jwk_encrypted)).toThrow();
      // What the column seals is the private half of the published key.
      const privateJwk = unsealPrivateJwk(row, new Map([[kek.id, kek]]));
      for (const member of ['n', 'e', 'x', 'y', 'crv'] as const) expect(privateJwk[member]).toBe(row.public_jwk[member]);
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) if (privateJwk[member]) privateMaterial.push(privateJwk[member]);
    }
    expect(privateMaterial.length).toBeGreaterThanOrEqual(rows.length);

    const { rows: tables } = await db.query<{ tablename: string }>("select tablename from pg_tables where schemaname = 'public'");
    const dumps: string[] = [];
    for (const { tablename } of tables) dumps.push(...(await db.query<{ row: string }>(`select t::text as row from "${tablename}" t`)).rows.map((r) => r.row));
    const redis = new Redis(process.env.TEST_REDIS_URL!);
    try {
      for (const key of await redis.keys(`${process.env.TEST_RUN_REDIS_PREFIX}*`)) {
        dumps.push(key, (await redis.type(key)) === 'string' ? ((await redis.get(key)) ?? '') : JSON.stringify(await redis.hgetall(key).catch(() => ({}))));
      }
    } finally {
      redis.disconnect();
    }
    dumps.push(server.output(), ...otherServers.map((s) => s.output()));
    const everything = dumps.join('\n');
    expect(privateMaterial.filter((value) => everything.includes(value))).toEqual([]);
  });
});

describe('key-encryption key rotation', () => {
  const rewrap = (current: string, previous: string) =>
    spawnSync(process.execPath, ['dist/scripts/rewrap-keys.js'], {
      env: testServerEnv(server.port, { ...ALL_ALGS, KEY_ENCRYPTION_KEY: current, KEY_ENCRYPTION_KEY_PREVIOUS: previous }),
      encoding: 'utf8',
      timeout: 30_000,
    });
  const kekIds = async () => (await db.query<{ kek_id: string }>('select distinct kek_id from signing_keys')).rows.map((r) => r.kek_id);

  const REDIRECT_URI = 'http://127.0.0.1:9/callback';
  const totp = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
  const totpKekIds = async () => (await db.query<{ kek_id: string }>('select distinct kek_id from totp_factors')).rows.map((r) => r.kek_id);

  /**
   * Follows a request and its redirects on the instance listening on `port` (the issuer's URLs name the
   * first instance: cookies are signed under the key-encryption key, so one browser stays on one), until
   * the redirect to the client.
   */
  async function walkOn(port: number, browser: Browser, url: string, init: RequestOptions = {}): Promise<Page> {
    let page = await browser.request(onInstance(url, port), init);
    while (page.status >= 300 && page.status < 400) {
      const next = new URL(page.headers.get('location')!, page.url).href;
      if (next.startsWith(REDIRECT_URI)) return { ...page, url: next };
      page = await browser.request(onInstance(next, port));
    }
    return page;
  }

  it('`npm run keys:rewrap` reseals every stored key under the new key-encryption key, and servers run on the new one alone', async () => {
    const oldKek = TEST_KEY_ENCRYPTION_KEY;
    // An authenticator app's secret is sealed under the same key: enrolled now, used after the rewrap.
    const registered = await registerClient(server.issuer, admin, {
      client_name: 'Rewrap watcher',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      scope: 'openid',
    });
    const app = { ...registered, redirect_uri: REDIRECT_URI };
    const person = await createAccount(server.issuer, admin);
    expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${person.id}`, { mfa_required: true })).status).toBe(200);
    const enrolling = new Browser(REDIRECT_URI);
    const enrolment = await signIn(enrolling, await enrolling.navigate((await authorizationUrl(as, app)).url), person.email, person.password);
    const secret = /<code class="secret" id="totp-secret">([^<]+)<\/code>/.exec(enrolment.body)?.[1].replace(/\s+/g, '');
    expect(secret).toBeDefined();
    const confirmed = await enrolling.navigate(formAction(enrolment, 'Confirm'), { form: { code: totp(secret!).generate() } });
    expect(confirmed.status).toBe(200);
    expect(await totpKekIds()).toEqual([keyEncryptionKeyFromBase64(oldKek).id]);
    const newKek = randomBytes(32).toString('base64');
    const stored = (await db.query('select kid from signing_keys')).rowCount!;
    // A push credential of revocation events is sealed under the same key, and resealed with them.
    const pushed = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('pushed'), name: 'Pushed', scopes: ['p:read'] });
    const patch = { events_endpoint: 'https://pushed.example.test/events', events_endpoint_token: 'push-credential-0123456789' };
    expect((await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${(pushed as unknown as { id: string }).id}`, patch)).status).toBe(200);
    const pushKekIds = async () =>
      (
        await db.query<{ kek: string }>(
          'select distinct events_endpoint_token_kek_id as kek from resource_servers where events_endpoint_token_sealed is not null',
        )
      ).rows.map((r) => r.kek);
    try {
      const first = rewrap(newKek, oldKek);
      expect({ status: first.status, stdout: first.stdout }).toEqual({ status: 0, stdout: expect.stringContaining(`Rewrapped ${stored} signing key(s)`) });
      expect(first.stdout).toMatch(/Rewrapped [1-9]\d* push credential\(s\)/);
      expect(await kekIds()).toEqual([keyEncryptionKeyFromBase64(newKek).id]);
      expect(await pushKekIds()).toEqual([keyEncryptionKeyFromBase64(newKek).id]);
      expect(first.stdout).toMatch(/Rewrapped [1-9]\d* TOTP secret\(s\)/);
      expect(await totpKekIds()).toEqual([keyEncryptionKeyFromBase64(newKek).id]);
      const again = rewrap(newKek, oldKek);
      expect(again.stdout).toContain('Rewrapped 0 signing key(s)');
      expect(again.stdout).toContain('Rewrapped 0 TOTP secret(s)');
      expect(await auditEntries('key.rewrap', keyEncryptionKeyFromBase64(newKek).id)).toEqual([
        { actor: 'system', details: { rewrapped: stored, from_kek_ids: [keyEncryptionKeyFromBase64(oldKek).id] } },
      ]);

      const resealed = await startInstance({ KEY_ENCRYPTION_KEY: newKek });
      expect((await publishedKids(onInstance(as.jwks_uri!, resealed.port))).sort()).toEqual((await publishedKids(as.jwks_uri!)).sort());
      const token = await issueJwt({ ...as, token_endpoint: onInstance(as.token_endpoint!, resealed.port) });
      await expect(freshResourceServerVerify(token)).resolves.toBeDefined();

      // The person signs in with a code of their app on the instance that has only the new key.
      const browser = new Browser(REDIRECT_URI);
      const begun = await authorizationUrl(as, app);
      const signInPage = await walkOn(resealed.port, browser, begun.url);
      const factorPage = await walkOn(resealed.port, browser, formAction(signInPage), { form: { email: person.email, password: person.password } });
      expect(factorPage.body).toContain('name="code"');
      const nextCode = totp(secret!).generate({ timestamp: Date.now() + 30_000 });
      const callback = await walkOn(resealed.port, browser, formAction(factorPage, 'Continue'), { form: { code: nextCode } });
      expect(callback.url.startsWith(REDIRECT_URI)).toBe(true);
      const onResealed = { ...as, token_endpoint: onInstance(as.token_endpoint!, resealed.port) };
      const params = oauth.validateAuthResponse(onResealed, app, new URL(callback.url), begun.state);
      const exchanged = await oauth.authorizationCodeGrantRequest(
        onResealed,
        app,
        oauth.ClientSecretBasic(app.client_secret),
        params,
        REDIRECT_URI,
        begun.verifier,
        {
          [oauth.allowInsecureRequests]: true,
        },
      );
      const tokens = await oauth.processAuthorizationCodeResponse(onResealed, app, exchanged, { expectedNonce: begun.nonce, requireIdToken: true });
      expect(oauth.getValidatedIdTokenClaims(tokens)).toMatchObject({ sub: expect.any(String), amr: ['pwd', 'otp', 'mfa'] });
      // One that knows only the old key cannot open the keys, and says what to configure.
      await expect(startServer({ issuerPort: server.port })).rejects.toThrow(/KEY_ENCRYPTION_KEY_PREVIOUS/);
    } finally {
      // The rest of the run uses the old key-encryption key.
      expect(rewrap(oldKek, newKek).status).toBe(0);
    }
    expect(await kekIds()).toEqual([keyEncryptionKeyFromBase64(oldKek).id]);
    expect(await pushKekIds()).toEqual([keyEncryptionKeyFromBase64(oldKek).id]);
    expect(await totpKekIds()).toEqual([keyEncryptionKeyFromBase64(oldKek).id]);
  }, 90_000);
});
