/**
 * `npm run -s admin:bootstrap`: creates an admin client and prints exactly one JSON object on stdout.
 * Logs go to stderr so stdout stays machine-readable. With the embedded database, run it while the
 * server is stopped (PGlite serves one process at a time).
 */
import { createClient } from '../src/clients/client-service.js';
import { ADMIN_SCOPES, adminAudience } from '../src/admin/admin-auth.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { SYSTEM_ACTOR } from '../src/audit/audit.js';
import { adminClientMetadata, createServices } from '../src/services.js';

try {
  const config = { ...loadConfig(), adminBootstrap: undefined };
  // stdout carries the JSON answer alone: logs go to stderr, and only warnings unless asked for more.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 2);
  const services = await createServices(config, logger, { prepare: true, background: false });
  try {
    const { client, secret } = await createClient(
      { db: services.db, bus: services.bus, actor: SYSTEM_ACTOR },
      services.validateClientMetadata,
      { clientName: 'Admin', trust: 'internal', metadata: adminClientMetadata(config.issuer) },
    );
    process.stdout.write(
      JSON.stringify({
        client_id: client.clientId,
        client_secret: secret,
        token_endpoint: `${config.issuer}/token`,
        resource: adminAudience(config.issuer),
        scope: ADMIN_SCOPES.join(' '),
      }) + '\n',
    );
  } finally {
    await services.close();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : `Bootstrap failed: ${(error as Error).message}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
