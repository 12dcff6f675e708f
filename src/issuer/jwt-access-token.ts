/**
 * Verification of the JWT access tokens this server issued, for the introspection and revocation
 * steps (oidc-provider itself refuses structured tokens there).
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { KeyRing, SigningAlg } from '../keys/signing-keys.js';

/** The claims of a verified RFC 9068 access token. */
export interface VerifiedJwtAccessToken extends JWTPayload {
  jti: string;
  client_id: string;
  exp: number;
  iat: number;
}

/** Whether `value` is shaped like a JWS (a JWT access token) rather than an opaque token. */
export function looksLikeJwt(value: string): boolean {
  try {
    return Boolean(decodeProtectedHeader(value));
  } catch {
    return false;
  }
}

/** Verifies JWT access tokens against one key ring; build one per key ring (keys parsed once). */
export class JwtAccessTokenVerifier {
  readonly #jwks: ReturnType<typeof createLocalJWKSet>;
  readonly #algs: readonly SigningAlg[];

  constructor(
    keyRing: KeyRing,
    private readonly issuer: string,
  ) {
    this.#jwks = createLocalJWKSet({ keys: keyRing.publicJwks });
    this.#algs = keyRing.algs;
  }

  /**
   * The token's claims when it is genuine (signed by a published key of ours, `typ: at+jwt`, our
   * issuer, unexpired); `undefined` otherwise, whatever the reason.
   */
  async verify(token: string): Promise<VerifiedJwtAccessToken | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.issuer,
        typ: 'at+jwt',
        algorithms: [...this.#algs],
        requiredClaims: ['jti', 'client_id', 'exp', 'iat', 'aud'],
      });
      return typeof payload.client_id === 'string' ? (payload as VerifiedJwtAccessToken) : undefined;
    } catch {
      return undefined;
    }
  }
}
