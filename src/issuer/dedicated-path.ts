/**
 * The frame every dedicated path shares (docs/dedicated-paths.md): it takes the POSTs to its route,
 * answers what it fully handles, and leaves everything else to oidc-provider, counting both outcomes.
 * Also one copy of what every path does alike: reading the form and the client's secret credentials
 * the provider's way, the one secret check with its lockout answers, and the provider's answer headers
 * and failure answers.
 */
import { parse as parseQueryString } from 'node:querystring';
import { errors } from 'oidc-provider';
import { sendEmptyText, sendJson, type EarlyExchange, type EarlyRoute } from './early-dispatch.js';
import { TooManyFailedAttempts, type ClientSecretCheck } from './client-authentication.js';
import type { LockedOut, LockoutGuard } from '../limits/failure-counter.js';
import type { Logger } from '../observability/logger.js';
import { dedicatedPathRequests } from '../observability/metrics.js';
import { isStoreUnavailableError, logStoreUnavailable } from '../observability/store-health.js';
import { requestContext, setRoute } from '../shared/request-context.js';
import { readBodyWithin, type RequestWithBody } from '../shared/request-body.js';

/** The provider's form body limit (lib/shared/selective_body.js); longer bodies are left to it. */
const PROVIDER_BODY_LIMIT = 56 * 1024;

/** Headers that change how the provider answers (DPoP, client attestation, CORS): left to it. */
const PROVIDER_ONLY_HEADERS = ['dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop', 'origin', 'transfer-encoding'];

/**
 * Accept headers for which Koa's negotiation (`ctx.accepts('json', 'html')`) is known to pick JSON:
 * none, anything, or JSON itself. What clients send on these routes, and cheaper to look up than to
 * negotiate; any other header is negotiated.
 */
const ACCEPTS_JSON_FIRST = new Set(['', '*/*', 'application/json']);

/** The form media type with no parameter: what `ctx.is` and `ctx.request.charset` need not parse. */
const PLAIN_FORM = 'application/x-www-form-urlencoded';

/** Whether a Content-Type header is the form type as clients send it, without a parameter (no charset). */
const isPlainForm = (contentType: string | undefined): boolean =>
  contentType !== undefined && contentType.length === PLAIN_FORM.length && contentType.toLowerCase() === PLAIN_FORM;

/**
 * The form body of a request a dedicated path may handle, read ahead and kept on the request
 * (oidc-provider's documented `req.body`), so the provider reads the same bytes if the request is left
 * to it; `undefined` for a request left to the provider as it came (no or too long a declared length,
 * not a form, a client preferring HTML, a header that changes the provider's answer), or one that broke
 * off (the provider's to fail).
 */
export function readFormAhead(exchange: EarlyExchange): Promise<Buffer | undefined> {
  const { req } = exchange;
  const { headers } = req;
  // Node's parser lets through only a length of digits.
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (
    length === undefined ||
    length > PROVIDER_BODY_LIMIT ||
    !(isPlainForm(headers['content-type']) || exchange.koa().is('application/x-www-form-urlencoded')) ||
    // The provider renders its errors as HTML to a client that prefers it.
    (!ACCEPTS_JSON_FIRST.has(headers.accept ?? '') && exchange.koa().accepts('json', 'html') === 'html') ||
    PROVIDER_ONLY_HEADERS.some((name) => headers[name] !== undefined)
  ) {
    return Promise.resolve(undefined);
  }
  return readBodyWithin(req, PROVIDER_BODY_LIMIT).then(
    (body) => {
      if (body) (req as RequestWithBody).body = body;
      return body;
    },
    () => undefined,
  );
}

/**
 * The route of a dedicated path, answered by the early dispatch (early-dispatch.ts) in front of the
 * Koa application and the provider. `answer` answers the request and resolves `true`, or leaves it
 * untouched (but for a body read ahead, which the provider reads again) and resolves `false`, and the
 * request goes on to the provider.
 * @param route the route's name in metrics (`introspection`, `token`, `revocation`).
 */
export function dedicatedPath(route: string, path: string, answer: (exchange: EarlyExchange) => Promise<boolean>): EarlyRoute {
  const answered = dedicatedPathRequests.labels({ route, outcome: 'answered' });
  const leftToProvider = dedicatedPathRequests.labels({ route, outcome: 'provider' });
  return {
    path,
    methods: ['POST'],
    serve: (exchange) =>
      answer(exchange).then((answeredHere) => {
        (answeredHere ? answered : leftToProvider).inc();
        return answeredHere;
      }),
  };
}

