/**
 * Errors of the domain services, independent of HTTP. The admin API's problem handler turns them into
 * 404, 409 and 422 problems (src/admin/problem.ts); anything else is a 500 with no detail.
 */

/** The thing named does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** The change conflicts with what exists (a duplicate identifier, a thing still in use). */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** An input that cannot be accepted; `path` names the field at fault (dotted, as in the request). */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}
