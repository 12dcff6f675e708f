/**
 * The account page in a real browser (Debian's chromium, playwright-core): a person signs in to it
 * through the server's own sign-in page, sees where they are signed in (a second browser context is a
 * second session) and which apps hold access, removes an app's access (its opaque token is inactive at
 * introspection at once), ends the other browser's session (that browser is asked to sign in again),
 * changes their password (every other session ends, this one stays), sets up and removes an
 * authenticator app, makes recovery codes, adds a passkey through the browser's WebAuthn call (CDP
 * virtual authenticator), signs in with it alone, and renames and removes it. Screenshots of each state at
 * desktop (1280) and phone (390) widths go to os.tmpdir()/login-screenshots/, for a person to look at.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { addVirtualAuthenticator, launchChromium } from '../helpers/browser.js';
import { totpCodeAt } from '../../src/factors/totp.js';
import { createAccount } from '../helpers/login.js';
import { adminToken, auditTrail, discover, introspect, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const SCREENSHOTS = join(tmpdir(), 'login-screenshots');
const WIDTHS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } } as const;

let server: RunningServer;
let browser: Browser;
let relyingParty: Server;
let callbackUrl: string;
let admin: string;
let orders: { identifier: string; introspection: { client_id: string; client_secret: string } };
let person: { email: string; password: string; id: string };
const problems: string[] = [];

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  console.log(`screenshots of the account page: ${SCREENSHOTS}/account-*.png`);
  relyingParty = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in'));
  await new Promise<void>((resolve) => relyingParty.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(relyingParty.address() as AddressInfo).port}/callback`;
  [server, browser] = await Promise.all([startServer(), launchChromium()]);
  admin = await adminToken(server.issuer);
  orders = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('orders'), name: 'Orders', scopes: ['orders:read'] });
  person = await createAccount(server.issuer, admin, { name: 'Ada Lovelace' });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  relyingParty?.close();
});

/** A browser context of its own (its own cookies: another browser), recording console errors (CSP violations among them). */
async function newBrowser(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: WIDTHS.desktop });
  // A step that does not happen fails with what it waited for, before the test's own timeout.
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  page.on('console', (message) => {
    // A refused form answers 400 or 429 on purpose; chromium reports every such answer as an error.
    if (message.type() === 'error' && !/status of (400|429)/.test(message.text())) problems.push(message.text());
  });
  return { context, page };
}

/** Screenshots of what `page` shows, at desktop and phone widths; the page must fit the phone's width. */
async function screenshots(page: Page, name: string): Promise<void> {
  for (const [width, viewport] of Object.entries(WIDTHS)) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(SCREENSHOTS, `account-${name}-${width}.png`), fullPage: true });
    if (width === 'phone') expect(await page.evaluate('document.documentElement.scrollWidth > window.innerWidth')).toBe(false);
  }
  await page.setViewportSize(WIDTHS.desktop);
}

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Opens the account page, signing in when asked. */
async function openAccountPage(page: Page, password = person.password): Promise<void> {
  await page.goto(`${server.issuer}/account`);
  if ((await page.title()).startsWith('Sign in')) await signIn(page, person.email, password);
  await page.waitForURL(`${server.issuer}/account`);
  expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Your account');
}

const sessionItems = (page: Page) => page.getByRole('region', { name: 'Where you are signed in' }).getByRole('listitem');
const appItems = (page: Page) => page.getByRole('region', { name: 'Apps with access to your account' }).getByRole('listitem');

/** RFC 7662 introspection as the API would. */
const introspectAsApi = async (token: string) =>
  introspect(await discover(server.issuer), orders.introspection.client_id, orders.introspection.client_secret, token);

