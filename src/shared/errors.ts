/**
 * Errors of the domain services, independent of HTTP. The admin API's problem handler turns them into
 * 404, 409 and 422 problems (src/admin/problem.ts); anything else is a 500 with no detail.
 */

/** The thing named does not exist. */
export class NotFoundError extends Error {
  override readonly name: string = 'NotFoundError';
}

/** What a ConflictError may say beyond its message. */
export interface ConflictDetails {
  /** The field at fault (dotted, as in the request) and why, when one field is. */
  readonly field?: { readonly path: string; readonly message: string };
  /** When the conflict will have passed on its own, in seconds. */
  readonly retryAfterSeconds?: number;
}

/** The change conflicts with what exists (a duplicate identifier, a thing still in use). */
export class ConflictError extends Error {
  override readonly name: string = 'ConflictError';
  constructor(
    message: string,
    readonly details: ConflictDetails = {},
  ) {
    super(message);
  }
}

/** An input that cannot be accepted; `path` names the field at fault (dotted, as in the request). */
export class InvalidInputError extends Error {
  override readonly name: string = 'InvalidInputError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * `value` when there is one; otherwise NotFoundError "no `description`". The one way a lookup that
 * found nothing becomes a 404, so services need not return `undefined` for routes to translate.
 */
export function found<T>(value: T | null | undefined, description: string): T {
  if (value === undefined || value === null) throw new NotFoundError(`no ${description}`);
  return value;
}
