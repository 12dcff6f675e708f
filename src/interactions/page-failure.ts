/**
 * One answer for every failure of our HTML pages (the sign-in interaction and the account page): the
 * error page, with a description only for errors the page expects, a 503 worth retrying when a backing
 * store is down, and a 500 logged with its cause otherwise.
 */
import type { Context } from 'koa';
import type { Logger } from '../observability/logger.js';
import { isStoreUnavailableError } from '../observability/store-health.js';
import { requestContext } from '../shared/request-context.js';
import { FormBodyError } from './form-body.js';
import { errorPage } from './pages.js';
import { setPageHeaders } from './page-headers.js';

/** What a page shows for a failure it expects: the HTTP status, an error code and words for people. */
export interface ExpectedPageFailure {
  readonly status: number;
  readonly error: string;
  readonly description?: string | undefined;
}

/**
 * Sends the error page for `error` on `ctx`. `expected` is what the page makes of its own errors
 * (`undefined` for one it does not know); `what` names the page in the log lines ("interaction",
 * "account page").
 */
export function sendPageFailure(ctx: Context, error: unknown, expected: ExpectedPageFailure | undefined, logger: Logger, what: string): void {
  const context = requestContext.getStore();
  let failure: ExpectedPageFailure = { status: 500, error: 'server_error' };
  if (expected) {
    failure = expected;
  } else if (error instanceof FormBodyError) {
    failure = { status: error.status, error: 'invalid_request', description: error.message };
  } else if (context?.storeUnavailable || isStoreUnavailableError(error)) {
    // A store failed (a sign-in limit among them): refused, and worth retrying shortly.
    logger.warn({ err: error }, `${what} refused: a backing store is unavailable`);
    failure = { status: 503, error: 'temporarily_unavailable', description: 'the service is unavailable for a moment; try again shortly' };
    ctx.set('Retry-After', '1');
  } else {
    logger.error({ err: error }, `${what} failed`);
  }
  // The reference people can quote is the request id of this answer (its X-Request-Id).
  setPageHeaders(ctx);
  ctx.status = failure.status;
  ctx.type = 'html';
  ctx.body = errorPage({ error: failure.error, description: failure.description, requestId: context?.requestId });
}
