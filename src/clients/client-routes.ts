/** Admin routes for clients (docs/admin-api.md, "Clients"). */
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, listRoute, type AdminRoute } from '../admin/admin-route.js';
import { absoluteUri, mergePatch, scopeName, secretRotationSchema, timestamp, uniqueList, urlSafeId } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { DEVICE_CODE_GRANT } from '../issuer/device-flow.js';
import { TOKEN_EXCHANGE_GRANT } from '../issuer/token-exchange-claims.js';
import type { Client, ClientMetadata } from './client.js';
import { selectClientPage } from './client-repository.js';
import {
  createClient,
  deleteClient,
  existingClient,
  revokeClientTokens,
  rotateClientSecret,
  updateClient,
  type ProviderMetadataValidator,
} from './client-service.js';

const GRANT_TYPES = ['client_credentials', 'authorization_code', 'refresh_token', DEVICE_CODE_GRANT, TOKEN_EXCHANGE_GRANT] as const;

/** The `token_exchange` allowance (RFC 8693; docs/grants.md, "Token exchange"). */
const tokenExchangeAllowance = z
  .strictObject({
    subject_client_ids: uniqueList(urlSafeId, 50).default([]).describe("clients whose access tokens this client may exchange (a token's client_id)"),
    subject_audiences: uniqueList(absoluteUri, 50)
      .default([])
      .describe('resource server identifiers: access tokens for them (their aud) this client may exchange'),
    audiences: uniqueList(absoluteUri, 50).min(1).describe("resource server identifiers the exchanged tokens may be for; each one of the client's resources"),
    may_act_client_id: urlSafeId.optional().describe('the one client that may exchange the tokens this client gets by exchange again (their may_act claim)'),
  })
  .refine((allowance) => allowance.subject_client_ids.length + allowance.subject_audiences.length > 0, {
    path: ['subject_client_ids'],
    message: 'name at least one subject client or subject audience: an allowance that matches no token exchanges nothing',
  })
  .describe('RFC 8693 token exchange: which subject tokens this client may exchange, for which audiences; absent: none');

/** Each client field's schema, shared by create (with defaults) and update (all optional). */
const clientFields = {
  client_name: z.string().trim().min(1).max(200),
  trust: z.enum(['internal', 'external']),
  grant_types: uniqueList(z.enum(GRANT_TYPES), GRANT_TYPES.length).min(1),
  redirect_uris: uniqueList(absoluteUri, 50),
  response_types: uniqueList(z.enum(['code']), 1),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
  scope: z
    .string()
    .max(4096)
    .refine(
      (s) =>
        s
          .split(' ')
          .filter(Boolean)
          .every((t) => scopeName.safeParse(t).success),
      'must be space-separated scope names',
    ),
  resources: uniqueList(absoluteUri, 50),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) }),
  jwks_uri: absoluteUri,
  post_logout_redirect_uris: uniqueList(absoluteUri, 50),
  backchannel_logout_uri: absoluteUri,
  backchannel_logout_session_required: z.boolean(),
  token_exchange: tokenExchangeAllowance,
  /** How the `groups` claim names groups: `names` (default) or `ids`. */
  groups_claim: z.enum(['names', 'ids']),
};

/** The body of `POST /admin/clients` (RFC 7591 meanings, plus `trust` and `resources`). */
export const clientCreateSchema = z
  .strictObject({
    ...clientFields,
    grant_types: clientFields.grant_types.default(['client_credentials']),
    redirect_uris: clientFields.redirect_uris.default([]),
    response_types: clientFields.response_types.optional(),
    token_endpoint_auth_method: clientFields.token_endpoint_auth_method.default('client_secret_basic'),
    scope: clientFields.scope.default(''),
    resources: clientFields.resources.default([]),
    jwks: clientFields.jwks.optional(),
    jwks_uri: clientFields.jwks_uri.optional(),
    post_logout_redirect_uris: clientFields.post_logout_redirect_uris.default([]),
    backchannel_logout_uri: clientFields.backchannel_logout_uri.optional(),
    backchannel_logout_session_required: clientFields.backchannel_logout_session_required.optional(),
    token_exchange: clientFields.token_exchange.optional(),
    groups_claim: clientFields.groups_claim.optional(),
  })
  .superRefine((body, ctx) => {
    if (body.token_exchange) {
      if (body.token_endpoint_auth_method === 'none') {
        ctx.addIssue({ code: 'custom', path: ['token_exchange'], message: 'a public client cannot exchange tokens: the exchange needs client authentication' });
      }
      body.token_exchange.audiences.forEach((audience, index) => {
        if (!body.resources.includes(audience)) {
          ctx.addIssue({ code: 'custom', path: ['token_exchange', 'audiences', index], message: "must be one of the client's resources" });
        }
      });
    } else if (body.grant_types.includes(TOKEN_EXCHANGE_GRANT)) {
      ctx.addIssue({ code: 'custom', path: ['token_exchange'], message: 'the token exchange grant needs a token_exchange allowance' });
    }
    if (body.token_endpoint_auth_method === 'private_key_jwt' && !body.jwks === !body.jwks_uri) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'private_key_jwt needs exactly one of jwks and jwks_uri' });
    }
    if (body.token_endpoint_auth_method === 'none' && body.grant_types.includes('client_credentials')) {
      ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'a public client cannot use client_credentials' });
    }
    if (body.grant_types.includes('client_credentials') && body.resources.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['resources'], message: 'client_credentials needs at least one resource' });
    }
  });

