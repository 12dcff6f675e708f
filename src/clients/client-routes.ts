/** Admin routes for clients (CONTRACT.md section 6). */
import { z } from 'zod';
import type { AdminPrincipal } from '../admin/admin-auth.js';
import type { AdminRoute } from '../admin/admin-route.js';
import { readJsonBody } from '../admin/json-body.js';
import { Problem } from '../admin/problem.js';
import { absoluteUri, listQuerySchema, pageOf, parseListQuery, parseOrProblem, scopeName, timestamp, uniqueList } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { toPage } from '../shared/pagination.js';
import type { Client, ClientMetadata, ClientWithSecrets } from './client.js';
import { selectClientPage, selectClientWithSecrets } from './client-repository.js';
import { createClient, InvalidClientInputError, type ProviderMetadataValidator } from './client-service.js';

const GRANT_TYPES = ['client_credentials', 'authorization_code', 'refresh_token'] as const;

/** The body of `POST /admin/clients` (RFC 7591 meanings, plus `trust` and `resources`). */
export const clientCreateSchema = z
  .strictObject({
    client_name: z.string().trim().min(1).max(200),
    trust: z.enum(['internal', 'external']),
    grant_types: uniqueList(z.enum(GRANT_TYPES), 3).min(1).default(['client_credentials']),
    redirect_uris: uniqueList(absoluteUri, 50).default([]),
    response_types: uniqueList(z.enum(['code']), 1).optional(),
    token_endpoint_auth_method: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'])
      .default('client_secret_basic'),
    scope: z
      .string()
      .max(4096)
      .refine((s) => s.split(' ').filter(Boolean).every((t) => scopeName.safeParse(t).success), 'must be space-separated scope names')
      .default(''),
    resources: uniqueList(absoluteUri, 50).default([]),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) }).optional(),
    jwks_uri: absoluteUri.optional(),
    post_logout_redirect_uris: uniqueList(absoluteUri, 50).default([]),
  })
  .superRefine((body, ctx) => {
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

/** The metadata a validated create body stands for. */
export function metadataFromBody(body: z.output<typeof clientCreateSchema>): ClientMetadata {
  return {
    grant_types: body.grant_types,
    response_types: body.response_types ?? (body.grant_types.includes('authorization_code') ? ['code'] : []),
    redirect_uris: body.redirect_uris,
    post_logout_redirect_uris: body.post_logout_redirect_uris,
    token_endpoint_auth_method: body.token_endpoint_auth_method,
    scope: body.scope.split(' ').filter(Boolean).join(' '),
    resources: body.resources,
    ...(body.jwks ? { jwks: body.jwks } : {}),
    ...(body.jwks_uri ? { jwks_uri: body.jwks_uri } : {}),
  };
}

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
    {
      method: 'post',
      path: '/clients',
      summary: 'Register a client; its secret (when it has one) is shown in this answer only',
      body: clientCreateSchema,
      success: { status: 201, schema: createdClientSchema },
      problems: [400, 409, 413, 415, 422],
      handler: async (ctx) => {
        const body = parseOrProblem(clientCreateSchema, await readJsonBody(ctx));
        const actor = (ctx.state.admin as AdminPrincipal).clientId;
        try {
          const { client, secret } = await createClient({ db, bus, actor }, validate, {
            clientName: body.client_name,
            trust: body.trust,
            metadata: metadataFromBody(body),
          });
          ctx.status = 201;
          ctx.set('Location', `/admin/clients/${client.clientId}`);
          ctx.set('Cache-Control', 'no-store');
          ctx.body = { ...presentClient(client), ...(secret ? { client_secret: secret } : {}) };
        } catch (error) {
          if (error instanceof InvalidClientInputError) {
            throw new Problem(error.path === 'client_id' ? 409 : 422, error.message, [{ path: error.path, message: error.message }]);
          }
          throw error;
        }
      },
    },
    {
      method: 'get',
      path: '/clients',
      summary: 'List clients',
      query: listQuerySchema,
      success: { status: 200, schema: pageOf(clientSchema) },
      problems: [422],
      handler: async (ctx) => {
        const { limit, after } = parseListQuery(ctx.query);
        const rows = await selectClientPage(db, limit, after);
        ctx.body = toPage(rows, limit, (c) => ({ createdAt: c.createdAt.toISOString(), id: c.clientId }), presentClient);
      },
    },
    {
      method: 'get',
      path: '/clients/:clientId',
      summary: 'Read a client',
      success: { status: 200, schema: clientSchema },
      problems: [404],
      handler: async (ctx) => {
        ctx.body = presentClient(await clientOr404(db, ctx.params.clientId!));
      },
    },
  ];
}

/** The application client with this id, or a 404 problem (introspection identities are not clients here). */
export async function clientOr404(db: Db, clientId: string): Promise<ClientWithSecrets> {
  const client = await selectClientWithSecrets(db, clientId);
  if (!client || client.resourceServerId) throw new Problem(404, `no client ${clientId}`);
  return client;
}
