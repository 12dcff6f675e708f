/** Admin routes for groups and their members (docs/groups-and-entitlements.md). */
import type { Context } from 'koa';
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, listRoute, type AdminRoute } from '../admin/admin-route.js';
import { Problem } from '../admin/problem.js';
import { listQuery, mergePatch, pageOf, timestamp, uuidId } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { found } from '../shared/errors.js';
import { DEFAULT_PAGE_SIZE, toPage } from '../shared/pagination.js';
import type { Group, GroupMember } from './group.js';
import { selectGroup, selectGroupPage, selectMemberPage } from './group-repository.js';
import { addMembers, createGroup, deleteGroup, removeMembers, updateGroup, type GroupChangeContext, type MembershipResult } from './group-service.js';

/** The most accounts one bulk membership request may name. */
export const MAX_BULK_MEMBERS = 1000;

/** A group name: what people see in the `groups` claim. */
const groupName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  // eslint-disable-next-line no-control-regex
  .refine((name) => !/[\u0000-\u001f\u007f]/.test(name), 'must not contain control characters');

/** The body of `POST /admin/groups`. */
export const groupCreateSchema = z.strictObject({ name: groupName, parent_id: uuidId.nullable().default(null) });

/** The body of `PATCH /admin/groups/{id}`: a new name, another parent, or `parent_id: null` to stand alone. */
export const groupPatchSchema = z
  .strictObject({ name: groupName.optional(), parent_id: uuidId.nullable().optional() })
  .refine((body) => Object.keys(body).length > 0, 'must change at least one field');

/** The JSON form of a group in every answer. */
export const groupSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  parent_id: z.uuid().nullable(),
  created_at: timestamp,
  updated_at: timestamp,
});

/** Presents a group as `groupSchema` describes. */
export function presentGroup(group: Group): z.output<typeof groupSchema> {
  return { id: group.id, name: group.name, parent_id: group.parentId, created_at: group.createdAt.toISOString(), updated_at: group.updatedAt.toISOString() };
}

const memberSchema = z.object({ account_id: z.uuid(), email: z.string(), name: z.string(), added_at: timestamp });

const presentMember = (member: GroupMember): z.output<typeof memberSchema> => ({
  account_id: member.accountId,
  email: member.email,
  name: member.name,
  added_at: member.addedAt.toISOString(),
});

/** The body of the bulk membership routes. Ids that are not UUIDs are reported as unknown accounts, like any other unknown id. */
export const bulkMembersSchema = z.strictObject({
  account_ids: z
    .array(z.string().max(64))
    .min(1)
    .max(MAX_BULK_MEMBERS)
    .refine((ids) => new Set(ids).size === ids.length, 'must not repeat an entry'),
});

const bulkResultSchema = z.object({
  results: z.array(
    z.object({
      account_id: z.string(),
      status: z.enum(['added', 'already_member', 'removed', 'not_member', 'unknown_account']),
    }),
  ),
});

const presentResults = (results: readonly MembershipResult[]) => ({
  results: results.map((result) => ({ account_id: result.accountId, status: result.outcome })),
});

const groupParams = z.object({ id: uuidId });
const memberParams = z.object({ id: uuidId, account_id: uuidId });

/** The group routes (under /admin). `adminAudience` is the identifier of the admin API's audience. */
export function groupRoutes(db: Db, bus: ChangeBus, adminAudience: string): AdminRoute[] {
  const change = (ctx: Context): GroupChangeContext => ({ db, bus, actor: actorOf(ctx), adminAudience });
  return [
    adminRoute({
      method: 'post',
      path: '/groups',
      summary: 'Create a group, under a parent group when parent_id is given (one level of nesting)',
      body: groupCreateSchema,
      success: { status: 201, schema: groupSchema },
      problems: [400, 409, 413, 415, 422],
      handler: async (ctx, { body }) => {
        const group = await createGroup(change(ctx), { name: body.name, parentId: body.parent_id });
        ctx.status = 201;
        ctx.set('Location', `/admin/groups/${group.id}`);
        ctx.body = presentGroup(group);
      },
    }),
    listRoute({
      path: '/groups',
      summary: 'List groups',
      item: groupSchema,
      selectPage: (limit, after) => selectGroupPage(db, limit, after),
      cursorOf: (group) => ({ createdAt: group.createdAt.toISOString(), id: group.id }),
      present: presentGroup,
      cursorId: uuidId,
    }),
    adminRoute({
      method: 'get',
      path: '/groups/:id',
      summary: 'Read a group',
      params: groupParams,
      success: { status: 200, schema: groupSchema },
      problems: [404],
      handler: async (ctx, { params }) => {
        ctx.body = presentGroup(found(await selectGroup(db, params.id), `group ${params.id}`));
      },
    }),
    adminRoute({
      method: 'patch',
      path: '/groups/:id',
      summary: 'Rename a group or move it under another (parent_id: null stands it alone); a cycle or a second level is a 422',
      params: groupParams,
      body: groupPatchSchema,
      success: { status: 200, schema: groupSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        const current = found(await selectGroup(db, params.id), `group ${params.id}`);
        const merged = mergePatch(groupCreateSchema, { name: current.name, parent_id: current.parentId }, body);
        ctx.body = presentGroup(await updateGroup(change(ctx), params.id, { name: merged.name, parentId: merged.parent_id }));
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/groups/:id',
      summary: 'Delete a group, its memberships and entitlements; 409 while it has subgroups or when it makes the last person administrator',
      params: groupParams,
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx, { params }) => {
        await deleteGroup(change(ctx), params.id);
        ctx.status = 204;
      },
    }),
    adminRoute({
      method: 'get',
      path: '/groups/:id/members',
      summary: "List a group's direct members, in the order they were added",
      params: groupParams,
      query: listQuery(uuidId),
      success: { status: 200, schema: pageOf(memberSchema) },
      problems: [404, 422],
      handler: async (ctx, { params, query }) => {
        found(await selectGroup(db, params.id), `group ${params.id}`);
        const limit = query.limit ?? DEFAULT_PAGE_SIZE;
        const rows = await selectMemberPage(db, params.id, limit, query.cursor);
        ctx.body = toPage(rows, limit, (member) => ({ createdAt: member.addedAt.toISOString(), id: member.accountId }), presentMember);
      },
    }),
    adminRoute({
      method: 'post',
      path: '/groups/:id/members',
      summary: `Add up to ${MAX_BULK_MEMBERS} accounts to a group: a status per account; unknown accounts are reported, the known ones added`,
      params: groupParams,
      body: bulkMembersSchema,
      success: { status: 200, schema: bulkResultSchema },
      problems: [400, 404, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        ctx.body = presentResults(await addMembers(change(ctx), params.id, body.account_ids));
      },
    }),
    adminRoute({
      method: 'post',
      path: '/groups/:id/members/remove',
      summary: `Remove up to ${MAX_BULK_MEMBERS} accounts from a group: a status per account; 409 when it would leave no person administrator`,
      params: groupParams,
      body: bulkMembersSchema,
      success: { status: 200, schema: bulkResultSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        ctx.body = presentResults(await removeMembers(change(ctx), params.id, body.account_ids));
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/groups/:id/members/:account_id',
      summary: 'Remove one account from a group; 404 when it is not a member',
      params: memberParams,
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx, { params }) => {
        const [result] = await removeMembers(change(ctx), params.id, [params.account_id]);
        if (result.outcome !== 'removed') throw new Problem(404, `account ${params.account_id} is not a member of group ${params.id}`);
        ctx.status = 204;
      },
    }),
  ];
}
