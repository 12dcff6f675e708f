/**
 * Admin routes for the entitlements of a resource server (docs/groups-and-entitlements.md): which
 * group (or single account) may receive which of its scopes, and which roles it then has.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, type AdminRoute } from '../admin/admin-route.js';
import { listQuery, pageOf, scopeName, timestamp, uniqueList, uuidId } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { existingResourceServer } from '../resource-servers/resource-server-service.js';
import { found } from '../shared/errors.js';
import { DEFAULT_PAGE_SIZE, toPage } from '../shared/pagination.js';
import type { Entitlement, EntitlementSubject } from './group.js';
import { selectEntitlement, selectEntitlementPage } from './group-repository.js';
import { createEntitlement, deleteEntitlement, updateEntitlement, type GroupChangeContext } from './group-service.js';

/** A role name, as the resource server will read it in the `roles` claim. */
const roleName = z.string().regex(/^[A-Za-z0-9_.:/-]{1,64}$/, 'must be 1-64 characters of letters, digits, _ . : / -');

const entitlementFields = {
  scopes: uniqueList(scopeName, 200),
  roles: uniqueList(roleName, 20),
};

/** The body of `POST /admin/resource-servers/{id}/entitlements`: exactly one of `group_id` and `account_id`. */
export const entitlementCreateSchema = z
  .strictObject({
    group_id: uuidId.optional(),
    account_id: uuidId.optional(),
    scopes: entitlementFields.scopes,
    roles: entitlementFields.roles.default([]),
  })
  .superRefine((body, ctx) => {
    if ((body.group_id === undefined) === (body.account_id === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['group_id'], message: 'give exactly one of group_id and account_id' });
    }
  });

/** The body of `PATCH /admin/resource-servers/{id}/entitlements/{entitlement_id}`: its subject never changes. */
export const entitlementPatchSchema = z
  .strictObject({ scopes: entitlementFields.scopes.optional(), roles: entitlementFields.roles.optional() })
  .refine((body) => Object.keys(body).length > 0, 'must change at least one field');

/** The JSON form of an entitlement in every answer. */
export const entitlementSchema = z.object({
  id: z.uuid(),
  resource_server_id: z.uuid(),
  group_id: z.uuid().nullable(),
  account_id: z.uuid().nullable(),
  scopes: z.array(z.string()),
  roles: z.array(z.string()),
  created_at: timestamp,
  updated_at: timestamp,
});

/** Presents an entitlement as `entitlementSchema` describes. */
export function presentEntitlement(entitlement: Entitlement): z.output<typeof entitlementSchema> {
  return {
    id: entitlement.id,
    resource_server_id: entitlement.resourceServerId,
    group_id: entitlement.groupId,
    account_id: entitlement.accountId,
    scopes: [...entitlement.scopes],
    roles: [...entitlement.roles],
    created_at: entitlement.createdAt.toISOString(),
    updated_at: entitlement.updatedAt.toISOString(),
  };
}

const listParams = z.object({ id: uuidId });
const entitlementParams = z.object({ id: uuidId, entitlement_id: uuidId });

/** The entitlement routes (under /admin). */
export function entitlementRoutes(db: Db, bus: ChangeBus, adminAudience: string): AdminRoute[] {
  const change = (ctx: Context): GroupChangeContext => ({ db, bus, actor: actorOf(ctx), adminAudience });
  return [
    adminRoute({
      method: 'post',
      path: '/resource-servers/:id/entitlements',
      summary: 'Entitle a group (or one account) to scopes and roles of this resource server; 409 when it already has an entitlement here',
      params: listParams,
      body: entitlementCreateSchema,
      success: { status: 201, schema: entitlementSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        const subject: EntitlementSubject =
          body.group_id !== undefined ? { groupId: body.group_id, accountId: null } : { groupId: null, accountId: body.account_id! };
        const entitlement = await createEntitlement(change(ctx), params.id, subject, { scopes: body.scopes, roles: body.roles });
        ctx.status = 201;
        ctx.set('Location', `/admin/resource-servers/${params.id}/entitlements/${entitlement.id}`);
        ctx.body = presentEntitlement(entitlement);
      },
    }),
    adminRoute({
      method: 'get',
      path: '/resource-servers/:id/entitlements',
      summary: "List a resource server's entitlements",
      params: listParams,
      query: listQuery(uuidId),
      success: { status: 200, schema: pageOf(entitlementSchema) },
      problems: [404, 422],
      handler: async (ctx, { params, query }) => {
        await existingResourceServer(db, params.id);
        const limit = query.limit ?? DEFAULT_PAGE_SIZE;
        const rows = await selectEntitlementPage(db, params.id, limit, query.cursor);
        ctx.body = toPage(rows, limit, (row) => ({ createdAt: row.createdAt.toISOString(), id: row.id }), presentEntitlement);
      },
    }),
    adminRoute({
      method: 'get',
      path: '/resource-servers/:id/entitlements/:entitlement_id',
      summary: 'Read an entitlement',
      params: entitlementParams,
      success: { status: 200, schema: entitlementSchema },
      problems: [404],
      handler: async (ctx, { params }) => {
        ctx.body = presentEntitlement(found(await selectEntitlement(db, params.id, params.entitlement_id), `entitlement ${params.entitlement_id}`));
      },
    }),
    adminRoute({
      method: 'patch',
      path: '/resource-servers/:id/entitlements/:entitlement_id',
      summary: "Change an entitlement's scopes or roles; tokens holding a scope it no longer gives introspect inactive",
      params: entitlementParams,
      body: entitlementPatchSchema,
      success: { status: 200, schema: entitlementSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        const current = found(await selectEntitlement(db, params.id, params.entitlement_id), `entitlement ${params.entitlement_id}`);
        const input = { scopes: body.scopes ?? [...current.scopes], roles: body.roles ?? [...current.roles] };
        ctx.body = presentEntitlement(await updateEntitlement(change(ctx), params.id, params.entitlement_id, input));
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/resource-servers/:id/entitlements/:entitlement_id',
      summary: 'Delete an entitlement; 409 when it would leave no person administrator',
      params: entitlementParams,
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx, { params }) => {
        await deleteEntitlement(change(ctx), params.id, params.entitlement_id);
        ctx.status = 204;
      },
    }),
  ];
}
