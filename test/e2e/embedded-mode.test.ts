/**
 * `npm start` with nothing configured: embedded PGlite, in-process token store, a generated
 * key-encryption key; the data survives a restart. And production refuses those defaults.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminToken, discover, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { freePort, SERVER_ENTRY, startServer, testAdmin } from '../helpers/server.js';

const workdir = mkdtempSync(join(tmpdir(), 'login-embedded-'));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

const bootstrapEnv = (port: number) => {
  const { clientId, clientSecret } = testAdmin(`http://localhost:${port}`);
  return { ADMIN_BOOTSTRAP_CLIENT_ID: clientId, ADMIN_BOOTSTRAP_CLIENT_SECRET: clientSecret };
};

describe('embedded defaults', () => {
  it('serves tokens with nothing configured, and keeps its clients and keys across a restart', async () => {
    const port = await freePort();
    const first = await startServer({ bareEnv: true, cwd: workdir, port, env: bootstrapEnv(port) });
    let client: { client_id: string; client_secret: string };
    let api: { identifier: string };
    let kids: string[];
    try {
      expect(first.output()).toContain('REDIS_URL is not set');
      const admin = await adminToken(first.issuer);
      api = await registerResourceServer(first.issuer, admin, { identifier: uniqueResource('embedded'), name: 'Embedded', scopes: ['e:read'] });
      client = await registerClient(first.issuer, admin, { client_name: 'Embedded job', trust: 'internal', resources: [api.identifier], scope: 'e:read' });
      const { accessToken } = await issueToken(await discover(first.issuer), client.client_id, client.client_secret, { scope: 'e:read' });
      expect(accessToken.split('.')).toHaveLength(3);
      kids = ((await (await fetch(`${first.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    } finally {
      expect(await first.stop()).toBe(0);
    }

    expect(statSync(join(workdir, 'data', 'pglite')).isDirectory()).toBe(true);
    expect(statSync(join(workdir, 'keys', 'dev-key-encryption-key')).mode & 0o777).toBe(0o600);

    const second = await startServer({ bareEnv: true, cwd: workdir, port, env: bootstrapEnv(port) });
    try {
      const { accessToken } = await issueToken(await discover(second.issuer), client.client_id, client.client_secret, { scope: 'e:read' });
      expect(accessToken.split('.')).toHaveLength(3);
      const kidsAfter = ((await (await fetch(`${second.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
      expect(kidsAfter.sort()).toEqual(kids.sort());
    } finally {
      await second.stop();
    }
  }, 90_000);
});

describe('production', () => {
  it('refuses the embedded defaults, naming what is missing', () => {
    const result = spawnSync(process.execPath, [SERVER_ENTRY], {
      cwd: workdir,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('DATABASE_URL');
  });
});
