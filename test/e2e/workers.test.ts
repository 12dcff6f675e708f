/**
 * WORKERS=2: two processes serve one port, with the Node.js flags `npm start` gives the server; a
 * worker that dies is replaced; the primary's metrics are the sum of both workers'.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startScriptNodeFlags } from '../helpers/start-flags.js';

let server: RunningServer;

/** The command line a process runs with, from /proc. */
const commandLine = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** Pids of the primary's worker processes. */
const workerPids = (): number[] =>
  execFileSync('pgrep', ['-P', String(server.process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map(Number);

beforeAll(async () => {
  server = await startServer({ env: { WORKERS: '2' } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('WORKERS=2', () => {
  it('serves from two processes, replaces a dead worker, and aggregates metrics', async () => {
    expect(workerPids()).toHaveLength(2);
    const as = await discover(server.issuer);
    const admin = await adminToken(server.issuer);
    const api = await registerResourceServer(server.issuer, admin, {
      identifier: uniqueResource('workers'),
      name: 'Workers',
      scopes: ['w:read'],
      token_format: 'opaque',
    });
    const client = await registerClient(server.issuer, admin, { client_name: 'Worker test', trust: 'external', resources: [api.identifier], scope: 'w:read' });

    // Tokens issued by either worker introspect on either: the state is in Redis, not in a process.
    const tokens = await Promise.all(Array.from({ length: 20 }, () => issueToken(as, client.client_id, client.client_secret, { scope: 'w:read' })));
    for (const { accessToken } of tokens) {
      expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, accessToken)).toMatchObject({ active: true });
    }

    const [victim] = workerPids();
    process.kill(victim, 'SIGKILL');
    let pids: number[] = [];
    for (let i = 0; i < 50 && (pids.length !== 2 || pids.includes(victim)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      pids = workerPids();
    }
    expect(pids).toHaveLength(2);
    expect(pids).not.toContain(victim);
    // Each worker, the replacement too, sizes its young generation as npm start does: V8 reads that only at start.
    const flags = startScriptNodeFlags();
    expect(flags).toContainEqual(expect.stringMatching(/^--max-semi-space-size=\d+$/));
    for (const pid of pids) expect(commandLine(pid)).toEqual(expect.arrayContaining(flags));
    await expect(issueToken(as, client.client_id, client.client_secret, { scope: 'w:read' })).resolves.toBeDefined();

    const port = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output())?.[1];
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const issued = metrics
      .split('\n')
      .filter((line) => line.startsWith('login_tokens_issued_total{') && line.includes('trust="external"'))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    expect(issued).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
