/**
 * The resource server's check of a DPoP proof (RFC 9449 sections 4.3 and 7.1) for a token bound to a
 * key (`cnf.jkt`): the proof is a `dpop+jwt` signed by the public key in its own header, that key's
 * thumbprint is the token's `jkt`, and it names this request (`htm`, `htu`), this token (`ath`), a
 * recent instant (`iat`) and a `jti` never seen before.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWTPayload } from 'jose';
import { AccessDenied } from './errors.js';

/** Remembers the proofs' `jti`s; share one store (Redis...) between the instances of a resource server. */
export interface ReplayCache {
  /**
   * Records `id` until `expiresAtMs`; answers false when it was already recorded (a replay). Must be
   * atomic across the instances that share it (Redis: `SET key 1 NX PX ttl`).
   */
  remember(id: string, expiresAtMs: number): boolean | Promise<boolean>;
}

/** A replay cache in this process, bounded in size: enough for a single instance. */
export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly maxEntries = 100_000) {}

  remember(id: string, expiresAtMs: number): boolean {
    const now = Date.now();
    const until = this.seen.get(id);
    if (until !== undefined && until > now) return false;
    this.seen.delete(id);
    this.seen.set(id, expiresAtMs);
    // The first entry is the oldest recorded, so the one whose proof expires first.
    while (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value!);
    return true;
  }
}

/** How DPoP proofs are checked. */
export interface DpopOptions {
  /** Proof algorithms accepted. Default ES256, EdDSA, Ed25519, PS256, RS256 (asymmetric only). */
  readonly algorithms?: readonly string[];
  /** How far a proof's `iat` may be from now, in seconds, either way. Default 300. */
  readonly iatWindowSeconds?: number;
  /** Where proofs' `jti`s are remembered. Default: in this process. */
  readonly replayCache?: ReplayCache;
}

/** The default proof algorithms: asymmetric ones only (RFC 9449 section 4.2). */
export const DEFAULT_DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] as const;

/** What the proof must match. */
export interface DpopRequest {
  /** The DPoP header value(s) of the request. */
  readonly proof: string | readonly string[] | undefined;
  readonly method: string;
  /** The request's public URL (query and fragment are ignored). */
  readonly url: string;
  readonly accessToken: string;
  /** The thumbprint the token is bound to. */
  readonly jkt: string;
}

const invalidProof = (message: string) => new AccessDenied('invalid_dpop_proof', message, 'DPoP');

const sameText = (a: string, b: string): boolean => {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
};

/** `value` without query and fragment, normalised as a URL; undefined when it is not one. */
export function htuOf(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  url.search = '';
  url.hash = '';
  return url.href;
}

/** Checks DPoP proofs against requests. */
export class DpopVerifier {
  readonly algorithms: readonly string[];
  private readonly windowSeconds: number;
  private readonly replay: ReplayCache;

  constructor(options: DpopOptions = {}) {
    this.algorithms = options.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
    this.windowSeconds = options.iatWindowSeconds ?? 300;
    this.replay = options.replayCache ?? new MemoryReplayCache();
  }

  /** Throws `AccessDenied` (invalid_dpop_proof) unless the proof holds. */
  async check(request: DpopRequest): Promise<void> {
    const proofs = request.proof === undefined ? [] : typeof request.proof === 'string' ? [request.proof] : request.proof;
    // One header, one JWT (a repeated header may also arrive joined by a comma).
    if (proofs.length !== 1 || proofs[0].includes(',')) throw invalidProof('exactly one DPoP proof is required');
    let payload: JWTPayload;
    let thumbprint: string;
    try {
      const verified = await jwtVerify(proofs[0], EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...this.algorithms] });
      payload = verified.payload;
      thumbprint = await calculateJwkThumbprint(verified.protectedHeader.jwk!);
    } catch {
      throw invalidProof('the DPoP proof is not a valid dpop+jwt');
    }
    if (!sameText(thumbprint, request.jkt)) throw invalidProof('the DPoP proof is not signed by the key the token is bound to');
    if (payload.htm !== request.method.toUpperCase()) throw invalidProof('the DPoP proof is for another method');
    const htu = typeof payload.htu === 'string' ? htuOf(payload.htu) : undefined;
    if (htu === undefined || htu !== htuOf(request.url)) throw invalidProof('the DPoP proof is for another URL');
    const ath = createHash('sha256').update(request.accessToken).digest('base64url');
    if (typeof payload.ath !== 'string' || !sameText(payload.ath, ath)) throw invalidProof('the DPoP proof is for another access token');
    const now = Date.now() / 1000;
    if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > this.windowSeconds) throw invalidProof('the DPoP proof is too old or too new');
    if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) throw invalidProof('the DPoP proof has no valid jti');
    const remembered = await this.replay.remember(`${thumbprint}:${payload.jti}`, (payload.iat + this.windowSeconds) * 1000);
    if (!remembered) throw invalidProof('the DPoP proof was used before');
  }
}
