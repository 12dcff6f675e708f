/** Signing Security Event Tokens (RFC 8417) with the signing key in force when they are delivered. */
import { importJWK, SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { KeyRing, SigningAlg } from '../keys/signing-keys.js';
import { eventsClaim, type RecordedEvent } from './revocation-event.js';

/** The media type of a SET (RFC 8417 section 2.3), also its `typ` header with the `application/` left out. */
export const SECEVENT_MEDIA_TYPE = 'application/secevent+jwt';

/**
 * Signs SETs with the current key of the ring in force at the time (a key revoked since an event was
 * queued never signs it: what it signed would not verify against the JWKS). Keys are imported once.
 */
export class SetSigner {
  readonly #keys = new Map<string, Promise<CryptoKey | KeyObject | Uint8Array>>();

  constructor(
    private readonly issuer: string,
    private readonly keyRing: () => KeyRing,
  ) {}

  /** The compact SET of `recorded` for the audience `audience`, with SET id `setId`, signed with `preferredAlg` when enabled (else RS256). */
  async sign(recorded: RecordedEvent, setId: string, audience: string, preferredAlg: SigningAlg): Promise<string> {
    const ring = this.keyRing();
    const alg: SigningAlg = ring.currentKid[preferredAlg] ? preferredAlg : 'RS256';
    const kid = ring.currentKid[alg]!;
    let key = this.#keys.get(kid);
    if (!key) {
      const jwk = ring.privateJwks.find((candidate: JWK) => candidate.kid === kid);
      if (!jwk) throw new Error(`no private key ${kid} for ${alg}`);
      key = importJWK(jwk, alg);
      // Few keys ever sign; the map is cleared rather than grown without end over years of rotations.
      if (this.#keys.size > 32) this.#keys.clear();
      this.#keys.set(kid, key);
    }
    return new SignJWT({ events: eventsClaim(recorded) })
      .setProtectedHeader({ alg, kid, typ: 'secevent+jwt' })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setJti(setId)
      .sign(await key);
  }
}
