/** `GET /admin/audit`: the audit trail, oldest first, with the admin API's pagination. */
import { z } from 'zod';
import { listRoute, type AdminRoute } from '../admin/admin-route.js';
import { timestamp } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
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
    listRoute({
      path: '/audit',
      summary: 'List audit events (admin writes, secret rotations, key changes, bulk revocations), oldest first',
      item: auditEventSchema,
      selectPage: (limit, after) => selectAuditPage(db, limit, after),
      cursorOf: (e) => ({ createdAt: e.at.toISOString(), id: e.id }),
      present: presentAuditEvent,
      // Event ids are a bigint sequence: 18 digits always fit.
      cursorId: z.string().regex(/^\d{1,18}$/),
    }),
  ];
}
