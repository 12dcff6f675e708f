/**
 * The outbox of revocations decided in PostgreSQL (a client disabled, deleted or bulk-revoked; an
 * account disabled, deleted or bulk-revoked; a signing key revoked; a person losing entitlements). The service that makes the change
 * writes the event in the same transaction (so the revocation and its announcement commit or vanish
 * together); the relay (security-events.ts) moves committed rows to Redis and deletes them, right
 * after the change and periodically, so one left by a crash is relayed by the next relay of any instance.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import type { RecordedEvent, RevocationEvent } from './revocation-event.js';

/** Rows relayed per transaction. */
const RELAY_BATCH = 100;

/** Rows written per statement when many events are recorded at once. */
const RECORD_BATCH = 500;

/** Writes `event` to the outbox, in the caller's transaction `trx`. */
export async function recordRevocationEvent(trx: Db, event: RevocationEvent): Promise<void> {
  await recordRevocationEvents(trx, [event]);
}

/** Writes `events` to the outbox, in the caller's transaction `trx` (a few statements, however many). */
export async function recordRevocationEvents(trx: Db, events: readonly RevocationEvent[]): Promise<void> {
  const at = Math.floor(Date.now() / 1000);
  for (let start = 0; start < events.length; start += RECORD_BATCH) {
    const rows = events.slice(start, start + RECORD_BATCH).map((event) => {
      const recorded: RecordedEvent = { id: randomUUID(), at, event };
      return { id: recorded.id, event: JSON.stringify(recorded) };
    });
    await trx.insertInto('security_event_outbox').values(rows).execute();
  }
}

/**
 * Relays committed outbox rows, oldest first, in batches: each batch is locked (`SKIP LOCKED`: two
 * instances never relay the same row at once), handed to `relay`, and deleted in the same transaction
 * once relayed; a relay that fails leaves its batch for the next attempt. Resolves with how many rows it relayed.
 */
export async function relayOutbox(db: Db, relay: (recorded: RecordedEvent) => Promise<void>): Promise<number> {
  let total = 0;
  for (;;) {
    const relayed = await db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('security_event_outbox')
        .select(['id', 'event'])
        .orderBy('created_at')
        .limit(RELAY_BATCH)
        .forUpdate()
        .skipLocked()
        .execute();
      for (const row of rows) await relay((typeof row.event === 'string' ? JSON.parse(row.event) : row.event) as RecordedEvent);
      if (rows.length > 0) {
        await trx
          .deleteFrom('security_event_outbox')
          .where(
            'id',
            'in',
            rows.map((row) => row.id),
          )
          .execute();
      }
      return rows.length;
    });
    total += relayed;
    if (relayed < RELAY_BATCH) return total;
  }
}
