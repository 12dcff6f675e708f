/**
 * Entry point: read the configuration, prepare the database once, then serve with WORKERS processes.
 * A configuration error stops the process with a message naming the variable.
 */
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createServices, prepareDatabase, resolveKeyEncryptionKey } from './services.js';

const SHUTDOWN_GRACE_MS = 10_000;

async function serve(config: Config, logger: Logger, prepare: boolean): Promise<void> {
  const services = await createServices(config, logger, { prepare });
  const app = createApp({ ...services, issuer: config.issuer });
  const server = app.listen(config.port);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  logger.info({ issuer: config.issuer, port }, 'listening');
  if (cluster.isPrimary) console.log(`Issuer ${config.issuer} listening on port ${port}`);

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
    // Stops accepting connections; requests already received are answered before the callback.
    server.close();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.once('close', resolve));
    await services.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);

  if (config.workers === 1 || !cluster.isPrimary) {
    await serve(config, logger, cluster.isPrimary);
    return;
  }
  // Several workers: the primary prepares the database once, then each worker serves the shared port.
  const db = await openDatabase(config.databaseUrl, config.pgliteDir);
  await prepareDatabase(config, logger, db, resolveKeyEncryptionKey(config));
  await db.destroy();
  // Announced once every worker listens, so whoever waits for the line can use all of them.
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === config.workers) {
      console.log(`Issuer ${config.issuer} listening on port ${config.port} with ${config.workers} workers`);
    }
  });
  for (let i = 0; i < config.workers; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code }, 'worker exited; starting another');
    cluster.fork();
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
      const timer = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS);
      timer.unref();
      cluster.on('exit', () => {
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      });
    });
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`Configuration error: ${error.message}`);
    process.exit(2);
  }
  console.error('Failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
