/** The audit trail: who changed what, when. Details never hold a secret (callers pass summaries). */
import type { Db } from '../db/database.js';
import type { PageCursor } from '../shared/pagination.js';

/** The actor recorded for changes the server (or one of its scripts) makes by itself. */
export const SYSTEM_ACTOR = 'system';

/** One audited change. */
export interface AuditEntry {
  /** The admin client id that made the change, or SYSTEM_ACTOR. */
  readonly actor: string;
  /** Dotted verb, e.g. `client.create`, `resource_server.create`. */
  readonly action: string;
  /** The id of what changed. */
  readonly target: string;
  readonly details: Record<string, unknown>;
}

/** Appends an entry; call it inside the transaction that makes the change, so both land or neither. */
export async function recordAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({ actor: entry.actor, action: entry.action, target: entry.target, details: JSON.stringify(entry.details) })
    .execute();
}

/** An audit entry as read back. */
export interface AuditEvent extends AuditEntry {
  readonly id: string;
  readonly at: Date;
}

/** A page of audit events, oldest first, `limit + 1` rows (see `toPage`). */
export async function selectAuditPage(
  db: Db,
  limit: number,
  after: PageCursor | undefined,
  filters: { readonly actor?: string; readonly action?: string; readonly target?: string } = {},
): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll();
  if (filters.actor !== undefined) query = query.where('actor', '=', filters.actor);
  if (filters.action !== undefined) query = query.where('action', '=', filters.action);
  if (filters.target !== undefined) query = query.where('target', '=', filters.target);
  // Ids are a sequence: ordering by id alone is stable and matches insertion order.
  if (after) query = query.where('id', '>', after.id);
  const rows = await query
    .orderBy('id')
    .limit(limit + 1)
    .execute();
  return rows.map((row) => ({ id: String(row.id), at: row.at, actor: row.actor, action: row.action, target: row.target, details: row.details }));
}
