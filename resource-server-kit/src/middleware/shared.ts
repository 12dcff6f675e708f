/**
 * What the three framework adapters share: the options of a protected route, the public URL of a
 * request (the DPoP proof's `htu`), and reading a pushed SET's body within a limit.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { AccessRequirements } from '../kit.js';

/** Options of a protected route. */
export interface ProtectOptions extends AccessRequirements {
  /**
   * The public origin of this API (`https://api.example.com`), used for the DPoP proof's `htu` when
   * a proxy in front changes scheme or host. Default: the framework's view of the request.
   */
  readonly publicOrigin?: string;
}

/** The largest pushed SET accepted, in bytes. */
export const PUSH_BODY_LIMIT = 64 * 1024;

/** `origin` + the path of `pathAndQuery` (the query is no part of `htu`). */
export function publicUrl(origin: string, pathAndQuery: string, options: ProtectOptions): string {
  const question = pathAndQuery.indexOf('?');
  const path = question < 0 ? pathAndQuery : pathAndQuery.slice(0, question);
  return `${(options.publicOrigin ?? origin).replace(/\/$/, '')}${path}`;
}

/** The single value of a header (the first, when repeated). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a request body as text, refusing more than `limit` bytes. */
export async function readText(stream: Readable, limit = PUSH_BODY_LIMIT): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > limit) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
