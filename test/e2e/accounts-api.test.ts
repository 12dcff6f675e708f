/** The account routes of the admin API (docs/admin-api.md, "Accounts"), and what a person notices of them. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { authorizationUrl, Browser, createAccount, signIn } from '../helpers/login.js';
import { adminCall, adminToken, discover, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';

let server: RunningServer;
let admin: string;
let client: { client_id: string; client_secret: string; redirect_uri: string };

beforeAll(async () => {
  server = await startServer();
  admin = await adminToken(server.issuer);
  const api = await registerResourceServer(server.issuer, admin, { identifier: uniqueResource('accounts'), name: 'Any', scopes: ['any:read'] });
  const registered = await registerClient(server.issuer, admin, {
    client_name: 'Intranet',
    trust: 'internal',
    grant_types: ['authorization_code'],
    redirect_uris: [REDIRECT_URI],
    resources: [api.identifier],
    scope: 'openid email',
  });
  client = { ...registered, redirect_uri: REDIRECT_URI };
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** Whether `email` and `password` sign in to the test client (true: the browser is sent back with a code). */
async function canSignIn(email: string, password: string): Promise<boolean> {
  const browser = new Browser(REDIRECT_URI);
  const start = await authorizationUrl(await discover(server.issuer), client);
  const after = await signIn(browser, await browser.navigate(start.url), email, password);
  return new URL(after.url).searchParams.has('code');
}

async function auditOf(target: string): Promise<Array<{ action: string; details: Record<string, unknown> }>> {
  const db = new pg.Client({ connectionString: process.env.TEST_RUN_DATABASE_URL });
  await db.connect();
  try {
    const { rows } = await db.query('select action, details from audit_events where target = $1 order by id', [target]);
    return rows;
  } finally {
    await db.end();
  }
}

describe('accounts', () => {
  it('creates one: 201 {id, email, name}, the id a UUID, no password in the answer; the person can sign in', async () => {
    const password = 'correct horse battery staple';
    const answer = await adminCall(server.issuer, admin, 'POST', '/accounts', { email: 'Ada@Example.test', password, name: 'Ada Lovelace' });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ email: 'Ada@Example.test', name: 'Ada Lovelace', disabled: false });
    expect(answer.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(answer.headers.get('location')).toBe(`/admin/accounts/${answer.body.id}`);
    expect(JSON.stringify(answer.body)).not.toContain(password);
    // Emails are matched whatever their case.
    expect(await canSignIn('ada@example.TEST', password)).toBe(true);
  });

  it('refuses a second account with the same email in another case: 409', async () => {
    const first = await createAccount(server.issuer, admin);
    const again = await adminCall(server.issuer, admin, 'POST', '/accounts', {
      email: first.email.toUpperCase(),
      password: 'another long password',
      name: 'Twin',
    });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('refuses a short password, a malformed email and unknown fields: 422 naming each', async () => {
    const answer = await adminCall(server.issuer, admin, 'POST', '/accounts', { email: 'not-an-email', password: 'short', name: '', admin: true });
    expect(answer.status).toBe(422);
    const paths = (answer.body.errors as Array<{ path: string; message: string }>).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['email', 'password', 'name']));
    expect(answer.body.errors.find((e: { path: string }) => e.path === 'password').message).toContain('12');
  });

  it('reads one; an unknown or malformed id is 404', async () => {
    const account = await createAccount(server.issuer, admin, { name: 'Read Me' });
    const read = await adminCall(server.issuer, admin, 'GET', `/accounts/${account.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: account.id, email: account.email, name: 'Read Me', disabled: false });
    expect(read.body.password_hash).toBeUndefined();
    expect((await adminCall(server.issuer, admin, 'GET', '/accounts/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await adminCall(server.issuer, admin, 'GET', '/accounts/not-a-uuid')).status).toBe(404);
  });

  it('lists with a cursor, visiting every account exactly once', async () => {
    const created = new Set<string>();
    for (let i = 0; i < 5; i++) created.add((await createAccount(server.issuer, admin)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
      const page = await adminCall(server.issuer, admin, 'GET', `/accounts${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((a: { id: string }) => a.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of created) expect(seen).toContain(id);
  });

  it('changes name and email; an email taken by another account is 409; an empty change is 422', async () => {
    const account = await createAccount(server.issuer, admin);
    const other = await createAccount(server.issuer, admin);
    const renamed = await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { name: 'New Name', email: `renamed-${account.email}` });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'New Name', email: `renamed-${account.email}` });
    expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { email: other.email })).status).toBe(409);
    expect((await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, {})).status).toBe(422);
    expect((await adminCall(server.issuer, admin, 'PATCH', '/accounts/00000000-0000-4000-8000-000000000000', { name: 'x' })).status).toBe(404);
  });

  it('sets a new password: the old one stops working, the new one works', async () => {
    const account = await createAccount(server.issuer, admin);
    const newPassword = 'a brand new passphrase';
    expect((await adminCall(server.issuer, admin, 'POST', `/accounts/${account.id}/password`, { password: newPassword })).status).toBe(204);
    expect(await canSignIn(account.email, account.password)).toBe(false);
    expect(await canSignIn(account.email, newPassword)).toBe(true);
    expect((await adminCall(server.issuer, admin, 'POST', `/accounts/${account.id}/password`, { password: 'short' })).status).toBe(422);
  });

  it('deletes one: 204, then 404; the person can no longer sign in', async () => {
    const account = await createAccount(server.issuer, admin);
    expect((await adminCall(server.issuer, admin, 'DELETE', `/accounts/${account.id}`)).status).toBe(204);
    expect((await adminCall(server.issuer, admin, 'GET', `/accounts/${account.id}`)).status).toBe(404);
    expect((await adminCall(server.issuer, admin, 'DELETE', `/accounts/${account.id}`)).status).toBe(404);
    expect(await canSignIn(account.email, account.password)).toBe(false);
  });

  it('audits every change, never with a password', async () => {
    const account = await createAccount(server.issuer, admin);
    await adminCall(server.issuer, admin, 'PATCH', `/accounts/${account.id}`, { disabled: true });
    await adminCall(server.issuer, admin, 'POST', `/accounts/${account.id}/password`, { password: 'yet another passphrase' });
    const entries = await auditOf(account.id);
    expect(entries.map((e) => e.action)).toEqual(['account.create', 'account.update', 'account.password']);
    expect(entries[1].details).toEqual({ disabled: true });
    const details = JSON.stringify(entries.map((e) => e.details));
    for (const secret of [account.password, 'yet another passphrase', 'password']) expect(details).not.toContain(secret);
  });
});