/** The body of `PATCH /admin/clients/{client_id}`: any field, plus `disabled`; `null` removes jwks or jwks_uri. */
export const clientPatchSchema = z
  .strictObject({
    ...clientFields,
    jwks: clientFields.jwks.nullable(),
    jwks_uri: clientFields.jwks_uri.nullable(),
    backchannel_logout_uri: clientFields.backchannel_logout_uri.nullable(),
    token_exchange: clientFields.token_exchange.nullable(),
    groups_claim: clientFields.groups_claim.nullable(),
    disabled: z.boolean(),
  })
  .partial();

/**
 * The metadata a validated create body stands for. The token exchange grant follows the allowance:
 * listed exactly when `token_exchange` is set, so setting the allowance alone is enough.
 */
export function metadataFromBody(body: z.output<typeof clientCreateSchema>): ClientMetadata {
  const grantTypes = body.grant_types.filter((grant) => grant !== TOKEN_EXCHANGE_GRANT);
  return {
    grant_types: body.token_exchange ? [...grantTypes, TOKEN_EXCHANGE_GRANT] : grantTypes,
    response_types: body.response_types ?? (body.grant_types.includes('authorization_code') ? ['code'] : []),
    redirect_uris: body.redirect_uris,
    post_logout_redirect_uris: body.post_logout_redirect_uris,
    token_endpoint_auth_method: body.token_endpoint_auth_method,
    scope: body.scope.split(' ').filter(Boolean).join(' '),
    resources: body.resources,
    ...(body.jwks ? { jwks: body.jwks } : {}),
    ...(body.jwks_uri ? { jwks_uri: body.jwks_uri } : {}),
    ...(body.backchannel_logout_uri ? { backchannel_logout_uri: body.backchannel_logout_uri } : {}),
    ...(body.backchannel_logout_session_required !== undefined ? { backchannel_logout_session_required: body.backchannel_logout_session_required } : {}),
    ...(body.token_exchange ? { token_exchange: body.token_exchange } : {}),
    ...(body.groups_claim !== undefined ? { groups_claim: body.groups_claim } : {}),
  };
}

/** The path parameters of the routes of one client: an id no client can have is a 404 without a lookup. */
const clientParams = z.object({ clientId: urlSafeId });

/** The JSON form of a client in every answer (never a secret). */
export const clientSchema = z.object({
  client_id: z.string(),
  client_name: z.string(),
  trust: z.enum(['internal', 'external']),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  token_endpoint_auth_method: z.string(),
  scope: z.string(),
  resources: z.array(z.string()),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  jwks_uri: z.string().optional(),
  backchannel_logout_uri: z.string().optional(),
  backchannel_logout_session_required: z.boolean().optional(),
  token_exchange: z
    .object({
      subject_client_ids: z.array(z.string()),
      subject_audiences: z.array(z.string()),
      audiences: z.array(z.string()),
      may_act_client_id: z.string().optional(),
    })
    .optional(),
  groups_claim: z.enum(['names', 'ids']).optional(),
  disabled: z.boolean(),
  created_at: timestamp,
  updated_at: timestamp,
});

const createdClientSchema = clientSchema.extend({ client_secret: z.string().optional() });

/** Presents a client as `clientSchema` describes. */
export function presentClient(client: Client): z.output<typeof clientSchema> {
  return {
    client_id: client.clientId,
    client_name: client.clientName,
    trust: client.trust,
    ...client.metadata,
    disabled: client.disabled,
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
  };
}

