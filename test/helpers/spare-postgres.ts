/**
 * A throwaway PostgreSQL cluster in a temporary directory, on a loopback port, owned by one test file,
 * that the test can stop abruptly and start again on the same port and data: what a server sees when
 * its database crashes and comes back. Uses the machine's PostgreSQL binaries.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

const POSTGRES_ROOT = '/usr/lib/postgresql';
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 20_000;

const run = promisify(execFile);

/** A running spare PostgreSQL; its superuser is `postgres`, trusted without a password. */
export interface SparePostgres {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, for DATABASE_URL. */
  readonly url: string;
  /** Immediate shutdown (SIGQUIT: no checkpoint, connections cut); resolves once the server has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data (crash recovery); resolves once it answers queries. */
  restart(): Promise<void>;
  /** Stops the server if it runs and removes its directory. Call it in afterAll. */
  destroy(): Promise<void>;
}

/** The bin directory of the newest PostgreSQL installed under /usr/lib/postgresql. */
async function postgresBinDir(): Promise<string> {
  const versions = (await readdir(POSTGRES_ROOT)).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL found under ${POSTGRES_ROOT}`);
  return join(POSTGRES_ROOT, versions[0], 'bin');
}

/**
 * The uid and gid to run PostgreSQL as: it refuses to run as root, so a root test process runs it as
 * the `postgres` OS user; anyone else runs it as themselves.
 */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Resolves true if the server at `url` answers a query right now (not merely accepts a connection). */
async function answersQuery(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  // A refused or cut connection is also reported as an error event; the rejected promise covers it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates a cluster with `initdb` (trust auth, fsync off) in a fresh temporary directory and starts
 * `postgres` on a free loopback port, its socket in that directory. On failure, whatever was created
 * is removed again.
 */
export async function startSparePostgres(): Promise<SparePostgres> {
  const [bin, user, port] = await Promise.all([postgresBinDir(), postgresUser(), freePort()]);
  const dir = await mkdtemp(join(tmpdir(), 'spare-postgres-'));
  const dataDir = join(dir, 'data');
  const url = `postgres://postgres@${HOST}:${port}/postgres`;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<ChildProcess> => {
    const server = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        `listen_addresses=${HOST}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
      ],
      { ...user, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Read on so a full pipe never blocks the server; kept for the error message.
    let output = '';
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answersQuery(url))) {
      if (server.exitCode !== null || server.signalCode !== null) throw new Error(`postgres on port ${port} exited:\n${output}`);
      if (Date.now() > deadline) {
        server.kill('SIGQUIT');
        throw new Error(`postgres on port ${port} did not answer in time:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return server;
  };

  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // The postmaster's immediate shutdown: it cuts every backend at once, as a crash would.
    running.kill('SIGQUIT');
    await exited;
  };

  // A test that times out may never reach afterAll; neither the server nor its files may outlive the test process.
  const cleanUpOnExit = () => {
    child?.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanUpOnExit);

  const destroy = async () => {
    await stop();
    process.off('exit', cleanUpOnExit);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    if (user) await chown(dir, user.uid, user.gid);
    await new Promise<void>((resolve, reject) => {
      execFile(
        join(bin, 'initdb'),
        ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'],
        { ...user, cwd: dir },
        (error, _stdout, stderr) => (error ? reject(new Error(`initdb failed: ${stderr}`)) : resolve()),
      );
    });
    child = await launch();
  } catch (error) {
    await destroy();
    throw error;
  }

  return {
    port,
    url,
    stop,
    restart: async () => {
      if (child) throw new Error(`the spare PostgreSQL on port ${port} is still running`);
      child = await launch();
    },
    destroy,
  };
}
