/**
 * readBodyWithin (src/shared/request-body.ts), which every route that reads a body goes through, over
 * real HTTP: the whole body within the limit however it is sent, `undefined` past it with the socket
 * still able to carry the answer, and a failure, never a wait without end, when the client goes away.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBodyWithin } from '../../src/shared/request-body.js';

const LIMIT = 64;

/** What readBodyWithin made of each request the server received, in order. */
let outcomes: Promise<Buffer | undefined>[];
let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const outcome = readBodyWithin(req, LIMIT);
    outcomes.push(outcome);
    outcome.then(
      (body) => {
        res.writeHead(body === undefined ? 413 : 200, { connection: 'close' });
        res.end(body === undefined ? 'too large' : body);
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

beforeEach(() => {
  outcomes = [];
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** Sends `chunks` (chunked unless `length` is given) and resolves with the status and body of the answer. */
function send(chunks: string[], length?: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: length === undefined ? {} : { 'content-length': length } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('readBodyWithin', () => {
  it('reads a whole body within the limit, declared or chunked', async () => {
    await expect(send(['a=1&', 'b=2'], 7)).resolves.toEqual({ status: 200, body: 'a=1&b=2' });
    await expect(send(['x'.repeat(40), 'y'.repeat(24)])).resolves.toEqual({ status: 200, body: 'x'.repeat(40) + 'y'.repeat(24) });
  });

  it('gives up on a body past the limit, declared or found while reading, and the answer still reaches the client', async () => {
    await expect(send(['x'.repeat(LIMIT + 1)], LIMIT + 1)).resolves.toEqual({ status: 413, body: 'too large' });
    await expect(send(['x'.repeat(LIMIT), 'x'])).resolves.toEqual({ status: 413, body: 'too large' });
    await expect(Promise.all(outcomes)).resolves.toEqual([undefined, undefined]);
  });

  it('fails, rather than waiting for ever, when the client goes away before the end of its body', async () => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { 'content-length': 50 } });
    req.on('error', () => undefined);
    req.write('only part of it');
    await new Promise<void>((resolve) => {
      const waitForServer = () => (outcomes.length > 0 ? resolve() : setTimeout(waitForServer, 10));
      waitForServer();
    });
    req.destroy();
    await expect(outcomes[0]).rejects.toThrow('aborted');
  });
});
