/**
 * Reads the urlencoded body of our own interaction forms, with a size limit. Only our routes use it:
 * oidc-provider parses its own bodies, so nothing parses a body in front of it.
 */
import type { Context } from 'koa';
import { readBodyWithin } from '../shared/request-body.js';

/** The forms are two short fields; anything larger is not one of them. */
const MAX_FORM_BYTES = 8 * 1024;

/** Why a form body was refused, with the HTTP status to answer. */
export class FormBodyError extends Error {
  constructor(
    readonly status: 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Every field of an `application/x-www-form-urlencoded` body, repeated names included, read up to
 * `maxBytes`.
 */
export async function readUrlEncodedBody(ctx: Context, maxBytes: number): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new FormBodyError(415, 'the form must be application/x-www-form-urlencoded');
  const body = await readBodyWithin(ctx.req, maxBytes);
  if (!body) {
    ctx.set('Connection', 'close');
    throw new FormBodyError(413, 'the form is too large');
  }
  return new URLSearchParams(body.toString('utf8'));
}

/** The fields of an `application/x-www-form-urlencoded` body (the first value of each name). */
export async function readFormBody(ctx: Context): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (const [name, value] of await readUrlEncodedBody(ctx, MAX_FORM_BYTES)) {
    if (!fields.has(name)) fields.set(name, value);
  }
  return fields;
}
