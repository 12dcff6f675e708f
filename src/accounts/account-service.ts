/**
 * Managing accounts: each change is one transaction with its audit entry, then a change event so
 * every instance drops its cached copy, then (when the change ends them) the account's sessions and
 * grants are deleted from the token store. Passwords are hashed here and never leave this module.
 */
import { randomUUID } from 'node:crypto';
import { recordAudit } from '../audit/audit.js';
import { isUniqueViolation, type ChangeContext } from '../shared/change-context.js';
import { ConflictError, found, NotFoundError } from '../shared/errors.js';
import type { Account } from './account.js';
import { deleteAccount as deleteAccountRow, insertAccount, updateAccount as updateAccountRow, type AccountChanges } from './account-repository.js';
import { hashPassword } from './password.js';
import { recordRevocationEvent } from '../security-events/outbox.js';
import { revokedBeforeOf } from '../security-events/revocation-event.js';

/** Where an account's sessions and grants live (the token store). */
export interface AccountSessions {
  /** Deletes every session and grant of the account, and every token of those grants. */
  revokeAccount(accountId: string): Promise<void>;
}

/** What an account change needs: the audited database, the change bus, and the session store. */
export interface AccountChangeContext extends ChangeContext {
  readonly sessions: AccountSessions;
}

/** Another account already has this email (whatever its case). */
export class DuplicateEmailError extends ConflictError {
  constructor() {
    super('an account with this email already exists', { field: { path: 'email', message: 'is taken' } });
  }
}

/** What an admin gives to create an account. */
export interface AccountInput {
  email: string;
  name: string;
  password: string;
}

async function withUniqueEmail<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUniqueViolation(error)) throw new DuplicateEmailError();
    throw error;
  }
}

/** Creates an account; its id (a UUID) is the `sub` of its tokens. */
export async function createAccount(change: AccountChangeContext, input: AccountInput): Promise<Account> {
  const passwordHash = await hashPassword(input.password);
  const account = await withUniqueEmail(() =>
    change.db.transaction().execute(async (trx) => {
      const created = await insertAccount(trx, { id: randomUUID(), email: input.email, name: input.name, passwordHash });
      await recordAudit(trx, {
        actor: change.actor,
        action: 'account.create',
        target: created.id,
        details: { email: created.email, name: created.name },
      });
      return created;
    }),
  );
  await change.bus.publish({ kind: 'account', id: account.id });
  return account;
}

/** What an admin may change on an account. */
export interface AccountUpdate {
  email?: string;
  name?: string;
  disabled?: boolean;
}

/**
 * Changes an account. Disabling it ends its sessions and grants at once: its tokens (JWTs included)
 * are dead from this instant, and stay dead if it is enabled again.
 * @returns the account; NotFoundError when there is none with this id.
 */
export async function updateAccount(change: AccountChangeContext, id: string, update: AccountUpdate): Promise<Account> {
  const disabling = update.disabled === true;
  const revokedAt = new Date();
  const changes: AccountChanges = { ...update, ...(disabling ? { tokensRevokedAt: revokedAt } : {}) };
  const account = await withUniqueEmail(() =>
    change.db.transaction().execute(async (trx) => {
      const updated = found(await updateAccountRow(trx, id, changes), `account ${id}`);
      if (disabling) await recordRevocationEvent(trx, { kind: 'account', sub: id, revokedBefore: revokedBeforeOf(revokedAt.getTime()), reason: 'disabled' });
      await recordAudit(trx, { actor: change.actor, action: 'account.update', target: id, details: { ...update } });
      return updated;
    }),
  );
  await change.bus.publish({ kind: 'account', id });
  if (disabling) await change.sessions.revokeAccount(id);
  return account;
}

/**
 * Sets a new password. Like a reset after a compromise, it ends the account's sessions and grants:
 * whoever knew the old password is signed out everywhere. NotFoundError when there is no such account.
 */
export async function setPassword(change: AccountChangeContext, id: string, password: string): Promise<void> {
  const passwordHash = await hashPassword(password);
  await change.db.transaction().execute(async (trx) => {
    const revokedAt = new Date();
    found(await updateAccountRow(trx, id, { passwordHash, tokensRevokedAt: revokedAt }), `account ${id}`);
    await recordRevocationEvent(trx, { kind: 'account', sub: id, revokedBefore: revokedBeforeOf(revokedAt.getTime()), reason: 'revoked' });
    await recordAudit(trx, { actor: change.actor, action: 'account.password', target: id, details: {} });
  });
  await change.bus.publish({ kind: 'account', id });
  await change.sessions.revokeAccount(id);
}

/**
 * Deletes an account, its sessions and its grants. Its tokens die with it (an unknown account's
 * tokens introspect inactive). NotFoundError when there is no such account.
 */
export async function deleteAccount(change: AccountChangeContext, id: string): Promise<void> {
  await change.db.transaction().execute(async (trx) => {
    if (!(await deleteAccountRow(trx, id))) throw new NotFoundError(`no account ${id}`);
    await recordRevocationEvent(trx, { kind: 'account', sub: id, revokedBefore: revokedBeforeOf(Date.now()), reason: 'deleted' });
    await recordAudit(trx, { actor: change.actor, action: 'account.delete', target: id, details: {} });
  });
  await change.bus.publish({ kind: 'account', id });
  await change.sessions.revokeAccount(id);
}
