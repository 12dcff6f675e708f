/** What a service needs to make an audited, propagated change. */
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';

/** The database, the change bus, and who is acting (for the audit trail). */
export interface ChangeContext {
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly actor: string;
}

/** Whether `error` is PostgreSQL's unique-constraint violation (code 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
