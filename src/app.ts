/**
 * The Koa application: request ids and logs, health, the admin API, the interaction pages, and
 * oidc-provider for the protocol routes. The provider gets the raw request (no body parser in front
 * of it).
 */
import { sessionsWithBackchannelLogout } from './issuer/backchannel-logout.js';
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import { accountRoutes } from './accounts/account-routes.js';
import { adminAudience, adminAuthentication, requireAdminScope } from './admin/admin-auth.js';
import { routerFor, type AdminRoute } from './admin/admin-route.js';
import { buildOpenApiDocument } from './admin/openapi.js';
import { problemHandler } from './admin/problem.js';
import { clientRoutes } from './clients/client-routes.js';
import { auditRoutes } from './audit/audit-routes.js';
import { requestContext, setRoute, type RequestContext } from './shared/request-context.js';
import { hasBody, readBodyWithin, type RequestWithBody } from './shared/request-body.js';
import { httpDuration, httpRequests, labelledChildren } from './observability/metrics.js';
import { requestTracing } from './observability/tracing.js';
import { interactionRoutes } from './interactions/interaction-routes.js';
import { dedicatedIntrospection } from './issuer/dedicated-introspection.js';
import { dedicatedIssuance } from './issuer/dedicated-issuance.js';
import { dedicatedRevocation } from './issuer/dedicated-revocation.js';
import { jwksEndpoint } from './issuer/jwks-endpoint.js';
import { INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, TOKEN_PATH } from './issuer/provider.js';
import { userinfoForApiTokens } from './issuer/userinfo-for-api-tokens.js';
import { protocolMethods } from './issuer/protocol-routes.js';
import { keyRoutes } from './keys/key-routes.js';
import type { SigningAlg } from './keys/signing-keys.js';
import type { Services } from './services.js';
import { resourceServerRoutes } from './resource-servers/resource-server-routes.js';
import { securityEventRoutes } from './security-events/poll-endpoint.js';

/** What the application routes to: the services, and the settings the routes read. */
export type AppDependencies = Pick<
  Services,
  | 'logger'
  | 'db'
  | 'bus'
  | 'clients'
  | 'accounts'
  | 'resourceServers'
  | 'tokenStore'
  | 'limiter'
  | 'currentProvider'
  | 'currentJwtVerifier'
  | 'checkClientSecret'
  | 'currentJwks'
  | 'currentKid'
  | 'signingKeys'
  | 'validateClientMetadata'
  | 'checkReadiness'
  | 'securityEvents'
> & {
  readonly issuer: string;
  /** Client addresses come from our proxy's X-Forwarded-For entry. */
  readonly trustProxy: boolean;
  /** Seconds resource servers may cache the JWKS. */
  readonly jwksMaxAgeSeconds: number;
  /** The enabled signing algorithms (`SIGNING_ALGS`). */
  readonly signingAlgs: readonly SigningAlg[];
  /** Answer the hottest requests on dedicated paths in front of the provider (docs/dedicated-paths.md). */
  readonly dedicatedPaths: boolean;
  /** NODE_ENV=production. */
  readonly production: boolean;
};

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** OAuth form bodies larger than this answer 413. */
const MAX_FORM_BODY_BYTES = 64 * 1024;

function refuseLargeBody(ctx: Koa.Context): void {
  ctx.status = 413;
  // The rest of the body is not read.
  ctx.set('Connection', 'close');
  ctx.body = { error: 'invalid_request', error_description: `the body must not exceed ${MAX_FORM_BODY_BYTES} bytes` };
}

/** Safe on every answer; HTML pages add their own Content-Security-Policy on top. */
const COMMON_HEADERS = [
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'DENY'],
] as const;

const requestCount = labelledChildren((route: string, method: string, status: string) => httpRequests.labels(route, method, status));
const requestTimer = labelledChildren((route: string) => httpDuration.labels(route));

/** Paths served by the interaction router (its pages and their assets). */
const isInteractionPath = (path: string) => path.startsWith('/interaction/') || path.startsWith('/assets/');

/** The address a request comes from: the socket's, or the one our own proxy appended to X-Forwarded-For. */
function clientAddress(ctx: Koa.Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = ctx.get('x-forwarded-for').split(',').at(-1)?.trim();
    if (forwarded) return forwarded;
  }
  return ctx.req.socket.remoteAddress ?? 'unknown';
}

