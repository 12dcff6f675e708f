/**
 * docs/security.md, "What is never stored or logged": after real traffic, no client secret, password,
 * token value or private key is found in any PostgreSQL table, any Redis key or value, or the server's logs.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import * as oauth from 'oauth4webapi';
import pg from 'pg';
import { authorizationUrl, Browser, createAccount, signIn } from '../helpers/login.js';
import { adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startServer, testAdmin, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
const secrets: string[] = [];

beforeAll(async () => {
  server = await startServer({ env: { LOG_LEVEL: 'debug' } });
  const as = await discover(server.issuer);
  const admin = await adminToken(server.issuer);
  secrets.push(testAdmin(server.issuer).clientSecret, admin);

  const jwtApi = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('scan'),
    name: 'Scan',
    scopes: ['scan:read', 'scan:admin'],
    sensitive_scopes: ['scan:admin'],
  });
  const internal = await registerClient(server.issuer, admin, {
    client_name: 'Scanner',
    trust: 'internal',
    resources: [jwtApi.identifier],
    scope: 'scan:read scan:admin',
  });
  const external = await registerClient(server.issuer, admin, {
    client_name: 'Partner scan',
    trust: 'external',
    resources: [jwtApi.identifier],
    scope: 'scan:read',
  });
  secrets.push(jwtApi.introspection.client_secret, internal.client_secret, external.client_secret);

  const jwt = await issueToken(as, internal.client_id, internal.client_secret, { scope: 'scan:read' });
  const sensitive = await issueToken(as, internal.client_id, internal.client_secret, { scope: 'scan:admin' });
  const opaque = await issueToken(as, external.client_id, external.client_secret, { scope: 'scan:read' });
  const revoked = await issueToken(as, external.client_id, external.client_secret, { scope: 'scan:read' });
  secrets.push(jwt.accessToken, sensitive.accessToken, opaque.accessToken, revoked.accessToken);
  for (const token of [jwt.accessToken, sensitive.accessToken, opaque.accessToken]) {
    await introspect(as, jwtApi.introspection.client_id, jwtApi.introspection.client_secret, token);
  }
  await revoke(as, external.client_id, external.client_secret, revoked.accessToken);
  await revoke(as, internal.client_id, internal.client_secret, jwt.accessToken);

  // A person signs in (after a wrong password) to a public app and refreshes its tokens.
  const redirectUri = 'http://127.0.0.1:9/callback';
  const app = await registerClient(server.issuer, admin, {
    client_name: 'Scan app',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    redirect_uris: [redirectUri],
    resources: [jwtApi.identifier],
    scope: 'openid email offline_access scan:read',
  });
  const person = await createAccount(server.issuer, admin);
  const wrongPassword = 'a wrong password for the scan';
  secrets.push(person.password, wrongPassword);
  const browser = new Browser(redirectUri);
  const client = { client_id: app.client_id, redirect_uri: redirectUri };
  const start = await authorizationUrl(as, client, { scope: 'openid email offline_access', prompt: 'consent' });
  const loginPage = await browser.navigate(start.url);
  await signIn(browser, loginPage, person.email, wrongPassword);
  const callback = new URL((await signIn(browser, await browser.navigate(start.url), person.email, person.password)).url);
  const insecure = { [oauth.allowInsecureRequests]: true } as const;
  const params = oauth.validateAuthResponse(as, client, callback, start.state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, start.verifier, insecure),
    { expectedNonce: start.nonce },
  );
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, {
      ...insecure,
      additionalParameters: { resource: jwtApi.identifier },
    }),
  );
  secrets.push(callback.searchParams.get('code')!, tokens.access_token, tokens.refresh_token!, refreshed.access_token, refreshed.refresh_token!);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const findLeaks = (haystack: string) => secrets.filter((secret) => haystack.includes(secret));

describe('nothing secret at rest', () => {
  it('no PostgreSQL table holds a secret, a token or a private key in clear', async () => {
    const db = new pg.Client({ connectionString: process.env.TEST_RUN_DATABASE_URL });
    await db.connect();
    try {
      const { rows: tables } = await db.query<{ tablename: string }>("select tablename from pg_tables where schemaname = 'public'");
      expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['clients', 'client_secrets', 'signing_keys', 'resource_servers', 'audit_events']));
      for (const { tablename } of tables) {
        const { rows } = await db.query<{ row: string }>(`select t::text as row from "${tablename}" t`);
        const dump = rows.map((r) => r.row).join('\n');
        expect({ table: tablename, leaks: findLeaks(dump) }).toEqual({ table: tablename, leaks: [] });
        // A private JWK has a "d" member; only sealed ciphertext may be stored.
        expect(dump).not.toMatch(/\\?"d\\?"\s*:/);
      }
    } finally {
      await db.end();
    }
  });

  it('no Redis key or value holds a secret or a token in clear', async () => {
    const redis = new Redis(process.env.TEST_REDIS_URL!);
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${process.env.TEST_RUN_REDIS_PREFIX}*`, 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(0);
      const parts: string[] = [];
      for (const key of keys) {
        parts.push(key);
        const type = await redis.type(key);
        if (type === 'string') parts.push((await redis.get(key)) ?? '');
        else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
        else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
      }
      expect(findLeaks(parts.join('\n'))).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('the logs (at debug level) hold no secret or token', () => {
    expect(server.output().length).toBeGreaterThan(0);
    expect(findLeaks(server.output())).toEqual([]);
  });
});
