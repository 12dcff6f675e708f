/**
 * Encryption at rest of private signing keys: AES-256-GCM under the key-encryption key (KEK).
 * Each ciphertext is stored beside the id of the KEK that made it, so the KEK itself can be rotated.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';

/** A key-encryption key and its id (derived from the key, so it needs no separate setting). */
export interface KeyEncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

const DEV_KEK_FILE = 'dev-key-encryption-key';

/** Builds a KEK from base64 of 32 bytes. */
export function keyEncryptionKeyFromBase64(base64: string): KeyEncryptionKey {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new Error('a key-encryption key must be 32 bytes');
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
}

/**
 * The development KEK in `keysDir`, created on first use with owner-only permissions.
 * Never used in production (the configuration refuses to start without KEY_ENCRYPTION_KEY).
 */
export function loadOrCreateDevKeyEncryptionKey(keysDir: string): KeyEncryptionKey {
  const file = join(keysDir, DEV_KEK_FILE);
  if (!existsSync(file)) {
    mkdirSync(keysDir, { recursive: true });
    // 'wx' fails if another process created it in between; then we read theirs.
    try {
      writeFileSync(file, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    chmodSync(file, 0o600);
  }
  return keyEncryptionKeyFromBase64(readFileSync(file, 'utf8').trim());
}

/** The key-encryption key from the environment, or the development one in `keysDir`. */
export function resolveKeyEncryptionKey(config: Config): KeyEncryptionKey {
  return config.keyEncryptionKey ? keyEncryptionKeyFromBase64(config.keyEncryptionKey) : loadOrCreateDevKeyEncryptionKey(config.keysDir);
}

/** Every key-encryption key that may open a stored key: the one in force (which seals) first, then the previous one. */
export function resolveKeyEncryptionKeys(config: Config): [KeyEncryptionKey, ...KeyEncryptionKey[]] {
  const current = resolveKeyEncryptionKey(config);
  return config.previousKeyEncryptionKey ? [current, keyEncryptionKeyFromBase64(config.previousKeyEncryptionKey)] : [current];
}

/** Key-encryption keys by id, as a stored key names the one that sealed it. */
export const keyEncryptionKeysById = (keks: readonly KeyEncryptionKey[]): ReadonlyMap<string, KeyEncryptionKey> =>
  new Map(keks.map((kek) => [kek.id, kek]));

/** Encrypts `plaintext` under `kek`; the result is `iv.tag.ciphertext` in base64url. */
export function encryptWithKek(kek: KeyEncryptionKey, plaintext: string, associatedData: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek.key, iv);
  cipher.setAAD(Buffer.from(associatedData));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64url')).join('.');
}

/**
 * Decrypts what `encryptWithKek` made. `associatedData` must match (it binds the ciphertext to its
 * key id, so a ciphertext cannot be swapped onto another row).
 */
export function decryptWithKek(kek: KeyEncryptionKey, sealed: string, associatedData: string): string {
  const [iv, tag, ciphertext] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !tag || !ciphertext) throw new Error('malformed ciphertext');
  const decipher = createDecipheriv('aes-256-gcm', kek.key, iv);
  decipher.setAAD(Buffer.from(associatedData));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
}
