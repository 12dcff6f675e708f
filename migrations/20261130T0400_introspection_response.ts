/**
 * How a resource server's introspection answers come by default: plain JSON (RFC 7662), or a signed
 * JWT (RFC 9701) even when the request does not ask for one.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('resource_servers')
    .addColumn('introspection_response', 'text', (c) =>
      c
        .notNull()
        .defaultTo('json')
        .check(sql`introspection_response in ('json', 'jwt')`),
    )
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('resource_servers').dropColumn('introspection_response').execute();
}
