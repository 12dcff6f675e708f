/**
 * Apache in front of this server, as the attack review drove it (issue 11): mod_oauth2 as a resource
 * server (introspection with DPoP, JWT validation against the JWKS) and mod_auth_openidc as a relying
 * party (authorization requests by POST; an app naming its API with `resource`, its API behind
 * mod_oauth2). mod_auth_openidc 2.4.12 as a resource server is left out: it takes only https URLs for
 * OIDCOAuthVerifyJwksUri and OIDCOAuthIntrospectionEndpoint, and these servers are plain HTTP on
 * loopback. Debian's modules, not ours: each test starts its own apache2 (`-X`, one process) on its
 * own loopback port with a generated configuration in a temporary directory, and stops it afterwards.
 * The CI script installs the packages (.ci/run); without them these tests fail.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';
import { createAccount } from '../helpers/login.js';
import { adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { freePort, startServer, type RunningServer } from '../helpers/server.js';

const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** A running apache2 and what it logged. */
interface RunningApache {
  readonly origin: string;
  errorLog(): string;
  /** The error log's lines at level error or worse (mod_auth_openidc, mod_oauth2 and Apache's own). */
  errorLines(): string[];
  stop(): Promise<void>;
}

const running: RunningApache[] = [];

/** Waits until something accepts connections on 127.0.0.1:port, or the process exits. */
async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`apache2 exited with ${child.exitCode}:\n${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`apache2 did not listen on ${port}:\n${log()}`);
}

/**
 * Starts `apache2 -X -f <conf>` with `body` after a minimal server configuration: its own port,
 * PidFile, ErrorLog and DefaultRuntimeDir in a temporary directory, modules from Debian's directory.
 * Fails (never skips) when Apache or a module is not installed.
 */
async function startApache(modules: string[], body: (origin: string, dir: string) => string, port?: number): Promise<RunningApache> {
  for (const file of [
    APACHE,
    ...['mod_mpm_event', 'mod_authn_core', 'mod_authz_core', 'mod_authz_user', 'mod_mime', 'mod_alias', 'mod_dir', ...modules].map((m) => `${MODULES}/${m}.so`),
  ]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: apt-get install apache2 libapache2-mod-auth-openidc libapache2-mod-oauth2 (.ci/run does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'apache-'));
  // The worker drops to www-data when started as root: it must read the documents.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'htdocs', 'protected'), { recursive: true });
  mkdirSync(join(dir, 'htdocs', 'api'), { recursive: true });
  writeFileSync(join(dir, 'htdocs', 'protected', 'index.html'), '<p>the protected page</p>\n');
  writeFileSync(join(dir, 'htdocs', 'api', 'index.html'), '{"orders":[]}\n');
  port ??= await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const asRoot = process.getuid?.() === 0;
  const conf = [
    `ServerRoot "${dir}"`,
    `ServerName 127.0.0.1`,
    `Listen 127.0.0.1:${port}`,
    `PidFile "${dir}/run/apache2.pid"`,
    `DefaultRuntimeDir "${dir}/run"`,
    `Mutex file:${dir}/run default`,
    `ErrorLog "${dir}/error.log"`,
    `LogLevel warn`,
    ...(asRoot ? ['User www-data', 'Group www-data'] : []),
    ...['mod_mpm_event', 'mod_authn_core', 'mod_authz_core', 'mod_authz_user', 'mod_mime', 'mod_alias', 'mod_dir', ...modules].map(
      (m) => `LoadModule ${m.replace(/^mod_/, '')}_module ${MODULES}/${m}.so`,
    ),
    `TypesConfig /etc/mime.types`,
    `DocumentRoot "${dir}/htdocs"`,
    `DirectoryIndex index.html`,
    `<Directory "${dir}/htdocs">`,
    `  Require all granted`,
    `</Directory>`,
    body(origin, dir),
  ].join('\n');
  writeFileSync(join(dir, 'apache2.conf'), `${conf}\n`);
  writeFileSync(join(dir, 'error.log'), '');
  const child = spawn(APACHE, ['-X', '-d', dir, '-f', join(dir, 'apache2.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const errorLog = () => readFileSync(join(dir, 'error.log'), 'utf8');
  try {
    await listening(port, child, () => `${output}\n${errorLog()}`);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const apache: RunningApache = {
    origin,
    errorLog,
    errorLines: () =>
      errorLog()
        .split('\n')
        .filter((line) => /^\[[^\]]+\] \[[\w.]*:(error|crit|alert|emerg)\]/.test(line)),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.push(apache);
  return apache;
}

/** Stops an Apache of a test and forgets it (afterAll stops any a failed test left). */
async function stopApache(apache: RunningApache) {
  running.splice(running.indexOf(apache), 1);
  await apache.stop();
}

let database: ScratchDatabase;
let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let chromium: Browser;

beforeAll(async () => {
  // A database of its own: other files rotate this run's keys, and mod_oauth2's default cache holds no
  // value over 8 KiB, a JWKS it would then fetch again on every request (logging an error each time).
  database = await createScratchDatabase('apache');
  server = await startServer({ env: { DATABASE_URL: database.url } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((apache) => apache.stop()));
  await server?.stop();
  await database?.drop();
});

/** An RFC 9449 proof for `method url` and `token`, signed by `keyPair`. */
async function dpopProof(keyPair: Awaited<ReturnType<typeof oauth.generateKeyPair>>, method: string, url: string, token: string): Promise<string> {
  return new SignJWT({ htm: method, htu: url, ath: createHash('sha256').update(token).digest('base64url'), jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .setIssuedAt()
    .sign(keyPair.privateKey);
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.text() };
};

describe('mod_oauth2 as a resource server', () => {
  it('accepts a DPoP-bound JWT access token by introspection with its proof (cnf found), and refuses it as Bearer', async () => {
    const api = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('apache-dpop'),
      name: 'Apache DPoP API',
      scopes: ['jobs:run'],
    });
    const worker = await registerClient(server.issuer, admin, {
      client_name: 'Apache DPoP worker',
      trust: 'internal',
      scope: 'jobs:run',
      resources: [api.identifier],
    });
    const verify = (extra: string) =>
      `OAuth2TokenVerify introspect ${as.introspection_endpoint} introspect.auth=client_secret_basic&client_id=${encodeURIComponent(api.introspection.client_id)}&client_secret=${encodeURIComponent(api.introspection.client_secret)}${extra}`;
    const apache = await startApache(['mod_oauth2'], (_origin, dir) =>
      [
        // DPoP mode, the token taken from `Authorization: DPoP`.
        `<Location /api>`,
        `  AuthType oauth2`,
        `  ${verify('&type=dpop')}`,
        `  OAuth2AcceptTokenIn header name=Authorization&type=DPoP`,
        `  Require valid-user`,
        `</Location>`,
        // DPoP mode, the token taken from `Authorization: Bearer` (mod_oauth2's default source).
        `Alias /bearer-api "${dir}/htdocs/api"`,
        `<Location /bearer-api>`,
        `  AuthType oauth2`,
        `  ${verify('&type=dpop')}`,
        `  Require valid-user`,
        `</Location>`,
      ].join('\n'),
    );
    try {
      const client: oauth.Client = { client_id: worker.client_id };
      const keyPair = await oauth.generateKeyPair('ES256');
      const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
      const response = await oauth.clientCredentialsGrantRequest(
        as,
        worker,
        oauth.ClientSecretBasic(worker.client_secret),
        new URLSearchParams({ resource: api.identifier, scope: 'jobs:run' }),
        {
          ...insecure,
          DPoP: oauth.DPoP(client, keyPair),
        },
      );
      const tokens = await oauth.processClientCredentialsResponse(as, worker, response);
      expect(tokens.token_type).toBe('dpop');
      expect(tokens.access_token.split('.')).toHaveLength(3);
      // What mod_oauth2 reads: the introspection answer names the key.
      expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, tokens.access_token)).toMatchObject({
        active: true,
        token_type: 'DPoP',
        cnf: { jkt },
      });

      const url = `${apache.origin}/api/`;
      const accepted = await get(url, { authorization: `DPoP ${tokens.access_token}`, dpop: await dpopProof(keyPair, 'GET', url, tokens.access_token) });
      expect({ status: accepted.status, log: apache.errorLines() }).toEqual({ status: 200, log: [] });
      expect(accepted.body).toContain('"orders"');

      // Without a proof, with a proof of another key, and as Bearer: refused.
      expect((await get(url, { authorization: `DPoP ${tokens.access_token}` })).status).toBe(401);
      const stranger = await oauth.generateKeyPair('ES256');
      expect((await get(url, { authorization: `DPoP ${tokens.access_token}`, dpop: await dpopProof(stranger, 'GET', url, tokens.access_token) })).status).toBe(
        401,
      );
      expect((await get(url, { authorization: `Bearer ${tokens.access_token}` })).status).toBe(401);
      // Taken from the Bearer header, found active by introspection, still refused for want of a proof.
      expect((await get(`${apache.origin}/bearer-api/`, { authorization: `Bearer ${tokens.access_token}` })).status).toBe(401);

      // An unbound token with a valid proof of some key is refused: mod_oauth2 really checks cnf.
      const unbound = await issueToken(as, worker.client_id, worker.client_secret, { resource: api.identifier, scope: 'jobs:run' });
      const before = apache.errorLog().length;
      expect((await get(url, { authorization: `DPoP ${unbound.accessToken}`, dpop: await dpopProof(keyPair, 'GET', url, unbound.accessToken) })).status).toBe(
        401,
      );
      expect(apache.errorLog().slice(before)).toContain('no "cnf" claim found');
    } finally {
      await stopApache(apache);
    }
  });
});

describe('JWT access tokens verified against the JWKS by URI (default SIGNING_ALGS)', () => {
  // mod_auth_openidc as a resource server takes only an https JWKS URI (OIDCOAuthVerifyJwksUri); it
  // reads the same JWKS as a relying party below, to check ID tokens.
  it('mod_oauth2 loads the JWKS (cjose takes every key) and accepts a JWT access token', async () => {
    const api = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('apache-jwks'),
      name: 'Apache JWKS API',
      scopes: ['jobs:run'],
    });
    const worker = await registerClient(server.issuer, admin, {
      client_name: 'Apache JWKS worker',
      trust: 'internal',
      scope: 'jobs:run',
      resources: [api.identifier],
    });
    const apache = await startApache(['mod_oauth2'], () =>
      [`<Location /api>`, `  AuthType oauth2`, `  OAuth2TokenVerify jwks_uri ${as.jwks_uri} verify.exp=required`, `  Require valid-user`, `</Location>`].join(
        '\n',
      ),
    );
    try {
      const { accessToken } = await issueToken(as, worker.client_id, worker.client_secret, { resource: api.identifier, scope: 'jobs:run' });
      expect(accessToken.split('.')).toHaveLength(3);
      const answer = await get(`${apache.origin}/api/`, { authorization: `Bearer ${accessToken}` });
      expect({ status: answer.status, log: apache.errorLines() }).toEqual({ status: 200, log: [] });
      expect(answer.body).toContain('"orders"');
      // No JWKS parse error (an Ed25519 key made cjose refuse the whole set) in the log.
      expect(apache.errorLog()).not.toMatch(/cjose|jwks|jwk/i);
      // A token whose signature does not match is refused: the key was really used.
      const [header, payload] = accessToken.split('.');
      const forged = `${header}.${payload}.${randomBytes(256).toString('base64url')}`;
      expect((await get(`${apache.origin}/api/`, { authorization: `Bearer ${forged}` })).status).toBe(401);
      expect(apache.errorLog()).toContain('cjose_jws_verify failed');
    } finally {
      await stopApache(apache);
    }
  });

  // The same setup against a server that publishes Ed25519 keys (SIGNING_ALGS with EdDSA, opt-in): the
  // log lines the default avoids, so the assertion above can fail.
  it('with EdDSA enabled (the control), mod_oauth2 logs a cjose import failure for every Ed25519 key of the JWKS', async () => {
    const edServer = await startServer({ env: { SIGNING_ALGS: 'RS256,PS256,ES256,EdDSA' } });
    try {
      const edAs = await discover(edServer.issuer);
      const edAdmin = await adminToken(edServer.issuer);
      const api = await registerResourceServer(edServer.issuer, edAdmin, {
        identifier: uniqueResource('apache-ed'),
        name: 'Apache Ed API',
        scopes: ['jobs:run'],
      });
      const worker = await registerClient(edServer.issuer, edAdmin, {
        client_name: 'Apache Ed worker',
        trust: 'internal',
        scope: 'jobs:run',
        resources: [api.identifier],
      });
      const jwks = (await (await fetch(edAs.jwks_uri!)).json()) as { keys: Array<{ kty: string }> };
      expect(jwks.keys.map((key) => key.kty)).toContain('OKP');
      const apache = await startApache(['mod_oauth2'], () =>
        [
          `<Location /api>`,
          `  AuthType oauth2`,
          `  OAuth2TokenVerify jwks_uri ${edAs.jwks_uri} verify.exp=required`,
          `  Require valid-user`,
          `</Location>`,
        ].join('\n'),
      );
      try {
        const { accessToken } = await issueToken(edAs, worker.client_id, worker.client_secret, { resource: api.identifier, scope: 'jobs:run' });
        // cjose cannot import an OKP key: mod_oauth2 warns once per Ed25519 key on every JWKS fetch (one
        // fetch here), and verifies with the keys it could import.
        const answer = await get(`${apache.origin}/api/`, { authorization: `Bearer ${accessToken}` });
        expect(answer.status).toBe(200);
        const failures = apache.errorLog().match(/cjose_jwk_import_json failed/g) ?? [];
        expect(failures.length).toBeGreaterThanOrEqual(jwks.keys.filter((key) => key.kty === 'OKP').length);
      } finally {
        await stopApache(apache);
      }
    } finally {
      await edServer.stop();
    }
  }, 30_000);
});

/** mod_auth_openidc as the relying party of a newly registered internal client, with `extra` directives. */
async function relyingParty(clientName: string, extra: string[], client: Record<string, unknown> = {}, modules: string[] = []) {
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/protected/redirect_uri`;
  const registered = await registerClient(server.issuer, admin, {
    client_name: clientName,
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: [redirectUri],
    scope: 'openid profile email',
    ...client,
  });
  return startApache(
    ['mod_auth_openidc', ...modules],
    () =>
      [
        `OIDCProviderMetadataURL ${server.issuer}/.well-known/openid-configuration`,
        `OIDCClientID ${registered.client_id}`,
        `OIDCClientSecret ${registered.client_secret}`,
        `OIDCRedirectURI ${redirectUri}`,
        `OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}`,
        ...extra,
        `<Location /protected>`,
        `  AuthType openid-connect`,
        `  Require valid-user`,
        `</Location>`,
      ].join('\n'),
    port,
  );
}

