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
  // A value without a dot is no JWS for jose either; deciding it here spares an error per opaque token.
  if (!value.includes('.')) return false;
  try {
    return Boolean(decodeProtectedHeader(value));
  } catch {
    return false;
  }
}

/**
 * How many verified tokens a verifier remembers. A resource server introspects the same token many
 * times; a signature check costs far more than the rest of the answer. The bound caps memory.
 */
const VERIFIED_CACHE_ENTRIES = 10_000;

/**
 * Verifies JWT access tokens against one key ring; build one per key ring (keys parsed once). A token
 * that verified is remembered until its `exp` (the only check whose outcome changes with time), so it
 * is verified once however often it is introspected. The memory goes with the verifier: a key ring
 * change (a revoked key) builds a new verifier, which has verified nothing yet.
 */
export class JwtAccessTokenVerifier {
  readonly #jwks: ReturnType<typeof createLocalJWKSet>;
  readonly #algs: readonly SigningAlg[];
  /** Verified tokens by value, oldest first. */
  readonly #verified = new Map<string, Readonly<VerifiedJwtAccessToken>>();

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
  async verify(token: string): Promise<Readonly<VerifiedJwtAccessToken> | undefined> {
    const known = this.#verified.get(token);
    // jose's rule: expired once `exp` is at or before now, in whole seconds.
    if (known !== undefined) {
      if (known.exp > Math.floor(Date.now() / 1000)) return known;
      this.#verified.delete(token);
    }
    let claims: VerifiedJwtAccessToken;
    try {
      const { payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.issuer,
        typ: 'at+jwt',
        algorithms: [...this.#algs],
        requiredClaims: ['jti', 'client_id', 'exp', 'iat', 'aud'],
      });
      if (typeof payload.client_id !== 'string') return undefined;
      claims = payload as VerifiedJwtAccessToken;
    } catch {
      return undefined;
    }
    if (this.#verified.size >= VERIFIED_CACHE_ENTRIES) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      this.#verified.delete(this.#verified.keys().next().value!);
    }
    const frozen = Object.freeze(claims);
    this.#verified.set(token, frozen);
    return frozen;
  }
}
