/**
 * The token store: short-lived, high-churn, instantly revocable state (access and refresh tokens,
 * grants, sessions, interactions, revocation records). Redis in production, in-process when embedded.
 * Both implementations pass the same contract suite (test/tokens/token-store.contract.ts).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

export type { Adapter, AdapterPayload };

/** What the issuer needs from a token store. */
export interface TokenStore {
  /**
   * The oidc-provider adapter for one model (`AccessToken`, `RefreshToken`, `Grant`, `Session`, ...).
   * Never called for `Client`: clients live in PostgreSQL.
   */
  adapter(model: string): Adapter;
  /**
   * Deletes every grant and session of the account, and every token of those grants (JWT access
   * tokens excepted: nothing stores them; introspection consults the account instead).
   */
  revokeAccount(accountId: string): Promise<void>;
  /**
   * Whether the grant whose id has this SHA-256 digest (base64url) still exists. JWT access tokens of a
   * grant carry that digest (never the id), so introspection can see their grant revoked.
   */
  isGrantActive(grantDigest: string): Promise<boolean>;
  /** Marks a JWT access token id revoked until `expiresAt` (epoch seconds), after which the record goes. */
  revokeJwt(jti: string, expiresAt: number): Promise<void>;
  /** Whether `revokeJwt` was called for this id (and the record has not expired). */
  isJwtRevoked(jti: string): Promise<boolean>;
  /** Resolves when the store answers; rejects when it does not. */
  ping(): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
