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

/** The query of every list route. */
export const listQuerySchema = z.object({
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= 1, 'must be at least 1')
    .optional(),
  cursor: z.string().max(1024).optional(),
});

/** Reads `?limit=&cursor=`: `limit` is capped at MAX_PAGE_SIZE; a cursor not made by us is a 422. */
export function parseListQuery(query: unknown): { limit: number; after: PageCursor | undefined } {
  const parsed = parseOrProblem(listQuerySchema, query, ['query']);
  const after = parsed.cursor === undefined ? undefined : decodeCursor(parsed.cursor);
  if (parsed.cursor !== undefined && !after) {
    throw new Problem(422, 'invalid fields', [{ path: 'query.cursor', message: 'is not a cursor from a previous page' }]);
  }
  return { limit: Math.min(parsed.limit ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), after };
}

/** An ISO 8601 timestamp in an answer. */
export const timestamp = z.iso.datetime();

/** The answer of a list route: a page of `item` and the cursor of the next page. */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/** The body of every `POST .../secret` route. */
export const secretRotationSchema = z.strictObject({ grace_seconds: z.number().int().min(0).max(30 * 86_400).default(0) });
