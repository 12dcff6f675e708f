/**
 * Strong sign-in (docs/strong-sign-in.md): the second factors of accounts (one TOTP authenticator,
 * any number of passkeys, ten recovery codes), whether an account must use them, and what
 * authentication a resource server requires of person-held tokens.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('accounts')
    .addColumn('mfa_required', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();

  // One authenticator app per account. The secret is sealed under the key-encryption key; the last
  // accepted time step refuses a code used twice. Unconfirmed until a first code proves the enrolment.
  await db.schema
    .createTable('totp_factors')
    .addColumn('account_id', 'uuid', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
    .addColumn('sealed_secret', 'text', (c) => c.notNull())
    .addColumn('kek_id', 'text', (c) => c.notNull())
    .addColumn('last_used_step', 'bigint')
    .addColumn('confirmed_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // WebAuthn credentials. The public key is public; the signature counter refuses a cloned authenticator.
  await db.schema
    .createTable('passkeys')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('credential_id', 'text', (c) => c.notNull().unique())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('sign_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('device_type', 'text', (c) => c.notNull().check(sql`device_type in ('singleDevice', 'multiDevice')`))
    .addColumn('backed_up', 'boolean', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('passkeys_account_idx').on('passkeys').column('account_id').execute();

  // Single-use codes, stored as SHA-256 digests (80 random bits each); a used code keeps its row.
  await db.schema
    .createTable('recovery_codes')
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('recovery_codes_pkey', ['account_id', 'digest'])
    .execute();

  await db.schema
    .alterTable('resource_servers')
    .addColumn('required_acr', 'text')
    .addColumn('sensitive_scopes_acr', 'text')
    .addColumn('sensitive_scopes_acr_max_age', 'integer')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('resource_servers')
    .dropColumn('required_acr')
    .dropColumn('sensitive_scopes_acr')
    .dropColumn('sensitive_scopes_acr_max_age')
    .execute();
  await db.schema.dropTable('recovery_codes').execute();
  await db.schema.dropTable('passkeys').execute();
  await db.schema.dropTable('totp_factors').execute();
  await db.schema.alterTable('accounts').dropColumn('mfa_required').execute();
}
