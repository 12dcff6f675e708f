/** `GET /admin/audit`: the audit trail, oldest first, with the admin API's pagination. */
import { z } from 'zod';
import type { AdminRoute } from '../admin/admin-route.js';
import { Problem } from '../admin/problem.js';
import { listQuerySchema, pageOf, parseListQuery, timestamp } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import { toPage } from '../shared/pagination.js';
import { selectAuditPage, type AuditEvent } from './audit.js';

/** The JSON form of an audit event. */
export const auditEventSchema = z.object({
  id: z.string(),
  at: timestamp,
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  details: z.record(z.string(), z.unknown()),
});

const presentAuditEvent = (event: AuditEvent): z.output<typeof auditEventSchema> => ({
  id: event.id,
  at: event.at.toISOString(),
  actor: event.actor,
  action: event.action,
  target: event.target,
  details: event.details,
});

/** The audit routes (under /admin). */
export function auditRoutes(db: Db): AdminRoute[] {
  return [
    {
      method: 'get',
      path: '/audit',
      summary: 'List audit events (admin writes, secret rotations, key changes, bulk revocations), oldest first',
      query: listQuerySchema,
      success: { status: 200, schema: pageOf(auditEventSchema) },
      problems: [422],
      handler: async (ctx) => {
        const { limit, after } = parseListQuery(ctx.query);
        if (after && !/^\d{1,18}$/.test(after.id)) {
          throw new Problem(422, 'invalid fields', [{ path: 'query.cursor', message: 'is not a cursor from a previous page' }]);
        }
        const rows = await selectAuditPage(db, limit, after);
        ctx.body = toPage(rows, limit, (e) => ({ createdAt: e.at.toISOString(), id: e.id }), presentAuditEvent);
      },
    },
  ];
}
