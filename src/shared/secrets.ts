/** Generation, digesting and constant-time comparison of server-generated secrets. */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new secret of 256 random bits, base64url. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A new public identifier: 128 random bits, base64url (unguessable, but not a credential). */
export function generateIdentifier(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * SHA-256 of `value`, base64url: how token values become store keys. Token values are high-entropy
 * random strings, so a fast unsalted hash makes them unrecoverable while lookups stay one key read.
 */
export function sha256Base64Url(value: string): string {
  // The one-shot hash: half the time of createHash's object on the token paths.
  return hash('sha256', value, 'base64url');
}

/** SHA-256 of `value`, hex. Used for secrets, which are high-entropy: a slow hash would add nothing. */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

/** Whether `presented` hashes to one of `digests`, comparing every digest in constant time. */
export function secretMatchesAnyDigest(presented: string, digests: readonly string[]): boolean {
  const candidate = Buffer.from(sha256Hex(presented), 'hex');
  let matched = false;
  for (const digest of digests) {
    const stored = Buffer.from(digest, 'hex');
    // No early exit: the time taken does not say which digest, if any, matched.
    if (stored.length === candidate.length && timingSafeEqual(stored, candidate)) matched = true;
  }
  return matched;
}
