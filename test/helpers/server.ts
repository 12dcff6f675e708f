/**
 * Starts the real server (compiled in dist/ by the global setup) as a child process on this run's
 * PostgreSQL database and Redis prefix, and stops it again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { freePort } from './free-port.js';
import { startScriptNodeFlags } from './start-flags.js';

/** The compiled server, by absolute path so a test may start it in another working directory. */
export const SERVER_ENTRY = resolve('dist/src/main.js');

/** A running server process. */
export interface RunningServer {
  readonly issuer: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<number | null>;
}

/**
 * Credentials of the admin client a test server with this issuer makes sure exists (ADMIN_BOOTSTRAP_*).
 * One per issuer: every file of a run shares one database, and an admin client's default audience is
 * the admin API of the issuer that created it.
 */
export function testAdmin(issuer: string): { clientId: string; clientSecret: string } {
  return { clientId: `test-admin-${new URL(issuer).port}`, clientSecret: 'test-admin-secret-0123456789abcdefghijklmnopqrstuvwxyz' };
}

/** A port that was free a moment ago (also used by the benchmark: one implementation for both). */
export { freePort };

/** The environment of a test server: this run's stores and the test admin client. */
export function testServerEnv(port: number, overrides: Record<string, string> = {}): Record<string, string> {
  const admin = testAdmin(overrides.ISSUER ?? `http://localhost:${port}`);
  return {
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    ISSUER: `http://localhost:${port}`,
    DATABASE_URL: process.env.TEST_RUN_DATABASE_URL!,
    REDIS_URL: process.env.TEST_REDIS_URL!,
    REDIS_KEY_PREFIX: process.env.TEST_RUN_REDIS_PREFIX!,
    // The same key-encryption key for every server of the run: they share one database of keys.
    KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
    ADMIN_BOOTSTRAP_CLIENT_ID: admin.clientId,
    ADMIN_BOOTSTRAP_CLIENT_SECRET: admin.clientSecret,
    LOG_LEVEL: 'info',
    // Any free port: many test servers run at once.
    METRICS_PORT: '0',
    ...overrides,
  };
}

/** The key-encryption key of every test server (base64): derived from the run's prefix, so every file of one run agrees on it. */
export const TEST_KEY_ENCRYPTION_KEY = Buffer.from(
  (process.env.TEST_RUN_REDIS_PREFIX ?? randomBytes(16).toString('hex')).padEnd(32, '0').slice(0, 32),
).toString('base64');

/**
 * Starts `node dist/src/main.js`, with the Node.js flags of `npm start`, and resolves once it listens.
 * @param options.port reuse a port (for a second issuer with the same URL, pass the issuer too).
 */
export async function startServer(
  options: {
    env?: Record<string, string>;
    /** Use exactly `env` (plus PATH and PORT) instead of this run's stores: the embedded defaults. */
    bareEnv?: boolean;
    cwd?: string;
    port?: number;
    issuerPort?: number;
  } = {},
): Promise<RunningServer> {
  const port = options.port ?? (await freePort());
  // The jest project that runs the protocol files again with the dedicated paths off sets this (jest.config.js).
  const dedicatedPaths: Record<string, string> = process.env.DEDICATED_PATHS ? { DEDICATED_PATHS: process.env.DEDICATED_PATHS } : {};
  const env = options.bareEnv
    ? { PATH: process.env.PATH ?? '', PORT: String(port), ISSUER: `http://localhost:${port}`, METRICS_PORT: '0', ...dedicatedPaths, ...options.env }
    : testServerEnv(port, {
        ...dedicatedPaths,
        ...(options.issuerPort ? { ISSUER: `http://localhost:${options.issuerPort}` } : {}),
        ...options.env,
      });
  const child = spawn(process.execPath, [...startScriptNodeFlags(), SERVER_ENTRY], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: a stray child keeps jest from exiting after the run.
      child.kill('SIGKILL');
      reject(new Error(`server did not start in time:\n${output}`));
    }, 30_000);
    const check = () => {
      if (output.includes('listening on port')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });

  return {
    issuer: env.ISSUER,
    port,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}
