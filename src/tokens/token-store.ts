/**
 * The token store: short-lived, high-churn, instantly revocable state (access and refresh tokens,
 * grants, sessions, interactions, revocation records). Redis in production, in-process when embedded.
 * Both implementations pass the same contract suite (test/tokens/token-store.contract.ts).
 */
import type { LockedOut, LockoutGuard } from '../limits/failure-counter.js';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { QueueKeys } from '../security-events/event-queue.js';
import type { RecordedEvent } from '../security-events/revocation-event.js';

export type { Adapter, AdapterPayload };

/** A client a person was signed in to, in a session that a revocation ended (for back-channel logout). */
export interface EndedSignIn {
  readonly clientId: string;
  /** The session id the client knows (the ID token's `sid`). */
  readonly sid: string | undefined;
}

/** The clients and session ids of a Session payload (its `authorizations`). */
export function signInsOfSession(payload: AdapterPayload | undefined): EndedSignIn[] {
  const authorizations = payload?.authorizations;
  if (!authorizations || typeof authorizations !== 'object') return [];
  return Object.entries(authorizations as Record<string, { sid?: unknown }>).map(([clientId, authorization]) => ({
    clientId,
    sid: typeof authorization?.sid === 'string' ? authorization.sid : undefined,
  }));
}

/**
 * What {@link TokenStore.revokeOwnClientCredentials} found, and did:
 * - `revoked`: a `ClientCredentials` record of the caller, live, deleted (as the provider's `destroy`);
 * - `absent`: no record of the value in `AccessToken`, `ClientCredentials` or `RefreshToken`;
 * - `foreign`: a record of another client, left alone;
 * - `expired`: the caller's, but expired (for the provider, with its clock tolerance), left alone;
 * - `hidden`: the caller's, but issued before its tokens were revoked in bulk, left alone (the
 *   provider finds no such token: client-bound-adapter.ts);
 * - `other`: an `AccessToken` or `RefreshToken` record of the value (their revocation revokes a
 *   grant), or a `ClientCredentials` record not in the form the provider writes: nothing changed.
 */
export type OwnTokenRevocation = 'revoked' | 'absent' | 'foreign' | 'expired' | 'hidden' | 'other';

const OWN_TOKEN_REVOCATIONS: ReadonlySet<string> = new Set(['revoked', 'absent', 'foreign', 'expired', 'hidden', 'other']);

/** Whether `value` is an {@link OwnTokenRevocation} (what a store's script answered). */
export function isOwnTokenRevocation(value: unknown): value is OwnTokenRevocation {
  return typeof value === 'string' && OWN_TOKEN_REVOCATIONS.has(value);
}

/** The models the provider's revocation finds a value in (lib/helpers/token_find.js), in the order the stores read them. */
export const REVOCATION_SEARCH_MODELS = ['AccessToken', 'ClientCredentials', 'RefreshToken'] as const;

/** Whose token a {@link TokenStore.revokeOwnClientCredentials} may delete, and until when. */
export interface TokenOwner {
  readonly clientId: string;
  /** A token whose `exp` is at or before this (epoch seconds) counts as expired. */
  readonly expiredAtOrBefore: number;
  /** The client's bulk revocation time (epoch seconds): tokens issued at or before it are hidden. */
  readonly tokensRevokedAt: number | null;
  /**
   * The audiences the token may have (the client's resources, its default first). A store that can
   * queue the revocation's event in the revocation's own step (Redis, standalone) does so when the
   * token's audience is one of them; any other event is recorded and relayed, as without them.
   */
  readonly audiences?: readonly string[];
}

/**
 * Where a store hands the revocation events it records (src/security-events): resolves once the event
 * is available to the resource servers it concerns, rejects when it could not be made so (the store
 * then keeps it for {@link TokenStore.relayLeftoverAnnouncements}).
 */
export type RevocationRelay = (recorded: RecordedEvent) => Promise<void>;

/**
 * A resource server's event queue that a revocation's own script may write (see {@link SameStepQueuing}),
 * with what the relay would queue there.
 */
