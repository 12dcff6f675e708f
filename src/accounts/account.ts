/** The account (a person who logs in) as the rest of the server sees it: never a database row. */

/** A person's account. `id` is the `sub` of every token issued to them. */
export interface Account {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly disabled: boolean;
  /** Epoch seconds: sessions, grants and tokens issued at or before this instant are dead. */
  readonly tokensRevokedAt: number | null;
  /** The person must sign in with a second factor, and enrol one at the next sign-in (docs/strong-sign-in.md). */
  readonly mfaRequired: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Account ids are UUIDs (the server makes them); anything else names no account. */
const ACCOUNT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether an account could have this id: answered as unknown without a query when not. */
export const isPossibleAccountId = (id: string): boolean => ACCOUNT_ID.test(id);

/** The longest email an account may have (RFC 5321's path limit, as account creation enforces). */
export const MAX_EMAIL_LENGTH = 320;

/**
 * Whether an account could have this email: not empty, at most {@link MAX_EMAIL_LENGTH} characters, and
 * no control character, no U+FFFD (what undecodable UTF-8 becomes) and no lone surrogate, none of
 * which account creation accepts or PostgreSQL stores. Anything else is looked up.
 */
export function isPossibleEmail(email: string): boolean {
  // eslint-disable-next-line no-control-regex
  return email.length > 0 && email.length <= MAX_EMAIL_LENGTH && !/[\u0000-\u001f\u007f\ufffd]|\p{Cs}/u.test(email);
}
