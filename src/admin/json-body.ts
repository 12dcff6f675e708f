/** Reads a JSON request body with a size limit; the admin API's only body parser. */
import type { Context } from 'koa';
import { Problem } from './problem.js';

/** Admin bodies larger than this answer 413. */
export const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

/**
 * The parsed JSON body of `ctx`; problem 415/413/400 when it is not acceptable JSON.
 * With `optional`, a request without a body reads as `{}` (for routes whose fields all have defaults).
 */
export async function readJsonBody(ctx: Context, options: { optional?: boolean } = {}): Promise<unknown> {
  if (options.optional && !ctx.request.length && !ctx.get('transfer-encoding')) return {};
  if (!ctx.is('application/json')) throw new Problem(415, 'the body must be application/json');
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > MAX_ADMIN_BODY_BYTES) throw new Problem(413, `the body must not exceed ${MAX_ADMIN_BODY_BYTES} bytes`);

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new Problem(413, `the body must not exceed ${MAX_ADMIN_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Problem(400, 'the body is not valid JSON');
  }
}
