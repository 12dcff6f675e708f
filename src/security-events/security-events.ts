/**
 * Revocation events, from the revocation to the resource servers (docs/revocation-events.md):
 * - the relay: an event recorded with its revocation (in the token store's script, or in the
 *   PostgreSQL outbox's transaction) is queued for every resource server it concerns, then waiting
 *   polls are woken on every instance (change bus) and, where registered, a push is started;
 * - poll (RFC 8936): acknowledgements, errors reported by the receiver, and up to `maxEvents` SETs,
 *   held (long poll) until one arrives or the wait ends; or, with this server's `cursor` extension,
 *   the SETs after a position, read without removing them (every instance of a resource server
 *   reads every event);
 * - the periodic relays of what a crash left behind (outbox rows, recorded events in Redis).
 *
 * Delivery is at least once: an event leaves a queue only when acknowledged (a poll's `ack` or
 * `setErrs`, a push answered 202) or once older than the queue's retention; a cursor read removes nothing.
 */
import { adminAudience } from '../admin/admin-auth.js';
import type { Db } from '../db/database.js';
import type { ChangeBus, ChangeEvent } from '../events/change-bus.js';
import { DEFAULT_JWT_TTL_SECONDS, DEFAULT_OPAQUE_TTL_SECONDS } from '../issuer/token-policy.js';
import { decryptWithKek, type KeyEncryptionKey } from '../keys/key-encryption.js';
import type { Logger } from '../observability/logger.js';
import { securityEvents as securityEventCount } from '../observability/metrics.js';
import type { ResourceServer } from '../resource-servers/resource-server.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { eventsEndpointTokenContext } from '../resource-servers/resource-server-repository.js';
import { CoalescedRun } from '../shared/coalesced-run.js';
import type { SameStepQueue, SameStepQueuing, TokenStore } from '../tokens/token-store.js';
import { encodeCursor, type QueuePosition } from './event-cursor.js';
import type { EventQueue, QueuedEvent } from './event-queue.js';
import { relayOutbox } from './outbox.js';
import { postSet, PUSH_RETRY_DELAYS_MS, type PushDeliveryPolicy } from './push-delivery.js';
import { audiencesOf, setIdFor, type RecordedEvent } from './revocation-event.js';
import type { SetSigner } from './set-signer.js';

/** A queue keeps unacknowledged events at least this long, and at least as long as its audience's longest-lived token. */
const MIN_RETENTION_SECONDS = 24 * 60 * 60;
/** SETs a poll answers at most (without `maxEvents`, and whatever `maxEvents` asks). */
export const MAX_EVENTS_PER_POLL = 100;
/** A waiting poll looks at its queue again at least this often, should a wake-up have been missed (Redis reconnecting). */
const RECHECK_MS = 1_000;
/** How often outbox rows left by a crash are looked for (an indexed read). */
const OUTBOX_INTERVAL_MS = 2_000;
/**
 * How often recorded events left in Redis by a crash are looked for, by one instance for all: the
 * look is a SCAN of every key. Each instance also looks when it starts.
 */
const LEFTOVER_INTERVAL_MS = 60_000;

/** The change-bus kinds whose changes may write outbox rows. */
const OUTBOX_WRITERS: ReadonlySet<ChangeEvent['kind']> = new Set<ChangeEvent['kind']>([
  'client',
  'account',
  'keys',
  'group',
  'group-membership',
  'entitlement',
]);

/** What the relay, the polls and the pushes work with. */
export interface SecurityEventsDependencies {
  readonly issuer: string;
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly queue: EventQueue;
  readonly tokenStore: TokenStore;
  readonly resourceServers: ResourceServerRegistry;
  readonly signer: SetSigner;
  /** Key-encryption keys by id: they open the push credentials. */
  readonly keks: ReadonlyMap<string, KeyEncryptionKey>;
  readonly pushPolicy: PushDeliveryPolicy;
  /** Longest wait of a long poll (ms). */
  readonly pollWaitMs: number;
  readonly logger: Logger;
}

/** A poll request (RFC 8936 section 2.4), validated. */
export interface PollRequest {
  readonly maxEvents: number | undefined;
  readonly returnImmediately: boolean;
  readonly ack: readonly string[];
  readonly setErrs: Readonly<Record<string, { err: string; description: string }>>;
}

/** A read by position (the `cursor` extension): from after `after` (`null`: the oldest retained event), removing nothing. */
export interface CursorReadRequest {
  readonly maxEvents: number | undefined;
  readonly returnImmediately: boolean;
  readonly after: QueuePosition | null;
}

/** A poll answer (RFC 8936 section 2.5); `cursor` in answer to a read by position. */
export interface PollAnswer {
  sets: Record<string, string>;
  moreAvailable?: boolean;
  cursor?: string;
}

