/**
 * The position of a reader in a resource server's event queue, as the poll endpoint's `cursor`
 * extension hands it out (docs/revocation-events.md): opaque to the reader, base64url of
 * `1.<score>.<SET id>`, the score being the queue's order of the last event answered. It holds no
 * secret and chooses no queue (the caller's credentials do): a forged cursor only moves its holder
 * within its own queue, so a well-formed one is all the server checks.
 */

/** Where a reader is: after the event queued at `score` with `setId` (ties of score ordered by SET id, byte-wise). */
export interface QueuePosition {
  readonly score: number;
  readonly setId: string;
}

const VERSION = '1';
/** A cursor longer than this was not made here (a SET id is at most 256 characters). */
const MAX_CURSOR_LENGTH = 400;
const DECODED = /^1\.(0|[1-9][0-9]{0,15})\.([A-Za-z0-9_-]{1,256})$/;

/** The opaque cursor of `position`. */
export function encodeCursor(position: QueuePosition): string {
  return Buffer.from(`${VERSION}.${position.score}.${position.setId}`, 'utf8').toString('base64url');
}

/**
 * The position a cursor names: `null` for `""` (before the oldest retained event), `undefined` for
 * anything this server did not make (malformed, not canonical base64url, another version).
 */
export function decodeCursor(cursor: string): QueuePosition | null | undefined {
  if (cursor === '') return null;
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = DECODED.exec(decoded);
  if (!match) return undefined;
  const position = { score: Number(match[1]), setId: match[2] };
  // Only the one spelling this server writes: no padding variants, no trailing bits.
  if (!Number.isSafeInteger(position.score) || encodeCursor(position) !== cursor) return undefined;
  return position;
}

/** Whether the event at (`score`, `setId`) comes after `position` in queue order. */
export function isAfter(score: number, setId: string, position: QueuePosition | null): boolean {
  if (position === null) return true;
  if (score !== position.score) return score > position.score;
  return Buffer.compare(Buffer.from(setId), Buffer.from(position.setId)) > 0;
}
