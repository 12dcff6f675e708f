/**
 * `npm run keys:rewrap`: re-encrypts every stored private signing key (in one transaction), then every
 * resource server's push credential (in another), then every TOTP secret (in a third), under
 * KEY_ENCRYPTION_KEY. Keys sealed by the previous key-encryption key are opened with
 * KEY_ENCRYPTION_KEY_PREVIOUS, which can be dropped from the configuration once this has run.
 */
import { ConfigError, loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { keyEncryptionKeysById, resolveKeyEncryptionKeys } from '../src/keys/key-encryption.js';
import { rewrapSigningKeys } from '../src/keys/key-lifecycle.js';
import { rewrapEventsEndpointTokens } from '../src/resource-servers/resource-server-repository.js';
import { rewrapTotpSecrets } from '../src/factors/factor-service.js';
import { SYSTEM_ACTOR } from '../src/audit/audit.js';

try {
  const config = loadConfig();
  const keks = resolveKeyEncryptionKeys(config);
  const db = await openDatabase(config.databaseUrl, config.pgliteDir);
  try {
    const rewrapped = await rewrapSigningKeys(db, keyEncryptionKeysById(keks), keks[0], SYSTEM_ACTOR);
    console.log(`Rewrapped ${rewrapped} signing key(s) under key-encryption key ${keks[0].id}`);
    // Push credentials of revocation events (docs/revocation-events.md) are sealed under it too.
    const credentials = await rewrapEventsEndpointTokens(db, keyEncryptionKeysById(keks), keks[0]);
    console.log(`Rewrapped ${credentials} push credential(s) under key-encryption key ${keks[0].id}`);
    // So are the secrets of authenticator apps (docs/strong-sign-in.md).
    const totpSecrets = await rewrapTotpSecrets(db, keyEncryptionKeysById(keks), keks[0]);
    console.log(`Rewrapped ${totpSecrets} TOTP secret(s) under key-encryption key ${keks[0].id}`);
  } finally {
    await db.destroy();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : `Rewrap failed: ${(error as Error).message}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
