/**
 * Entry point: read the configuration, prepare the database once, then serve with WORKERS processes.
 * A configuration error stops the process with a message naming the variable.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { createRequestListener } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { createLogger, type Logger } from './observability/logger.js';
import { resolveKeyEncryptionKey } from './keys/key-encryption.js';
import { metricsPortOf, serveMetrics } from './observability/metrics.js';
import { startTracing, stopTracing } from './observability/tracing.js';
import { createServices, prepareDatabase } from './services.js';

const SHUTDOWN_GRACE_MS = 10_000;

/**
 * How far V8 lets the old generation grow past the live heap before its next full collection, in
 * percent: the next limit is the live size times (1 + this / 100). V8's own factor is picked from the
 * collector's speed and reaches 4x on a server, so a live heap of ~25 MiB let resident size climb to
 * 240-290 MiB under load; at 2x it stays under 200 MiB for about 2 % (introspection) to 6 % (opaque
 * issuance) more CPU per request on average, within the benchmark's noise, where caps on the heap
 * cost several times that (docs/performance.md, Memory). Set here rather than in every command that
 * starts the server (npm start, the image, Kubernetes): NODE_OPTIONS does not accept this flag. The
 * young generation's size is the other half of the default (`--max-semi-space-size=8`), but V8 reads
 * that only when it creates the heap, so it is given where the process starts: npm start's command
 * line (cluster workers inherit it), NODE_OPTIONS in the image and the Kubernetes ConfigMap. So is
 * `--experimental-async-context-frame` (AsyncLocalStorage without a hook on every promise; the default
 * from Node.js 24), which only a process's start can choose.
 */
const HEAP_GROWING_PERCENT = 100;

/**
 * Applies HEAP_GROWING_PERCENT unless the command line names its own value (`--heap-growing-percent=0`
 * gives V8's own factor back). Cluster workers run this too, with the primary's command line.
 */
function limitHeapGrowth(): void {
  if (process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent\b/.test(flag))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

async function serve(config: Config, logger: Logger, prepare: boolean): Promise<void> {
  const services = await createServices(config, logger, { prepare, background: true });
  const listener = createRequestListener({
    ...services,
    issuer: config.issuer,
    trustProxy: config.trustProxy,
    jwksMaxAgeSeconds: config.jwksMaxAgeSeconds,
    signingAlgs: config.signingAlgs,
    dedicatedPaths: config.dedicatedPaths,
    production: config.production,
  });
  const server = createServer(listener).listen(config.port);
  // Bounds on slow clients: a request must arrive whole, and be answered, within these.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  logger.info({ issuer: config.issuer, port }, 'listening');
  const metrics = cluster.isPrimary ? await startMetrics(config, logger) : undefined;
  if (cluster.isPrimary) console.log(`Issuer ${config.issuer} listening on port ${port}`);

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
    // Long polls of security events answer now (with what they have) rather than hold the drain.
    services.securityEvents.stopWaiting();
    await drain(server);
    metrics?.close();
    await services.close();
    await stopTracing();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * Stops accepting connections and resolves once every request already received has been answered.
 * http.Server#close would also drop keep-alive connections it considers idle, including ones whose
 * next request is already in the socket buffer but not yet parsed; so only the listening socket is
 * closed here, answers from now on close their connection, and idle connections are closed only
 * once no request has been in progress for a moment.
 */
async function drain(server: Server): Promise<void> {
  let inProgress = 0;
  server.prependListener('request', (_req, res) => {
    inProgress++;
    res.setHeader('Connection', 'close');
    res.once('close', () => inProgress--);
  });
  const closed = new Promise<void>((resolve) => server.once('close', resolve));
  NetServer.prototype.close.call(server);
  let quietTicks = 0;
  const reaper = setInterval(() => {
    quietTicks = inProgress === 0 ? quietTicks + 1 : 0;
    if (quietTicks >= 2) server.closeIdleConnections();
  }, 100);
  await closed;
  clearInterval(reaper);
}

async function startMetrics(config: Config, logger: Logger) {
  const server = await serveMetrics(config.metricsPort, config.metricsHost);
  const port = metricsPortOf(server);
  const host = config.metricsHost.includes(':') ? `[${config.metricsHost}]` : config.metricsHost;
  logger.info({ host: config.metricsHost, port }, 'metrics listening');
  console.log(`Metrics on http://${host}:${port}/metrics`);
  return server;
}

async function main(): Promise<void> {
  limitHeapGrowth();
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
  // Before anything is built: the database and the app pick their tracing hooks when made.
  await startTracing();

  if (config.workers === 1 || !cluster.isPrimary) {
    await serve(config, logger, cluster.isPrimary);
    return;
  }
  // Several workers: the primary prepares the database once, then each worker serves the shared port.
  const db = await openDatabase(config.databaseUrl, config.pgliteDir);
  await prepareDatabase(config, logger, db, resolveKeyEncryptionKey(config));
  await db.destroy();
  await startMetrics(config, logger);
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