export interface SameStepQueue {
  /** The resource server's identifier: a token whose `aud` is this has its event queued here. */
  readonly audience: string;
  /** The queue's Redis keys, for the enqueue Lua of src/security-events/event-queue.ts. */
  readonly keys: QueueKeys;
  /** The event's SET id for this resource server (the relay's: `setIdFor`). */
  readonly setId: string;
  /** How long the queue keeps events (ms; the relay's retention for this resource server). */
  readonly retentionMs: number;
  /** The rest of the relay, once the store has queued `recorded` here: count it, wake the polls, start a push. */
  queued(recorded: RecordedEvent): void;
}

/**
 * Queues the relay lets a store write in the revocation's own step: one Redis command instead of a
 * record, a queue write and the record's deletion. What it cannot vouch for (an audience it does not
 * know, or only as it reloads; the admin API's own; another connection; a Cluster) it leaves out, and
 * those events go the recorded way.
 */
export interface SameStepQueuing {
  /** The queues, of those of `audiences`, that a script on `connection` may write the event `eventId` to. */
  queuesFor(connection: object, eventId: string, audiences: readonly string[]): readonly SameStepQueue[];
}

/**
 * The models whose deletion by the provider (`destroy`) is a revocation resource servers hear of: an
 * access token (a person's or a client's own) and a grant. Refresh tokens never reach resource
 * servers; their revocation revokes their grant.
 */
export const ANNOUNCED_DESTROY_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'ClientCredentials', 'Grant']);
/** One Session or Grant record of an account, as the account page lists it. */
export interface AccountRecord {
  /**
   * The SHA-256 digest (base64url) of the record's id: it names the record without being its id (a
   * session's id is its browser's cookie), so it may be shown to the person and sent back in a form.
   */
  readonly digest: string;
  /** The payload as the provider wrote it, without its id (`jti`). */
  readonly payload: AdapterPayload;
}

/** The live sessions and grants of one account (see {@link TokenStore.listAccount}). */
export interface AccountRecords {
  readonly sessions: readonly AccountRecord[];
  readonly grants: readonly AccountRecord[];
}

/**
 * The grant ids of a Session payload that a sign-out revokes: those of its authorizations that do not
 * persist logout (oidc-provider's end_session does the same; `offline_access` grants persist).
 */
export function grantsEndingWithSession(payload: AdapterPayload | undefined): string[] {
  const authorizations = payload?.authorizations;
  if (!authorizations || typeof authorizations !== 'object') return [];
  return Object.values(authorizations as Record<string, { grantId?: unknown; persistsLogout?: unknown }>)
    .filter((authorization) => typeof authorization?.grantId === 'string' && authorization.persistsLogout !== true)
    .map((authorization) => authorization.grantId as string);
}

/** The models a token value is looked up in by introspection and revocation (the provider's order). */
export type IntrospectableModel = (typeof REVOCATION_SEARCH_MODELS)[number];

/** A token record found by `findIntrospectable`, and the model it was stored as. */
export interface FoundToken {
  readonly model: IntrospectableModel;
  readonly payload: AdapterPayload;
}

