/** Keyset pagination shared by every admin list: stable under inserts, each item visited once. */
import { sql, type RawBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely';
import { z } from 'zod';

/** Where the next page starts: the sort key of the last item of the previous page. */
export interface PageCursor {
  readonly createdAt: string;
  readonly id: string;
}

/** A page of items and the cursor of the next page (`null` on the last page). */
export interface Page<T> {
  readonly items: T[];
  readonly next_cursor: string | null;
}

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 50;

/** Encodes a cursor as an opaque base64url string. */
export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/**
 * Decodes a cursor; `undefined` when it was not made by `encodeCursor` for a row whose id `id` accepts.
 * `createdAt` must be what `toISOString` writes for a four-digit year, which PostgreSQL can always store.
 */
export function decodeCursor(value: string, id: z.ZodType<string>): PageCursor | undefined {
  try {
    const parsed = z.strictObject({ createdAt: z.iso.datetime(), id }).safeParse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Builds a page from `rows` fetched with `limit + 1`: the extra row only tells whether more follow.
 */
export function toPage<Row, Item>(rows: Row[], limit: number, keyOf: (row: Row) => PageCursor, present: (row: Row) => Item): Page<Item> {
  const pageRows = rows.slice(0, limit);
  const last = pageRows.at(-1);
  return {
    items: pageRows.map(present),
    next_cursor: rows.length > limit && last ? encodeCursor(keyOf(last)) : null,
  };
}

/**
 * The keyset condition of the page after `after`, for rows sorted by (`createdAtColumn`, `idColumn`):
 * one row comparison, `(created_at, id) > (cursor's created_at, cursor's id)`. `afterId` replaces the
 * cursor's id where the column cannot hold it (a uuid column and an id of another form).
 */
function keysetAfter(after: PageCursor, createdAtColumn: string, idColumn: string, afterId: string = after.id): RawBuilder<SqlBool> {
  return sql<SqlBool>`(${sql.ref(createdAtColumn)}, ${sql.ref(idColumn)}) > (${new Date(after.createdAt)}, ${afterId})`;
}

/**
 * `query` narrowed to the page after `after` (when given) and sorted as the cursor follows: by
 * (`createdAtColumn`, `idColumn`), `limit + 1` rows (the extra one tells `toPage` whether more follow).
 * `storableId` maps the cursor's id to one the id column can hold (a uuid column and an id of another
 * form), as {@link keysetAfter}'s `afterId`.
 */
export function pageAfter<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  after: PageCursor | undefined,
  limit: number,
  order: { readonly createdAtColumn: string; readonly idColumn: string; readonly storableId?: (id: string) => string },
): SelectQueryBuilder<DB, TB, O> {
  const narrowed = after
    ? query.where(keysetAfter(after, order.createdAtColumn, order.idColumn, order.storableId ? order.storableId(after.id) : after.id))
    : query;
  return narrowed
    .orderBy(sql.ref(order.createdAtColumn))
    .orderBy(sql.ref(order.idColumn))
    .limit(limit + 1);
}