describe('the account page in a real browser', () => {
  let first: { context: BrowserContext; page: Page };
  let second: { context: BrowserContext; page: Page };
  let appToken: string;
  /** The DevTools session of the first browser's page and its virtual authenticator, which holds the passkey. */
  let cdp: CDPSession;
  let authenticatorId: string;

  it("signs in through the server's own sign-in page, and shows this browser's session", async () => {
    first = await newBrowser();
    await first.page.goto(`${server.issuer}/account`);
    // Not signed in: the page is an app like any other, and sends the person to sign in.
    await expect(first.page.title()).resolves.toMatch(/^Sign in/);
    expect(await first.page.getByText('to continue to Account page').count()).toBe(1);
    await signIn(first.page, person.email, person.password);
    await first.page.waitForURL(`${server.issuer}/account`);
    expect(await first.page.getByText(`Signed in as Ada Lovelace (${person.email})`).count()).toBe(1);
    await expect(sessionItems(first.page).allTextContents()).resolves.toEqual([expect.stringMatching(/This browser\s*current/)]);
    expect(await appItems(first.page).count()).toBe(0);
    // Keyboard focus is visible on the page's buttons.
    await first.page.getByRole('button', { name: 'Sign out' }).first().focus();
    expect(await first.page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none');
    await screenshots(first.page, 'one-session');
  }, 120_000);

  it('lists a second browser as a second session, and the app it allowed with what it may do', async () => {
    second = await newBrowser();
    // The second browser signs in to an external app (consent page), which gets an opaque token.
    const app = await registerClient(server.issuer, admin, {
      client_name: 'Partner shop',
      trust: 'external',
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
      redirect_uris: [callbackUrl],
      resources: [orders.identifier],
      scope: 'openid orders:read',
    });
    const config = await client.discovery(new URL(server.issuer), app.client_id, undefined, client.None(), { execute: [client.allowInsecureRequests] });
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce(), idTokenExpected: true };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callbackUrl,
      scope: 'openid orders:read',
      resource: orders.identifier,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
    });
    await second.page.goto(url.href);
    await signIn(second.page, person.email, person.password);
    await second.page.getByRole('button', { name: 'Allow' }).click();
    await second.page.waitForURL((target) => target.href.startsWith(callbackUrl));
    const tokens = await client.authorizationCodeGrant(config, new URL(second.page.url()), checks);
    appToken = tokens.access_token;
    await expect(introspectAsApi(appToken)).resolves.toMatchObject({ active: true, sub: person.id });

    // Already signed in there: the account page opens without a password.
    await openAccountPage(second.page);
    await expect(sessionItems(second.page).count()).resolves.toBe(2);

    await first.page.reload();
    const sessions = await sessionItems(first.page).allTextContents();
    expect(sessions).toEqual([
      expect.stringMatching(/This browser\s*current/),
      expect.stringMatching(/Another browser[\s\S]*Apps: Partner shop, Account page/),
    ]);
    await expect(appItems(first.page).allTextContents()).resolves.toEqual([expect.stringMatching(/Partner shop\s*Can use: openid, orders:read/)]);
    await screenshots(first.page, 'two-sessions');
  }, 120_000);

  it("removes an app's access: its opaque token is inactive at introspection at once", async () => {
    await appItems(first.page).getByRole('button', { name: 'Remove access' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=app-removed`);
    expect(await first.page.getByRole('status').textContent()).toBe("The app's access is removed.");
    expect(await appItems(first.page).count()).toBe(0);
    await expect(introspectAsApi(appToken)).resolves.toEqual({ active: false });
    await screenshots(first.page, 'app-removed');
  }, 120_000);

  it("ends the other browser's session: that browser is asked to sign in again", async () => {
    await sessionItems(first.page).filter({ hasText: 'Another browser' }).getByRole('button', { name: 'End session' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=session-ended`);
    expect(await first.page.getByRole('status').textContent()).toBe('The session has ended.');
    await expect(sessionItems(first.page).allTextContents()).resolves.toEqual([expect.stringMatching(/This browser/)]);
    await screenshots(first.page, 'session-ended');

    await second.page.reload();
    await expect(second.page.title()).resolves.toMatch(/^Sign in/);
    await screenshots(second.page, 'asked-to-sign-in');
  }, 120_000);

  it('changes the password with the current one: other sessions end, this one stays', async () => {
    // The second browser signs in again: a session for the password change to end.
    await signIn(second.page, person.email, person.password);
    await second.page.waitForURL(`${server.issuer}/account`);

    await first.page.getByRole('link', { name: 'Change password' }).click();
    expect(await first.page.getByRole('heading', { level: 1 }).textContent()).toBe('Change your password');
    await screenshots(first.page, 'password');

    const newPassword = 'correct horse battery staple';
    await first.page.getByLabel('Current password').fill('not the password at all');
    await first.page.getByLabel('New password', { exact: true }).fill(newPassword);
    await first.page.getByLabel('New password again').fill(newPassword);
    await first.page.getByRole('button', { name: 'Change password' }).click();
    expect(await first.page.getByRole('alert').textContent()).toBe('The current password is not right.');
    await screenshots(first.page, 'password-refused');

    await first.page.getByLabel('Current password').fill(person.password);
    await first.page.getByLabel('New password', { exact: true }).fill(newPassword);
    await first.page.getByLabel('New password again').fill(newPassword);
    await first.page.getByRole('button', { name: 'Change password' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=password-changed`);
    expect(await first.page.getByRole('status').textContent()).toBe('Your password is changed. Every other session is signed out.');
    await expect(sessionItems(first.page).allTextContents()).resolves.toEqual([expect.stringMatching(/This browser/)]);
    await screenshots(first.page, 'password-changed');

    await second.page.reload();
    await expect(second.page.title()).resolves.toMatch(/^Sign in/);
    // The old password no longer signs in; the new one does.
    await signIn(second.page, person.email, person.password);
    expect(await second.page.getByRole('alert').textContent()).toBe('The email or password is not right.');
    await signIn(second.page, person.email, newPassword);
    await second.page.waitForURL(`${server.issuer}/account`);
  }, 120_000);

  it('sets up an authenticator app (recovery codes shown once), makes new codes and removes the app: other sessions end, this one stays', async () => {
    await first.page.goto(`${server.issuer}/account`);
    const methods = first.page.getByRole('region', { name: 'Two-step sign-in' });
    await methods.getByRole('link', { name: 'Set up' }).click();
    expect(await first.page.getByRole('heading', { level: 1 }).textContent()).toBe('Set up an authenticator app');
    expect(await first.page.getByRole('img', { name: 'QR code of the authenticator app secret' }).count()).toBe(1);
    await screenshots(first.page, 'totp');
    const secret = (await first.page.locator('code.secret').textContent())!;

    await first.page.getByLabel('Code from the app').fill('000000' === totpCodeAt(secret, Date.now()) ? '111111' : '000000');
    await first.page.getByRole('button', { name: 'Turn on' }).click();
    expect(await first.page.getByRole('alert').textContent()).toBe('That code is not right. Enter the code the app shows now.');
    // The same secret is offered again (the enrolment waits for its first right code).
    expect(await first.page.locator('code.secret').textContent()).toBe(secret);

    await first.page.getByLabel('Code from the app').fill(totpCodeAt(secret, Date.now()));
    await first.page.getByRole('button', { name: 'Turn on' }).click();
    expect(await first.page.getByRole('heading', { level: 1 }).textContent()).toBe('Your recovery codes');
    const firstCodes = await first.page.locator('ol.codes li').allTextContents();
    expect(firstCodes).toHaveLength(10);
    await screenshots(first.page, 'recovery-codes');
    // Shown once: nothing of them on the page afterwards.
    await first.page.getByRole('link', { name: 'I have kept them' }).click();
    expect(await first.page.content()).not.toContain(firstCodes[0]);
    await expect(methods.getByRole('listitem').allTextContents()).resolves.toEqual([
      expect.stringMatching(/Authenticator app\s*Set up/),
      expect.stringMatching(/Recovery codes\s*10 of 10 left/),
    ]);
    await expect(sessionItems(first.page).allTextContents()).resolves.toEqual([expect.stringMatching(/This browser/)]);
    await screenshots(first.page, 'factors');
    // The second browser's session ended with the factor change.
    await second.page.reload();
    await expect(second.page.title()).resolves.toMatch(/^Sign in/);

    await methods.getByRole('button', { name: 'Make new codes' }).click();
    const newCodes = await first.page.locator('ol.codes li').allTextContents();
    expect(newCodes).toHaveLength(10);
    expect(newCodes.filter((code) => firstCodes.includes(code))).toEqual([]);
    await first.page.getByRole('link', { name: 'I have kept them' }).click();

    await methods.getByRole('listitem').filter({ hasText: 'Authenticator app' }).getByRole('button', { name: 'Remove' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=totp-removed`);
    await expect(methods.getByRole('listitem').first().textContent()).resolves.toMatch(/Not set up/);
  }, 120_000);

  it("adds a passkey with the browser's authenticator (CDP virtual authenticator): audited, other sessions end, this one stays", async () => {
    // The second browser signs in again (with the password changed above): a session for the passkey's
    // addition to end.
    await second.page.goto(`${server.issuer}/account`);
    await signIn(second.page, person.email, 'correct horse battery staple');
    await second.page.waitForURL(`${server.issuer}/account`);
    ({ cdp, authenticatorId } = await addVirtualAuthenticator(first.page));
    await first.page.goto(`${server.issuer}/account`);
    const methods = first.page.getByRole('region', { name: 'Two-step sign-in' });
    await methods.getByRole('link', { name: 'Add a passkey' }).click();
    expect(await first.page.getByRole('heading', { level: 1 }).textContent()).toBe('Add a passkey');
    await screenshots(first.page, 'add-passkey');

    // Without the page's anti-forgery token, nothing is added.
    const forged = await first.context.request.post(`${server.issuer}/account/passkeys/add`, { form: { response: '{}' } });
    expect(forged.status()).toBe(403);
    // An answer that is not the authenticator's: refused on the same page, with a new request.
    await first.page.evaluate(`(() => {
      const form = document.getElementById('passkey-form');
      form.elements.response.value = JSON.stringify({ id: 'bogus', rawId: 'bogus', type: 'public-key', response: {} });
      form.submit();
    })()`);
    await first.page.getByRole('alert').filter({ hasText: 'The passkey was refused' }).waitFor();

    await first.page.getByRole('button', { name: 'Add a passkey' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=passkey-added`);
    const passkeys = methods.getByRole('listitem').filter({ hasText: 'passkey' });
    await expect(passkeys.allTextContents()).resolves.toEqual([expect.stringMatching(/Passkey 1\s*Passkey on one device/)]);
    await screenshots(first.page, 'passkey');
    await expect(sessionItems(first.page).allTextContents()).resolves.toEqual([expect.stringMatching(/This browser/)]);
    await second.page.reload();
    await expect(second.page.title()).resolves.toMatch(/^Sign in/);
    const audit = await auditTrail(server.issuer, admin, { target: person.id, action: 'account.factor.passkey.add' });
    expect(audit).toEqual([expect.objectContaining({ actor: `account:${person.id}`, target: person.id })]);

    await passkeys.getByLabel('New name').fill('Work laptop');
    await passkeys.getByRole('button', { name: 'Rename' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=passkey-renamed`);
    await expect(passkeys.allTextContents()).resolves.toEqual([expect.stringMatching(/Work laptop/)]);
  }, 120_000);

  it('signs in again with that passkey alone, then removes it', async () => {
    await first.page.getByRole('button', { name: 'Sign out', exact: true }).last().click();
    await first.page.getByRole('link', { name: 'Sign in again' }).click();
    // Where the browser offers passkeys in the email field's autofill (conditional UI), the virtual
    // authenticator answers at once; else the button asks.
    await Promise.race([
      first.page.waitForURL(`${server.issuer}/account`),
      first.page
        .getByRole('button', { name: 'Use a passkey', exact: true })
        .click({ timeout: 5000 })
        .catch(() => undefined),
    ]);
    await first.page.waitForURL(`${server.issuer}/account`);
    expect(await first.page.getByText(`Signed in as Ada Lovelace (${person.email})`).count()).toBe(1);
    const passkeys = first.page.getByRole('region', { name: 'Two-step sign-in' }).getByRole('listitem').filter({ hasText: 'passkey' });
    await expect(passkeys.allTextContents()).resolves.toEqual([expect.stringMatching(/Work laptop[\s\S]*Last used/)]);
    await passkeys.getByRole('button', { name: 'Remove' }).click();
    await first.page.waitForURL(`${server.issuer}/account?done=passkey-removed`);
    expect(await passkeys.count()).toBe(0);
    // The device forgets it too (else its browser would keep offering it).
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
  }, 120_000);

  it('signs out of this browser, and had no Content-Security-Policy violation anywhere', async () => {
    await first.page.getByRole('button', { name: 'Sign out', exact: true }).last().click();
    await first.page.waitForURL(`${server.issuer}/account/signed-out`);
    expect(await first.page.getByRole('heading', { level: 1 }).textContent()).toBe('You are signed out');
    await screenshots(first.page, 'signed-out');
    await first.page.getByRole('link', { name: 'Sign in again' }).click();
    await expect(first.page.title()).resolves.toMatch(/^Sign in/);
    expect(problems).toEqual([]);
  }, 120_000);
});
