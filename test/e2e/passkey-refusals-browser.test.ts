/**
 * Passkeys refused (docs/strong-sign-in.md, "Abuse"), with real assertions made by chromium's CDP
 * virtual authenticator: the same assertion posted twice, an assertion made for another sign-in's
 * challenge, a cloned authenticator (its counter behind the stored one), and a page on another origin
 * (127.0.0.1 instead of the issuer's localhost), whose browser will not use the passkey at all.
 * Assertions are caught on their way to the server with playwright's request routing, then posted
 * again from the same browser context (same cookies) as an attacker holding them would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import pg from 'pg';
import type { Browser, Page, Route } from 'playwright-core';
import { addVirtualAuthenticator, launchChromium } from '../helpers/browser.js';
import { createAccount } from '../helpers/login.js';
import { adminCall, adminToken, registerClient } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const PASSKEY_POST = /\/interaction\/[^/]+\/passkey$/;

let server: RunningServer;
let browser: Browser;
let relyingParty: Server;
let callbackUrl: string;
let config: client.Configuration;
let db: pg.Client;
let account: { id: string; email: string; password: string };
/** The page whose virtual authenticator holds the account's passkey. */
let page: Page;

beforeAll(async () => {
  relyingParty = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in'));
  await new Promise<void>((resolve) => relyingParty.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(relyingParty.address() as AddressInfo).port}/callback`;
  [server, browser] = await Promise.all([startServer(), launchChromium()]);
  const admin = await adminToken(server.issuer);
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Passkey watcher',
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: [callbackUrl],
    scope: 'openid',
  });
  config = await client.discovery(new URL(server.issuer), registered.client_id, registered.client_secret, client.ClientSecretBasic(registered.client_secret), {
    execute: [client.allowInsecureRequests],
  });
  db = new pg.Client({ connectionString: process.env.TEST_RUN_DATABASE_URL });
  await db.connect();

  // An account with a passkey, registered at its first sign-in (it must use MFA).
  account = await createAccount(server.issuer, admin);
  expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { mfa_required: true })).status).toBe(200);
  const context = await browser.newContext();
  context.setDefaultTimeout(30_000);
  page = await context.newPage();
  await addVirtualAuthenticator(page);
  const checks = await authorize(page);
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Use a passkey instead' }).click();
  expect((await finish(page, checks)).sub).toBe(account.id);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await db?.end();
  relyingParty?.close();
});

/** A new sign-in that asks for the person again (prompt=login), from the issuer's `host` (localhost unless told). */
async function authorizationRequest(host?: string): Promise<{ url: URL; checks: client.AuthorizationCodeGrantChecks }> {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callbackUrl,
    scope: 'openid',
    prompt: 'login',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
  });
  if (host) url.hostname = host;
  return { url, checks };
}

/** Opens a new sign-in in `on`. */
async function authorize(on: Page, host?: string): Promise<client.AuthorizationCodeGrantChecks> {
  const { url, checks } = await authorizationRequest(host);
  await on.goto(url.href);
  return checks;
}

async function finish(on: Page, checks: client.AuthorizationCodeGrantChecks) {
  await on.waitForURL((url) => url.href.startsWith(callbackUrl));
  return (await client.authorizationCodeGrant(config, new URL(on.url()), { ...checks, idTokenExpected: true })).claims()!;
}

/**
 * Uses the passkey on the sign-in page in front of the person. Where the browser offers passkeys in
 * the email field's autofill (conditional UI), the virtual authenticator answers at once; else the
 * button asks.
 */
async function usePasskey(on: Page): Promise<void> {
  await on
    .getByRole('button', { name: 'Use a passkey', exact: true })
    .click({ timeout: 5000 })
    .catch(() => undefined);
}

/** The passkey answers the browser posts from now on: let through to the server, or stopped on the way. */
async function catchAssertions(on: Page, letThrough: boolean): Promise<{ url: string; body: string }[]> {
  const caught: { url: string; body: string }[] = [];
  await on.route(PASSKEY_POST, async (route: Route) => {
    caught.push({ url: route.request().url(), body: route.request().postData() ?? '' });
    await (letThrough ? route.continue() : route.abort());
  });
  return caught;
}

const signCount = async () =>
  Number((await db.query<{ sign_count: string }>('select sign_count from passkeys where account_id = $1', [account.id])).rows[0].sign_count);

/** Posts a caught answer again from the same browser (its cookies), without following redirects. */
const postAgain = (on: Page, url: string, body: string) =>
  on.context().request.post(url, { data: body, headers: { 'content-type': 'application/x-www-form-urlencoded' }, maxRedirects: 0 });

/** The log lines of refused factors, with their reasons. */
const refusals = () =>
  server
    .output()
    .split('\n')
    .filter((line) => line.includes('second factor refused'))
    .map((line) => JSON.parse(line) as { reason: string; accountId?: string; factor: string });

/** The refusals logged after the first `before`, once there is one: the log line reaches the pipe a moment after the page. */
async function refusalsSince(before: number): Promise<ReturnType<typeof refusals>> {
  for (let waited = 0; refusals().length === before && waited < 40; waited++) await new Promise((resolve) => setTimeout(resolve, 50));
  return refusals().slice(before);
}

describe('a passkey is refused', () => {
  it('when the same assertion is posted a second time: the first signs in, the second does not', async () => {
    const caught = await catchAssertions(page, true);
    const checks = await authorize(page);
    await usePasskey(page);
    expect((await finish(page, checks)).sub).toBe(account.id);
    await page.unrouteAll();
    expect(caught).toHaveLength(1);
    const countAfterUse = await signCount();

    const replayed = await postAgain(page, caught[0].url, caught[0].body);
    expect(replayed.status()).toBeGreaterThanOrEqual(400);
    expect(replayed.status()).toBeLessThan(500);
    expect(replayed.headers().location).toBeUndefined();
    expect(await signCount()).toBe(countAfterUse);
  }, 60_000);

  it("when the assertion answered another sign-in's challenge", async () => {
    // Sign-in A: the browser's answer to A's challenge is caught before it reaches the server.
    const caught = await catchAssertions(page, false);
    await authorize(page);
    await usePasskey(page);
    for (let waited = 0; caught.length === 0 && waited < 100; waited++) await page.waitForTimeout(100);
    expect(caught.length).toBeGreaterThan(0);
    const fromA = caught[0];
    await page.unrouteAll();
    // Sign-in B, in the same browser (its cookies), fetched without running the page's script: A's answer is posted to B.
    const pageOfB = await page.context().request.get((await authorizationRequest()).url.href);
    const actionOfB = new URL(/id="passkey-form" method="post" action="([^"]+)"/.exec(await pageOfB.text())![1].replace(/&#38;/g, '&'), pageOfB.url()).href;
    expect(actionOfB).not.toBe(fromA.url);
    const before = refusals().length;
    const crossed = await postAgain(page, actionOfB, fromA.body);
    expect(crossed.status()).toBe(400);
    expect(await crossed.text()).toContain('The passkey was refused: the passkey answered an old or foreign request.');
    expect(await refusalsSince(before)).toEqual([expect.objectContaining({ reason: 'wrong_challenge', factor: 'passkey' })]);
  }, 60_000);

  it('when the authenticator looks cloned (the stored counter is ahead of it): a clear page and a log line', async () => {
    // What a copy's use leaves behind: the original has been used further than this authenticator.
    await db.query('update passkeys set sign_count = 1000000 where account_id = $1', [account.id]);
    const before = refusals().length;
    await authorize(page);
    await usePasskey(page);
    await page.getByText('The passkey was refused: the passkey looks copied (its counter went back).').waitFor();
    expect(page.url().startsWith(callbackUrl)).toBe(false);
    expect(await refusalsSince(before)).toEqual([expect.objectContaining({ reason: 'cloned_authenticator', factor: 'passkey' })]);
    expect(await signCount()).toBe(1_000_000);
  }, 60_000);

  it('on a page of another origin (127.0.0.1, not the issuer localhost): the browser will not use the passkey for it', async () => {
    const caught = await catchAssertions(page, true);
    await authorize(page, '127.0.0.1');
    expect(new URL(page.url()).hostname).toBe('127.0.0.1');
    await page.getByRole('button', { name: 'Use a passkey', exact: true }).click();
    // The page's RP ID (localhost) is not this origin's: the browser refuses before anything is sent.
    await page.getByText(/The passkey did not work \(SecurityError\)/).waitFor();
    expect(caught).toEqual([]);
    await page.unrouteAll();
  }, 60_000);
});
