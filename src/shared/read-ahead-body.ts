/**
 * Request bodies read ahead of oidc-provider. The provider parses the bodies of its routes itself and
 * must not find them already read (DESIGN.md): a dedicated path that reads a body and then leaves the
 * request to the provider hands it `requestWithBody(req)`, a view of the request whose body reads the
 * same bytes again, exactly as the provider reads a body (`readable`, `readableEncoding`, `iterator`).
 */
import type { IncomingMessage } from 'node:http';

const bodies = new WeakMap<IncomingMessage, Buffer>();

/**
 * Reads the whole body of `req` and keeps it for `requestWithBody`. The caller checked that the
 * declared length is small: node's parser delivers no more than the declared length.
 * @returns the body, or `undefined` when the request broke off (what arrived is kept all the same, for
 *   the provider to judge).
 */
export function readBodyAhead(req: IncomingMessage): Promise<Buffer | undefined> {
  // Events rather than an async iterator: this runs on every request of a hot path.
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const settle = (complete: boolean) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onError);
      const body = Buffer.concat(chunks);
      bodies.set(req, body);
      resolve(complete ? body : undefined);
    };
    const onData = (chunk: Buffer) => chunks.push(chunk);
    const onEnd = () => settle(true);
    const onError = () => settle(false);
    // A request that broke off ends in 'error' or 'close' without 'end'.
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onError);
  });
}

/** `req` itself, or, when its body was read ahead, a view of it whose body reads those bytes again. */
export function requestWithBody(req: IncomingMessage): IncomingMessage {
  const body = bodies.get(req);
  if (body === undefined) return req;
  // Everything else (headers, url, socket) is the request's own, through the prototype.
  return Object.create(req, {
    readable: { value: true },
    readableEncoding: { value: null },
    iterator: {
      value: async function* replay() {
        if (body.length > 0) yield body;
      },
    },
  }) as IncomingMessage;
}
