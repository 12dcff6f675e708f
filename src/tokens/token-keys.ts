/**
 * What both token stores share: how records are keyed and indexed, what of a payload is kept, and
 * how long. The Redis store prepends its key prefix to these keys; the memory store uses them as is.
 *
 * Token values are bearer credentials, so they never become keys or index values: those are SHA-256
 * digests. A dump of the store then yields no usable token, and a lookup still needs only the value.
 *
 * Every key ends in a Redis Cluster hash tag, `{<digest>}`, holding the digest the key is derived from:
 * only the tag picks the hash slot, so keys derived from the same value share a slot. That is how the
 * Grant record and its grant index end up together (see {@link grantKeys}), while records and index
 * entries spread over every slot by their own digest.
 */
import type { AdapterPayload } from 'oidc-provider';
import { sha256Base64Url } from '../shared/secrets.js';

/** Now, in epoch seconds (the unit of `consumed`, `exp` and JWT revocation times). */
export function epochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** `name` with the hash tag `digest`: the slot of the key is the slot of the digest alone. */
function tagged(name: string, digest: string): string {
  return `${name}:{${digest}}`;
}

/** Key of the record with this id digest. The digest (not the id) lets index lookups reach it. */
export function recordKey(model: string, idDigest: string): string {
  return tagged(model, idDigest);
}

/** Key of the index entry from a uid to the digest of the record's id. */
export function uidKey(model: string, uid: string): string {
  return tagged(`${model}:uid`, sha256Base64Url(uid));
}

/** Key of the index entry from a user code to the digest of the record's id. */
export function userCodeKey(model: string, userCode: string): string {
  return tagged(`${model}:userCode`, sha256Base64Url(userCode));
}

/** Key of the record that a JWT access token id is revoked. */
export function revokedJwtKey(jti: string): string {
  return tagged('revoked-jwt', sha256Base64Url(jti));
}

/**
 * Key of a revocation event recorded with the revocation of the key tagged `digest`, in that key's
 * hash slot (so one script writes both, in Redis Cluster too), until it is relayed.
 */
export function announcementKey(digest: string, eventId: string): string {
  return `${tagged(ANNOUNCEMENT_KEY_NAME, digest)}:${eventId}`;
}

/** How the keys of recorded, not yet relayed, revocation events begin (for the sweep of leftovers). */
export const ANNOUNCEMENT_KEY_NAME = 'secevent-outbox';

/** The keys of one grant, both tagged by the digest of the grant id, hence in one hash slot. */
export interface GrantKeys {
  /** The record of the `Grant` model, whose id is the grant id. */
  readonly record: string;
  /** The set of every key written for the tokens of the grant. */
  readonly index: string;
}

/**
 * The keys of the grant `grantId`. Sharing a slot, they can be read and deleted in one transaction
 * even in Redis Cluster: see the Redis store's `revokeByGrantId`.
 */
export function grantKeys(grantId: string): GrantKeys {
  return grantKeysOfDigest(sha256Base64Url(grantId));
}

/** Key of the set listing the Grant and Session records (and their index entries) of one account. */
export function accountKey(accountId: string): string {
  return tagged('account', sha256Base64Url(accountId));
}

/** The grant id digest behind a Grant record key (`Grant:{digest}`), or undefined for any other key. */
export function grantDigestOfRecordKey(key: string): string | undefined {
  return /^Grant:\{([A-Za-z0-9_-]+)\}$/.exec(key)?.[1];
}

/** The keys of the grant whose id has this digest (see {@link grantKeys}). */
export function grantKeysOfDigest(grantDigest: string): GrantKeys {
  return { record: recordKey('Grant', grantDigest), index: tagged('grant-index', grantDigest) };
}

/** The models that end with their account: revoking an account deletes them. */
const ACCOUNT_BOUND_MODELS: ReadonlySet<string> = new Set(['Grant', 'Session']);

/**
 * The models oidc-provider revokes by grant id (its own memory adapter uses the same list). Other
 * payloads may carry a `grantId` too (an Interaction in progress), but revoking the grant must not
 * delete them.
 */
const GRANT_BOUND_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/** Throws for `Client`: clients live in PostgreSQL, and a store answering for them would hide a wiring mistake. */
export function assertTokenModel(model: string): void {
  if (model === 'Client') throw new TypeError('the token store does not hold clients');
}

/** What an upsert writes, the same for every store. */
export interface UpsertPlan {
  /** Key of the record. */
  readonly key: string;
  /** Digest of the id: the value of every index entry. */
  readonly idDigest: string;
  /** The payload as kept: without `jti` where that is the id (see {@link planUpsert}). */
  readonly stored: AdapterPayload;
  /** Index entries (uid, user code) leading to the record. */
  readonly indexKeys: readonly string[];
  /** The grant index the record and its index entries join, if the record is revoked with its grant. */
  readonly grantIndexKey: string | undefined;
  /** The account set the record and its index entries join, if the record ends with its account. */
  readonly accountKey: string | undefined;
  /** Seconds to keep every key written, or undefined to keep them until deleted. */
  readonly ttl: number | undefined;
}

/**
 * Plans an upsert. oidc-provider payloads carry `jti` equal to the id; it is left out of the stored
 * payload and put back by `find`, which knows the id. A payload with a `userCode` keeps it: the device
 * flow finds the DeviceCode by user code and saves it back under its `jti`, so the id must be
 * recoverable from the record, and the user code stored beside it would lead to the id anyway.
 */
export function planUpsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): UpsertPlan {
  if (expiresIn !== undefined && !(Number.isSafeInteger(expiresIn) && expiresIn > 0)) {
    throw new RangeError(`expiresIn must be a positive whole number of seconds, got ${expiresIn}`);
  }
  const idDigest = sha256Base64Url(id);
  const key = recordKey(model, idDigest);
  const { jti, ...rest } = payload;
  const stored = jti === id && payload.userCode === undefined ? rest : { ...payload };
  const indexKeys: string[] = [];
  if (typeof payload.uid === 'string') indexKeys.push(uidKey(model, payload.uid));
  if (typeof payload.userCode === 'string') indexKeys.push(userCodeKey(model, payload.userCode));
  const grantId = GRANT_BOUND_MODELS.has(model) ? payload.grantId : undefined;
  const accountId = ACCOUNT_BOUND_MODELS.has(model) ? payload.accountId : undefined;
  return {
    key,
    idDigest,
    stored,
    indexKeys,
    grantIndexKey: typeof grantId === 'string' ? grantKeys(grantId).index : undefined,
    accountKey: typeof accountId === 'string' ? accountKey(accountId) : undefined,
    ttl: expiresIn,
  };
}

/**
 * The payload `find` returns: the stored one with `jti` put back when the id is known, and `consumed`
 * (epoch seconds) when the record was consumed. Lookups by uid or user code know only the digest of
 * the id, so they return no `jti` unless the payload kept it (user code lookups, see {@link planUpsert}).
 */
export function restorePayload(stored: AdapterPayload, consumed: number | undefined, id: string | undefined): AdapterPayload {
  return {
    ...stored,
    ...(id !== undefined && stored.jti === undefined ? { jti: id } : undefined),
    ...(consumed !== undefined ? { consumed } : undefined),
  };
}

/**
 * Whether a record reached through an index still carries the looked-up value. An upsert that changes
 * a uid or user code leaves the old index entry behind until it expires; this makes it lead nowhere.
 */
export function matchesLookup(payload: AdapterPayload, field: 'uid' | 'userCode', value: string): boolean {
  return payload[field] === value;
}
