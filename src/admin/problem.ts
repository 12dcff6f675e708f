/**
 * RFC 9457 problem details for the admin API: one error class, one renderer. Anything that is not a
 * `Problem` becomes a bare 500 with no detail, so nothing internal reaches the caller.
 */
import type { Context, Next } from 'koa';
import { ZodError } from 'zod';
import { type Logger } from '../observability/logger.js';
import { requestContext } from '../shared/request-context.js';
import { isStoreUnavailableError } from '../observability/store-health.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../shared/errors.js';

/** One invalid field: a JSON-pointer-like dotted path and what is wrong with it. */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error the admin API answers with as `application/problem+json`. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors?: readonly FieldError[],
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'Problem';
  }
}

/** Turns zod issues into field errors with dotted paths (`scopes.2`). */
export function fieldErrorsFrom(error: ZodError, prefix: string[] = []): FieldError[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path.map(String)].join('.') || '(body)',
    message: issue.message,
  }));
}

/** The problem an error stands for, or undefined for an unexpected error (a 500). */
function asProblem(error: unknown): Problem | undefined {
  if (error instanceof Problem) return error;
  if (isStoreUnavailableError(error) || requestContext.getStore()?.storeUnavailable) {
    return new Problem(503, 'a backing store is unavailable; retry shortly', undefined, { 'Retry-After': '1' });
  }
  if (error instanceof ZodError) return new Problem(422, 'invalid fields', fieldErrorsFrom(error));
  if (error instanceof NotFoundError) return new Problem(404, error.message);
  if (error instanceof ConflictError) {
    const { field, retryAfterSeconds } = error.details;
    return new Problem(409, error.message, field ? [field] : undefined, retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) });
  }
  if (error instanceof InvalidInputError) return new Problem(422, error.message, [{ path: error.path, message: error.message }]);
  return undefined;
}

/** Koa middleware rendering every error below it as problem+json. */
export function problemHandler(logger: Logger) {
  return async function renderProblems(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new Problem(404, 'no such route');
    } catch (error) {
      const problem = asProblem(error);
      if (!problem) logger.error({ err: error }, 'admin request failed');
      const status = problem?.status ?? 500;
      ctx.status = status;
      ctx.type = 'application/problem+json';
      for (const [name, value] of Object.entries(problem?.headers ?? {})) ctx.set(name, value);
      ctx.body = {
        type: 'about:blank',
        title: TITLES[status] ?? 'Error',
        status,
        detail: problem?.detail ?? 'the request could not be completed',
        ...(problem?.errors ? { errors: problem.errors } : {}),
      };
    }
  };
}
