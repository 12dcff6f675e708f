/** Admin routes for resource servers (docs/admin-api.md, "Resource servers"). */
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, listRoute, type AdminRoute } from '../admin/admin-route.js';
import { Problem } from '../admin/problem.js';
import { absoluteUri, mergePatch, scopeName, secretRotationSchema, timestamp, uniqueList, uuidId } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { SIGNING_ALGS, type SigningAlg } from '../keys/signing-keys.js';
import { encryptWithKek, type KeyEncryptionKey } from '../keys/key-encryption.js';
import type { ResourceServer } from './resource-server.js';
import { eventsEndpointTokenContext, selectResourceServerPage } from './resource-server-repository.js';
import {
  createResourceServer,
  deleteResourceServer,
  existingResourceServer,
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

/** Host names that are loopback, where push may go over plain http outside production. */
const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** Where security events are pushed (RFC 8935): an https URL (http to loopback outside production: checked by the route). */
const eventsEndpoint = absoluteUri.refine((v) => ['https:', 'http:'].includes(URL.parse(v)?.protocol ?? ''), 'must be an https URL');

/**
 * The body of `PATCH /admin/resource-servers/{id}`: any field but the identifier, which never changes;
 * and the push delivery of its security events (`events_endpoint`, and `events_endpoint_token`, the
 * bearer credential presented there: write-only). `null` removes either.
 */
export const resourceServerPatchSchema = z
  .strictObject({
    ...resourceServerFields,
    events_endpoint: eventsEndpoint.nullable(),
    events_endpoint_token: z
      .string()
      .min(16)
      .max(4096)
      .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
      .nullable(),
  })
  .partial();

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

/** The path parameters of the routes of one resource server: its id is a UUID, so no other value is looked up. */
const resourceServerParams = z.object({ id: uuidId });

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
  /** Where its security events are pushed (RFC 8935), or null: it polls them. Its credential is never shown. */
  events_endpoint: z.string().nullable(),
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
    events_endpoint: rs.eventsEndpoint,
    created_at: rs.createdAt.toISOString(),
    updated_at: rs.updatedAt.toISOString(),
  };
}

/**
 * Refuses an algorithm the deployment does not enable (`SIGNING_ALGS`): it has no key to sign with,
 * and the resource server would get no token at all.
 */
function requireEnabledAlg(alg: SigningAlg, enabledAlgs: readonly SigningAlg[]): void {
  if (!enabledAlgs.includes(alg)) {
    throw new Problem(422, 'invalid fields', [
      { path: 'signing_alg', message: `${alg} is not enabled on this server (SIGNING_ALGS is ${enabledAlgs.join(',')})` },
    ]);
  }
}

/** Refuses plain http to anything but loopback, and to loopback too in production. */
function requirePushableEndpoint(endpoint: string, production: boolean): void {
  const url = new URL(endpoint);
  if (url.protocol === 'https:') return;
  if (production || !LOOPBACK_HOST.test(url.hostname)) {
    throw new Problem(422, 'invalid fields', [
      { path: 'events_endpoint', message: production ? 'must be an https URL' : 'must be an https URL (or http to a loopback address)' },
    ]);
  }
}

/** What the resource server routes need beyond the database and the bus. */
export interface ResourceServerRouteOptions {
  readonly protectedIdentifiers: readonly string[];
  /** The enabled signing algorithms (`SIGNING_ALGS`). */
  readonly enabledAlgs: readonly SigningAlg[];
  /** NODE_ENV=production: push endpoints must be https. */
  readonly production: boolean;
  /** Seals push credentials (they must be sent, so they are encrypted, not digested). */
  readonly kek: KeyEncryptionKey;
}

