/**
 * The JWKS that resource servers validate JWTs with, served in front of oidc-provider's own route so
 * it carries what caches need: `Cache-Control: max-age` (JWKS_MAX_AGE, which the key lifecycle relies
 * on) and a strong ETag answered with 304 on `If-None-Match`.
 */
import type { EarlyRoute } from './early-dispatch.js';
import type { KeyRing } from '../keys/signing-keys.js';
import { sha256Base64Url } from '../shared/secrets.js';

/** The JWKS as served: the body, already encoded, and its strong ETag, made once per key ring. */
export interface JwksDocument {
  readonly body: Buffer;
  readonly etag: string;
}

/** The published public keys of `keyRing` as a JWK Set document. */
export function jwksDocument(keyRing: KeyRing): JwksDocument {
  const body = JSON.stringify({ keys: keyRing.publicJwks });
  return { body: Buffer.from(body), etag: `"${sha256Base64Url(body)}"` };
}

const CONTENT_TYPE = 'application/jwk-set+json; charset=utf-8';

/**
 * Whether an If-None-Match header matches `etag` (RFC 9110 section 13.1.2: `*`, or the tag in the
 * list, compared weakly). Not Koa's `ctx.fresh`: it ignores the header when the request carries
 * `Cache-Control: no-cache`, which fetch() adds to every conditional request, while an origin server
 * answers 304 regardless.
 */
function matchesIfNoneMatch(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

/**
 * The route answering GET and HEAD of `path` with the document in force, served by the early dispatch
 * (early-dispatch.ts) before the Koa application. Everything in the answer is made once per key ring;
 * a request costs the path check, the headers and one write.
 */
export function jwksEndpoint(path: string, currentJwks: () => JwksDocument, maxAgeSeconds: number): EarlyRoute {
  const cacheControl = `public, max-age=${maxAgeSeconds}`;
  return {
    path,
    methods: ['GET', 'HEAD'],
    serve(exchange): boolean {
      const document = currentJwks();
      // A public document, as oidc-provider serves it: browser-based resource servers may fetch it.
      const headers = ['ETag', document.etag, 'Cache-Control', cacheControl, 'Access-Control-Allow-Origin', '*'];
      const ifNoneMatch = exchange.req.headers['if-none-match'];
      if (ifNoneMatch !== undefined && matchesIfNoneMatch(ifNoneMatch, document.etag)) {
        // No body, nor the headers of one (as Koa answers an empty status).
        exchange.send(304, headers);
        return true;
      }
      // Node sends no body to a HEAD request: the headers alone.
      exchange.send(200, [...headers, 'Content-Type', CONTENT_TYPE, 'Content-Length', document.body.length], document.body);
      return true;
    },
  };
}
