/**
 * Groups of accounts (nested one level), and entitlements: which groups or single accounts may receive
 * which scopes (and roles) of a resource server when a person is behind the token. A resource server
 * enforces them only once `enforce_entitlements` is on, so existing deployments keep working; the
 * admin audience is switched on by the server itself at start (see admin-bootstrap.ts). Resource
 * servers also get `scope_descriptions`, shown on the consent page beside each scope.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('resource_servers')
    .addColumn('enforce_entitlements', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('scope_descriptions', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();

  await db.schema
    .createTable('groups')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    // One level of nesting: a parent has no parent (checked by the service). Deleting a parent with
    // subgroups is refused by the service; the restriction here backs it up.
    .addColumn('parent_id', 'uuid', (c) => c.references('groups.id').onDelete('restrict'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('groups_not_own_parent', sql`parent_id is null or parent_id <> id`)
    .execute();
  // Names are unique whatever their case: "Payroll" and "payroll" would be one group to a person.
  await db.schema
    .createIndex('groups_name_lower_idx')
    .on('groups')
    .unique()
    .expression(sql`lower(name)`)
    .execute();
  await db.schema.createIndex('groups_created_at_idx').on('groups').columns(['created_at', 'id']).execute();

  await db.schema
    .createTable('group_members')
    .addColumn('group_id', 'uuid', (c) => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'account_id'])
    .execute();
  // An account's groups are what the hot path loads (once per cache miss).
  await db.schema.createIndex('group_members_account_idx').on('group_members').columns(['account_id', 'group_id']).execute();
  await db.schema.createIndex('group_members_page_idx').on('group_members').columns(['group_id', 'created_at', 'account_id']).execute();

  await db.schema
    .createTable('entitlements')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('resource_server_id', 'uuid', (c) => c.notNull().references('resource_servers.id').onDelete('cascade'))
    .addColumn('group_id', 'uuid', (c) => c.references('groups.id').onDelete('cascade'))
    .addColumn('account_id', 'uuid', (c) => c.references('accounts.id').onDelete('cascade'))
    .addColumn('scopes', 'jsonb', (c) => c.notNull())
    .addColumn('roles', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('entitlements_one_subject', sql`(group_id is null) <> (account_id is null)`)
    .execute();
  // One entitlement per subject and resource server: a second is a change of the first (409).
  await db.schema
    .createIndex('entitlements_group_idx')
    .on('entitlements')
    .columns(['resource_server_id', 'group_id'])
    .unique()
    .where('group_id', 'is not', null)
    .execute();
  await db.schema
    .createIndex('entitlements_account_idx')
    .on('entitlements')
    .columns(['resource_server_id', 'account_id'])
    .unique()
    .where('account_id', 'is not', null)
    .execute();
  await db.schema.createIndex('entitlements_page_idx').on('entitlements').columns(['resource_server_id', 'created_at', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('entitlements').execute();
  await db.schema.dropTable('group_members').execute();
  await db.schema.dropTable('groups').execute();
  await db.schema.alterTable('resource_servers').dropColumn('enforce_entitlements').dropColumn('scope_descriptions').execute();
}
