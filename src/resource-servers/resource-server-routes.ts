/** Admin routes for resource servers (CONTRACT.md section 6). */
import Router from '@koa/router';
import { z } from 'zod';
import type { AdminPrincipal } from '../admin/admin-auth.js';
import { readJsonBody } from '../admin/json-body.js';
import { Problem } from '../admin/problem.js';
import { absoluteUri, parseListQuery, parseOrProblem, scopeName, uniqueList } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { SIGNING_ALGS } from '../keys/signing-keys.js';
import { toPage } from '../shared/pagination.js';
import type { ResourceServer } from './resource-server.js';
import { selectResourceServer, selectResourceServerPage } from './resource-server-repository.js';
import { createResourceServer, DuplicateResourceServerError } from './resource-server-service.js';

/** The body of `POST /admin/resource-servers`. */
export const resourceServerCreateSchema = z
  .strictObject({
    identifier: absoluteUri,
    name: z.string().trim().min(1).max(200),
    scopes: uniqueList(scopeName, 200),
    sensitive_scopes: uniqueList(scopeName, 200).default([]),
    token_format: z.enum(['jwt', 'opaque']).default('jwt'),
    access_token_ttl: z.number().int().min(1).max(86_400).nullable().default(null),
    signing_alg: z.enum(SIGNING_ALGS).default('RS256'),
  })
  .superRefine((body, ctx) => {
    body.sensitive_scopes.forEach((scope, index) => {
      if (!body.scopes.includes(scope)) {
        ctx.addIssue({ code: 'custom', path: ['sensitive_scopes', index], message: `${scope} is not one of scopes` });
      }
    });
  });

/** The JSON form of a resource server in every answer. */
export function presentResourceServer(rs: ResourceServer) {
  return {
    id: rs.id,
    identifier: rs.identifier,
    name: rs.name,
    scopes: rs.scopes,
    sensitive_scopes: rs.sensitiveScopes,
    token_format: rs.tokenFormat,
    access_token_ttl: rs.accessTokenTtl,
    signing_alg: rs.signingAlg,
    introspection: { client_id: rs.introspectionClientId },
    created_at: rs.createdAt.toISOString(),
    updated_at: rs.updatedAt.toISOString(),
  };
}

/** The resource server routes, mounted under /admin. */
export function resourceServerRoutes(db: Db, bus: ChangeBus): Router {
  const router = new Router();

  router.post('/resource-servers', async (ctx) => {
    const body = parseOrProblem(resourceServerCreateSchema, await readJsonBody(ctx));
    const actor = (ctx.state.admin as AdminPrincipal).clientId;
    try {
      const { resourceServer, introspectionSecret } = await createResourceServer(
        { db, bus, actor },
        {
          identifier: body.identifier,
          name: body.name,
          scopes: body.scopes,
          sensitiveScopes: body.sensitive_scopes,
          tokenFormat: body.token_format,
          accessTokenTtl: body.access_token_ttl,
          signingAlg: body.signing_alg,
        },
      );
      ctx.status = 201;
      ctx.set('Location', `/admin/resource-servers/${resourceServer.id}`);
      ctx.set('Cache-Control', 'no-store');
      const presented = presentResourceServer(resourceServer);
      ctx.body = { ...presented, introspection: { ...presented.introspection, client_secret: introspectionSecret } };
    } catch (error) {
      if (error instanceof DuplicateResourceServerError) throw new Problem(409, error.message);
      throw error;
    }
  });

  router.get('/resource-servers', async (ctx) => {
    const { limit, after } = parseListQuery(ctx.query);
    const rows = await selectResourceServerPage(db, limit, after);
    ctx.body = toPage(rows, limit, (rs) => ({ createdAt: rs.createdAt.toISOString(), id: rs.id }), presentResourceServer);
  });

  router.get('/resource-servers/:id', async (ctx) => {
    const id = ctx.params.id!;
    const rs = z.uuid().safeParse(id).success ? await selectResourceServer(db, id) : undefined;
    if (!rs) throw new Problem(404, `no resource server ${id}`);
    ctx.body = presentResourceServer(rs);
  });

  return router;
}
