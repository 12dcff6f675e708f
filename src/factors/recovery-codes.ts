/**
 * Recovery codes: ten single-use codes per account, shown once, stored as SHA-256 digests. Each is 16
 * characters from a 32-letter alphabet without look-alikes (80 random bits), so a fast digest makes
 * them unrecoverable from the store, as with client secrets.
 */
import { randomBytes } from 'node:crypto';
import { sha256Base64Url } from '../shared/secrets.js';

/** How many codes a set has. */
export const RECOVERY_CODE_COUNT = 10;

// Crockford's base32 (no i, l, o, u): what people read off paper, lower case.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_LENGTH = 16;

/** A new set of {@link RECOVERY_CODE_COUNT} codes, formatted `xxxx-xxxx-xxxx-xxxx`. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = randomBytes(CODE_LENGTH);
    const characters = [...bytes].map((byte) => ALPHABET[byte % 32]);
    return [0, 4, 8, 12].map((at) => characters.slice(at, at + 4).join('')).join('-');
  });
}

/** The code as stored before digesting: lower case, without the dashes and spaces people type. */
export function normaliseRecoveryCode(input: string): string | undefined {
  const code = input.toLowerCase().replace(/[\s-]+/g, '');
  return code.length === CODE_LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : undefined;
}

/** The stored digest of a code (already normalised). */
export const recoveryCodeDigest = (normalised: string): string => sha256Base64Url(normalised);
