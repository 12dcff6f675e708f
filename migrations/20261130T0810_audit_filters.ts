/**
 * Indexes for the audit trail's filters (`GET /admin/audit?target=…`, `?actor=…`): each in id order,
 * so a filtered page reads only its own rows, however long the trail. (`action` needs none: a handful
 * of values, each frequent.)
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('audit_events_target_id').on('audit_events').columns(['target', 'id']).execute();
  await db.schema.createIndex('audit_events_actor_id').on('audit_events').columns(['actor', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('audit_events_actor_id').execute();
  await db.schema.dropIndex('audit_events_target_id').execute();
}
