/**
 * The Koa application: request ids and logs, health, the admin API, and oidc-provider for the
 * protocol routes. The provider gets the raw request (no body parser in front of it).
 */
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import { adminAuthentication, requireAdminScope } from './admin/admin-auth.js';
import { routerFor, type AdminRoute } from './admin/admin-route.js';
import { buildOpenApiDocument } from './admin/openapi.js';
import { problemHandler } from './admin/problem.js';
import type { ClientRegistry } from './clients/client-registry.js';
import { clientRoutes } from './clients/client-routes.js';
import type { ProviderMetadataValidator } from './clients/client-service.js';
import type { Db } from './db/database.js';
import type { ChangeBus } from './events/change-bus.js';
import { jwksEndpoint, type JwksDocument } from './issuer/jwks-endpoint.js';
import { JWKS_PATH } from './issuer/provider.js';
import { keyRoutes, type KeyRouteDependencies } from './keys/key-routes.js';
import type { Logger } from './observability/logger.js';
import { resourceServerRoutes } from './resource-servers/resource-server-routes.js';

/** What the application routes to. */
export interface AppDependencies {
  readonly issuer: string;
  readonly logger: Logger;
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly clients: ClientRegistry;
  /** The provider in force (it is replaced, not mutated, when signing keys change). */
  readonly currentProvider: () => Provider;
  /** The JWKS document of the signing keys in force. */
  readonly currentJwks: () => JwksDocument;
  /** Seconds resource servers may cache the JWKS. */
  readonly jwksMaxAgeSeconds: number;
  readonly signingKeys: KeyRouteDependencies;
  readonly validateClientMetadata: ProviderMetadataValidator;
  /** Resolves when PostgreSQL and the token store answer; rejects naming the one that does not. */
  readonly checkReadiness: () => Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Builds the Koa application. */
export function createApp(deps: AppDependencies): Koa {
  const app = new Koa();
  // The issuer is configured: URLs are never built from a (forgeable) Host header.
  app.proxy = false;

  app.use(async function requestContext(ctx, next) {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    // Logged when the response is sent, which also covers the provider's routes (it writes to res itself).
    ctx.res.once('finish', () => {
      deps.logger.info(
        { requestId, method: ctx.method, path: ctx.path, status: ctx.res.statusCode, ms: Math.round(performance.now() - started) },
        'request',
      );
    });
    await next();
  });

  const health = new Router();
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
  app.use(health.routes());

  // Everything under /admin is the admin API: problem+json, bearer auth, and never the provider.
  const adminRoutes: AdminRoute[] = [
    ...resourceServerRoutes(deps.db, deps.bus),
    ...clientRoutes(deps.db, deps.bus, deps.validateClientMetadata),
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
  // Built once every route, this one included, is declared.
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
    if (ctx.path === '/admin' || ctx.path.startsWith('/admin/')) return adminApi(ctx, async () => {});
    return next();
  });

  app.use(jwksEndpoint(JWKS_PATH, deps.currentJwks, deps.jwksMaxAgeSeconds));

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
    ctx.respond = false;
    await callback(ctx.req, ctx.res);
  });

  return app;
}