/** Builds the Koa application. */
export function createApp(deps: AppDependencies): Koa {
  const app = new Koa();
  // The issuer is configured: URLs are never built from a (forgeable) Host header.
  app.proxy = false;
  // Koa would print unhandled errors with their stack to stderr; they go to the JSON log instead.
  app.silent = true;
  app.on('error', (error: unknown) => deps.logger.error({ err: error }, 'unhandled request error'));

  app.use(function tagRequest(ctx, next) {
    const { req, res } = ctx;
    const incoming = req.headers['x-request-id'];
    const context: RequestContext = {
      requestId: typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID(),
      ip: clientAddress(ctx, deps.trustProxy),
    };
    res.setHeader('X-Request-Id', context.requestId);
    for (const [name, value] of COMMON_HEADERS) res.setHeader(name, value);
    const started = performance.now();
    // Recorded when the response is sent, which also covers the provider's routes (it writes to res itself).
    res.once('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      const route = context.route ?? 'other';
      const status = res.statusCode;
      const method = req.method ?? 'GET';
      // One line per request; not even its fields are gathered when info is off. 'finish' fires
      // outside the request's async context: its ids are given here.
      if (deps.logger.isLevelEnabled('info')) {
        deps.logger.info(
          { requestId: context.requestId, traceId: context.traceId, method, path: ctx.path, route, status, ms: Math.round(seconds * 1000) },
          'request',
        );
      }
      requestCount(route, method, String(status)).inc();
      requestTimer(route).observe(seconds);
    });
    return requestContext.run(context, next);
  });
  // OpenTelemetry's server span, inside the request context (nothing when tracing is off).
  for (const middleware of requestTracing()) app.use(middleware);

  // The JWKS is answered before anything else a request goes through: it needs none of it.
  app.use(jwksEndpoint(JWKS_PATH, deps.currentJwks, deps.jwksMaxAgeSeconds));

  app.use(async function limitOAuthBodies(ctx, next) {
    // A declared body too large to be a real request is refused before anything else (the admin API
    // has its own, larger limit; bodies sent without a length are counted as they are read).
    if (ctx.method === 'POST' && (ctx.request.length ?? 0) > MAX_FORM_BODY_BYTES && !ctx.path.startsWith('/admin')) {
      refuseLargeBody(ctx);
      return;
    }
    await next();
  });

  if (deps.dedicatedPaths) {
    // First after the body limit: the hottest request needs none of the routing below.
    app.use(dedicatedIntrospection({ ...deps, introspectionPath: INTROSPECTION_PATH }));
    app.use(dedicatedIssuance({ ...deps, tokenPath: TOKEN_PATH }));
    app.use(dedicatedRevocation({ ...deps, revocationPath: REVOCATION_PATH }));
  }

  const health = new Router();
  health.use(async (ctx, next) => {
    setRoute(ctx.path.slice(1));
    await next();
  });
  health.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  health.get('/readyz', async (ctx) => {
    try {
      await deps.checkReadiness();
      ctx.body = { status: 'ready' };
    } catch (error) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: error instanceof Error ? error.message : 'not ready' };
    }
  });
  const healthApi = compose([health.routes()] as Koa.Middleware[]);
  // The router matches every path it is given: only the two of its own are.
  app.use(function routeHealth(ctx, next) {
    return ctx.path === '/healthz' || ctx.path === '/readyz' ? healthApi(ctx, next) : next();
  });

  // Revocation events: the poll endpoint and the transmitter metadata (never the provider).
  app.use(
    securityEventRoutes({
      issuer: deps.issuer,
      jwksUri: `${deps.issuer}${JWKS_PATH}`,
      events: deps.securityEvents,
      resourceServers: deps.resourceServers,
      checkClientSecret: deps.checkClientSecret,
      logger: deps.logger,
    }),
  );

  // Everything under /admin is the admin API: problem+json, bearer auth, and never the provider.
  const adminRoutes: AdminRoute[] = [
    ...resourceServerRoutes(deps.db, deps.bus, {
      protectedIdentifiers: [adminAudience(deps.issuer)],
      enabledAlgs: deps.signingAlgs,
      production: deps.production,
      kek: deps.signingKeys.kek,
    }),
    ...clientRoutes(deps.db, deps.bus, deps.validateClientMetadata),
    ...auditRoutes(deps.db),
    ...accountRoutes(deps.db, deps.bus, sessionsWithBackchannelLogout(deps.tokenStore, deps.currentProvider, deps.logger)),
    ...keyRoutes(deps.signingKeys),
  ];
  adminRoutes.push({
    method: 'get',
    path: '/openapi.json',
    summary: 'This OpenAPI 3.1 document',
    success: { status: 200 },
    problems: [],
    handler: async (ctx) => {
      ctx.body = openApiDocument;
    },
  });
  // Built once every route, this one included, is declared (the handler above runs only later).
  const openApiDocument = buildOpenApiDocument(adminRoutes, deps.issuer);
  const adminRouter = routerFor(adminRoutes);
  adminRouter.prefix('/admin');
  const adminApi = compose<Koa.ParameterizedContext>([
    problemHandler(deps.logger),
    adminAuthentication(deps.currentProvider, deps.clients, deps.issuer),
    requireAdminScope,
    adminRouter.routes(),
    adminRouter.allowedMethods(),
  ] as Koa.Middleware[]);
  app.use(async function routeAdmin(ctx, next) {
    if (ctx.path === '/admin' || ctx.path.startsWith('/admin/')) await adminApi(ctx, async () => {});
    else await next();
  });

  app.use(protocolMethods(deps.issuer));

  const interactions = interactionRoutes(deps);
  const interactionApi = compose([interactions.routes(), interactions.allowedMethods()] as Koa.Middleware[]);
  app.use(function routeInteractions(ctx, next) {
    return isInteractionPath(ctx.path) ? interactionApi(ctx, next) : next();
  });

  app.use(userinfoForApiTokens(deps));

  const callbacks = new WeakMap<Provider, ReturnType<Provider['callback']>>();
  app.use(async function delegateToProvider(ctx) {
    // RFC 8414 metadata is the OpenID discovery document under another name.
    if (ctx.path === '/.well-known/oauth-authorization-server') ctx.path = '/.well-known/openid-configuration';
    const provider = deps.currentProvider();
    let callback = callbacks.get(provider);
    if (!callback) {
      callback = provider.callback();
      callbacks.set(provider, callback);
    }
    const req = ctx.req as RequestWithBody;
    // A dedicated path that read the body and left the request to the provider has kept it already.
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD' && req.body === undefined && hasBody(req)) {
      // Read here, counting bytes as they arrive, so that a chunked body is held to the same limit as
      // a declared one (the provider's own reader would answer 400, at 56 KiB); the provider then
      // parses what was read (its documented `req.body` path).
      const body = await readBodyWithin(req, MAX_FORM_BODY_BYTES);
      if (!body) return refuseLargeBody(ctx);
      req.body = body;
    }
    ctx.respond = false;
    await callback(req, ctx.res);
  });

  return app;
}
