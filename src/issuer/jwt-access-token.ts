/**
 * JWT access tokens (RFC 9068) of this server: their signing on the dedicated client_credentials path
 * (dedicated-issuance.ts; the provider's path signs its own), and their verification for the
 * introspection and revocation steps (oidc-provider itself refuses structured tokens there).
 */
import { constants, createPrivateKey, sign, type JsonWebKey, type SignKeyObjectInput } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { KeyRing, SigningAlg } from '../keys/signing-keys.js';

/** How each algorithm signs with node:crypto (RFC 7518 section 3; RFC 8037 for EdDSA, Ed25519 here). */
const SIGNING: Record<SigningAlg, { readonly digest: string | null; readonly options: Omit<SignKeyObjectInput, 'key'> }> = {
  RS256: { digest: 'sha256', options: {} },
  // The salt as long as the hash, as RFC 7518 section 3.5 requires.
  PS256: { digest: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  // JWS carries R || S, not the DER sequence node:crypto makes by default.
  ES256: { digest: 'sha256', options: { dsaEncoding: 'ieee-p1363' } },
  EdDSA: { digest: null, options: {} },
};

/** A current signing key, parsed once, with the protected header of the tokens it signs. */
export interface AccessTokenSigningKey {
  readonly alg: SigningAlg;
  readonly kid: string;
  /** `{"alg":...,"typ":"at+jwt","kid":...}`, base64url-encoded: the provider's header, in its order. */
  readonly encodedHeader: string;
  readonly key: SignKeyObjectInput;
  readonly digest: string | null;
}

/**
 * The current signing keys of one key ring, parsed once (build one per key ring, as the provider is
 * built per key ring). Only current keys sign new tokens: the `kid` the token policy names
 * (resource-server-info.ts, from `KeyRing.currentKid`) is the key the provider's keystore would select.
 */
export class JwtAccessTokenSigner {
  readonly #keys = new Map<string, AccessTokenSigningKey>();

  constructor(keyRing: KeyRing) {
    for (const alg of keyRing.algs) {
      const kid = keyRing.currentKid[alg];
      const jwk = keyRing.privateJwks.find((candidate) => candidate.kid === kid && candidate.alg === alg);
      if (kid === undefined || jwk === undefined) continue;
      const header = Buffer.from(JSON.stringify({ alg, typ: 'at+jwt', kid })).toString('base64url');
      const key = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
      this.#keys.set(`${alg} ${kid}`, { alg, kid, encodedHeader: header, key: { key, ...SIGNING[alg].options }, digest: SIGNING[alg].digest });
    }
  }

  /** The key signing with `alg` under `kid`, when it is a current key of this ring. */
  key(alg: SigningAlg, kid: string): AccessTokenSigningKey | undefined {
    return this.#keys.get(`${alg} ${kid}`);
  }
}

/**
 * The compact JWS of `claims` (serialised in their order) signed with `key`. The signature is made off
 * the event loop, in libuv's thread pool (as the provider's WebCrypto signature is), with a key parsed
 * once rather than a JWK imported through jose on every token.
 */
export function signAccessToken(key: AccessTokenSigningKey, claims: Readonly<Record<string, unknown>>): Promise<string> {
  const signingInput = `${key.encodedHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return new Promise((resolve, reject) => {
    sign(key.digest, Buffer.from(signingInput), key.key, (error, signature) => {
      if (error) reject(error);
      else resolve(`${signingInput}.${signature.toString('base64url')}`);
    });
  });
}

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
