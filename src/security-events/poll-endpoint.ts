/**
 * The HTTP side of revocation events:
 * - `GET /.well-known/ssf-configuration`: the transmitter's metadata, in the spirit of the OpenID
 *   Shared Signals Framework (its `poll_endpoint` is this server's own member);
 * - `POST /events/poll`: RFC 8936 poll delivery, authenticated with the resource server's
 *   introspection credentials (HTTP Basic), through the same secret check and lockout as introspection;
 *   with this server's `cursor` extension member, a read by position that removes nothing (every
 *   instance of a resource server then reads every event).
 */
import type Koa from 'koa';
import { z } from 'zod';
import { basicCredentials } from '../issuer/dedicated-path.js';
import { TooManyFailedAttempts, type ClientSecretCheck } from '../issuer/client-authentication.js';
import type { Logger } from '../observability/logger.js';
import { isStoreUnavailableError, logStoreUnavailable } from '../observability/store-health.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { readBodyWithin } from '../shared/request-body.js';
import { requestContext, setRoute } from '../shared/request-context.js';
import { decodeCursor } from './event-cursor.js';
import { EVENT_TYPES } from './revocation-event.js';
import type { SecurityEvents } from './security-events.js';

/** Where the poll endpoint is, under the issuer. */
export const POLL_PATH = '/events/poll';
/** Where the transmitter metadata is. */
export const SSF_CONFIGURATION_PATH = '/.well-known/ssf-configuration';
/** Delivery method URIs (RFC 8936 poll, RFC 8935 push), as SSF names them. */
export const DELIVERY_METHODS = ['urn:ietf:rfc:8936', 'urn:ietf:rfc:8935'] as const;

/** A poll body larger than this is refused (1000 acknowledgements of long ids fit well within it). */
const MAX_POLL_BODY_BYTES = 64 * 1024;
/** Acknowledgements and errors one poll may carry. */
const MAX_ACKS = 1000;

const setId = z.string().min(1).max(256);

/**
 * The poll request (RFC 8936 section 2.4), and this server's `cursor` extension member (a read by
 * position: `""` from the oldest retained event, else a cursor this server answered). Other members
 * are ignored, as the RFC lets extensions add some.
 */
const pollBody = z.object({
  cursor: z.string().max(1024).optional(),
  maxEvents: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  returnImmediately: z.boolean().optional(),
  ack: z.array(setId).max(MAX_ACKS).optional(),
  setErrs: z
    .record(setId, z.object({ err: z.string().min(1).max(256), description: z.string().max(4096) }))
    .refine((errs) => Object.keys(errs).length <= MAX_ACKS, `must hold at most ${MAX_ACKS} entries`)
    .optional(),
});

/** What the endpoints consult. */
export interface SecurityEventRouteDependencies {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly events: SecurityEvents;
  readonly resourceServers: ResourceServerRegistry;
  readonly checkClientSecret: ClientSecretCheck;
  readonly logger: Logger;
}

/** An RFC 8936 error answer (`err`, `description`). */
function refuse(ctx: Koa.Context, status: number, err: string, description: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { err, description };
}

/** The transmitter metadata (docs/revocation-events.md). */
export function ssfConfiguration(issuer: string, jwksUri: string) {
  return {
    spec_version: '1_0',
    issuer,
    jwks_uri: jwksUri,
    delivery_methods_supported: [...DELIVERY_METHODS],
    poll_endpoint: `${issuer}${POLL_PATH}`,
    events_supported: [...EVENT_TYPES],
  };
}

