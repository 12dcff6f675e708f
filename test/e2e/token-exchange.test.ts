/**
 * Token exchange (RFC 8693; src/issuer/token-exchange.ts), driven as outside clients would: oauth4webapi
 * sends the grant, jose checks the JWTs against the published JWKS, resource servers introspect. Also
 * the admin side of the `token_exchange` client field.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { dpopKey } from '../helpers/dpop.js';
import { authorizationUrl, Browser, createAccount, formAction, signIn, type TestClient } from '../helpers/login.js';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, revoke, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const SCOPES = ['shop:read', 'shop:write', 'shop:refund'];

type Credentials = { client_id: string; client_secret: string };
type Api = { identifier: string; introspection: Credentials };

let server: RunningServer;
let as: oauth.AuthorizationServer;
let admin: string;
/** The API whose callers' tokens get exchanged. */
let orders: Api;
/** Internal JWT API; `shop:refund` is sensitive there. */
let ledger: Api;
/** An API whose tokens are always opaque. */
let vault: Api;
/** An API no allowance names. */
let elsewhere: Api;
/** Internal caller of orders: its tokens are JWTs. */
let web: Credentials;
/** External caller of orders: its tokens are opaque. */
let partner: Credentials;
/** The orders API's own client: exchanges tokens sent to orders, for ledger or vault. */
let ordersService: Credentials;
/** The ledger API's own client: may exchange what ordersService exchanged (it is named in may_act). */
let ledgerService: Credentials;
/** Also allowed to exchange ordersService's tokens, but not named in their may_act. */
let auditService: Credentials;
/** An external client allowed to exchange tokens sent to orders. */
let outsider: Credentials;
/** A client with no allowance. */
let plain: Credentials;

async function exchange(client: Credentials, params: Record<string, string>) {
  const response = await oauth.genericTokenEndpointRequest(
    as,
    { client_id: client.client_id },
    oauth.ClientSecretBasic(client.client_secret),
    GRANT,
    params,
    insecure,
  );
  if (!response.ok) {
    const body = (await response.json()) as { error: string; error_description?: string };
    return { ok: false as const, status: response.status, error: body.error, description: body.error_description };
  }
  const result = await oauth.processGenericTokenEndpointResponse(as, { client_id: client.client_id }, response);
  return { ok: true as const, ...result, issuedTokenType: result.issued_token_type };
}

/** Exchanges `subject` and fails the test unless a token came back. */
async function exchanged(client: Credentials, subject: string, params: Record<string, string> = {}) {
  const outcome = await exchange(client, { subject_token: subject, subject_token_type: ACCESS_TOKEN, ...params });
  if (!outcome.ok) throw new Error(`exchange refused: ${outcome.status} ${outcome.error} ${outcome.description}`);
  return outcome;
}

const ordersToken = async (client: Credentials, scope = 'shop:read shop:write') =>
  (await issueToken(as, client.client_id, client.client_secret, { resource: orders.identifier, scope })).accessToken;

const introspectAt = (api: Api, token: string) => introspect(as, api.introspection.client_id, api.introspection.client_secret, token);

const isJwt = (token: string) => token.split('.').length === 3;

