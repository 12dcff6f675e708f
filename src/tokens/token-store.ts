/**
 * The token store: short-lived, high-churn, instantly revocable state (access and refresh tokens,
 * grants, sessions, interactions, revocation records). Redis in production, in-process when embedded.
 * Both implementations pass the same contract suite (test/tokens/token-store.contract.ts).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

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
   * Deletes every grant and session of the account, and every token of those grants (JWT access
   * tokens excepted: nothing stores them; introspection consults the account instead). Answers the
   * sign-ins of the sessions it ended, so their clients can be told (back-channel logout).
   */
  revokeAccount(accountId: string): Promise<EndedSignIn[]>;
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
   */
  revokeOwnClientCredentials(token: string, owner: TokenOwner): Promise<OwnTokenRevocation>;
  /**
   * The record stored for the value under the first of `models` (`AccessToken`, `ClientCredentials`,
   * `RefreshToken`) that holds one, as that model's adapter `find` answers it, with the model: one
   * lookup instead of one per model (one round trip and one command in Redis), for introspection.
   */
  findIntrospectable(models: readonly IntrospectableModel[], token: string): Promise<FoundToken | undefined>;
  /**
   * The payload of the grant whose id has this SHA-256 digest (base64url), without its id (`jti`):
   * what a JWT access token's grant allows, for userinfo (src/issuer/userinfo-for-api-tokens.ts).
   */
  grantOfDigest(grantDigest: string): Promise<AdapterPayload | undefined>;
  /** Marks a JWT access token id revoked until `expiresAt` (epoch seconds), after which the record goes. */
  revokeJwt(jti: string, expiresAt: number): Promise<void>;
  /** Whether `revokeJwt` was called for this id (and the record has not expired). */
  isJwtRevoked(jti: string): Promise<boolean>;
  /** Resolves when the store answers; rejects when it does not. */
  ping(): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
