/** Admin routes for accounts (docs/admin-api.md, "Accounts"). No answer, log or audit entry holds a password. */
import type { Context } from 'koa';
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, listRoute, type AdminRoute } from '../admin/admin-route.js';
import { timestamp, uuidId } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { found } from '../shared/errors.js';
import type { Account } from './account.js';
import { selectAccount, selectAccountPage } from './account-repository.js';
import { createAccount, deleteAccount, setPassword, updateAccount, type AccountChangeContext, type AccountSessions } from './account-service.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './password.js';

const email = z.email().max(320);
const name = z.string().trim().min(1).max(200);
const password = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(MAX_PASSWORD_LENGTH, `must be at most ${MAX_PASSWORD_LENGTH} characters`);

/** The body of `POST /admin/accounts`. */
export const accountCreateSchema = z.strictObject({ email, password, name });

/**
 * The body of `PATCH /admin/accounts/{id}`: `disabled: true` ends the account's sessions and grants;
 * `mfa_required: true` makes the person sign in with a second factor (enrolling one at the next sign-in).
 */
export const accountUpdateSchema = z
  .strictObject({ email: email.optional(), name: name.optional(), disabled: z.boolean().optional(), mfa_required: z.boolean().optional() })
  .refine((body) => Object.keys(body).length > 0, 'must change at least one field');

/** The body of `POST /admin/accounts/{id}/password`. */
export const passwordSchema = z.strictObject({ password });

/** The path parameters of the routes of one account: its id is a UUID, so no other value is looked up. */
const accountParams = z.object({ id: uuidId });

/** The JSON form of an account in every answer. */
export const accountSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  disabled: z.boolean(),
  mfa_required: z.boolean(),
  created_at: timestamp,
  updated_at: timestamp,
});

/** Presents an account as `accountSchema` describes. */
export function presentAccount(account: Account): z.output<typeof accountSchema> {
  return {
    id: account.id,
    email: account.email,
    name: account.name,
    disabled: account.disabled,
    mfa_required: account.mfaRequired,
    created_at: account.createdAt.toISOString(),
    updated_at: account.updatedAt.toISOString(),
  };
}

/** The account routes (under /admin). */
export function accountRoutes(db: Db, bus: ChangeBus, sessions: AccountSessions): AdminRoute[] {
  const changeContext = (ctx: Context): AccountChangeContext => ({ db, bus, sessions, actor: actorOf(ctx) });
  return [
    adminRoute({
      method: 'post',
      path: '/accounts',
      summary: `Create an account; the password needs at least ${MIN_PASSWORD_LENGTH} characters`,
      body: accountCreateSchema,
      success: { status: 201, schema: accountSchema },
      problems: [400, 409, 413, 415, 422],
      handler: async (ctx, { body }) => {
        const account = await createAccount(changeContext(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/admin/accounts/${account.id}`);
        ctx.body = presentAccount(account);
      },
    }),
    listRoute({
      path: '/accounts',
      summary: 'List accounts',
      item: accountSchema,
      selectPage: (limit, after) => selectAccountPage(db, limit, after),
      cursorOf: (a) => ({ createdAt: a.createdAt.toISOString(), id: a.id }),
      present: presentAccount,
      cursorId: uuidId,
    }),
    adminRoute({
      method: 'get',
      path: '/accounts/:id',
      summary: 'Read an account',
      params: accountParams,
      success: { status: 200, schema: accountSchema },
      problems: [404],
      handler: async (ctx, { params }) => {
        ctx.body = presentAccount(found(await selectAccount(db, params.id), `account ${params.id}`));
      },
    }),
    adminRoute({
      method: 'patch',
      path: '/accounts/:id',
      summary: 'Change an account; {"disabled": true} ends its sessions and grants at once',
      params: accountParams,
      body: accountUpdateSchema,
      success: { status: 200, schema: accountSchema },
      problems: [400, 404, 409, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        const { mfa_required: mfaRequired, ...rest } = body;
        ctx.body = presentAccount(await updateAccount(changeContext(ctx), params.id, { ...rest, ...(mfaRequired !== undefined ? { mfaRequired } : {}) }));
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/accounts/:id',
      summary: 'Delete an account, its sessions and its grants',
      params: accountParams,
      success: { status: 204 },
      problems: [404],
      handler: async (ctx, { params }) => {
        await deleteAccount(changeContext(ctx), params.id);
        ctx.status = 204;
      },
    }),
    adminRoute({
      method: 'post',
      path: '/accounts/:id/password',
      summary: 'Set a new password; the account is signed out everywhere',
      params: accountParams,
      body: passwordSchema,
      success: { status: 204 },
      problems: [400, 404, 413, 415, 422],
      handler: async (ctx, { params, body }) => {
        await setPassword(changeContext(ctx), params.id, body.password);
        ctx.status = 204;
      },
    }),
  ];
}
