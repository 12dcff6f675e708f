/** Admin routes for resource servers (docs/admin-api.md, "Resource servers"). */
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { listRoute, type AdminRoute } from '../admin/admin-route.js';
import { readJsonBody } from '../admin/json-body.js';
import { Problem } from '../admin/problem.js';
import { absoluteUri, secretRotationSchema, parseOrProblem, scopeName, timestamp, uniqueList } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { SIGNING_ALGS } from '../keys/signing-keys.js';
import type { ResourceServer } from './resource-server.js';
import { selectResourceServer, selectResourceServerPage } from './resource-server-repository.js';
import {
  createResourceServer,
  deleteResourceServer,
  rotateIntrospectionSecret,
  updateResourceServer,
  type ResourceServerInput,
} from './resource-server-service.js';

/** Each resource server field's schema, shared by create (with defaults) and update (all optional). */
const resourceServerFields = {
  identifier: absoluteUri,
  name: z.string().trim().min(1).max(200),
  scopes: uniqueList(scopeName, 200),
  sensitive_scopes: uniqueList(scopeName, 200),
  token_format: z.enum(['jwt', 'opaque']),
  access_token_ttl: z.number().int().min(1).max(86_400).nullable(),
  signing_alg: z.enum(SIGNING_ALGS),
  /** `jwt`: introspection answers are RFC 9701 signed JWTs even when the request does not ask. */
  introspection_response: z.enum(['json', 'jwt']),
};

/** The body of `PATCH /admin/resource-servers/{id}`: any field but the identifier, which never changes. */
export const resourceServerPatchSchema = z.strictObject(resourceServerFields).partial();

/** The body of `POST /admin/resource-servers`. */
export const resourceServerCreateSchema = z
  .strictObject({
    ...resourceServerFields,
    sensitive_scopes: resourceServerFields.sensitive_scopes.default([]),
    token_format: resourceServerFields.token_format.default('jwt'),
    access_token_ttl: resourceServerFields.access_token_ttl.default(null),
    signing_alg: resourceServerFields.signing_alg.default('RS256'),
    introspection_response: resourceServerFields.introspection_response.default('json'),
  })
  .superRefine((body, ctx) => {
    body.sensitive_scopes.forEach((scope, index) => {
      if (!body.scopes.includes(scope)) {
        ctx.addIssue({ code: 'custom', path: ['sensitive_scopes', index], message: `${scope} is not one of scopes` });
      }
    });
  });

/** The service input a validated body stands for. */
function inputFromBody(body: z.output<typeof resourceServerCreateSchema>): ResourceServerInput {
  return {
    identifier: body.identifier,
    name: body.name,
    scopes: body.scopes,
    sensitiveScopes: body.sensitive_scopes,
    tokenFormat: body.token_format,
    accessTokenTtl: body.access_token_ttl,
    signingAlg: body.signing_alg,
    introspectionResponse: body.introspection_response,
  };
}

/** The JSON form of a resource server in every answer. */
export const resourceServerSchema = z.object({
  id: z.uuid(),
  identifier: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  sensitive_scopes: z.array(z.string()),
  token_format: z.enum(['jwt', 'opaque']),
  access_token_ttl: z.number().int().nullable(),
  signing_alg: z.enum(SIGNING_ALGS),
  introspection_response: z.enum(['json', 'jwt']),
  introspection: z.object({ client_id: z.string() }),
  created_at: timestamp,
  updated_at: timestamp,
});

const createdResourceServerSchema = resourceServerSchema.extend({
  introspection: z.object({ client_id: z.string(), client_secret: z.string() }),
});

/** Presents a resource server as `resourceServerSchema` describes. */
export function presentResourceServer(rs: ResourceServer): z.output<typeof resourceServerSchema> {
  return {
    id: rs.id,
    identifier: rs.identifier,
    name: rs.name,
    scopes: [...rs.scopes],
    sensitive_scopes: [...rs.sensitiveScopes],
    token_format: rs.tokenFormat,
    access_token_ttl: rs.accessTokenTtl,
    signing_alg: rs.signingAlg,
    introspection_response: rs.introspectionResponse,
    introspection: { client_id: rs.introspectionClientId },
    created_at: rs.createdAt.toISOString(),
    updated_at: rs.updatedAt.toISOString(),
  };
}

