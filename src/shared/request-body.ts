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
export function readBodyWithin(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return Promise.resolve(undefined);
  // Listeners and one promise rather than the stream's async iterator, which makes several promises
  // per chunk: this runs on every token and introspection request.
  // Read already (to its end): nothing more comes, as the stream's iterator would find.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.destroyed) return Promise.reject(new Error('the request was aborted before its body ended'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      // Stopping early must not destroy the request: that would close the socket before the 413 is
      // sent. The rest is left unread.
      settle();
      req.pause();
      resolve(undefined);
    };
    const onEnd = () => {
      settle();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      settle();
      reject(error);
    };
    // A request whose connection closed before its end (the client went away).
    const onClose = () => {
      settle();
      reject(new Error('the request was aborted before its body ended'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
