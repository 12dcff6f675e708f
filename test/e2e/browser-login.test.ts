/**
 * A real browser through the real pages: Debian's chromium, driven by playwright-core, signs a person
 * in; an openid-client relying party (this test, with a small callback server) exchanges the code,
 * validates the ID token and calls userinfo. First for an internal web app (no consent page), then for
 * an external public app through the consent page. Screenshots of the sign-in, consent and error pages
 * are written outside the repository, under os.tmpdir()/login-screenshots/, for a person to look at.
 * And the runnable example of docs/integrating-apps.md (scripts/example-web-app.mjs) signs a person in.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { createAccount } from '../helpers/login.js';
import { adminToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { freePort, startServer, type RunningServer } from '../helpers/server.js';

const SCREENSHOTS = join(tmpdir(), 'login-screenshots');

let server: RunningServer;
let browser: Browser;
let relyingParty: Server;
let callbackUrl: string;
let admin: string;
let resource: string;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  console.log(`screenshots of the pages: ${SCREENSHOTS}`);
  // The relying party's redirect URI: it only has to give the browser a page to land on.
  relyingParty = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in'));
  await new Promise<void>((resolve) => relyingParty.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(relyingParty.address() as AddressInfo).port}/callback`;

  [server, browser] = await Promise.all([startServer(), launchChromium()]);
  admin = await adminToken(server.issuer);
  resource = (await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('orders'), name: 'Orders', scopes: ['orders:read'] })).identifier;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  relyingParty?.close();
});

/** A page that records every CSP violation and console error the browser reports. */
async function newPage(viewport = { width: 1024, height: 768 }): Promise<{ page: Page; problems: string[] }> {
  const page = await (await browser.newContext({ viewport })).newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  return { page, problems };
}

/** The relying party's configuration, from discovery (openid-client over plain HTTP on loopback). */
async function relyingPartyFor(clientId: string, clientSecret?: string): Promise<client.Configuration> {
  return client.discovery(new URL(server.issuer), clientId, clientSecret, clientSecret ? client.ClientSecretBasic(clientSecret) : client.None(), {
    execute: [client.allowInsecureRequests],
  });
}

/** Starts an authorization request as the relying party would; what it keeps for the callback. */
async function startAuthorization(config: client.Configuration, scope: string) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callbackUrl,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
  });
  return { url, checks };
}

/** Fills in the sign-in page with the keyboard, as a person would. */
async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Finishes the flow as the relying party: code exchange, ID token validation, and userinfo when the
 * access token is for userinfo (the request asked for OpenID scopes only; else it is for the API).
 */
async function finish(
  page: Page,
  config: client.Configuration,
  checks: client.AuthorizationCodeGrantChecks,
  options: { userinfo: boolean } = { userinfo: true },
) {
  await page.waitForURL((url) => url.href.startsWith(callbackUrl));
  const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), { ...checks, idTokenExpected: true });
  const claims = tokens.claims()!;
  const userinfo = options.userinfo ? await client.fetchUserInfo(config, tokens.access_token, claims.sub) : undefined;
  return { tokens, claims, userinfo };
}

