/**
 * Strong sign-in end to end (docs/strong-sign-in.md), with a browser-like fetch client on the pages and
 * oauth4webapi as the relying party: enrolling an authenticator app when the account must use MFA,
 * signing in with a code or a recovery code (each once), `acr`/`amr`/`auth_time` in ID tokens, JWT
 * access tokens and opaque ones and in both introspection answers, `acr_values`, an essential `acr`
 * claim and `max_age` honoured (the person steps up or signs in again, never gets less), a resource
 * server's acr policy, and the admin API (list, reset, require MFA).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { Secret, TOTP } from 'otpauth';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type Page, type TestClient } from '../helpers/login.js';
import {
  adminCall,
  adminToken,
  auditTrail,
  discover,
  findResourceServer,
  introspect,
  registerClient,
  registerResourceServer,
  uniqueResource,
} from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const PASSWORD = 'urn:login:acr:password';
const MFA = 'urn:login:acr:mfa';

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
let ledger: { id: string; identifier: string; introspection: { client_id: string; client_secret: string } };
let app: TestClient & { client_secret: string };

beforeAll(async () => {
  server = await startServer({ env: { TRUST_PROXY: 'true' } });
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  ledger = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('ledger'),
    name: 'Ledger',
    scopes: ['ledger:read', 'ledger:write', 'ledger:close'],
    sensitive_scopes: ['ledger:write', 'ledger:close'],
  });
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Books',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [ledger.identifier],
    scope: 'openid email offline_access ledger:read ledger:write ledger:close',
  });
  app = { ...registered, redirect_uri: REDIRECT_URI };
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const totp = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
/** The code of the next 30-second step: accepted (one step of drift) and after any code used so far. */
const nextCode = (secret: string) => totp(secret).generate({ timestamp: Date.now() + 30_000 });
const unescape = (text: string) => text.replace(/&#38;/g, '&').replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));

/** Starts an authorization request and returns the first page (or the redirect to the client). */
async function start(browser: Browser, params: Record<string, string> = {}) {
  const begun = await authorizationUrl(as, app, { scope: 'openid ledger:read', ...params });
  return { begun, page: await browser.navigate(begun.url) };
}

/** The enrolment page's secret (shown as text) and URI. */
function enrolmentOf(page: Page): { secret: string; uri: string } {
  const secret = /<code class="secret" id="totp-secret">([^<]+)<\/code>/.exec(page.body)?.[1].replace(/\s+/g, '');
  const uri = /<code id="totp-uri">([^<]+)<\/code>/.exec(page.body)?.[1];
  if (!secret || !uri) throw new Error(`not the enrolment page (${page.status}):\n${page.body}`);
  return { secret, uri: unescape(uri) };
}

/** Enrols an app on the enrolment page; the secret, the recovery codes, and the page after "continue". */
async function enrol(browser: Browser, page: Page) {
  const { secret } = enrolmentOf(page);
  const codesPage = await browser.navigate(formAction(page, 'Confirm'), { form: { code: totp(secret).generate() } });
  expect(codesPage.status).toBe(200);
  const codes = [...codesPage.body.matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)].map((m) => m[1]);
  const after = await browser.navigate(formAction(codesPage), { form: {} });
  return { secret, codes, after };
}

async function exchange(begun: { verifier: string; state: string; nonce: string }, callback: Page, resource?: string) {
  expect(callback.url.startsWith(REDIRECT_URI)).toBe(true);
  const params = oauth.validateAuthResponse(as, app, new URL(callback.url), begun.state);
  const response = await oauth.authorizationCodeGrantRequest(as, app, oauth.ClientSecretBasic(app.client_secret), params, REDIRECT_URI, begun.verifier, {
    ...insecure,
    ...(resource ? { additionalParameters: { resource } } : {}),
  });
  const tokens = await oauth.processAuthorizationCodeResponse(as, app, response, { expectedNonce: begun.nonce, requireIdToken: true });
  return { tokens, idToken: oauth.getValidatedIdTokenClaims(tokens)! };
}

const introspectAtLedger = (token: string) => introspect(as, ledger.introspection.client_id, ledger.introspection.client_secret, token);
const isJwt = (token: string) => token.split('.').length === 3;

describe('discovery', () => {
  it('lists the acr levels weakest first and supports the claims parameter', () => {
    expect(as.acr_values_supported).toEqual([PASSWORD, MFA]);
    expect(as.claims_parameter_supported).toBe(true);
  });
});

