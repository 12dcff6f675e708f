/**
 * The server's request listener: the hottest routes answered early (the JWKS and the dedicated paths,
 * src/issuer/early-dispatch.ts), then the Koa application: request ids and logs, health, the admin API,
 * the interaction pages, and oidc-provider for the protocol routes. The provider gets the raw request
 * (no body parser in front of it).
 */
import { sessionsWithBackchannelLogout } from './issuer/backchannel-logout.js';
import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import { accountPageRoutes, isAccountPagePath } from './account-page/account-page-routes.js';
import { accountRoutes } from './accounts/account-routes.js';
import { factorRoutes } from './factors/factor-routes.js';
import { adminAudience, adminAuthentication, requireAdminScope } from './admin/admin-auth.js';
import { routerFor, type AdminRoute } from './admin/admin-route.js';
import { buildOpenApiDocument } from './admin/openapi.js';
import { problemHandler } from './admin/problem.js';
import { clientRoutes } from './clients/client-routes.js';
import { auditRoutes } from './audit/audit-routes.js';
import { requestContext, setRoute } from './shared/request-context.js';
import { tagRequest } from './shared/request-tagging.js';
import { hasBody, readBodyWithin, type RequestWithBody } from './shared/request-body.js';
import { requestTracing } from './observability/tracing.js';
import { interactionRoutes } from './interactions/interaction-routes.js';
import { dedicatedIntrospection } from './issuer/dedicated-introspection.js';
import { dedicatedIssuance } from './issuer/dedicated-issuance.js';
import { dedicatedRevocation } from './issuer/dedicated-revocation.js';
import { earlyDispatch, type EarlyRoute } from './issuer/early-dispatch.js';
import { jwksEndpoint } from './issuer/jwks-endpoint.js';
import { INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, TOKEN_PATH } from './issuer/provider.js';
import { userinfoForApiTokens } from './issuer/userinfo-for-api-tokens.js';
import { protocolMethods } from './issuer/protocol-routes.js';
import { keyRoutes } from './keys/key-routes.js';
import type { SigningAlg } from './keys/signing-keys.js';
import type { Services } from './services.js';
import { resourceServerRoutes } from './resource-servers/resource-server-routes.js';
import { securityEventRoutes } from './security-events/poll-endpoint.js';
import { entitlementRoutes } from './groups/entitlement-routes.js';
import { groupRoutes } from './groups/group-routes.js';

/** What the application routes to: the services, and the settings the routes read. */
export type AppDependencies = Pick<
  Services,
  | 'logger'
  | 'db'
  | 'bus'
  | 'clients'
  | 'accounts'
  | 'resourceServers'
  | 'entitlements'
  | 'tokenStore'
  | 'limiter'
  | 'factorSettings'
  | 'currentProvider'
  | 'currentJwtVerifier'
  | 'currentJwtSigner'
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

/** OAuth form bodies larger than this answer 413. */
const MAX_FORM_BODY_BYTES = 64 * 1024;

function refuseLargeBody(ctx: Koa.Context): void {
  ctx.status = 413;
  // The rest of the body is not read.
  ctx.set('Connection', 'close');
  ctx.body = { error: 'invalid_request', error_description: `the body must not exceed ${MAX_FORM_BODY_BYTES} bytes` };
}

/** Paths served by the interaction router (its pages and their assets). */
const isInteractionPath = (path: string) => path.startsWith('/interaction/') || path.startsWith('/assets/');

/** Builds the Koa application. */
export function createApp(deps: AppDependencies): Koa {
  const app = new Koa();
  // The issuer is configured: URLs are never built from a (forgeable) Host header.
  app.proxy = false;
  // Koa would print unhandled errors with their stack to stderr; they go to the JSON log instead.
  app.silent = true;
  app.on('error', (error: unknown) => deps.logger.error({ err: error }, 'unhandled request error'));

  app.use(function tagRequestContext(ctx, next) {
    // A request the early dispatch left to the application was tagged there: the same context comes back.
    return requestContext.run(tagRequest(ctx.req, ctx.res, deps), next);
  });
  // OpenTelemetry's server span, inside the request context (nothing when tracing is off).
  for (const middleware of requestTracing()) app.use(middleware);

  app.use(async function limitOAuthBodies(ctx, next) {
    // A declared body too large to be a real request is refused before anything else (the admin API
    // has its own, larger limit; bodies sent without a length are counted as they are read).
    if (ctx.method === 'POST' && (ctx.request.length ?? 0) > MAX_FORM_BODY_BYTES && !ctx.path.startsWith('/admin')) {
      refuseLargeBody(ctx);
      return;
    }
    await next();
  });

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
    ...factorRoutes(deps.db, deps.bus, sessionsWithBackchannelLogout(deps.tokenStore, deps.currentProvider, deps.logger)),
    ...keyRoutes(deps.signingKeys),
    ...groupRoutes(deps.db, deps.bus, adminAudience(deps.issuer)),
    ...entitlementRoutes(deps.db, deps.bus, adminAudience(deps.issuer)),
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
    adminAuthentication(deps.currentProvider, deps.clients, deps.issuer, deps),
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

  const accountPage = accountPageRoutes(deps);
  const accountPageApi = compose([accountPage.routes(), accountPage.allowedMethods()] as Koa.Middleware[]);
  app.use(function routeAccountPage(ctx, next) {
    return isAccountPagePath(ctx.path) ? accountPageApi(ctx, next) : next();
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

/**
 * The routes answered before the Koa application: the JWKS, and the dedicated paths unless
 * `DEDICATED_PATHS=false` (docs/dedicated-paths.md).
 */
function earlyRoutes(deps: AppDependencies): EarlyRoute[] {
  const routes = [jwksEndpoint(JWKS_PATH, deps.currentJwks, deps.jwksMaxAgeSeconds)];
  if (deps.dedicatedPaths) {
    routes.push(
      dedicatedIntrospection({ ...deps, introspectionPath: INTROSPECTION_PATH }),
      dedicatedIssuance({ ...deps, tokenPath: TOKEN_PATH }),
      dedicatedRevocation({ ...deps, revocationPath: REVOCATION_PATH }),
    );
  }
  return routes;
}

/** The server's request listener: the early routes, then the Koa application of `createApp`. */
export function createRequestListener(deps: AppDependencies): RequestListener {
  return earlyDispatch(createApp(deps), earlyRoutes(deps), deps);
}
