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
