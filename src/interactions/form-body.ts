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

/** The fields of an `application/x-www-form-urlencoded` body (the first value of each name). */
export async function readFormBody(ctx: Context): Promise<Map<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new FormBodyError(415, 'the form must be application/x-www-form-urlencoded');
  const body = await readBodyWithin(ctx.req, MAX_FORM_BYTES);
  if (!body) {
    ctx.set('Connection', 'close');
    throw new FormBodyError(413, 'the form is too large');
  }
  const fields = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    if (!fields.has(name)) fields.set(name, value);
  }
  return fields;
}
