/**
 * The paths of the protocol endpoints, and what the server answers there before oidc-provider:
 *
 * - A form POST to the authorization endpoint or to `end_session` (OpenID Connect Core 3.1.2.1 and
 *   RP-Initiated Logout 2 say both MUST accept POST) is answered with a 303 to the same endpoint with
 *   the form's fields as the query, so the provider handles it as the GET it is equivalent to.
 *   Why not let the provider take the POST itself (its `enableHttpPostMethods`): the form comes from
 *   the relying party's site, so it is a cross-site POST, and browsers do not send SameSite=Lax
 *   cookies with one. The provider would not see the person's session (a needless sign-in) nor the
 *   interaction cookies. The 303 makes the browser navigate, top level, with GET, which does carry
 *   Lax cookies: exactly what a link with those parameters gets. That is why it is sound: the POST
 *   gains nothing a GET link could not already do (anyone can put such a link on a page), the
 *   cookies keep SameSite=Lax, and what changes state still needs our own same-site forms (sign-in,
 *   consent, the logout confirmation with its own anti-forgery token).
 * - Any other method on a protocol endpoint answers 405 with `Allow` and an RFC 6749 error body, not
 *   the bare 404 the provider's router falls through to.
 */
import type { Context, Next } from 'koa';
import { FormBodyError, readUrlEncodedBody } from '../interactions/form-body.js';

/** Where the provider serves each endpoint (its `routes`); discovery announces the absolute URLs. */
export const PROTOCOL_ROUTES = {
  authorization: '/auth',
  end_session: '/session/end',
  token: '/token',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  userinfo: '/me',
  jwks: '/jwks',
  pushed_authorization_request: '/request',
  // The device authorization grant (RFC 8628): where the device asks, where the person enters the code.
  device_authorization: '/device/auth',
  code_verification: '/device',
} as const;

/** The largest form POST to the authorization or logout endpoint (a request object fits). */
const MAX_PROTOCOL_FORM_BYTES = 64 * 1024;

const DISCOVERY_PATHS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];

/** The methods each protocol endpoint answers; HEAD goes with GET, OPTIONS is the CORS preflight. */
const ALLOWED_METHODS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  [PROTOCOL_ROUTES.authorization, ['GET', 'HEAD', 'POST']],
  [PROTOCOL_ROUTES.end_session, ['GET', 'HEAD', 'POST']],
  [`${PROTOCOL_ROUTES.end_session}/confirm`, ['POST']],
  [`${PROTOCOL_ROUTES.end_session}/success`, ['GET', 'HEAD']],
  [PROTOCOL_ROUTES.token, ['POST', 'OPTIONS']],
  [PROTOCOL_ROUTES.introspection, ['POST', 'OPTIONS']],
  [PROTOCOL_ROUTES.revocation, ['POST', 'OPTIONS']],
  [PROTOCOL_ROUTES.userinfo, ['GET', 'HEAD', 'POST', 'OPTIONS']],
  [PROTOCOL_ROUTES.jwks, ['GET', 'HEAD', 'OPTIONS']],
  [PROTOCOL_ROUTES.pushed_authorization_request, ['POST', 'OPTIONS']],
  [PROTOCOL_ROUTES.device_authorization, ['POST', 'OPTIONS']],
  [PROTOCOL_ROUTES.code_verification, ['GET', 'HEAD', 'POST']],
  ...DISCOVERY_PATHS.map((path): [string, string[]] => [path, ['GET', 'HEAD', 'OPTIONS']]),
]);

/** The endpoints whose form POST becomes a GET (see the file comment). */
const POST_AS_GET = new Set<string>([PROTOCOL_ROUTES.authorization, PROTOCOL_ROUTES.end_session]);

function oauthError(ctx: Context, status: number, error: string, description: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

/** Koa middleware, in front of the provider: POST-as-GET, and 405 for other methods. */
export const protocolMethods = (issuer: string) =>
  async function protocolMethods(ctx: Context, next: Next): Promise<void> {
    const allowed = ALLOWED_METHODS.get(ctx.path);
    if (!allowed) {
      await next();
      return;
    }
    if (!allowed.includes(ctx.method)) {
      ctx.set('Allow', allowed.join(', '));
      return oauthError(ctx, 405, 'invalid_request', `${ctx.method} is not a method of this endpoint (${allowed.join(', ')})`);
    }
    if (ctx.method !== 'POST' || !POST_AS_GET.has(ctx.path)) {
      await next();
      return;
    }

    let form: URLSearchParams;
    try {
      form = await readUrlEncodedBody(ctx, MAX_PROTOCOL_FORM_BYTES);
    } catch (error) {
      if (error instanceof FormBodyError) return oauthError(ctx, error.status, 'invalid_request', error.message);
      throw error;
    }
    // The query's fields and the form's together: a name in both stays repeated, and the provider
    // refuses repeated parameters as it does in any GET.
    const query = new URLSearchParams(ctx.querystring);
    for (const [name, value] of form) query.append(name, value);
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    // Absolute, from the configured issuer (which may carry a path a proxy strips).
    ctx.redirect(`${issuer}${ctx.path}?${query.toString()}`);
  };