/** The client routes (under /admin). */
export function clientRoutes(db: Db, bus: ChangeBus, validate: ProviderMetadataValidator): AdminRoute[] {
  return [
    adminRoute({
      method: 'post',
      path: '/clients',
      summary: 'Register a client; its secret (when it has one) is shown in this answer only',
      body: clientCreateSchema,
      success: { status: 201, schema: createdClientSchema },
      problems: [400, 409, 413, 415, 422],
      handler: async (ctx, { body }) => {
        const { client, secret } = await createClient({ db, bus, actor: actorOf(ctx) }, validate, {
          clientName: body.client_name,
          trust: body.trust,
          metadata: metadataFromBody(body),
        });
        ctx.status = 201;
        ctx.set('Location', `/admin/clients/${client.clientId}`);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { ...presentClient(client), ...(secret ? { client_secret: secret } : {}) };
      },
    }),
    listRoute({
      path: '/clients',
      summary: 'List clients',
      item: clientSchema,
      selectPage: (limit, after) => selectClientPage(db, limit, after),
      cursorOf: (c) => ({ createdAt: c.createdAt.toISOString(), id: c.clientId }),
      present: presentClient,
      cursorId: urlSafeId,
    }),
    adminRoute({
      method: 'get',
      path: '/clients/:clientId',
      summary: 'Read a client',
      params: clientParams,
      success: { status: 200, schema: clientSchema },
      problems: [404],
      handler: async (ctx, { params }) => {
        ctx.body = presentClient(await existingClient(db, params.clientId));
      },
    }),
    adminRoute({
      method: 'patch',
      path: '/clients/:clientId',
      params: clientParams,
      summary: 'Change a client (partial update, validated as a whole); {"disabled": true} stops it everywhere at once',
      body: clientPatchSchema,
      success: { status: 200, schema: clientSchema },
      problems: [400, 404, 413, 415, 422],
      handler: async (ctx, { params, body: patch }) => {
        const current = await existingClient(db, params.clientId);
        const { disabled, ...fields } = patch;
        // response_types is derived again from grant_types unless given, so adding the code flow needs no second field.
        const { response_types: _derived, ...unchanged } = editableFields(current);
        const body = mergePatch(clientCreateSchema, unchanged, fields);
        const client = await updateClient({ db, bus, actor: actorOf(ctx) }, validate, current.clientId, {
          clientName: body.client_name,
          trust: body.trust,
          metadata: metadataFromBody(body),
          disabled: disabled ?? current.disabled,
        });
        ctx.body = presentClient(client);
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/clients/:clientId',
      summary: 'Delete a client; its tokens stop working everywhere at once',
      params: clientParams,
      success: { status: 204 },
      problems: [404],
      handler: async (ctx, { params }) => {
        await deleteClient({ db, bus, actor: actorOf(ctx) }, params.clientId);
        ctx.status = 204;
      },
    }),
    adminRoute({
      method: 'post',
      path: '/clients/:clientId/secret',
      params: clientParams,
      summary: 'Give the client a new secret; the old one keeps working for grace_seconds (default 0)',
      body: secretRotationSchema,
      bodyOptional: true,
      success: { status: 200, schema: z.object({ client_secret: z.string() }) },
      problems: [400, 404, 413, 415, 422],
      handler: async (ctx, { params, body: { grace_seconds } }) => {
        const current = await existingClient(db, params.clientId);
        const secret = await rotateClientSecret({ db, bus, actor: actorOf(ctx) }, current.clientId, grace_seconds);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { client_secret: secret };
      },
    }),
    adminRoute({
      method: 'post',
      path: '/clients/:clientId/revoke-tokens',
      summary: 'Revoke every grant and token of the client, JWT access tokens included',
      params: clientParams,
      success: { status: 204 },
      problems: [404],
      handler: async (ctx, { params }) => {
        await revokeClientTokens({ db, bus, actor: actorOf(ctx) }, params.clientId);
        ctx.status = 204;
      },
    }),
  ];
}

/**
 * The fields of a client as a create body would give them. The token exchange grant is left out when
 * the client has another: it is derived from `token_exchange` again (see `metadataFromBody`), so
 * `{"token_exchange": null}` alone removes both. A client with no other grant must name one then.
 */
function editableFields(client: Client): Record<string, unknown> {
  const others = client.metadata.grant_types.filter((grant) => grant !== TOKEN_EXCHANGE_GRANT);
  return { client_name: client.clientName, trust: client.trust, ...client.metadata, grant_types: others.length > 0 ? others : client.metadata.grant_types };
}
