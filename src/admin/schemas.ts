/**
 * Field schemas shared by the admin resources, the query of every list route, and the one parser of
 * every admin input. What PostgreSQL cannot hold is refused here, as a 422 or a 404, before any query:
 * a value the database would reject must never reach it and come back as a 500.
 */
import { z } from 'zod';
import { decodeCursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type PageCursor } from '../shared/pagination.js';
import { Problem, fieldErrorsFrom, type FieldError } from './problem.js';

/** The id of a row whose key is a PostgreSQL `uuid` (resource servers, accounts): an RFC 9562 UUID, as randomUUID makes. */
export const uuidId = z.uuid();

/**
 * The id of a row whose key is text we generate or an operator configures (client ids, signing key
 * ids): 1-128 URL-safe characters, the rule ADMIN_BOOTSTRAP_CLIENT_ID follows too.
 */
export const urlSafeId = z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1-128 URL-safe characters');

// Below PostgreSQL's B-tree limit (about 2.7 kB per entry), so a unique identifier always fits its index.
const MAX_URI_BYTES = 2048;

/** An absolute URI (RFC 3986) with a scheme and no fragment, at most 2048 bytes in UTF-8. */
export const absoluteUri = z
  .string()
  .max(MAX_URI_BYTES)
  .refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_URI_BYTES, `must be at most ${MAX_URI_BYTES} bytes in UTF-8`)
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

/** JSON nested deeper than this is refused: no admin resource comes close, and serialising it would exhaust the stack. */
export const MAX_JSON_DEPTH = 32;

// String.prototype.isWellFormed, spelled out for the ES2022 library this project compiles against.
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why PostgreSQL could not store `text`, or undefined when it can: text and jsonb hold no NUL (U+0000),
 * and jsonb refuses an unpaired surrogate (which text would silently turn into U+FFFD).
 */
function unstorable(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain the NUL character (U+0000)';
  if (UNPAIRED_SURROGATE.test(text)) return 'must be well-formed Unicode (no unpaired surrogate)';
  return undefined;
}

/**
 * Every place in a JSON value PostgreSQL could not store: a string (a value or a member name) it
 * cannot hold, or nesting deeper than MAX_JSON_DEPTH. Covers fields no schema names one by one (the
 * members of a JWKS, an unknown field), so no route has to remember the rule.
 */
export function unstorableErrors(value: unknown, pathPrefix: readonly string[] = []): FieldError[] {
  interface Node {
    readonly value: unknown;
    readonly key: string | undefined;
    readonly parent: Node | undefined;
    readonly depth: number;
  }
  const pathOf = (node: Node | undefined): string => {
    const keys: string[] = [];
    for (let at = node; at?.key !== undefined; at = at.parent) keys.unshift(at.key);
    return [...pathPrefix, ...keys].join('.') || '(body)';
  };
  const errors: FieldError[] = [];
  // Breadth first with parent links, not recursion: a 1 MiB body can nest half a million levels deep.
  const queue: Node[] = [{ value, key: undefined, parent: undefined, depth: 0 }];
  for (let next = 0; next < queue.length; next++) {
    const node = queue[next];
    if (typeof node.value === 'string') {
      const message = unstorable(node.value);
      if (message) errors.push({ path: pathOf(node), message });
    } else if (typeof node.value === 'object' && node.value !== null) {
      if (node.depth >= MAX_JSON_DEPTH) {
        errors.push({ path: pathOf(node), message: `must not nest more than ${MAX_JSON_DEPTH} levels deep` });
        continue;
      }
      const entries = Array.isArray(node.value) ? node.value.map((item, index) => [String(index), item] as const) : Object.entries(node.value);
      for (const [key, child] of entries) {
        const message = Array.isArray(node.value) ? undefined : unstorable(key);
        if (message) errors.push({ path: pathOf(node), message: `has a member name that ${message}` });
        queue.push({ value: child, key, parent: node, depth: node.depth + 1 });
      }
    }
  }
  return errors;
}

/**
 * Parses `value` with `schema` or throws a 422 problem listing every invalid field: what the schema
 * refuses, and anything PostgreSQL could not store (see unstorableErrors), reported once per field.
 */
export function parseOrProblem<T extends z.ZodType>(schema: T, value: unknown, pathPrefix: string[] = []): z.output<T> {
  const unstorableFields = unstorableErrors(value, pathPrefix);
  const result = schema.safeParse(value);
  if (unstorableFields.length === 0 && result.success) return result.data;
  const reported = new Set(unstorableFields.map((error) => error.path));
  const invalid = result.success ? [] : fieldErrorsFrom(result.error, pathPrefix).filter((error) => !reported.has(error.path));
  throw new Problem(422, 'invalid fields', [...unstorableFields, ...invalid]);
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
export const secretRotationSchema = z.strictObject({
  grace_seconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .default(0),
});