beforeAll(async () => {
  server = await startServer();
  as = await discover(server.issuer);
  admin = await adminToken(server.issuer);
  const rs = (name: string, fields: Record<string, unknown> = {}) =>
    registerResourceServer(server.issuer, admin, { identifier: uniqueResource(name), name, scopes: SCOPES, ...fields });
  orders = await rs('orders');
  ledger = await rs('ledger', { sensitive_scopes: ['shop:refund'] });
  vault = await rs('vault', { token_format: 'opaque' });
  elsewhere = await rs('elsewhere');
  const scope = SCOPES.join(' ');
  const client = (name: string, trust: string, fields: Record<string, unknown>) =>
    registerClient(server.issuer, admin, { client_name: name, trust, scope, ...fields });
  web = await client('Web shop', 'internal', { resources: [orders.identifier] });
  partner = await client('Partner shop', 'external', { resources: [orders.identifier] });
  ledgerService = await client('Ledger service', 'internal', {
    resources: [ledger.identifier, vault.identifier],
    token_exchange: { subject_audiences: [ledger.identifier], audiences: [vault.identifier] },
  });
  ordersService = await client('Orders service', 'internal', {
    resources: [ledger.identifier, vault.identifier, elsewhere.identifier],
    token_exchange: { subject_audiences: [orders.identifier], audiences: [ledger.identifier, vault.identifier], may_act_client_id: ledgerService.client_id },
  });
  auditService = await client('Audit service', 'internal', {
    resources: [vault.identifier],
    token_exchange: { subject_client_ids: [ordersService.client_id], audiences: [vault.identifier] },
  });
  outsider = await client('Outside integrator', 'external', {
    resources: [ledger.identifier],
    token_exchange: { subject_audiences: [orders.identifier], audiences: [ledger.identifier] },
  });
  plain = await client('Plain service', 'internal', { resources: [ledger.identifier] });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('token exchange', () => {
  it('is listed in discovery', async () => {
    expect(as.grant_types_supported).toContain(GRANT);
  });

  it('gives an internal client a JWT for an internal audience, for the same subject, naming itself in act', async () => {
    const subject = await ordersToken(web);
    expect(isJwt(subject)).toBe(true);
    const result = await exchanged(ordersService, subject, { resource: ledger.identifier });
    expect(result.issuedTokenType).toBe(ACCESS_TOKEN);
    expect(result.token_type).toBe('bearer');
    expect(result.scope).toBe('shop:read shop:write');
    const { payload, protectedHeader } = await jwtVerify(result.access_token, createRemoteJWKSet(new URL(as.jwks_uri!)), {
      issuer: as.issuer,
      audience: ledger.identifier,
      typ: 'at+jwt',
    });
    expect(protectedHeader.kid).toBeDefined();
    expect(payload).toMatchObject({
      sub: web.client_id,
      client_id: ordersService.client_id,
      scope: 'shop:read shop:write',
      act: { sub: ordersService.client_id, client_id: ordersService.client_id },
    });
    const answer = await introspectAt(ledger, result.access_token);
    expect(answer).toMatchObject({ active: true, sub: web.client_id, client_id: ordersService.client_id, aud: ledger.identifier });
    expect(answer.act).toEqual({ sub: ordersService.client_id, client_id: ordersService.client_id });
    expect(answer).not.toHaveProperty('subject_client_id');
  });

  it('takes an opaque subject token too (the audience is the default, the first allowed)', async () => {
    const subject = await ordersToken(partner);
    expect(isJwt(subject)).toBe(false);
    const result = await exchanged(ordersService, subject);
    expect(isJwt(result.access_token)).toBe(true);
    expect(decodeJwt(result.access_token)).toMatchObject({ aud: ledger.identifier, sub: partner.client_id });
  });

  it('gives an opaque token for a sensitive scope, an opaque audience, or an external client (the token policy)', async () => {
    const subject = await ordersToken(web, SCOPES.join(' '));
    const sensitive = await exchanged(ordersService, subject, { resource: ledger.identifier, scope: 'shop:refund' });
    const opaqueAudience = await exchanged(ordersService, subject, { audience: vault.identifier });
    const external = await exchanged(outsider, subject, { resource: ledger.identifier });
    for (const [result, api, client] of [
      [sensitive, ledger, ordersService],
      [opaqueAudience, vault, ordersService],
      [external, ledger, outsider],
    ] as const) {
      expect(isJwt(result.access_token)).toBe(false);
      const answer = await introspectAt(api, result.access_token);
      expect(answer).toMatchObject({ active: true, sub: web.client_id, client_id: client.client_id, aud: api.identifier });
      expect(answer.act).toEqual({ sub: client.client_id, client_id: client.client_id });
      expect(answer).not.toHaveProperty('gid');
      expect(answer).not.toHaveProperty('subject_client_id');
    }
    expect(sensitive.scope).toBe('shop:refund');
  });

  it("narrows scopes on request and never widens them beyond the subject token's", async () => {
    const subject = await ordersToken(web, 'shop:read');
    expect((await exchanged(ordersService, subject, { scope: 'shop:read' })).scope).toBe('shop:read');
    const wider = await exchange(ordersService, { subject_token: subject, subject_token_type: ACCESS_TOKEN, scope: 'shop:read shop:write' });
    expect(wider).toMatchObject({ ok: false, status: 400, error: 'invalid_scope' });
    const broad = await ordersToken(web, SCOPES.join(' '));
    expect((await exchanged(ordersService, broad, { scope: 'shop:write' })).scope).toBe('shop:write');
  });

  it('chains: an exchanged token exchanged again has nested act, and may_act is honoured', async () => {
    const first = await exchanged(ordersService, await ordersToken(web), { resource: ledger.identifier });
    expect(decodeJwt(first.access_token).may_act).toEqual({ sub: ledgerService.client_id, client_id: ledgerService.client_id });

    const second = await exchanged(ledgerService, first.access_token, { resource: vault.identifier });
    const answer = await introspectAt(vault, second.access_token);
    expect(answer).toMatchObject({ active: true, sub: web.client_id, client_id: ledgerService.client_id });
    expect(answer.act).toEqual({
      sub: ledgerService.client_id,
      client_id: ledgerService.client_id,
      act: { sub: ordersService.client_id, client_id: ordersService.client_id },
    });

    // auditService's allowance covers the token (its client is listed), but its may_act names ledgerService.
    const refused = await exchange(auditService, { subject_token: first.access_token, subject_token_type: ACCESS_TOKEN });
    expect(refused).toMatchObject({ ok: false, status: 400, error: 'access_denied' });
  });

  it('refuses a client without an allowance (unauthorized_client) and an audience outside it (invalid_target)', async () => {
    const subject = await ordersToken(web);
    expect(await exchange(plain, { subject_token: subject, subject_token_type: ACCESS_TOKEN })).toMatchObject({ status: 400, error: 'unauthorized_client' });
    // Allowed to exchange, but not tokens for ledger (its allowance names only ledger's tokens).
    expect(await exchange(ledgerService, { subject_token: subject, subject_token_type: ACCESS_TOKEN })).toMatchObject({
      status: 400,
      error: 'unauthorized_client',
    });
    expect(await exchange(ordersService, { subject_token: subject, subject_token_type: ACCESS_TOKEN, resource: elsewhere.identifier })).toMatchObject({
      status: 400,
      error: 'invalid_target',
    });
    expect(
      await exchange(ordersService, { subject_token: subject, subject_token_type: ACCESS_TOKEN, resource: ledger.identifier, audience: vault.identifier }),
    ).toMatchObject({ status: 400, error: 'invalid_target' });
  });

  it('refuses a bad subject token with invalid_request', async () => {
    const subject = await ordersToken(web);
    const cases: Record<string, string>[] = [
      { subject_token: 'not-a-token', subject_token_type: ACCESS_TOKEN },
      { subject_token: `${subject.slice(0, -4)}AAAA`, subject_token_type: ACCESS_TOKEN },
      { subject_token: subject },
      { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' },
      { subject_token: await ordersToken(partner), subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' },
      { subject_token: subject, subject_token_type: ACCESS_TOKEN, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
    ];
    for (const params of cases) expect(await exchange(ordersService, params)).toMatchObject({ status: 400, error: 'invalid_request' });
    const revoked = await ordersToken(partner);
    expect(await revoke(as, partner.client_id, partner.client_secret, revoked)).toBe(200);
    expect(await exchange(ordersService, { subject_token: revoked, subject_token_type: ACCESS_TOKEN })).toMatchObject({
      status: 400,
      error: 'invalid_request',
    });
  });

  it('refuses a request with a DPoP proof (invalid_request) rather than answering an unbound token', async () => {
    const subject = await ordersToken(web);
    const { handle } = await dpopKey({ client_id: ordersService.client_id });
    const response = await oauth.genericTokenEndpointRequest(
      as,
      { client_id: ordersService.client_id },
      oauth.ClientSecretBasic(ordersService.client_secret),
      GRANT,
      { subject_token: subject, subject_token_type: ACCESS_TOKEN },
      { ...insecure, DPoP: handle },
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('DPoP') });
  });

  it("accepts the exchanging client's own token as actor_token, and no other", async () => {
    const subject = await ordersToken(web);
    const own = (await issueToken(as, ordersService.client_id, ordersService.client_secret, { resource: ledger.identifier, scope: 'shop:read' })).accessToken;
    expect(
      (await exchange(ordersService, { subject_token: subject, subject_token_type: ACCESS_TOKEN, actor_token: own, actor_token_type: ACCESS_TOKEN })).ok,
    ).toBe(true);
    expect(
      await exchange(ordersService, { subject_token: subject, subject_token_type: ACCESS_TOKEN, actor_token: subject, actor_token_type: ACCESS_TOKEN }),
    ).toMatchObject({ status: 400, error: 'invalid_request' });
  });

  it("dies when the subject's client has its tokens revoked in bulk (both formats)", async () => {
    const caller = await registerClient(server.issuer, admin, {
      client_name: 'Doomed caller',
      trust: 'internal',
      resources: [orders.identifier],
      scope: 'shop:read',
    });
    const subject = await ordersToken(caller, 'shop:read');
    const jwt = await exchanged(ordersService, subject, { resource: ledger.identifier });
    const opaque = await exchanged(ordersService, subject, { resource: vault.identifier });
    expect((await introspectAt(ledger, jwt.access_token)).active).toBe(true);
    expect((await introspectAt(vault, opaque.access_token)).active).toBe(true);
    expect((await adminCall(server.issuer, admin, 'POST', `/clients/${caller.client_id}/revoke-tokens`)).status).toBe(204);
    expect(await introspectAt(ledger, jwt.access_token)).toEqual({ active: false });
    expect(await introspectAt(vault, opaque.access_token)).toEqual({ active: false });
  });
});

describe("token exchange of a person's token", () => {
  let shopFront: TestClient & Credentials;
  let partnerFront: TestClient & Credentials;

  beforeAll(async () => {
    const fields = {
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT_URI],
      resources: [orders.identifier],
      scope: 'openid offline_access shop:read shop:write',
    };
    shopFront = { ...(await registerClient(server.issuer, admin, { client_name: 'Shop front', trust: 'internal', ...fields })), redirect_uri: REDIRECT_URI };
    partnerFront = {
      ...(await registerClient(server.issuer, admin, { client_name: 'Partner front', trust: 'external', ...fields })),
      redirect_uri: REDIRECT_URI,
    };
  });

  /** Signs a new account in to `app`; its access token for orders and its refresh token. */
  async function personTokens(app: TestClient & Credentials) {
    const account = await createAccount(server.issuer, admin);
    const browser = new Browser(REDIRECT_URI);
    const start = await authorizationUrl(as, app, { scope: 'openid offline_access shop:read', resource: orders.identifier, prompt: 'consent' });
    let page = await signIn(browser, await browser.navigate(start.url), account.email, account.password);
    if (page.status === 200 && page.body.includes('>Allow</button>')) page = await browser.navigate(formAction(page, 'Allow'), { form: {} });
    const code = oauth.validateAuthResponse(as, app, new URL(page.url), start.state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      app,
      await oauth.authorizationCodeGrantRequest(as, app, oauth.ClientSecretBasic(app.client_secret), code, REDIRECT_URI, start.verifier, {
        ...insecure,
        additionalParameters: { resource: orders.identifier },
      }),
      { expectedNonce: start.nonce, requireIdToken: true },
    );
    return { account, accessToken: tokens.access_token, refreshToken: tokens.refresh_token! };
  }

  it("carries the person as sub and the grant's gid; revoking the grant kills the exchanged tokens", async () => {
    const person = await personTokens(shopFront);
    expect(isJwt(person.accessToken)).toBe(true);
    const jwt = await exchanged(ordersService, person.accessToken, { resource: ledger.identifier });
    const opaque = await exchanged(ordersService, person.accessToken, { resource: vault.identifier });
    const claims = decodeJwt(jwt.access_token);
    expect(claims.sub).toBe(person.account.id);
    expect(claims.gid).toBe(decodeJwt(person.accessToken).gid);
    expect(await introspectAt(vault, opaque.access_token)).toMatchObject({ active: true, sub: person.account.id });
    // Revoking the refresh token revokes its grant (RFC 7009).
    expect(await revoke(as, shopFront.client_id, shopFront.client_secret, person.refreshToken)).toBe(200);
    expect(await introspectAt(ledger, jwt.access_token)).toEqual({ active: false });
    expect(await introspectAt(vault, opaque.access_token)).toEqual({ active: false });
    expect(await exchange(ordersService, { subject_token: person.accessToken, subject_token_type: ACCESS_TOKEN })).toMatchObject({ error: 'invalid_request' });
  });

  it('an opaque person token exchanged; disabling the account kills the exchanged tokens', async () => {
    const person = await personTokens(partnerFront);
    expect(isJwt(person.accessToken)).toBe(false);
    const jwt = await exchanged(ordersService, person.accessToken, { resource: ledger.identifier });
    const opaque = await exchanged(ordersService, person.accessToken, { resource: vault.identifier });
    expect(await introspectAt(ledger, jwt.access_token)).toMatchObject({ active: true, sub: person.account.id });
    expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${person.account.id}`, { disabled: true })).status).toBe(200);
    expect(await introspectAt(ledger, jwt.access_token)).toEqual({ active: false });
    expect(await introspectAt(vault, opaque.access_token)).toEqual({ active: false });
  });
});

describe('the token_exchange client field (admin API)', () => {
  it('is in the OpenAPI document', async () => {
    const answer = await adminCall(server.issuer, admin, 'GET', '/openapi.json');
    expect(answer.status).toBe(200);
    const text = JSON.stringify(answer.body);
    expect(text).toContain('"token_exchange"');
    expect(text).toContain('subject_audiences');
    expect(text).toContain('may_act_client_id');
  });

  it('is validated (422) and its changes are audited', async () => {
    const base = { client_name: 'Exchanger', trust: 'internal', resources: [ledger.identifier], scope: 'shop:read' };
    const invalid: Array<[Record<string, unknown>, string]> = [
      [{ token_exchange: { subject_audiences: [orders.identifier], audiences: [vault.identifier] } }, 'token_exchange.audiences.0'],
      [{ token_exchange: { audiences: [ledger.identifier] } }, 'token_exchange.subject_client_ids'],
      [{ token_exchange: { subject_audiences: ['https://unknown.example.test/'], audiences: [ledger.identifier] } }, 'token_exchange.subject_audiences.0'],
      [{ token_exchange: { subject_audiences: [orders.identifier], audiences: [] } }, 'token_exchange.audiences'],
      [{ token_exchange: { subject_audiences: [orders.identifier], audiences: [ledger.identifier], extra: 1 } }, 'token_exchange'],
      [{ grant_types: ['client_credentials', GRANT] }, 'token_exchange'],
    ];
    for (const [fields, path] of invalid) {
      const answer = await adminCall(server.issuer, admin, 'POST', '/clients', { ...base, ...fields });
      expect(answer.status).toBe(422);
      expect(answer.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }

    const created = await adminCall(server.issuer, admin, 'POST', '/clients', {
      ...base,
      token_exchange: { subject_audiences: [orders.identifier], audiences: [ledger.identifier] },
    });
    expect(created.status).toBe(201);
    expect(created.body.grant_types).toEqual(['client_credentials', GRANT]);
    expect(created.body.token_exchange).toEqual({ subject_client_ids: [], subject_audiences: [orders.identifier], audiences: [ledger.identifier] });
    const id = created.body.client_id as string;
    const removed = await adminCall(server.issuer, admin, 'PATCH', `/clients/${id}`, { token_exchange: null });
    expect(removed.status).toBe(200);
    expect(removed.body.grant_types).toEqual(['client_credentials']);
    expect(removed.body).not.toHaveProperty('token_exchange');

    // The audit trail is oldest first and shared with the run's other files: read every page.
    const rows: Array<{ action: string; target: string; details: Record<string, unknown> }> = [];
    for (let cursor: string | null = ''; cursor !== null;) {
      const page = await adminCall(server.issuer, admin, 'GET', `/audit?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      rows.push(...(page.body.items as typeof rows).filter((row) => row.target === id));
      cursor = page.body.next_cursor as string | null;
    }
    expect(rows.find((row) => row.action === 'client.create')?.details.token_exchange).toEqual({
      subject_client_ids: [],
      subject_audiences: [orders.identifier],
      audiences: [ledger.identifier],
    });
    expect(rows.find((row) => row.action === 'client.update')?.details.token_exchange).toBeNull();
  });
});
