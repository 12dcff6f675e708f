/** Reads a JSON request body with a size limit; the admin API's only body parser. */
import type { Context } from 'koa';
import { hasBody, readBodyWithin } from '../shared/request-body.js';
import { Problem } from './problem.js';

/** Admin bodies larger than this answer 413. */
export const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

/**
 * The parsed JSON body of `ctx`; problem 415/413/400 when it is not acceptable JSON.
 * With `optional`, a request without a body reads as `{}` (for routes whose fields all have defaults).
 */
export async function readJsonBody(ctx: Context, options: { optional?: boolean } = {}): Promise<unknown> {
  if (options.optional && !hasBody(ctx.req)) return {};
  if (!ctx.is('application/json')) throw new Problem(415, 'the body must be application/json');
  const body = await readBodyWithin(ctx.req, MAX_ADMIN_BODY_BYTES);
  if (!body) {
    ctx.set('Connection', 'close');
    throw new Problem(413, `the body must not exceed ${MAX_ADMIN_BODY_BYTES} bytes`);
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new Problem(400, 'the body is not valid JSON');
  }
}
