/**
 * DPoP proofs (RFC 9449 section 4.3 and 7.1) at our own protected resource, the admin API.
 * oidc-provider checks proofs on its own routes but does not export that check (it needs a provider
 * route for `htu`), so this is the same check written with jose, and the replay state goes where the
 * provider keeps its own: its `ReplayDetection` model, stored by the token store (Redis), so a proof
 * used on one instance is refused on every other.
 */
import { timingSafeEqual } from 'node:crypto';
import { sha256Base64Url } from '../shared/secrets.js';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';

/** The algorithms a DPoP proof may be signed with, here and at the provider's endpoints. */
export const DPOP_SIGNING_ALGS = ['ES256', 'EdDSA', 'Ed25519'] as const;

/**
 * How far `iat` may be from now, in seconds: oidc-provider's own window (five minutes), so a client
 * whose proofs the token endpoint accepts has them accepted here too. The replay record lives as long.
 */
export const DPOP_PROOF_WINDOW_SECONDS = 300;

/** Why a proof was refused; the description is safe to show the caller. */
export class InvalidDpopProofError extends Error {}

/** What the proof must match: the request it came with and the token it accompanies. */
export interface DpopExpectation {
  readonly method: string;
  /** The request's public URL without query and fragment. */
  readonly url: string;
  readonly accessToken: string;
  /** The JWK SHA-256 thumbprint the token is bound to (`cnf.jkt`). */
  readonly jkt: string;
  /** Whose replay namespace the proof's `jti` is recorded in: the token's client. */
  readonly clientId: string;
}

const sameText = (a: string, b: string): boolean => {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
};

const withoutQueryAndFragment = (value: string): string | undefined => {
  const url = URL.parse(value);
  if (!url) return undefined;
  url.search = '';
  url.hash = '';
  return url.href;
};

/**
 * Checks `proof` (the DPoP header) against the request and the bound token, then records its `jti`;
 * throws `InvalidDpopProofError` on any mismatch, a stale `iat`, or a replay.
 */
export async function checkDpopProof(provider: Provider, proof: string, expected: DpopExpectation): Promise<void> {
  let payload: JWTPayload;
  let thumbprint: string;
  try {
    const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...DPOP_SIGNING_ALGS] });
    payload = verified.payload;
    thumbprint = await calculateJwkThumbprint(verified.protectedHeader.jwk!);
  } catch {
    throw new InvalidDpopProofError('the DPoP proof is not a valid dpop+jwt signed by its embedded key');
  }
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) {
    throw new InvalidDpopProofError('the DPoP proof needs a jti');
  }
  if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > DPOP_PROOF_WINDOW_SECONDS) {
    throw new InvalidDpopProofError('the DPoP proof iat is missing or not recent');
  }
  if (payload.htm !== expected.method) throw new InvalidDpopProofError('the DPoP proof is for another method (htm)');
  const htu = typeof payload.htu === 'string' ? withoutQueryAndFragment(payload.htu) : undefined;
  if (htu === undefined || htu !== withoutQueryAndFragment(expected.url)) {
    throw new InvalidDpopProofError('the DPoP proof is for another URL (htu)');
  }
  const ath = sha256Base64Url(expected.accessToken);
  if (typeof payload.ath !== 'string' || !sameText(payload.ath, ath)) {
    throw new InvalidDpopProofError('the DPoP proof is not for this access token (ath)');
  }
  if (!sameText(thumbprint, expected.jkt)) {
    throw new InvalidDpopProofError('the DPoP proof is not signed by the key the access token is bound to');
  }
  // Last, so a proof that fails any check above does not use up its jti. Namespaced apart from the
  // provider's own records of the same client, although htu already tells them apart.
  const fresh = await provider.ReplayDetection.unique(`admin:${expected.clientId}`, payload.jti, payload.iat + DPOP_PROOF_WINDOW_SECONDS + 2);
  if (!fresh) throw new InvalidDpopProofError('the DPoP proof was used before');
}