/** The resource server routes (under /admin). */
export function resourceServerRoutes(db: Db, bus: ChangeBus, protectedIdentifiers: readonly string[]): AdminRoute[] {
  return [
    {
      method: 'post',
      path: '/resource-servers',
      summary: 'Register a resource server (an API); its introspection secret is shown in this answer only',
      body: resourceServerCreateSchema,
      success: { status: 201, schema: createdResourceServerSchema },
      problems: [400, 409, 413, 415, 422],
      handler: async (ctx) => {
        const body = parseOrProblem(resourceServerCreateSchema, await readJsonBody(ctx));
        const { resourceServer, introspectionSecret } = await createResourceServer({ db, bus, actor: actorOf(ctx) }, inputFromBody(body));
        ctx.status = 201;
        ctx.set('Location', `/admin/resource-servers/${resourceServer.id}`);
        ctx.set('Cache-Control', 'no-store');
        const presented = presentResourceServer(resourceServer);
        ctx.body = { ...presented, introspection: { ...presented.introspection, client_secret: introspectionSecret } };
      },
    },
    listRoute({
      path: '/resource-servers',
      summary: 'List resource servers',
      item: resourceServerSchema,
      selectPage: (limit, after) => selectResourceServerPage(db, limit, after),
      cursorOf: (rs) => ({ createdAt: rs.createdAt.toISOString(), id: rs.id }),
      present: presentResourceServer,
    }),
    {
      method: 'get',
      path: '/resource-servers/:id',
      summary: 'Read a resource server',
      success: { status: 200, schema: resourceServerSchema },
      problems: [404],
      handler: async (ctx) => {
        ctx.body = presentResourceServer(await resourceServerOr404(db, ctx.params.id!));
      },
    },
    {
      method: 'patch',
      path: '/resource-servers/:id',
      summary: 'Change a resource server (partial update, validated as a whole); the next token follows it',
      body: resourceServerPatchSchema,
      success: { status: 200, schema: resourceServerSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx) => {
        const patch = parseOrProblem(resourceServerPatchSchema, await readJsonBody(ctx));
        const current = await resourceServerOr404(db, ctx.params.id!);
        if (patch.identifier !== undefined && patch.identifier !== current.identifier) {
          throw new Problem(422, 'invalid fields', [{ path: 'identifier', message: 'cannot change: clients refer to it' }]);
        }
        const { id: _id, introspection: _introspection, created_at: _created, updated_at: _updated, ...fields } = presentResourceServer(current);
        const body = parseOrProblem(resourceServerCreateSchema, { ...fields, ...patch });
        const { identifier: _identifier, ...changes } = inputFromBody(body);
        const updated = await updateResourceServer({ db, bus, actor: actorOf(ctx) }, current.id, changes, protectedIdentifiers);
        ctx.body = presentResourceServer(updated);
      },
    },
    {
      method: 'delete',
      path: '/resource-servers/:id',
      summary: 'Delete a resource server; 409 while clients still use it',
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx) => {
        const current = await resourceServerOr404(db, ctx.params.id!);
        await deleteResourceServer({ db, bus, actor: actorOf(ctx) }, current.id, protectedIdentifiers);
        ctx.status = 204;
      },
    },
    {
      method: 'post',
      path: '/resource-servers/:id/secret',
      summary: 'Give the resource server a new introspection secret; the old one keeps working for grace_seconds (default 0)',
      body: secretRotationSchema,
      success: { status: 200, schema: z.object({ client_id: z.string(), client_secret: z.string() }) },
      problems: [400, 404, 413, 415, 422],
      handler: async (ctx) => {
        const { grace_seconds } = parseOrProblem(secretRotationSchema, await readJsonBody(ctx, { optional: true }));
        const current = await resourceServerOr404(db, ctx.params.id!);
        const { clientId, secret } = await rotateIntrospectionSecret({ db, bus, actor: actorOf(ctx) }, current.id, grace_seconds);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { client_id: clientId, client_secret: secret };
      },
    },
  ];
}

/** The resource server with this id, or a 404 problem (also for ids that are not UUIDs). */
export async function resourceServerOr404(db: Db, id: string): Promise<ResourceServer> {
  const rs = z.uuid().safeParse(id).success ? await selectResourceServer(db, id) : undefined;
  if (!rs) throw new Problem(404, `no resource server ${id}`);
  return rs;
}
