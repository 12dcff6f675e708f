/**
 * Express: `protect(kit, options)` is a middleware that verifies the access token and puts what it says
 * in `res.locals.auth`, or answers the refusal (401/403 with a `WWW-Authenticate` challenge, 400, or
 * 503); `pushReceiver(kit)` answers the issuer's pushed SETs (RFC 8935): mount it with `app.post`
 * before any body parser that would read `application/secevent+jwt`. The types are structural, so the
 * kit needs no Express types of its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResourceServerKit, VerifiedAccess } from '../kit.js';
import { header, publicUrl, readText, type ProtectOptions } from './shared.js';

/** The parts of an Express request the kit uses. */
export interface ExpressRequestLike extends IncomingMessage {
  readonly protocol: string;
  readonly originalUrl: string;
  get(name: string): string | undefined;
}

/** The parts of an Express response the kit uses. */
export interface ExpressResponseLike extends ServerResponse {
  readonly locals: Record<string, unknown>;
}

type ExpressMiddleware = (req: ExpressRequestLike, res: ExpressResponseLike, next: (error?: unknown) => void) => void;

/** The verified access of a request that went through `protect` (`res.locals.auth`). */
export const authOf = (res: { locals: Record<string, unknown> }): VerifiedAccess => res.locals.auth as VerifiedAccess;

const sendJson = (res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: unknown) => {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (body === undefined) return void res.end();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};

/** A middleware that admits only requests whose access token the kit accepts (and that holds `options.scopes`). */
export function protect(kit: ResourceServerKit, options: ProtectOptions = {}): ExpressMiddleware {
  return (req, res, next) => {
    kit
      .verify(
        {
          authorization: header(req.headers, 'authorization'),
          dpop: req.headers.dpop,
          method: req.method ?? 'GET',
          url: publicUrl(`${req.protocol}://${req.get('host') ?? ''}`, req.originalUrl, options),
        },
        options,
      )
      .then(
        (access) => {
          res.locals.auth = access;
          next();
        },
        (error: unknown) => {
          const refusal = kit.refusal(error);
          sendJson(res, refusal.status, refusal.headers, refusal.body);
        },
      );
  };
}

/** A handler that receives the SETs the issuer pushes (RFC 8935): `app.post(path, pushReceiver(kit))`. */
export function pushReceiver(kit: ResourceServerKit): ExpressMiddleware {
  return (req, res, next) => {
    readText(req)
      .then(async (body) =>
        body === undefined
          ? { status: 400, body: { err: 'invalid_request', description: 'the SET is too large' } }
          : kit.receivePush({ authorization: header(req.headers, 'authorization'), contentType: header(req.headers, 'content-type'), body }),
      )
      .then((answer) => sendJson(res, answer.status, {}, answer.body), next);
  };
}
