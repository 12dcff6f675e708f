/** `GET /admin/audit`: the audit trail, oldest first, with the admin API's pagination. */
import { z } from 'zod';
import { listRoute, type AdminRoute } from '../admin/admin-route.js';
import { timestamp } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import { selectAuditPage, type AuditEvent } from './audit.js';

/** One filter of the audit trail: an exact value, as the events hold it. */
const auditFilter = z.string().min(1).max(512).optional();

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
      filters: {
        actor: auditFilter.describe('only the events of this actor: a client id, `account:<id> via <client id>` for a person, or `system`'),
        action: auditFilter.describe('only the events of this action, e.g. `client.create`'),
        target: auditFilter.describe('only the events about this target (a client id, a resource server, account or group id, a kid)'),
      },
      selectPage: (limit, after, filters) => selectAuditPage(db, limit, after, filters),
      cursorOf: (e) => ({ createdAt: e.at.toISOString(), id: e.id }),
      present: presentAuditEvent,
      // Event ids are a bigint sequence: 18 digits always fit.
      cursorId: z.string().regex(/^\d{1,18}$/),
    }),
  ];
}