/** The retention of a resource server's queue (seconds): at least its longest token lifetime. */
function retentionOf(rs: ResourceServer): number {
  // Opaque tokens (external clients, sensitive scopes) may be issued for any audience.
  const longestToken = rs.accessTokenTtl ?? Math.max(DEFAULT_OPAQUE_TTL_SECONDS, DEFAULT_JWT_TTL_SECONDS);
  return Math.max(MIN_RETENTION_SECONDS, longestToken);
}

/** The relay, the polls and the pushes of revocation events (see the file comment). */
export class SecurityEvents implements SameStepQueuing {
  readonly #waiters = new Map<string, Set<() => void>>();
  /** Resource servers whose queue grew since the last notice on the bus (see #announceQueued). */
  readonly #queuedSinceNotice = new Set<string>();
  readonly #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  readonly #outboxRelay = new CoalescedRun(
    () => relayOutbox(this.deps.db, (recorded) => this.relay(recorded)).then(() => undefined),
    (error) => this.deps.logger.warn({ err: error }, 'revocation events of the outbox not relayed yet; retried shortly'),
  );

  readonly #adminAudience: string;

  constructor(private readonly deps: SecurityEventsDependencies) {
    this.#adminAudience = adminAudience(deps.issuer);
  }

  /** Wires the relay to the token store and the change bus, relays what a crash may have left, and starts the periodic relays. */
  start(): void {
    this.deps.tokenStore.announceTo((recorded) => this.relay(recorded), this);
    this.deps.bus.subscribe((event) => {
      if (event.kind === 'security-events') this.#wake(event.id);
      // A client, account, key, group, membership or entitlement change may have written an outbox row: relay it now.
      else if (OUTBOX_WRITERS.has(event.kind)) this.relayOutboxNow();
    });
    this.relayOutboxNow();
    void this.#relayLeftovers();
    this.#timers.push(setInterval(() => this.relayOutboxNow(), OUTBOX_INTERVAL_MS).unref());
    // Every 15 s an instance offers; the lease lets one of them look per interval.
    this.#timers.push(setInterval(() => void this.#relayLeftovers(LEFTOVER_INTERVAL_MS), LEFTOVER_INTERVAL_MS / 4).unref());
  }

  /**
   * Queues `recorded` for every resource server it concerns (a token's, grant's or entitlements
   * event's audiences; every resource server for client, account and key events), wakes their
   * waiting polls on every instance and starts their pushes. Rejects when a queue could not be
   * written (the caller keeps the event and relays it again: queuing twice is queuing once).
   */
  async relay(recorded: RecordedEvent): Promise<void> {
    await this.deps.resourceServers.settled();
    const audiences = audiencesOf(recorded.event);
    const concerned =
      audiences === 'all'
        ? this.deps.resourceServers.all()
        : [...new Set(audiences)].map((identifier) => this.deps.resourceServers.byIdentifier(identifier)).filter((rs) => rs !== undefined);
    // The admin API is this server: it checks its tokens itself, and nobody polls its queue.
    const targets = concerned.filter((rs) => rs.identifier !== this.#adminAudience);
    try {
      await Promise.all(targets.map((rs) => this.deps.queue.enqueue(rs.id, setIdFor(recorded, rs.id), recorded, retentionOf(rs))));
    } catch (error) {
      this.deps.logger.warn({ err: error, eventId: recorded.id }, 'revocation event not queued yet; it is kept and relayed again');
      throw error;
    }
    this.#queued(targets, recorded);
  }

  /**
   * The queues of `audiences` that a token store's script on `connection` may write the event
   * `eventId` to in the revocation's own step, each with what the relay would queue there (SET id,
   * retention) and the rest of the relay once it is queued. Only resource servers the relay would
   * queue for: not the admin API's audience, not an unknown one; none while the registry reloads (the
   * relay waits for the reload: so does this event, by the recorded way).
   */
  queuesFor(connection: object, eventId: string, audiences: readonly string[]): SameStepQueue[] {
    if (this.deps.resourceServers.settled() !== undefined || !this.deps.queue.keysForScriptOn) return [];
    const queues: SameStepQueue[] = [];
    for (const audience of new Set(audiences)) {
      const rs = audience === this.#adminAudience ? undefined : this.deps.resourceServers.byIdentifier(audience);
      const keys = rs && this.deps.queue.keysForScriptOn(connection, rs.id);
      if (!rs || !keys) continue;
      const setId = setIdFor({ id: eventId }, rs.id);
      queues.push({ audience, keys, setId, retentionMs: retentionOf(rs) * 1000, queued: (recorded) => this.#queued([rs], recorded) });
    }
    return queues;
  }

  /** The relay once `recorded` is in the queues of `targets`: counts it, wakes their polls, starts their pushes. */
  #queued(targets: readonly ResourceServer[], recorded: RecordedEvent): void {
    securityEventCount.inc({ step: 'queued' }, targets.length);
    for (const rs of targets) {
      this.#announceQueued(rs.id);
      if (rs.eventsEndpoint) void this.#push(rs, setIdFor(recorded, rs.id), recorded);
    }
  }

  /**
   * Tells waiting polls on every instance that `rsId`'s queue has grown, through the bus: once per
   * resource server per turn of the event loop, however many events were queued for it meanwhile (a
   * burst of revocations costs one notice, not one each). A lost notice costs them RECHECK_MS at most.
   */
  #announceQueued(rsId: string): void {
    if (this.#queuedSinceNotice.size === 0) {
      setImmediate(() => {
        const ids = [...this.#queuedSinceNotice];
        this.#queuedSinceNotice.clear();
        for (const id of ids) this.deps.bus.publish({ kind: 'security-events', id }).catch(() => undefined);
      });
    }
    this.#queuedSinceNotice.add(rsId);
  }

  /** Relays committed outbox rows now (one run at a time; a request during a run makes it run again). */
  relayOutboxNow(): void {
    this.#outboxRelay.request();
  }

  async #relayLeftovers(notWithinMs?: number): Promise<void> {
    if (this.#stopped) return;
    try {
      const relayed = await this.deps.tokenStore.relayLeftoverAnnouncements(notWithinMs);
      if (relayed > 0) this.deps.logger.info({ relayed }, 'revocation events left by an interrupted relay were relayed');
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'revocation events left by an interrupted relay not relayed yet; retried shortly');
    }
  }

  /**
   * Answers a poll of `rs` (RFC 8936): removes what it acknowledges or reports errors for, then answers
   * up to `maxEvents` waiting SETs, waiting for one (up to the long-poll wait) unless `returnImmediately`.
   */
  async poll(rs: ResourceServer, request: PollRequest): Promise<PollAnswer> {
    const done = [...request.ack, ...Object.keys(request.setErrs)];
    if (done.length > 0) {
      // Ids this resource server's queue does not hold (unknown, already acknowledged, another's) change nothing.
      const removed = await this.deps.queue.remove(rs.id, done);
      securityEventCount.inc({ step: 'acknowledged' }, removed);
    }
    for (const [setId, error] of Object.entries(request.setErrs)) {
      securityEventCount.inc({ step: 'refused' });
      this.deps.logger.warn(
        { resourceServer: rs.id, setId, err: error.err, description: error.description.slice(0, 200) },
        'a resource server reported a SET error',
      );
    }
    const max = Math.min(request.maxEvents ?? MAX_EVENTS_PER_POLL, MAX_EVENTS_PER_POLL);
    if (max === 0) {
      // Acknowledging only: RFC 8936 section 2.4, answered at once.
      const { events } = await this.deps.queue.peek(rs.id, 1);
      return { sets: {}, ...(events.length > 0 ? { moreAvailable: true } : {}) };
    }
    const { sets, more } = await this.#answer(rs, request.returnImmediately, () => this.deps.queue.peek(rs.id, max));
    return { sets, ...(more ? { moreAvailable: true } : {}) };
  }

  /**
   * Answers a read by position of `rs` (the `cursor` extension): up to `maxEvents` SETs queued after
   * `after`, oldest first, waiting for one as a poll does, and the cursor after the last one answered
   * (the same position when none was). Nothing is removed: events leave by retention only.
   */
  async readAfter(rs: ResourceServer, request: CursorReadRequest): Promise<PollAnswer> {
    const max = Math.min(request.maxEvents ?? MAX_EVENTS_PER_POLL, MAX_EVENTS_PER_POLL);
    const cursor = (position: QueuePosition | null) => (position === null ? '' : encodeCursor(position));
    if (max === 0) {
      // Whether anything follows, answered at once, as a poll of no events is.
      const { events } = await this.deps.queue.readAfter(rs.id, request.after, 1);
      return { sets: {}, ...(events.length > 0 ? { moreAvailable: true } : {}), cursor: cursor(request.after) };
    }
    const { sets, more, events } = await this.#answer(rs, request.returnImmediately, () => this.deps.queue.readAfter(rs.id, request.after, max));
    return { sets, ...(more ? { moreAvailable: true } : {}), cursor: cursor(events.at(-1)?.position ?? request.after) };
  }

  /**
   * Looks with `look` until it finds events, the long-poll wait ends (at once with `returnImmediately`)
   * or the server stops; then signs what it found for `rs`.
   */
  async #answer<Event extends QueuedEvent>(
    rs: ResourceServer,
    returnImmediately: boolean,
    look: () => Promise<{ events: Event[]; more: boolean }>,
  ): Promise<{ sets: Record<string, string>; more: boolean; events: Event[] }> {
    const deadline = Date.now() + (returnImmediately ? 0 : this.deps.pollWaitMs);
    for (;;) {
      // Waiting starts before the look, so an event queued in between wakes it.
      const wait = this.#waitFor(rs.id, Math.min(RECHECK_MS, Math.max(0, deadline - Date.now())));
      const { events, more } = await look();
      if (events.length > 0 || Date.now() >= deadline || this.#stopped) {
        wait.cancel();
        const sets: Record<string, string> = {};
        for (const { setId, recorded } of events) sets[setId] = await this.deps.signer.sign(recorded, setId, rs.identifier, rs.signingAlg);
        securityEventCount.inc({ step: 'polled' }, events.length);
        return { sets, more, events };
      }
      await wait.done;
    }
  }

  /** Ends every waiting poll (they answer what they have: nothing): the server is shutting down. */
  stopWaiting(): void {
    this.#stopped = true;
    for (const rsId of [...this.#waiters.keys()]) this.#wake(rsId);
  }

  /** Stops the periodic relays and ends waiting polls. */
  async close(): Promise<void> {
    this.stopWaiting();
    for (const timer of this.#timers) clearInterval(timer);
    await this.#outboxRelay.stop();
  }

  #waitFor(rsId: string, ms: number): { done: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const done = new Promise<void>((resolve) => (wake = resolve));
    const waiters = this.#waiters.get(rsId) ?? new Set<() => void>();
    this.#waiters.set(rsId, waiters);
    const timer = setTimeout(() => finish(), ms);
    const finish = () => {
      clearTimeout(timer);
      waiters.delete(finish);
      if (waiters.size === 0 && this.#waiters.get(rsId) === waiters) this.#waiters.delete(rsId);
      wake();
    };
    waiters.add(finish);
    return { done, cancel: finish };
  }

  #wake(rsId: string): void {
    for (const finish of [...(this.#waiters.get(rsId) ?? [])]) finish();
  }

  /**
   * Pushes one SET to `rs`'s events endpoint (RFC 8935) with bounded retries; a 202 acknowledges it.
   * Never throws: a push given up leaves the event for poll.
   */
  async #push(rs: ResourceServer, setId: string, recorded: RecordedEvent): Promise<void> {
    const endpoint = new URL(rs.eventsEndpoint!);
    // Only where it went is logged: never the SET's credential.
    const where = `${endpoint.origin}${endpoint.pathname}`;
    let bearer: string | undefined;
    try {
      bearer = rs.eventsEndpointToken ? this.#openToken(rs) : undefined;
    } catch (error) {
      this.deps.logger.warn({ resourceServer: rs.id, reason: (error as Error).message }, 'push credential cannot be opened; the event waits for a poll');
      return;
    }
    for (let attempt = 0; ; attempt++) {
      let failure: string;
      let retry = true;
      try {
        const set = await this.deps.signer.sign(recorded, setId, rs.identifier, rs.signingAlg);
        const status = await postSet(endpoint, set, bearer, this.deps.pushPolicy);
        if (status === 202) {
          await this.deps.queue.remove(rs.id, [setId]);
          securityEventCount.inc({ step: 'pushed' });
          this.deps.logger.info({ resourceServer: rs.id, eventsEndpoint: where, setId, attempt: attempt + 1 }, 'SET pushed');
          return;
        }
        failure = `answered ${status}`;
        // A 400 is the receiver refusing this SET (RFC 8935 section 2.3): the same SET would be refused again.
        retry = status !== 400;
        if (status === 400) securityEventCount.inc({ step: 'refused' });
      } catch (error) {
        failure = (error as Error).message;
      }
      const delay = retry && !this.#stopped ? PUSH_RETRY_DELAYS_MS[attempt] : undefined;
      if (delay === undefined) {
        securityEventCount.inc({ step: 'push_given_up' });
        this.deps.logger.warn(
          { resourceServer: rs.id, eventsEndpoint: where, setId, attempts: attempt + 1, reason: failure },
          'SET not pushed; it waits for a poll',
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
  }

  #openToken(rs: ResourceServer): string {
    const sealed = rs.eventsEndpointToken!;
    const kek = this.deps.keks.get(sealed.kekId);
    if (!kek) throw new Error(`the key-encryption key ${sealed.kekId} that sealed it is not configured`);
    return decryptWithKek(kek, sealed.sealed, eventsEndpointTokenContext(rs.id, sealed.kekId));
  }
}
