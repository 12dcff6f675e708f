/**
 * The frame every dedicated path shares (docs/dedicated-paths.md): it takes the POSTs to its route,
 * answers what it fully handles, and leaves everything else to oidc-provider, counting both outcomes.
 */
import { parse as parseQueryString } from 'node:querystring';
import type Koa from 'koa';
import type { EarlyRoute } from './early-dispatch.js';
import { dedicatedPathRequests } from '../observability/metrics.js';
import { readBodyWithin, type RequestWithBody } from '../shared/request-body.js';

/** The provider's form body limit (lib/shared/selective_body.js); longer bodies are left to it. */
const PROVIDER_BODY_LIMIT = 56 * 1024;

/** Headers that change how the provider answers (DPoP, client attestation, CORS): left to it. */
const PROVIDER_ONLY_HEADERS = ['dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop', 'origin', 'transfer-encoding'];

/**
 * The form body of a request a dedicated path may handle, read ahead and kept on the request
 * (oidc-provider's documented `req.body`), so the provider reads the same bytes if the request is left
 * to it; `undefined` for a request left to the provider as it came (no or too long a declared length,
 * not a form, a client preferring HTML, a header that changes the provider's answer), or one that broke
 * off (the provider's to fail).
 */
export async function readFormAhead(ctx: Koa.Context): Promise<Buffer | undefined> {
  const length = ctx.request.length;
  if (
    length === undefined ||
    length > PROVIDER_BODY_LIMIT ||
    !ctx.is('application/x-www-form-urlencoded') ||
    // The provider renders its errors as HTML to a client that prefers it.
    ctx.accepts('json', 'html') === 'html' ||
    PROVIDER_ONLY_HEADERS.some((name) => ctx.req.headers[name] !== undefined)
  ) {
    return undefined;
  }
  const body = await readBodyWithin(ctx.req, PROVIDER_BODY_LIMIT).catch(() => undefined);
  if (body) (ctx.req as RequestWithBody).body = body;
  return body;
}

/**
 * The route of a dedicated path, answered by the early dispatch (early-dispatch.ts) in front of the
 * Koa application and the provider. `answer` answers the request and resolves `true`, or leaves it
 * untouched (but for a body read ahead, which the provider reads again) and resolves `false`, and the
 * request goes on to the provider.
 * @param route the route's name in metrics (`introspection`, `token`, `revocation`).
 */
export function dedicatedPath(route: string, path: string, answer: (ctx: Koa.Context) => Promise<boolean>): EarlyRoute {
  const answered = dedicatedPathRequests.labels({ route, outcome: 'answered' });
  const leftToProvider = dedicatedPathRequests.labels({ route, outcome: 'provider' });
  return {
    path,
    methods: ['POST'],
    async serve(ctx) {
      if (await answer(ctx)) {
        answered.inc();
        return true;
      }
      leftToProvider.inc();
      return false;
    },
  };
}

/** Printable ASCII: what a client id or secret may be made of (RFC 6749 VSCHAR). */
const VSCHAR = /^[\x20-\x7E]+$/;
/** Padded base64, the form of a Basic header handled here. */
const PADDED_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The client id and secret of a Basic header in the form the dedicated paths handle, else `undefined`. */
export function basicCredentials(header: string): { clientId: string; secret: string } | undefined {
  const [scheme, encoded, ...rest] = header.split(' ');
  if (rest.length > 0 || scheme?.toLowerCase() !== 'basic' || !encoded || !PADDED_BASE64.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  const clientId = formDecoded(decoded.slice(0, colon));
  const secret = formDecoded(decoded.slice(colon + 1));
  return clientId && secret ? { clientId, secret } : undefined;
}

/**
 * A client id or secret of a Basic header: form-encoded (RFC 6749 section 2.3.1), so clients encode
 * even `-` and `_`. `undefined` when it does not decode to printable ASCII.
 */
function formDecoded(value: string): string | undefined {
  try {
    const decoded = decodeURIComponent(value.replace(/\+/g, ' '));
    return VSCHAR.test(decoded) ? decoded : undefined;
  } catch {
    return undefined;
  }
}

/** A form's parameters, each given once. */
export type SingleValuedForm = Readonly<Record<string, string | undefined>>;

/**
 * The form body read the way the provider reads it (its charset, node:querystring), when every
 * parameter is one of `handled` and given once; `undefined` otherwise (repeated or unknown
 * parameters: the provider's errors, or its silence, are its own to give). An empty value is read
 * as absent (`'absent'`, as the provider reads it on that route) or leaves the request to the
 * provider (`'leave'`).
 */
export function readProviderForm(ctx: Koa.Context, body: Buffer, handled: ReadonlySet<string>, emptyValue: 'absent' | 'leave'): SingleValuedForm | undefined {
  let text: string;
  try {
    text = ctx.request.charset ? new TextDecoder(ctx.request.charset).decode(body) : body.toString();
  } catch {
    return undefined;
  }
  const single: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(parseQueryString(text))) {
    if (!handled.has(name) || typeof value !== 'string') return undefined;
    if (value === '' && emptyValue === 'leave') return undefined;
    single[name] = value || undefined;
  }
  return single;
}

/** A client's id and secret, and whether they came in an Authorization header (a failure then names the Basic scheme). */
export interface SecretCredentials {
  readonly clientId: string;
  readonly secret: string;
  readonly basic: boolean;
}

/**
 * The client's secret credentials by one mechanism only: a Basic header (a `client_id` in the form
 * beside it must name the same client), or `client_id` and `client_secret` in the form; `undefined`
 * for anything else (the provider's to judge).
 */
export function secretCredentials(ctx: Koa.Context, form: SingleValuedForm): SecretCredentials | undefined {
  const { client_id: formClientId, client_secret: formSecret } = form;
  if (ctx.req.headers.authorization !== undefined) {
    if (formSecret !== undefined) return undefined;
    const basic = basicCredentials(ctx.get('authorization'));
    if (!basic || (formClientId !== undefined && formClientId !== basic.clientId)) return undefined;
    return { ...basic, basic: true };
  }
  if (formClientId === undefined || formSecret === undefined) return undefined;
  return { clientId: formClientId, secret: formSecret, basic: false };
}
