/**
 * Koa: `protect(kit, options)` is a middleware that verifies the access token and puts what it says
 * in `ctx.state.auth`, or answers the refusal (401/403 with a `WWW-Authenticate` challenge, 400, or
 * 503); `pushReceiver(kit)` answers the issuer's pushed SETs (RFC 8935) on the route you mount it on.
 * The types are structural, so the kit needs no Koa types of its own.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { ResourceServerKit, VerifiedAccess } from '../kit.js';
import { header, publicUrl, readText, type ProtectOptions } from './shared.js';

/** The parts of a Koa context the kit uses. */
export interface KoaContextLike {
  readonly method: string;
  readonly originalUrl: string;
  readonly protocol: string;
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
  readonly req: IncomingMessage;
  readonly state: Record<string, unknown>;
  status: number;
  body: unknown;
  set(field: string, value: string | string[]): void;
}

type KoaMiddleware = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>;

/** The verified access of a request that went through `protect` (`ctx.state.auth`). */
export const authOf = (ctx: { state: Record<string, unknown> }): VerifiedAccess => ctx.state.auth as VerifiedAccess;

/** A middleware that admits only requests whose access token the kit accepts (and that holds `options.scopes`). */
export function protect(kit: ResourceServerKit, options: ProtectOptions = {}): KoaMiddleware {
  return async (ctx, next) => {
    try {
      ctx.state.auth = await kit.verify(
        {
          authorization: header(ctx.headers, 'authorization'),
          dpop: ctx.headers.dpop,
          method: ctx.method,
          url: publicUrl(`${ctx.protocol}://${ctx.host}`, ctx.originalUrl, options),
        },
        options,
      );
    } catch (error) {
      const refusal = kit.refusal(error);
      ctx.status = refusal.status;
      for (const [name, value] of Object.entries(refusal.headers)) ctx.set(name, value);
      ctx.body = refusal.body;
      return;
    }
    await next();
  };
}

/** A middleware that receives the SETs the issuer pushes (RFC 8935); mount it on a POST route. */
export function pushReceiver(kit: ResourceServerKit): KoaMiddleware {
  return async (ctx) => {
    const body = await readText(ctx.req);
    const answer =
      body === undefined
        ? { status: 400, body: { err: 'invalid_request', description: 'the SET is too large' } }
        : await kit.receivePush({ authorization: header(ctx.headers, 'authorization'), contentType: header(ctx.headers, 'content-type'), body });
    ctx.status = answer.status;
    if (answer.body) ctx.body = answer.body;
  };
}
