/** Field schemas shared by the admin resources, and the query of every list route. */
import { z } from 'zod';
import { decodeCursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type PageCursor } from '../shared/pagination.js';
import { Problem, fieldErrorsFrom } from './problem.js';

/** An absolute URI (RFC 3986) with a scheme and no fragment. */
export const absoluteUri = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const url = new URL(v);
      return !url.hash && /^[a-z][a-z0-9+.-]*:$/.test(url.protocol);
    } catch {
      return false;
    }
  }, 'must be an absolute URI without a fragment');

/** A scope token (RFC 6749 section 3.3), kept to a practical alphabet. */
export const scopeName = z.string().regex(/^[A-Za-z0-9_.:/-]{1,128}$/, 'must be 1-128 characters of letters, digits, _ . : / -');

/** A list without repeated entries. */
export const uniqueList = <T extends z.ZodType<string>>(item: T, max: number) =>
  z
    .array(item)
    .max(max)
    .refine((list) => new Set(list).size === list.length, 'must not repeat an entry');

/** Parses `value` with `schema` or throws a 422 problem listing every invalid field. */
export function parseOrProblem<T extends z.ZodType>(schema: T, value: unknown, pathPrefix: string[] = []): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new Problem(422, 'invalid fields', fieldErrorsFrom(result.error, pathPrefix));
  return result.data;
}

/**
 * The record a PATCH leaves: `patch` laid over `current` (the fields as a create body would give them),
 * then validated whole by `createSchema`, so a change can never leave a record that creating it would
 * have refused. A `null` in the patch removes the field, so the create schema's default applies again.
 * Answers a 422 problem, like `parseOrProblem`, when the merged record is refused.
 */
export function mergePatch<T extends z.ZodType>(
  createSchema: T,
  current: Readonly<Record<string, unknown>>,
  patch: Readonly<Record<string, unknown>>,
): z.output<T> {
  const merged: Record<string, unknown> = { ...current };
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) delete merged[field];
    else if (value !== undefined) merged[field] = value;
  }
  return parseOrProblem(createSchema, merged);
}

/**
 * The query of every list route: `limit` (capped at MAX_PAGE_SIZE) and `cursor`, decoded into the
 * position it stands for; a cursor not made by us, or holding an id no row can have, is a 422.
 */
export const listQuery = (cursorId: z.ZodType<string>) =>
  z.object({
    limit: z
      .string()
      .regex(/^\d+$/, 'must be a whole number')
      .transform(Number)
      .refine((n) => n >= 1, 'must be at least 1')
      .transform((n) => Math.min(n, MAX_PAGE_SIZE))
      .optional()
      .describe(`items per page, at most ${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`),
    cursor: z
      .string()
      .max(1024)
      .transform((value, ctx): PageCursor => {
        const cursor = decodeCursor(value, cursorId);
        if (!cursor) {
          ctx.addIssue({ code: 'custom', message: 'is not a cursor from a previous page' });
          return z.NEVER;
        }
        return cursor;
      })
      .optional()
      .describe('next_cursor of the previous page'),
  });

/** An ISO 8601 timestamp in an answer. */
export const timestamp = z.iso.datetime();

/** The answer of a list route: a page of `item` and the cursor of the next page. */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/** The body of every `POST .../secret` route. */
export const secretRotationSchema = z.strictObject({ grace_seconds: z.number().int().min(0).max(30 * 86_400).default(0) });
