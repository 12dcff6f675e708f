/**
 * Strong sign-in in chromium (playwright-core): an authenticator app set up and used (codes computed
 * here with otpauth), a passkey registered and then used alone through the CDP virtual authenticator,
 * and the step-up a sensitive scope asks for. Screenshots of each new page at desktop (1280) and phone
 * (390) widths go to os.tmpdir()/login-screenshots/, outside the repository.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { addVirtualAuthenticator, launchChromium } from '../helpers/browser.js';
import { createAccount } from '../helpers/login.js';
import { adminCall, adminToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const SCREENSHOTS = join(tmpdir(), 'login-screenshots');
const MFA = 'urn:login:acr:mfa';

let server: RunningServer;
let browser: Browser;
let relyingParty: Server;
let callbackUrl: string;
let admin: string;
let config: client.Configuration;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  relyingParty = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in'));
  await new Promise<void>((resolve) => relyingParty.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(relyingParty.address() as AddressInfo).port}/callback`;
  [server, browser] = await Promise.all([startServer(), launchChromium()]);
  admin = await adminToken(server.issuer);
  const rs = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('vault'),
    name: 'Vault',
    scopes: ['vault:read', 'vault:open'],
    sensitive_scopes: ['vault:open'],
    sensitive_scopes_acr: MFA,
  });
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Vault app',
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: [callbackUrl],
    resources: [rs.identifier],
    scope: 'openid vault:read vault:open',
  });
  config = await client.discovery(new URL(server.issuer), registered.client_id, registered.client_secret, client.ClientSecretBasic(registered.client_secret), {
    execute: [client.allowInsecureRequests],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  relyingParty?.close();
});

async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  return { page, problems };
}

/** Both widths of the page in front of the person, then back to the desktop width. */
async function screenshots(page: Page, name: string): Promise<void> {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function authorize(page: Page, scope: string) {
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
  await page.goto(url.href);
  return checks;
}

async function finish(page: Page, checks: client.AuthorizationCodeGrantChecks) {
  await page.waitForURL((url) => url.href.startsWith(callbackUrl));
  return (await client.authorizationCodeGrant(config, new URL(page.url()), { ...checks, idTokenExpected: true })).claims()!;
}

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const code = (secret: string, offsetMs = 0) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + offsetMs });

describe('in a browser', () => {
  it('steps up for a sensitive scope: the app is set up, recovery codes shown, then used to sign in', async () => {
    const account = await createAccount(server.issuer, admin);
    const { page, problems } = await newPage();

    // A scope that needs nothing more: the password is enough.
    let checks = await authorize(page, 'openid vault:read');
    await signIn(page, account.email, account.password);
    expect((await finish(page, checks)).acr).toBe('urn:login:acr:password');

    // The sensitive scope: straight to setting up the app (no password again).
    checks = await authorize(page, 'openid vault:open');
    await page.getByRole('heading', { name: 'Set up two-step sign-in' }).waitFor();
    await page.getByLabel('Code from the app').waitFor();
    expect(await page.locator('figure.qr svg').count()).toBe(1);
    await screenshots(page, 'totp-enrolment');
    const secret = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '');
    await page.getByLabel('Code from the app').fill(code(secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    expect(await page.locator('ol.codes li').count()).toBe(10);
    await screenshots(page, 'recovery-codes');
    await page.getByRole('button', { name: 'I have saved them, continue' }).click();
    const stepped = await finish(page, checks);
    expect(stepped).toMatchObject({ acr: MFA, amr: ['pwd', 'otp', 'mfa'] });

    // A new browser: password, then a code from the app.
    const fresh = await newPage();
    checks = await authorize(fresh.page, 'openid vault:open');
    await signIn(fresh.page, account.email, account.password);
    await fresh.page.getByRole('heading', { name: 'Confirm it is you' }).waitFor();
    await screenshots(fresh.page, 'second-factor');
    await fresh.page.getByLabel('Code from your authenticator app, or a recovery code').fill(code(secret, 30_000));
    await fresh.page.getByRole('button', { name: 'Continue' }).click();
    expect((await finish(fresh.page, checks)).acr).toBe(MFA);
    expect([...problems, ...fresh.problems]).toEqual([]);
  });

  it('registers a passkey (CDP virtual authenticator) and signs in with it alone', async () => {
    const account = await createAccount(server.issuer, admin);
    expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { mfa_required: true })).status).toBe(200);
    const { page, problems } = await newPage();
    await addVirtualAuthenticator(page);

    let checks = await authorize(page, 'openid vault:read');
    await page.getByRole('button', { name: 'Use a passkey', exact: true }).waitFor();
    await screenshots(page, 'sign-in');
    await signIn(page, account.email, account.password);
    await page.getByRole('button', { name: 'Use a passkey instead' }).click();
    const enrolled = await finish(page, checks);
    expect(enrolled).toMatchObject({ acr: MFA });
    expect(enrolled.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    const factors = await adminCall(server.issuer, admin, 'GET', `/accounts/${account.id}/factors`);
    expect(factors.body.passkeys).toHaveLength(1);

    // The next sign-in (prompt=login: the same browser, whose virtual authenticator holds the passkey).
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
    await page.goto(
      client.buildAuthorizationUrl(config, {
        redirect_uri: callbackUrl,
        scope: 'openid vault:read',
        prompt: 'login',
        code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
        code_challenge_method: 'S256',
        state: checks.expectedState,
        nonce: checks.expectedNonce,
      }).href,
    );
    // Where the browser offers passkeys in the email field's autofill (conditional UI), the virtual
    // authenticator answers at once; else the button asks.
    await Promise.race([
      page.waitForURL((url) => url.href.startsWith(callbackUrl)),
      page
        .getByRole('button', { name: 'Use a passkey', exact: true })
        .click({ timeout: 5000 })
        .catch(() => undefined),
    ]);
    const alone = await finish(page, checks);
    expect(alone).toMatchObject({ sub: account.id, acr: MFA, amr: ['hwk', 'user', 'mfa'] });
    expect(problems).toEqual([]);
  });
});