/** The resource server routes (under /admin). */
export function resourceServerRoutes(db: Db, bus: ChangeBus, options: ResourceServerRouteOptions): AdminRoute[] {
  const { protectedIdentifiers, enabledAlgs } = options;
  return [
    adminRoute({
      method: 'post',
      path: '/resource-servers',
      summary: 'Register a resource server (an API); its introspection secret is shown in this answer only',
      body: resourceServerCreateSchema,
      success: { status: 201, schema: createdResourceServerSchema },
      problems: [400, 409, 413, 415, 422],
      handler: async (ctx, { body }) => {
        requireEnabledAlg(body.signing_alg, enabledAlgs);
        const { resourceServer, introspectionSecret } = await createResourceServer({ db, bus, actor: actorOf(ctx) }, inputFromBody(body));
        ctx.status = 201;
        ctx.set('Location', `/admin/resource-servers/${resourceServer.id}`);
        ctx.set('Cache-Control', 'no-store');
        const presented = presentResourceServer(resourceServer);
        ctx.body = { ...presented, introspection: { ...presented.introspection, client_secret: introspectionSecret } };
      },
    }),
    listRoute({
      path: '/resource-servers',
      summary: 'List resource servers',
      item: resourceServerSchema,
      selectPage: (limit, after) => selectResourceServerPage(db, limit, after),
      cursorOf: (rs) => ({ createdAt: rs.createdAt.toISOString(), id: rs.id }),
      present: presentResourceServer,
      cursorId: uuidId,
    }),
    adminRoute({
      method: 'get',
      path: '/resource-servers/:id',
      summary: 'Read a resource server',
      params: resourceServerParams,
      success: { status: 200, schema: resourceServerSchema },
      problems: [404],
      handler: async (ctx, { params }) => {
        ctx.body = presentResourceServer(await existingResourceServer(db, params.id));
      },
    }),
    adminRoute({
      method: 'patch',
      path: '/resource-servers/:id',
      params: resourceServerParams,
      summary: 'Change a resource server (partial update, validated as a whole); the next token follows it',
      body: resourceServerPatchSchema,
      success: { status: 200, schema: resourceServerSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx, { params, body: patch }) => {
        const current = await existingResourceServer(db, params.id);
        if (patch.identifier !== undefined && patch.identifier !== current.identifier) {
          throw new Problem(422, 'invalid fields', [{ path: 'identifier', message: 'cannot change: clients refer to it' }]);
        }
        const {
          id: _id,
          introspection: _introspection,
          events_endpoint: _eventsEndpoint,
          created_at: _created,
          updated_at: _updated,
          ...fields
        } = presentResourceServer(current);
        const { events_endpoint: endpoint, events_endpoint_token: token, ...tokenFields } = patch;
        const body = mergePatch(resourceServerCreateSchema, fields, tokenFields);
        if (endpoint) requirePushableEndpoint(endpoint, options.production);
        const sealed =
          token === undefined || token === null
            ? token
            : { sealed: encryptWithKek(options.kek, token, eventsEndpointTokenContext(current.id, options.kek.id)), kekId: options.kek.id };
        // Only a change of algorithm is checked: one registered before SIGNING_ALGS left it out can
        // still be edited, and moved to an enabled algorithm.
        if (patch.signing_alg !== undefined && patch.signing_alg !== null) requireEnabledAlg(patch.signing_alg, enabledAlgs);
        const { identifier: _identifier, ...changes } = inputFromBody(body);
        const updated = await updateResourceServer({ db, bus, actor: actorOf(ctx) }, current.id, changes, protectedIdentifiers, { endpoint, token: sealed });
        ctx.body = presentResourceServer(updated);
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/resource-servers/:id',
      summary: 'Delete a resource server; 409 while clients still use it',
      params: resourceServerParams,
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx, { params }) => {
        await deleteResourceServer({ db, bus, actor: actorOf(ctx) }, params.id, protectedIdentifiers);
        ctx.status = 204;
      },
    }),
    adminRoute({
      method: 'post',
      path: '/resource-servers/:id/secret',
      params: resourceServerParams,
      summary: 'Give the resource server a new introspection secret; the old one keeps working for grace_seconds (default 0)',
      body: secretRotationSchema,
      bodyOptional: true,
      success: { status: 200, schema: z.object({ client_id: z.string(), client_secret: z.string() }) },
      problems: [400, 404, 413, 415, 422],
      handler: async (ctx, { params, body: { grace_seconds } }) => {
        const { clientId, secret } = await rotateIntrospectionSecret({ db, bus, actor: actorOf(ctx) }, params.id, grace_seconds);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { client_id: clientId, client_secret: secret };
      },
    }),
  ];
}
