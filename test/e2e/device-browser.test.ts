/**
 * The device flow with a real browser: an openid-client device (this test) asks for a code and keeps
 * polling, while Debian's chromium, driven by playwright-core, opens the verification page, types the
 * code, confirms the device, signs in and consents. No CSP violation on the way; a screenshot of each
 * device page goes to os.tmpdir()/login-screenshots/ for a person to look at.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { createAccount } from '../helpers/login.js';
import { adminToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const SCREENSHOTS = join(tmpdir(), 'login-screenshots');

let server: RunningServer;
let browser: Browser;
let admin: string;
let resource: string;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  [server, browser] = await Promise.all([startServer(), launchChromium()]);
  admin = await adminToken(server.issuer);
  resource = (await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('tv'), name: 'TV Guide', scopes: ['guide:read'] })).identifier;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('device flow with a real browser', () => {
  it('the device polls while the person enters the code, signs in and approves', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Hedy Lamarr' });
    const tv = await registerClient(server.issuer, admin, {
      client_name: 'Living Room TV',
      trust: 'external',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
      token_endpoint_auth_method: 'none',
      resources: [resource],
      scope: 'guide:read',
    });
    const config = await client.discovery(new URL(server.issuer), tv.client_id, undefined, client.None(), { execute: [client.allowInsecureRequests] });
    const device = await client.initiateDeviceAuthorization(config, { scope: 'guide:read', resource });
    // The device polls on its own schedule (the server's interval, slower after slow_down).
    const polling = client.pollDeviceAuthorizationGrant(config, device);

    const page = await (await browser.newContext({ viewport: { width: 375, height: 740 } })).newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(device.verification_uri);
    await expect(page.title()).resolves.toMatch(/^Connect a device/);
    await page.screenshot({ path: join(SCREENSHOTS, 'device-code.png'), fullPage: true });
    await page.getByLabel('Code').fill(device.user_code.toLowerCase());
    await page.getByRole('button', { name: 'Continue' }).click();

    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Connect Living Room TV?');
    expect(await page.locator('code.user-code').textContent()).toBe(device.user_code);
    expect(await page.getByRole('listitem').allTextContents()).toEqual(['guide:read']);
    await page.screenshot({ path: join(SCREENSHOTS, 'device-confirm.png'), fullPage: true });
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(account.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Allow Living Room TV access?');
    await page.getByRole('button', { name: 'Allow' }).click();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Device connected');
    await page.screenshot({ path: join(SCREENSHOTS, 'device-done.png'), fullPage: true });
    const overflows = await page.evaluate('document.documentElement.scrollWidth > window.innerWidth');
    expect(overflows).toBe(false);

    const tokens = await polling;
    expect(tokens.access_token.split('.')).toHaveLength(1);
    expect(tokens.scope).toBe('guide:read');
    expect(problems).toEqual([]);
    // The page the person typed into has nothing the device could read: only the device gets the token.
    expect(await page.content()).not.toContain(tokens.access_token);
  }, 60_000);
});
