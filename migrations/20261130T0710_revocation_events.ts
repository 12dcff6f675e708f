/**
 * Revocation events (Security Event Tokens, docs/revocation-events.md):
 * - `security_event_outbox`: revocations decided in PostgreSQL (clients, accounts, signing keys) write
 *   their event here in the same transaction; a relay moves each row to Redis, where resource servers
 *   poll or are pushed their events, and deletes it. A crash between the two loses nothing.
 * - `resource_servers.events_endpoint*`: where a resource server asks to be pushed its events
 *   (RFC 8935), and the bearer credential presented there, sealed under the key-encryption key (it
 *   must be sent, so it cannot be a digest).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('security_event_outbox')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('event', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('security_event_outbox_created_at').on('security_event_outbox').column('created_at').execute();
  await db.schema
    .alterTable('resource_servers')
    .addColumn('events_endpoint', 'text')
    .addColumn('events_endpoint_token_sealed', 'text')
    .addColumn('events_endpoint_token_kek_id', 'text')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('resource_servers')
    .dropColumn('events_endpoint')
    .dropColumn('events_endpoint_token_sealed')
    .dropColumn('events_endpoint_token_kek_id')
    .execute();
  await db.schema.dropTable('security_event_outbox').execute();
}