/** Printable ASCII: what a client id or secret may be made of (RFC 6749 VSCHAR). */
const VSCHAR = /^[\x20-\x7E]+$/;
/** Padded base64, the form of a Basic header handled here. */
const PADDED_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The client id and secret of a Basic header in the form the dedicated paths handle, else `undefined`. */
export function basicCredentials(header: string): { clientId: string; secret: string } | undefined {
  // The scheme, one space and the credentials, with no other space (what split(' ') into two parts would give).
  if (header.charCodeAt(5) !== 0x20 || header.slice(0, 5).toLowerCase() !== 'basic') return undefined;
  const encoded = header.slice(6);
  if (!encoded || encoded.includes(' ') || !PADDED_BASE64.test(encoded)) return undefined;
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
    // Most ids and secrets have nothing encoded: no need to decode them.
    const decoded = value.includes('%') || value.includes('+') ? decodeURIComponent(value.replace(/\+/g, ' ')) : value;
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
export function readProviderForm(
  exchange: EarlyExchange,
  body: Buffer,
  handled: ReadonlySet<string>,
  emptyValue: 'absent' | 'leave',
): SingleValuedForm | undefined {
  let text: string;
  try {
    // A form type without parameters has no charset: no need to parse the header again.
    const charset = isPlainForm(exchange.req.headers['content-type']) ? '' : exchange.koa().request.charset;
    text = charset ? new TextDecoder(charset).decode(body) : body.toString();
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
export function secretCredentials(exchange: EarlyExchange, form: SingleValuedForm): SecretCredentials | undefined {
  const { client_id: formClientId, client_secret: formSecret } = form;
  const { authorization } = exchange.req.headers;
  if (authorization !== undefined) {
    if (formSecret !== undefined) return undefined;
    const basic = basicCredentials(authorization);
    if (!basic || (formClientId !== undefined && formClientId !== basic.clientId)) return undefined;
    return { ...basic, basic: true };
  }
  if (formClientId === undefined || formSecret === undefined) return undefined;
  return { clientId: formClientId, secret: formSecret, basic: false };
}

/** An answer of a dedicated path: a status and a JSON body (or the empty body of a revocation). */
export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown> | '';
}

/** What the provider's instrumentation answers when a store failed (provider-instrumentation.ts). */
const STORE_UNAVAILABLE: Answer = {
  status: 503,
  body: { error: 'temporarily_unavailable', error_description: 'a backing store is unavailable; retry shortly' },
};
/** What the provider answers for any other failure (its err_out helper). */
const SERVER_ERROR: Answer = { status: 500, body: { error: 'server_error', error_description: 'oops! something went wrong' } };

/** The provider route a dedicated path answers for: its name, and whether the provider's route has its no-cache step. */
export interface ProviderRoute {
  readonly name: string;
  readonly noStore: boolean;
}

/** The provider's CORS headers on every answer of these routes (its CORS step, without an Origin: any origin). */
const CORS_HEADERS = ['Vary', 'Origin', 'Access-Control-Allow-Origin', '*', 'Access-Control-Expose-Headers', 'WWW-Authenticate'] as const;
/** The same, and the no-cache step's header, for a route that has that step. */
const CORS_NO_STORE_HEADERS = [...CORS_HEADERS, 'Cache-Control', 'no-store'] as const;

/**
 * Sends `answer` (or an OAuth error, rendered as the provider renders it) under the provider's route
 * name and headers, as Koa sends the provider's bodies (sendJson, sendEmptyText); `headers` (names
 * and values in turn) are the answer's own (Retry-After, WWW-Authenticate).
 */
export function respond(
  exchange: EarlyExchange,
  answer: Answer | errors.OIDCProviderError,
  route: ProviderRoute,
  headers: readonly (string | number)[] = [],
): void {
  setRoute(route.name);
  // The provider's CORS step and, where the route has it, its no-cache step run before anything else
  // of the route, so every one of its answers has these headers, errors included.
  const all = [...(route.noStore ? CORS_NO_STORE_HEADERS : CORS_HEADERS), ...headers];
  if (answer instanceof errors.OIDCProviderError) {
    const body = { error: answer.message, ...(answer.error_description !== undefined ? { error_description: answer.error_description } : {}) };
    sendJson(exchange, answer.statusCode, body, all);
  } else if (answer.body === '') {
    sendEmptyText(exchange, answer.status, all);
  } else {
    sendJson(exchange, answer.status, answer.body, all);
  }
}

/** `value` as a quoted string of an HTTP auth parameter. */
export const quoted = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * Authenticates the caller through the one secret check: `true` when its secret is right; else
 * answers as the provider does (401 `invalid_client`, or 429 once locked out) and resolves `false`.
 * Throws what the check throws otherwise (a store failure: see `answerFailure`).
 */
export function authenticate(exchange: EarlyExchange, deps: SecretCheckDependencies, credentials: SecretCredentials, route: ProviderRoute): Promise<boolean> {
  const checked = deps.checkClientSecret(credentials.clientId, credentials.secret, requestContext.getStore()?.ip ?? '');
  return checked.then(
    (right) => right || refuse(exchange, deps, credentials, route),
    (error: unknown) => refuseLockedOut(exchange, deps, credentials, route, error),
  );
}

/**
 * `authenticate`, then `step` for a right secret, in one round trip on a standalone Redis: the step
 * checks the caller's lockout itself (ClientSecretCheck.thenStep). Resolves the step's result, or
 * `undefined` once the refusal is answered.
 */
export function authenticateThen<T>(
  exchange: EarlyExchange,
  deps: SecretCheckDependencies,
  credentials: SecretCredentials,
  route: ProviderRoute,
  step: (guard: LockoutGuard) => Promise<T | LockedOut>,
): Promise<{ readonly value: T } | undefined> {
  const checked = deps.checkClientSecret.thenStep(credentials.clientId, credentials.secret, requestContext.getStore()?.ip ?? '', step);
  return checked.then(
    (outcome) => (outcome.right ? outcome : void refuse(exchange, deps, credentials, route)),
    (error: unknown) => void refuseLockedOut(exchange, deps, credentials, route, error),
  );
}

/** What authenticating a caller consults. */
interface SecretCheckDependencies {
  readonly checkClientSecret: ClientSecretCheck;
  readonly issuer: string;
}

/**
 * Answers a refused secret as the provider does: 429 once locked out (`lockedOut`), else 401
 * `invalid_client`; resolves `false`.
 */
function refuse(
  exchange: EarlyExchange,
  deps: SecretCheckDependencies,
  credentials: SecretCredentials,
  route: ProviderRoute,
  lockedOut?: TooManyFailedAttempts,
): false {
  if (lockedOut) {
    const retryAfterSeconds = requestContext.getStore()?.retryAfterSeconds;
    respond(exchange, lockedOut, route, retryAfterSeconds ? ['Retry-After', String(retryAfterSeconds)] : []);
    return false;
  }
  const failure = new errors.InvalidClientAuth('invalid secret provided');
  const challenge = `Basic realm=${quoted(deps.issuer)}, error=${quoted(failure.message)}, error_description=${quoted(failure.error_description!)}`;
  respond(exchange, failure, route, credentials.basic ? ['WWW-Authenticate', challenge] : []);
  return false;
}

/** `refuse` for a check that threw a lockout; any other error (a store failure) is thrown on. */
function refuseLockedOut(exchange: EarlyExchange, deps: SecretCheckDependencies, credentials: SecretCredentials, route: ProviderRoute, error: unknown): false {
  if (error instanceof TooManyFailedAttempts) return refuse(exchange, deps, credentials, route, error);
  throw error;
}

/**
 * Answers a failure as the provider's instrumentation does: 503 for a store failure (its line logged
 * at most once per interval, see logStoreUnavailable), else 500.
 */
export function answerFailure(exchange: EarlyExchange, logger: Logger, error: unknown, route: ProviderRoute): void {
  if (requestContext.getStore()?.storeUnavailable || isStoreUnavailableError(error)) {
    logStoreUnavailable(logger, error);
    respond(exchange, STORE_UNAVAILABLE, route, ['Retry-After', '1']);
  } else {
    logger.error({ err: error }, 'request failed');
    respond(exchange, SERVER_ERROR, route);
  }
}