describe('signing in with a real browser', () => {
  it('an internal web app: sign-in page, no consent, ID token and userinfo', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Grace Hopper' });
    const web = await registerClient(server.issuer, admin, {
      client_name: 'Intranet',
      trust: 'internal',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [callbackUrl],
      resources: [resource],
      scope: 'openid profile email orders:read',
    });
    const config = await relyingPartyFor(web.client_id, web.client_secret);
    const { url, checks } = await startAuthorization(config, 'openid profile email');
    const { page, problems } = await newPage();

    await page.goto(url.href);
    await expect(page.title()).resolves.toMatch(/^Sign in/);
    // Keyboard focus is visible: the focused field has an outline.
    await page.keyboard.press('Tab');
    // Evaluated in the page (a string: the test's TypeScript has no DOM types).
    const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle');
    expect(outline).not.toBe('none');
    await page.screenshot({ path: join(SCREENSHOTS, 'login.png'), fullPage: true });

    await signIn(page, account.email, account.password);
    const { claims, userinfo } = await finish(page, config, checks);
    expect(claims).toMatchObject({ iss: server.issuer, sub: account.id, aud: web.client_id, nonce: checks.expectedNonce });
    expect(userinfo).toEqual({ sub: account.id, email: account.email, email_verified: false, name: 'Grace Hopper' });
    // No Content-Security-Policy violation (stylesheet, form submissions and their redirects allowed).
    expect(problems).toEqual([]);
  });

  it('an external public app: consent page names the app and what it asks for; approving signs in', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Katherine Johnson' });
    const spa = await registerClient(server.issuer, admin, {
      client_name: 'Partner Portal',
      trust: 'external',
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      redirect_uris: [callbackUrl],
      resources: [resource],
      scope: 'openid profile email offline_access orders:read',
    });
    const config = await relyingPartyFor(spa.client_id);
    const { url, checks } = await startAuthorization(config, 'openid profile email orders:read');
    const { page, problems } = await newPage();

    await page.goto(url.href);
    await signIn(page, account.email, account.password);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Allow Partner Portal access?');
    const asks = await page.getByRole('listitem').allTextContents();
    expect(asks).toEqual([
      expect.stringMatching(/Know which account you signed in with/),
      expect.stringMatching(/See your name/),
      expect.stringMatching(/See your email address/),
      expect.stringMatching(/Use Orders for you/),
      // Each of the API's scopes as registered, on a line of its own.
      expect.stringMatching(/^orders:read$/),
    ]);
    await page.screenshot({ path: join(SCREENSHOTS, 'consent.png'), fullPage: true });

    await page.getByRole('button', { name: 'Allow' }).click();
    // It asked for its API's scope: the access token is for the API, and the ID token carries the
    // person's claims (userinfo refuses a token with an audience).
    const { claims } = await finish(page, config, checks, { userinfo: false });
    expect(claims).toMatchObject({ sub: account.id, email: account.email, name: 'Katherine Johnson' });
    expect(problems).toEqual([]);
  });

  it('the pages fit a phone screen, and errors have their own page', async () => {
    const { page } = await newPage({ width: 375, height: 740 });
    const url = new URL('/auth', server.issuer);
    url.search = new URLSearchParams({ client_id: 'no-such-app', response_type: 'code', scope: 'openid', redirect_uri: callbackUrl }).toString();
    const response = await page.goto(url.href);
    expect(response!.status()).toBe(400);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Something went wrong');
    await page.screenshot({ path: join(SCREENSHOTS, 'error.png'), fullPage: true });
    const overflows = await page.evaluate('document.documentElement.scrollWidth > window.innerWidth');
    expect(overflows).toBe(false);
  });

  it("the README's example web app signs a person in", async () => {
    const port = await freePort();
    const account = await createAccount(server.issuer, admin, { name: 'Example Person' });
    const app = await registerClient(server.issuer, admin, {
      client_name: 'Example web app',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [`http://localhost:${port}/callback`],
      resources: [resource],
      scope: 'openid profile email',
    });
    const example = spawn(process.execPath, ['scripts/example-web-app.mjs'], {
      env: { PATH: process.env.PATH ?? '', ISSUER: server.issuer, CLIENT_ID: app.client_id, CLIENT_SECRET: app.client_secret, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        example.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('Example web app on') && resolve());
        example.once('exit', (code) => reject(new Error(`the example exited with ${code}`)));
      });
      const { page } = await newPage();
      await page.goto(`http://localhost:${port}/`);
      await signIn(page, account.email, account.password);
      await page.waitForURL((url) => url.pathname === '/callback');
      const shown = JSON.parse((await page.textContent('body'))!) as { id_token_claims: { sub: string }; userinfo: { email: string } };
      expect(shown.id_token_claims.sub).toBe(account.id);
      expect(shown.userinfo.email).toBe(account.email);
    } finally {
      example.kill();
    }
  });
});