/** What the issuer needs from a token store. */
export interface TokenStore {
  /**
   * The oidc-provider adapter for one model (`AccessToken`, `RefreshToken`, `Grant`, `Session`, ...).
   * Never called for `Client`: clients live in PostgreSQL.
   */
  adapter(model: string): Adapter;
  /**
   * Reads and deletes a record of `model` in one atomic step: of two callers taking the same id at
   * once, exactly one gets its payload. For one-use records of our own (a sign-in transaction, a
   * passkey challenge), never for the provider's models, whose deletion may be a revocation.
   */
  take(model: string, id: string): Promise<AdapterPayload | undefined>;
  /**
   * Deletes every grant and session of the account, and every token of those grants (JWT access
   * tokens excepted: nothing stores them; introspection consults the account instead). Answers the
   * sign-ins of the sessions it ended, so their clients can be told (back-channel logout).
   * @param options.keepSession - the digest ({@link AccountRecord.digest}) of one session of the
   *   account to leave alone: the person's own, when they change their password on the account page.
   */
  revokeAccount(accountId: string, options?: { readonly keepSession?: string }): Promise<EndedSignIn[]>;
  /**
   * The account's live sessions and grants (a person's own view of them: the account page). Records
   * that are gone, or that name another account, are left out.
   */
  listAccount(accountId: string): Promise<AccountRecords>;
  /**
   * Ends one session of the account as a sign-out does: deletes the Session record (and its uid index
   * entry) and revokes the grants of its sign-ins that do not persist logout, with their tokens.
   * @param sessionDigest - the session's {@link AccountRecord.digest}.
   * @returns the sign-ins it ended (for back-channel logout), or undefined when the account has no such
   *   session (nothing is changed).
   */
  endSession(accountId: string, sessionDigest: string): Promise<EndedSignIn[] | undefined>;
  /**
   * Revokes one grant of the account, as `revokeByGrantId` does: the Grant record and every token of
   * it go at once.
   * @param grantDigest - the grant's {@link AccountRecord.digest}.
   * @returns false when the account has no such grant (nothing is changed).
   */
  revokeGrant(accountId: string, grantDigest: string): Promise<boolean>;
  /**
   * Whether the grant whose id has this SHA-256 digest (base64url) still exists. JWT access tokens of a
   * grant carry that digest (never the id), so introspection can see their grant revoked.
   */
  isGrantActive(grantDigest: string): Promise<boolean>;
  /**
   * RFC 7009 revocation of an opaque client credentials token by `owner`, in one atomic step (one
   * round trip in Redis): looks the value up as the provider's revocation does (`AccessToken`,
   * `ClientCredentials`, `RefreshToken`) and deletes the `ClientCredentials` record only when it
   * belongs to `owner` and the provider would find it, exactly what the provider's `destroy` deletes
   * (the record: such tokens have no index entry nor grant). Changes nothing in any other case.
   * With `guard`, first checks the caller's lockout (in the same step on the guard's own standalone
   * Redis): at its limit, changes nothing and answers `LOCKED_OUT`.
   */
  revokeOwnClientCredentials(token: string, owner: TokenOwner, guard?: LockoutGuard): Promise<OwnTokenRevocation | LockedOut>;
  /**
   * The record stored for the value under the first of `models` (`AccessToken`, `ClientCredentials`,
   * `RefreshToken`) that holds one, as that model's adapter `find` answers it, with the model: one
   * lookup instead of one per model (one round trip and one command in Redis), for introspection.
   * With `guard`, also checks the caller's lockout (in the same command on the guard's own standalone
   * Redis): at its limit, answers `LOCKED_OUT`.
   */
  findIntrospectable(models: readonly IntrospectableModel[], token: string, guard?: LockoutGuard): Promise<FoundToken | undefined | LockedOut>;
  /**
   * The payload of the grant whose id has this SHA-256 digest (base64url), without its id (`jti`):
   * what a JWT access token's grant allows, for userinfo (src/issuer/userinfo-for-api-tokens.ts).
   */
  grantOfDigest(grantDigest: string): Promise<AdapterPayload | undefined>;
  /**
   * Marks a JWT access token id revoked until `expiresAt` (epoch seconds), after which the record goes,
   * and records its revocation event for `audiences` in the same step.
   */
  revokeJwt(jti: string, expiresAt: number, audiences: readonly string[]): Promise<void>;
  /**
   * Every revocation this store makes (an access token destroyed or revoked, a JWT marked revoked, a
   * grant revoked, on its own or with its account) records its event in the same atomic step (the same
   * Lua script in Redis, in the revoked key's hash slot), then hands it to `relay` before the call
   * resolves. Without a relay, events are recorded and kept for a later one. With `sameStep`, a
   * revocation whose event it may queue directly (`revokeOwnClientCredentials` with `audiences`) queues
   * it in the revocation's own step instead, then leaves the rest of the relay to `SameStepQueue.queued`.
   */
  announceTo(relay: RevocationRelay, sameStep?: SameStepQueuing): void;
  /**
   * Relays the events recorded with a revocation whose relay did not finish (the process crashed in
   * between, or the relay failed); deletes each once relayed. Resolves with how many it relayed.
   * @param notWithinMs - look only if no instance sharing the store has looked within this many
   *   milliseconds (the Redis store's look is a SCAN of every key: once per interval for all
   *   instances, not once per instance). Without it, look now.
   */
  relayLeftoverAnnouncements(notWithinMs?: number): Promise<number>;
  /** Whether `revokeJwt` was called for this id (and the record has not expired). */
  isJwtRevoked(jti: string): Promise<boolean>;
  /** Resolves when the store answers; rejects when it does not. */
  ping(): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