/** The middleware answering both paths; every other request goes on. */
export function securityEventRoutes(deps: SecurityEventRouteDependencies): Koa.Middleware {
  const configuration = ssfConfiguration(deps.issuer, deps.jwksUri);
  return async function securityEventEndpoints(ctx, next) {
    if (ctx.path === SSF_CONFIGURATION_PATH) {
      setRoute('ssf_configuration');
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        ctx.set('Allow', 'GET, HEAD');
        return refuse(ctx, 405, 'invalid_request', 'use GET');
      }
      ctx.set('Cache-Control', 'public, max-age=300');
      ctx.body = configuration;
      return;
    }
    if (ctx.path !== POLL_PATH) {
      await next();
      return;
    }
    setRoute('events_poll');
    if (ctx.method !== 'POST') {
      ctx.set('Allow', 'POST');
      return refuse(ctx, 405, 'invalid_request', 'use POST');
    }
    await poll(ctx);
  };

  async function poll(ctx: Koa.Context): Promise<void> {
    const credentials = basicCredentials(ctx.get('authorization'));
    const challenge = `Basic realm="${deps.issuer}"`;
    if (!credentials) {
      ctx.set('WWW-Authenticate', challenge);
      return refuse(ctx, 401, 'authentication_failed', "authenticate with the resource server's introspection credentials (HTTP Basic)");
    }
    try {
      const context = requestContext.getStore();
      const right = await deps.checkClientSecret(credentials.clientId, credentials.secret, context?.ip ?? '');
      await deps.resourceServers.settled();
      const rs = deps.resourceServers.byIntrospectionClientId(credentials.clientId);
      if (!right || !rs) {
        ctx.set('WWW-Authenticate', challenge);
        return refuse(ctx, 401, 'authentication_failed', 'invalid client credentials, or not those of a resource server');
      }
      if (context) context.clientId = credentials.clientId;
      const body = await readBodyWithin(ctx.req, MAX_POLL_BODY_BYTES);
      if (!body) {
        ctx.set('Connection', 'close');
        return refuse(ctx, 413, 'invalid_request', `the body must not exceed ${MAX_POLL_BODY_BYTES} bytes`);
      }
      let json: unknown = {};
      if (body.length > 0) {
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          return refuse(ctx, 400, 'invalid_request', 'the body is not JSON');
        }
      }
      const parsed = pollBody.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue.path.length > 0 ? issue.path.join('.') : 'the body';
        return refuse(ctx, 400, 'invalid_request', `${where}: ${issue.message}`);
      }
      const request = parsed.data;
      if (request.cursor !== undefined) {
        // A read by position removes nothing, so it has nothing to acknowledge.
        if (request.ack !== undefined || request.setErrs !== undefined) {
          return refuse(ctx, 400, 'invalid_request', 'cursor: a read by cursor takes neither ack nor setErrs');
        }
        const after = decodeCursor(request.cursor);
        if (after === undefined) return refuse(ctx, 400, 'invalid_request', 'cursor: not a cursor this server answered');
        const answer = await deps.events.readAfter(rs, { maxEvents: request.maxEvents, returnImmediately: request.returnImmediately ?? false, after });
        ctx.set('Cache-Control', 'no-store');
        ctx.body = answer;
        return;
      }
      const answer = await deps.events.poll(rs, {
        maxEvents: request.maxEvents,
        returnImmediately: request.returnImmediately ?? false,
        ack: request.ack ?? [],
        setErrs: request.setErrs ?? {},
      });
      ctx.set('Cache-Control', 'no-store');
      ctx.body = answer;
    } catch (error) {
      if (error instanceof TooManyFailedAttempts) {
        const retryAfter = requestContext.getStore()?.retryAfterSeconds;
        if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
        return refuse(ctx, 429, 'too_many_requests', 'too many failed authentication attempts; retry later');
      }
      if (isStoreUnavailableError(error)) {
        logStoreUnavailable(deps.logger, error);
        ctx.set('Retry-After', '1');
        return refuse(ctx, 503, 'temporarily_unavailable', 'the event store does not answer; retry shortly');
      }
      deps.logger.error({ err: error }, 'poll failed');
      return refuse(ctx, 500, 'server_error', 'the poll could not be answered');
    }
  }
}