/**
 * A person in Debian's chromium opens the relying party's protected page, signs in on our page and
 * comes back; the text of the page they end on, and the authorization requests the browser sent.
 */
async function signInThrough(apache: RunningApache, account: { email: string; password: string }) {
  const context = await chromium.newContext();
  try {
    const page = await context.newPage();
    const authorizationRequests: Array<{ method: string; status: number | undefined }> = [];
    page.on('requestfinished', (request) => {
      if (request.url().split('?')[0] === as.authorization_endpoint)
        void request.response().then((response) => authorizationRequests.push({ method: request.method(), status: response?.status() }));
    });
    await page.goto(`${apache.origin}/protected/`);
    await page.getByLabel('Password').waitFor();
    expect(apache.errorLines()).toEqual([]);
    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(account.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${apache.origin}/protected/`);
    const text = (await page.textContent('body')) ?? '';
    // mod_auth_openidc's session: what it holds for the person (OIDCInfoHook), read with its cookie.
    const info = await context.request.get(`${apache.origin}/protected/redirect_uri?info=json`);
    return { text, authorizationRequests, info: info.ok() ? ((await info.json()) as Record<string, unknown>) : { status: info.status() } };
  } finally {
    await context.close();
  }
}

describe('mod_auth_openidc as a relying party', () => {
  beforeAll(async () => {
    chromium = await launchChromium();
  }, 30_000);

  afterAll(async () => {
    await chromium?.close();
  });

  it('with OIDCProviderAuthRequestMethod POST, signs a person in and serves the protected page', async () => {
    const apache = await relyingParty('Apache POST app', ['OIDCProviderAuthRequestMethod POST', 'OIDCScope "openid email"']);
    try {
      const account = await createAccount(server.issuer, admin);
      const { text, authorizationRequests } = await signInThrough(apache, account);
      expect({ text, log: apache.errorLines() }).toEqual({ text: 'the protected page\n', log: [] });
      // The request went as a form POST, answered with a 303 to the same request as GET.
      expect(authorizationRequests).toEqual([
        { method: 'POST', status: 303 },
        { method: 'GET', status: 303 },
      ]);
    } finally {
      await stopApache(apache);
    }
  });

  // Issue 11, item 12. mod_auth_openidc calls userinfo after every sign-in with the access token it got,
  // which is the API's (a JWT); userinfo accepts it for a grant with openid
  // (src/issuer/userinfo-for-api-tokens.ts), so the sign-in logs no error line.
  it('signs in an app that names its API with resource and openid (the default setup), and its API accepts the token it got', async () => {
    const orders = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('apache-orders'),
      name: 'Apache orders',
      scopes: ['orders:read'],
    });
    const apache = await relyingParty(
      'Apache orders app',
      [
        `OIDCScope "openid email orders:read"`,
        `OIDCAuthRequestParams resource=${encodeURIComponent(orders.identifier)}`,
        'OIDCInfoHook access_token',
        // The app's API, behind mod_oauth2 in the same Apache.
        `<Location /api>`,
        `  AuthType oauth2`,
        `  OAuth2TokenVerify jwks_uri ${as.jwks_uri} verify.exp=required`,
        `  Require valid-user`,
        `</Location>`,
      ],
      { resources: [orders.identifier], scope: 'openid profile email orders:read' },
      ['mod_oauth2'],
    );
    try {
      const account = await createAccount(server.issuer, admin);
      const { text, info } = await signInThrough(apache, account);
      expect({ text, log: apache.errorLines() }).toEqual({ text: 'the protected page\n', log: [] });
      // The token mod_auth_openidc got from a code exchange without resource is for the API.
      const token = info.access_token;
      if (typeof token !== 'string') throw new Error(`no access token in mod_auth_openidc's session: ${JSON.stringify(info)}`);
      expect(await introspect(as, orders.introspection.client_id, orders.introspection.client_secret, token)).toMatchObject({
        active: true,
        aud: orders.identifier,
        sub: account.id,
        scope: 'orders:read',
      });
      const api = await get(`${apache.origin}/api/`, { authorization: `Bearer ${token}` });
      expect(api.status).toBe(200);
    } finally {
      await stopApache(apache);
    }
  });
});
