/** `npm run -s admin:bootstrap`: exactly one JSON object on stdout, with credentials that work. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { adminCall, discover, issueToken } from '../helpers/oauth.js';
import { startServer, testServerEnv, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe('admin:bootstrap', () => {
  it('prints exactly one JSON object whose credentials get an admin token', async () => {
    const result = spawnSync(process.execPath, ['dist/scripts/admin-bootstrap.js'], {
      env: testServerEnv(server.port),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const printed = JSON.parse(lines[0]) as Record<string, string>;
    expect(Object.keys(printed).sort()).toEqual(['client_id', 'client_secret', 'resource', 'scope', 'token_endpoint']);
    expect(printed).toMatchObject({
      token_endpoint: `${server.issuer}/token`,
      resource: `${server.issuer}/admin`,
      scope: 'admin:read admin:write',
    });

    const as = await discover(server.issuer);
    expect(as.token_endpoint).toBe(printed.token_endpoint);
    const { accessToken } = await issueToken(as, printed.client_id, printed.client_secret, { resource: printed.resource, scope: printed.scope });
    expect((await adminCall(server.issuer, accessToken, 'GET', '/clients')).status).toBe(200);
  });
});
