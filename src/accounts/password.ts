/**
 * Password hashing: argon2id with OWASP's recommended cost (19 MiB, 2 passes, 1 lane). Passwords are
 * low-entropy and chosen by people, so unlike server-generated secrets they need a slow, salted hash.
 */
import { randomBytes } from 'node:crypto';
import { hash, verify, type Options } from '@node-rs/argon2';

/** Passwords shorter than this are refused (NIST SP 800-63B: length beats composition rules). */
export const MIN_PASSWORD_LENGTH = 12;
/** Longer input only costs hashing time, never security. */
export const MAX_PASSWORD_LENGTH = 1024;

// `Algorithm` is an ambient const enum, which isolated modules cannot read: 2 is its Argon2id.
const ARGON2ID = 2 as Options['algorithm'];
const OPTIONS: Options = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** An argon2id PHC string for `password`, with a fresh random salt. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

// A hash of a random value nobody knows, made with the same cost as real ones, so that checking a
// password for an email with no account takes as long as checking a wrong password for a real one.
let dummyHash: Promise<string> | undefined;

/**
 * Whether `password` matches `passwordHash`. Without a hash (no such account) it still does the work
 * of a real check, against a dummy hash, and answers false.
 */
export async function verifyPassword(passwordHash: string | undefined, password: string): Promise<boolean> {
  dummyHash ??= hashPassword(randomBytes(32).toString('base64url'));
  const against = passwordHash ?? (await dummyHash);
  let matches: boolean;
  try {
    matches = await verify(against, password);
  } catch {
    matches = false;
  }
  return matches && passwordHash !== undefined;
}
