/** PostgreSQL access for accounts. Functions take the database (or a transaction) first. */
import { sql, type Selectable } from 'kysely';
import type { Db } from '../db/database.js';
import type { AccountsTable } from '../db/schema.js';
import { pageAfter, type PageCursor } from '../shared/pagination.js';
import { isPossibleAccountId, isPossibleEmail, type Account } from './account.js';

type Row = Selectable<AccountsTable>;

function toAccount(row: Row): Account {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    disabled: row.disabled,
    mfaRequired: row.mfa_required,
    tokensRevokedAt: row.tokens_revoked_at ? Math.floor(row.tokens_revoked_at.getTime() / 1000) : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What a new account row needs. */
export interface NewAccount {
  id: string;
  email: string;
  name: string;
  passwordHash: string;
}

/** Inserts an account; run it inside the caller's transaction. */
export async function insertAccount(db: Db, account: NewAccount): Promise<Account> {
  const now = new Date();
  const row = await db
    .insertInto('accounts')
    .values({
      id: account.id,
      email: account.email,
      name: account.name,
      password_hash: account.passwordHash,
      // Set here (millisecond precision) so keyset cursors round-trip through JavaScript dates.
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toAccount(row);
}

/** The account with this id, or undefined (also for ids that are not UUIDs). */
export async function selectAccount(db: Db, id: string): Promise<Account | undefined> {
  if (!isPossibleAccountId(id)) return undefined;
  const row = await db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toAccount(row);
}

/** The account with this email (any case) and its password hash, for sign-in; none, without a query, for an email no account can have. */
export async function selectAccountForSignIn(db: Db, email: string): Promise<{ account: Account; passwordHash: string } | undefined> {
  if (!isPossibleEmail(email)) return undefined;
  const row = await db
    .selectFrom('accounts')
    .selectAll()
    .where(sql<string>`lower(email)`, '=', email.toLowerCase())
    .executeTakeFirst();
  return row && { account: toAccount(row), passwordHash: row.password_hash };
}

/** A page of accounts in creation order, `limit + 1` rows. */
export async function selectAccountPage(db: Db, limit: number, after: PageCursor | undefined): Promise<Account[]> {
  const rows = await pageAfter(db.selectFrom('accounts').selectAll(), after, limit, {
    createdAtColumn: 'created_at',
    idColumn: 'id',
    storableId: (id) => (isPossibleAccountId(id) ? id : '00000000-0000-0000-0000-000000000000'),
  }).execute();
  return rows.map(toAccount);
}

/** The columns an update may change. */
export interface AccountChanges {
  email?: string;
  name?: string;
  disabled?: boolean;
  mfaRequired?: boolean;
  passwordHash?: string;
  tokensRevokedAt?: Date;
}

/** Applies `changes`; the updated account, or undefined when there is none with this id. */
export async function updateAccount(db: Db, id: string, changes: AccountChanges): Promise<Account | undefined> {
  if (!isPossibleAccountId(id)) return undefined;
  const row = await db
    .updateTable('accounts')
    .set({
      ...(changes.email !== undefined ? { email: changes.email } : {}),
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}),
      ...(changes.mfaRequired !== undefined ? { mfa_required: changes.mfaRequired } : {}),
      ...(changes.passwordHash !== undefined ? { password_hash: changes.passwordHash } : {}),
      ...(changes.tokensRevokedAt !== undefined ? { tokens_revoked_at: changes.tokensRevokedAt } : {}),
      updated_at: new Date(),
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toAccount(row);
}

/** Deletes the account; whether there was one. */
export async function deleteAccount(db: Db, id: string): Promise<boolean> {
  if (!isPossibleAccountId(id)) return false;
  const result = await db.deleteFrom('accounts').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
