/**
 * Admin routes for an account's second factors (docs/strong-sign-in.md): list them (no secret, only
 * what they are and when they were used) and reset them (after a lost phone). Whether an account must
 * use them is its `mfa_required` field (`PATCH /admin/accounts/{id}`).
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, type AdminRoute } from '../admin/admin-route.js';
import { timestamp, uuidId } from '../admin/schemas.js';
import { selectAccount } from '../accounts/account-repository.js';
import type { AccountChangeContext, AccountSessions } from '../accounts/account-service.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { found } from '../shared/errors.js';
import type { AccountFactors } from './factor.js';
import { listFactors, resetFactors } from './factor-service.js';

const nullableTimestamp = timestamp.nullable();

/** The JSON form of an account's factors. */
export const accountFactorsSchema = z.object({
  mfa_required: z.boolean(),
  totp: z.object({ confirmed: z.boolean(), created_at: timestamp, last_used_at: nullableTimestamp }).nullable(),
  passkeys: z.array(
    z.object({
      id: z.uuid(),
      name: z.string(),
      device_type: z.enum(['singleDevice', 'multiDevice']),
      backed_up: z.boolean(),
      created_at: timestamp,
      last_used_at: nullableTimestamp,
    }),
  ),
  recovery_codes: z.object({ remaining: z.number().int(), total: z.number().int(), created_at: timestamp }).nullable(),
});

/** Presents an account's factors as `accountFactorsSchema` describes. */
export function presentFactors(mfaRequired: boolean, factors: AccountFactors): z.output<typeof accountFactorsSchema> {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return {
    mfa_required: mfaRequired,
    totp: factors.totp && {
      confirmed: factors.totp.confirmedAt !== null,
      created_at: factors.totp.createdAt.toISOString(),
      last_used_at: iso(factors.totp.lastUsedAt),
    },
    passkeys: factors.passkeys.map((p) => ({
      id: p.id,
      name: p.name,
      device_type: p.deviceType,
      backed_up: p.backedUp,
      created_at: p.createdAt.toISOString(),
      last_used_at: iso(p.lastUsedAt),
    })),
    recovery_codes: factors.recoveryCodes && {
      remaining: factors.recoveryCodes.remaining,
      total: factors.recoveryCodes.total,
      created_at: factors.recoveryCodes.createdAt.toISOString(),
    },
  };
}

const accountParams = z.object({ id: uuidId });

/** The factor routes of accounts (under /admin). */
export function factorRoutes(db: Db, bus: ChangeBus, sessions: AccountSessions): AdminRoute[] {
  const changeContext = (ctx: Context): AccountChangeContext => ({ db, bus, sessions, actor: actorOf(ctx) });
  return [
    adminRoute({
      method: 'get',
      path: '/accounts/:id/factors',
      summary: "List an account's second factors (what they are and when they were used; never a secret)",
      params: accountParams,
      success: { status: 200, schema: accountFactorsSchema },
      problems: [404],
      handler: async (ctx, { params }) => {
        const account = found(await selectAccount(db, params.id), `account ${params.id}`);
        ctx.body = presentFactors(account.mfaRequired, await listFactors(db, account.id));
      },
    }),
    adminRoute({
      method: 'delete',
      path: '/accounts/:id/factors',
      summary: "Reset an account's second factors (authenticator app, passkeys, recovery codes); it is signed out everywhere",
      params: accountParams,
      success: { status: 204 },
      problems: [404],
      handler: async (ctx, { params }) => {
        await resetFactors(changeContext(ctx), params.id);
        ctx.status = 204;
      },
    }),
  ];
}
