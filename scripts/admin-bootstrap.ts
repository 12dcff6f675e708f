/**
 * `npm run -s admin:bootstrap`: creates an admin client and prints exactly one JSON object on stdout.
 * Logs go to stderr so stdout stays machine-readable. With the embedded database, run it while the
 * server is stopped (PGlite serves one process at a time).
 */
import { createAdminClient } from '../src/admin/admin-bootstrap.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { createServices } from '../src/services.js';

try {
  const config = { ...loadConfig(), adminBootstrap: undefined };
  // stdout carries the JSON answer alone: logs go to stderr, and only warnings unless asked for more.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 2);
  const services = await createServices(config, logger, { prepare: true, background: false });
  try {
    const credentials = await createAdminClient({ ...services, issuer: config.issuer });
    process.stdout.write(JSON.stringify(credentials) + '\n');
  } finally {
    await services.close();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : `Bootstrap failed: ${(error as Error).message}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
