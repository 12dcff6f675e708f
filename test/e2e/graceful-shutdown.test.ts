/**
 * SIGTERM: every request already received is answered, new connections are refused, the process
 * exits 0 within 10 s. Requests travel on connections the server has already accepted (a kept-alive
 * pool), so each one of them was received before the signal.
 */
import { describe, expect, it } from '@jest/globals';
import { Agent, request } from 'node:http';
import { startServer, testAdmin } from '../helpers/server.js';

describe('graceful shutdown', () => {
  it('answers the requests in flight at SIGTERM, refuses new connections, and exits 0 within 10 s', async () => {
    const server = await startServer();
    const admin = testAdmin(server.issuer);
    const connections = 40;
    const agent = new Agent({ keepAlive: true, maxSockets: connections });
    const body = 'grant_type=client_credentials&scope=admin%3Aread';
    const tokenRequest = () =>
      new Promise<number | string>((resolve) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: server.port,
            path: '/token',
            method: 'POST',
            agent,
            headers: {
              authorization: `Basic ${Buffer.from(`${admin.clientId}:${admin.clientSecret}`).toString('base64')}`,
              'content-type': 'application/x-www-form-urlencoded',
              'content-length': Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        req.end(body);
      });

    // Opens every connection of the pool, so the batch below reuses accepted connections.
    expect(await Promise.all(Array.from({ length: connections }, tokenRequest))).toEqual(Array(connections).fill(200));

    const exited = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
    const batch = Array.from({ length: connections }, tokenRequest);
    await Promise.race(batch);
    const signalledAt = Date.now();
    server.process.kill('SIGTERM');

    expect(await Promise.all(batch)).toEqual(Array(connections).fill(200));
    expect(await exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    await expect(fetch(`${server.issuer}/healthz`)).rejects.toThrow();
    agent.destroy();
  }, 60_000);
});
