/**
 * Reading a request body with a size limit, counting bytes as they arrive: a body sent chunked (no
 * Content-Length) is held to the same limit as a declared one. Every route that reads a body reads it
 * here (the provider's routes, the interaction forms, the admin API).
 */
import type { IncomingMessage } from 'node:http';

/**
 * A request whose body was read before oidc-provider saw it: the provider parses `body` when present
 * (its documented path for bodies read by something in front of it) instead of reading the stream.
 */
export type RequestWithBody = IncomingMessage & { body?: Buffer };

/** Whether the request says it has a body (a non-zero Content-Length, or Transfer-Encoding). */
export function hasBody(req: IncomingMessage): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

/**
 * The body of `req`, or `undefined` as soon as it is declared or found to be larger than `maxBytes`
 * (the rest is not read: answer with `Connection: close`).
 */
export async function readBodyWithin(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  // Stopping early must not destroy the request: that would close the socket before the 413 is sent.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