describe('a password alone', () => {
  it('is reported as pwd at the password level in the ID token, the JWT access token and its introspection', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { begun, page } = await start(browser);
    const { tokens, idToken } = await exchange(begun, await signIn(browser, page, account.email, account.password));
    expect(idToken).toMatchObject({ acr: PASSWORD, amr: ['pwd'] });
    expect(typeof idToken.auth_time).toBe('number');

    expect(isJwt(tokens.access_token)).toBe(true);
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(as.jwks_uri!)), { issuer: server.issuer });
    expect(payload).toMatchObject({ acr: PASSWORD, amr: ['pwd'], auth_time: idToken.auth_time });
    expect(await introspectAtLedger(tokens.access_token)).toMatchObject({ active: true, acr: PASSWORD, amr: ['pwd'], auth_time: idToken.auth_time });
  });
});

describe('an account that must use MFA', () => {
  let account: Awaited<ReturnType<typeof createAccount>>;
  let secret: string;
  let recoveryCodes: string[];

  it('enrols an authenticator app at the next sign-in: QR code, secret as text, otpauth URI, then recovery codes once', async () => {
    account = await createAccount(server.issuer, admin);
    const patched = await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { mfa_required: true });
    expect(patched.status).toBe(200);
    expect(patched.body.mfa_required).toBe(true);

    const browser = new Browser(REDIRECT_URI);
    const { begun, page } = await start(browser, { scope: 'openid ledger:write' });
    const enrolment = await signIn(browser, page, account.email, account.password);
    expect(enrolment.status).toBe(200);
    expect(enrolment.body).toContain('<svg');
    expect(enrolment.body).toContain('autocomplete="one-time-code"');
    expect(enrolment.headers.get('content-security-policy')).toMatch(/script-src 'sha256-/);
    const shown = enrolmentOf(enrolment);
    expect(shown.uri).toMatch(/^otpauth:\/\/totp\//);
    expect(new URL(shown.uri).searchParams.get('secret')).toBe(shown.secret);

    // A wrong code: the same page again, with the reason.
    const wrong = await browser.navigate(formAction(enrolment, 'Confirm'), { form: { code: '000000' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain('That code is not right');

    const enrolled = await enrol(browser, wrong);
    ({ secret, codes: recoveryCodes } = enrolled);
    expect(recoveryCodes).toHaveLength(10);
    const { tokens, idToken } = await exchange(begun, enrolled.after, ledger.identifier);
    expect(idToken).toMatchObject({ acr: MFA, amr: ['pwd', 'otp', 'mfa'] });
    // A sensitive scope: an opaque token, whose introspection carries the same facts.
    expect(isJwt(tokens.access_token)).toBe(false);
    expect(await introspectAtLedger(tokens.access_token)).toMatchObject({ active: true, acr: MFA, amr: ['pwd', 'otp', 'mfa'], auth_time: idToken.auth_time });

    const factors = await adminCall(server.issuer, admin, 'GET', `/accounts/${account.id}/factors`);
    expect(factors.body).toMatchObject({ mfa_required: true, totp: { confirmed: true }, passkeys: [], recovery_codes: { remaining: 10, total: 10 } });
    expect(JSON.stringify(factors.body)).not.toContain(secret);
    const audit = await auditTrail(server.issuer, admin, { target: account.id });
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['account.update', 'account.factor.totp.add']));
  });

  it('signs in with password and a code from the app; the same code is refused the second time', async () => {
    const code = nextCode(secret);
    const first = new Browser(REDIRECT_URI);
    const { begun, page } = await start(first);
    const factorPage = await signIn(first, page, account.email, account.password);
    expect(factorPage.status).toBe(200);
    expect(factorPage.body).toContain('name="code"');
    expect(factorPage.body).toContain('autocomplete="one-time-code"');
    const { idToken } = await exchange(begun, await first.navigate(formAction(factorPage, 'Continue'), { form: { code } }));
    expect(idToken).toMatchObject({ acr: MFA, amr: ['pwd', 'otp', 'mfa'] });

    const second = new Browser(REDIRECT_URI);
    const again = await signIn(second, (await start(second)).page, account.email, account.password);
    const replayed = await second.navigate(formAction(again, 'Continue'), { form: { code } });
    expect(replayed.status).toBe(400);
    expect(replayed.body).toContain('already used');
  });

  it('signs in with a recovery code, once', async () => {
    const browser = new Browser(REDIRECT_URI);
    const { begun, page } = await start(browser);
    const factorPage = await signIn(browser, page, account.email, account.password);
    const { idToken } = await exchange(begun, await browser.navigate(formAction(factorPage, 'Continue'), { form: { code: recoveryCodes[0] } }));
    expect(idToken.acr).toBe(MFA);

    const other = new Browser(REDIRECT_URI);
    const otherFactorPage = await signIn(other, (await start(other)).page, account.email, account.password);
    expect((await other.navigate(formAction(otherFactorPage, 'Continue'), { form: { code: recoveryCodes[0] } })).status).toBe(400);
    const factors = await adminCall(server.issuer, admin, 'GET', `/accounts/${account.id}/factors`);
    expect(factors.body.recovery_codes).toMatchObject({ remaining: 9 });
  });

  it('is throttled like a password: wrong codes are counted, then refused with Retry-After', async () => {
    const browser = new Browser(REDIRECT_URI);
    const factorPage = await signIn(browser, (await start(browser)).page, account.email, account.password);
    // Ten failures in a row are let through (the test before left one: a used recovery code), then a pause.
    const statuses: number[] = [];
    while (statuses.at(-1) !== 429 && statuses.length < 12) {
      statuses.push((await browser.navigate(formAction(factorPage, 'Continue'), { form: { code: '123456' } })).status);
    }
    expect(statuses.filter((status) => status === 400)).toHaveLength(9);
    expect(statuses.at(-1)).toBe(429);
    const refused = await browser.navigate(formAction(factorPage, 'Continue'), { form: { code: nextCode(secret) } });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('an administrator resets the factors: audited, signed out, and the person enrols again', async () => {
    expect((await adminCall(server.issuer, admin, 'DELETE', `/accounts/${account.id}/factors`)).status).toBe(204);
    const factors = await adminCall(server.issuer, admin, 'GET', `/accounts/${account.id}/factors`);
    expect(factors.body).toEqual({ mfa_required: true, totp: null, passkeys: [], recovery_codes: null });
    const browser = new Browser(REDIRECT_URI);
    const next = await signIn(browser, (await start(browser)).page, account.email, account.password);
    expect(enrolmentOf(next).secret).not.toBe(secret);
    expect((await adminCall(server.issuer, admin, 'DELETE', '/accounts/00000000-0000-4000-8000-000000000000/factors')).status).toBe(404);
  });
});

describe('requests that ask for more', () => {
  it('acr_values at the MFA level: a password-only session steps up without the password again', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const first = await start(browser);
    const weak = await exchange(first.begun, await signIn(browser, first.page, account.email, account.password));
    expect(weak.idToken.acr).toBe(PASSWORD);

    // The same browser (its session), a request for the MFA level: straight to the second step.
    const { begun, page } = await start(browser, { acr_values: MFA });
    expect(page.body).not.toContain('name="password"');
    const { after } = await enrol(browser, page);
    const { idToken } = await exchange(begun, after);
    expect(idToken).toMatchObject({ acr: MFA, amr: ['pwd', 'otp', 'mfa'] });

    // Now strong enough: no page at all.
    const strong = await start(browser, { acr_values: MFA });
    expect(strong.page.url.startsWith(REDIRECT_URI)).toBe(true);
  });

  it('an essential acr claim at the MFA level is honoured like acr_values', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const claims = JSON.stringify({ id_token: { acr: { essential: true, values: [MFA] } } });
    const { begun, page } = await start(browser, { claims });
    const { after } = await enrol(browser, await signIn(browser, page, account.email, account.password));
    expect((await exchange(begun, after)).idToken.acr).toBe(MFA);
  });

  it('acr_values listing both levels asks for the weaker: a password is enough', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const { begun, page } = await start(browser, { acr_values: `${MFA} ${PASSWORD}` });
    expect((await exchange(begun, await signIn(browser, page, account.email, account.password))).idToken.acr).toBe(PASSWORD);
  });

  it('max_age: a sign-in older than asked is made again, and auth_time says when', async () => {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const first = await start(browser);
    const before = await exchange(first.begun, await signIn(browser, first.page, account.email, account.password));
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const { begun, page } = await start(browser, { max_age: '1' });
    expect(page.body).toContain('name="password"');
    const { idToken } = await exchange(begun, await signIn(browser, page, account.email, account.password));
    expect(idToken.auth_time).toBeGreaterThan(before.idToken.auth_time as number);
  });
});

describe("a resource server's acr policy", () => {
  it('a sensitive scope needs the MFA level and a recent sign-in; other scopes do not', async () => {
    const rs = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('payroll'),
      name: 'Payroll',
      scopes: ['payroll:read', 'payroll:pay'],
      sensitive_scopes: ['payroll:pay'],
      sensitive_scopes_acr: MFA,
      sensitive_scopes_acr_max_age: 600,
    });
    expect(rs).toMatchObject({ required_acr: null, sensitive_scopes_acr: MFA, sensitive_scopes_acr_max_age: 600 });
    const client = await registerClient(server.issuer, admin, {
      client_name: 'Payroll app',
      trust: 'internal',
      grant_types: ['authorization_code'],
      redirect_uris: [REDIRECT_URI],
      resources: [rs.identifier],
      scope: 'openid payroll:read payroll:pay',
    });
    const payroll = { ...client, redirect_uri: REDIRECT_URI };
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);

    const reading = await authorizationUrl(as, payroll, { scope: 'openid payroll:read' });
    expect((await signIn(browser, await browser.navigate(reading.url), account.email, account.password)).url.startsWith(REDIRECT_URI)).toBe(true);

    const paying = await authorizationUrl(as, payroll, { scope: 'openid payroll:pay' });
    const stepUp = await browser.navigate(paying.url);
    expect(enrolmentOf(stepUp).secret).toMatch(/^[A-Z2-7]+$/);

    const invalid = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${rs.id}`, { required_acr: 'urn:example:gold' });
    expect(invalid.status).toBe(422);
  });

  it("a code exchange or refresh naming another granted resource meets that resource server's level, or is refused", async () => {
    const notes = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('notes'), name: 'Notes', scopes: ['notes:read'] });
    const vault = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('vault'),
      name: 'Vault',
      scopes: ['vault:read'],
      required_acr: MFA,
    });
    const registered = await registerClient(server.issuer, admin, {
      client_name: 'Notes and vault',
      trust: 'internal',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT_URI],
      resources: [notes.identifier, vault.identifier],
      scope: 'openid offline_access notes:read vault:read',
    });
    const both = { ...registered, redirect_uri: REDIRECT_URI };
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    /** A code for both resources (the sign-in is read against the first, which asks for nothing more than a password). */
    const codeForBoth = async (signInFirst: boolean) => {
      const begun = await authorizationUrl(as, both, { scope: 'openid offline_access notes:read vault:read', resource: notes.identifier });
      const url = new URL(begun.url);
      url.searchParams.append('resource', vault.identifier);
      const first = await browser.navigate(url.href);
      const callback = signInFirst ? await signIn(browser, first, account.email, account.password) : first;
      expect(callback.url.startsWith(REDIRECT_URI)).toBe(true);
      return { begun, params: oauth.validateAuthResponse(as, both, new URL(callback.url), begun.state) };
    };
    const exchangeFor = async (code: Awaited<ReturnType<typeof codeForBoth>>, resource: string) =>
      oauth.authorizationCodeGrantRequest(as, both, oauth.ClientSecretBasic(both.client_secret), code.params, REDIRECT_URI, code.begun.verifier, {
        ...insecure,
        additionalParameters: { resource },
      });
    const refreshFor = (refreshToken: string, resource: string) =>
      oauth.refreshTokenGrantRequest(as, both, oauth.ClientSecretBasic(both.client_secret), refreshToken, { ...insecure, additionalParameters: { resource } });

    // A password-only sign-in: the vault's token is refused, at the code exchange...
    const refused = await exchangeFor(await codeForBoth(true), vault.identifier);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining(MFA) });
    // ...and at a refresh, while the notes' token is issued at both.
    const code = await codeForBoth(false);
    const forNotes = await oauth.processAuthorizationCodeResponse(as, both, await exchangeFor(code, notes.identifier), { expectedNonce: code.begun.nonce });
    expect(forNotes.refresh_token).toBeDefined();
    const refreshed = await oauth.processRefreshTokenResponse(as, both, await refreshFor(forNotes.refresh_token!, notes.identifier));
    expect(refreshed.access_token).toBeDefined();
    const refusedRefresh = await refreshFor(refreshed.refresh_token ?? forNotes.refresh_token!, vault.identifier);
    expect(refusedRefresh.status).toBe(400);
    expect(await refusedRefresh.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining(vault.identifier) });
  });

  it('the admin audience can require MFA of person-held tokens', async () => {
    const adminAudience = (await findResourceServer(server.issuer, admin, `${server.issuer}/admin`))!;
    const patched = await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${adminAudience.id}`, { required_acr: MFA });
    expect(patched.status).toBe(200);
    expect(patched.body.required_acr).toBe(MFA);
    // Client credentials (no person) are not concerned: the admin API still answers this admin.
    expect((await adminCall(server.issuer, await adminToken(server.issuer), 'GET', '/accounts?limit=1')).status).toBe(200);
    expect((await adminCall(server.issuer, admin, 'PATCH', `/resource-servers/${adminAudience.id}`, { required_acr: null })).status).toBe(200);
  });
});

describe('the admin API document', () => {
  it('describes the factor routes and the new fields', async () => {
    const doc = (await adminCall(server.issuer, admin, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/admin/accounts/{id}/factors'])).toEqual(expect.arrayContaining(['get', 'delete']));
    const text = JSON.stringify(doc);
    for (const field of ['mfa_required', 'required_acr', 'sensitive_scopes_acr', 'sensitive_scopes_acr_max_age']) expect(text).toContain(field);
  });
});
