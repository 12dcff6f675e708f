/**
 * What both token stores share: how records are keyed and indexed, what of a payload is kept, and
 * how long. The Redis store prepends its key prefix to these keys; the memory store uses them as is.
 *
 * Token values are bearer credentials, so they never become keys or index values: those are SHA-256
 * digests. A dump of the store then yields no usable token, and a lookup still needs only the value.
 */
import { createHash } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';

/**
 * SHA-256 of `value`, base64url. Token values are high-entropy random strings, so a fast unsalted
 * hash is enough to make them unrecoverable while keeping lookups a single key read.
 */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Now, in epoch seconds (the unit of `consumed`, `exp` and JWT revocation times). */
export function epochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Key of the record with this id digest. The digest (not the id) lets index lookups reach it. */
export function recordKey(model: string, idDigest: string): string {
  return `${model}:${idDigest}`;
}

/** Key of the index entry from a uid to the digest of the record's id. */
export function uidKey(model: string, uid: string): string {
  return `${model}:uid:${digest(uid)}`;
}

/** Key of the index entry from a user code to the digest of the record's id. */
export function userCodeKey(model: string, userCode: string): string {
  return `${model}:userCode:${digest(userCode)}`;
}

/** Key of the set of every key written for the tokens of one grant. */
export function grantKey(grantId: string): string {
  return `grant:${digest(grantId)}`;
}

/** Whether `key` (without the store's prefix) is the key of a grant set. */
export function isGrantKey(key: string): boolean {
  return key.startsWith('grant:');
}

/** Key of the set of every key written for the grants and sessions of one account. */
export function accountKey(accountId: string): string {
  return `account:${digest(accountId)}`;
}

/** Key of the record that a JWT access token id is revoked. */
export function revokedJwtKey(jti: string): string {
  return `revoked-jwt:${digest(jti)}`;
}

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

/**
 * The models that belong to one account and end with it: its grants (with their tokens) and its
 * sessions. Listed per account so that disabling it can delete them all at once.
 */
const ACCOUNT_BOUND_MODELS: ReadonlySet<string> = new Set(['Grant', 'Session']);

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
  /** The grant set the record and its index entries join, if the record is revoked with its grant. */
  readonly grantKey: string | undefined;
  /**
   * The account set the record joins (with its index entries, and for a Grant the key of its grant
   * set), if the record ends with its account.
   */
  readonly accountKey: string | undefined;
  /** What joins the account set. */
  readonly accountMembers: readonly string[];
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
  const idDigest = digest(id);
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
    grantKey: typeof grantId === 'string' ? grantKey(grantId) : undefined,
    accountKey: typeof accountId === 'string' ? accountKey(accountId) : undefined,
    // A Grant's id is its grant id: its grant set is where its tokens are listed.
    accountMembers: [key, ...indexKeys, ...(model === 'Grant' ? [grantKey(id)] : [])],
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
