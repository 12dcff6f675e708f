/**
 * A throwaway standalone Redis on a loopback port, owned by one test file, that the test can kill hard
 * and start again on the same port: what a server sees when its Redis crashes and comes back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './free-port.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;

/**
 * A running spare Redis. Without `appendOnlyDir` it keeps nothing on disk: after `restart()` it is
 * empty; with it, every write is in the append-only file, fsynced before it is acknowledged.
 */
export interface SpareRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, for REDIS_URL. */
  readonly url: string;
  /** Kills the server with SIGKILL (a crash, not a shutdown) and resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same port; resolves once it answers PING. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing is answered, as with a hung host. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT); it answers what it was sent meanwhile. */
  resume(): void;
}

/** Resolves true if a Redis on `port` answers PING with PONG right now. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Starts `redis-server` on `port`; resolves with the child once PING answers, rejects if it exits first. */
async function launch(port: number, appendOnlyDir: string | undefined): Promise<ChildProcess> {
  const persistence = appendOnlyDir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', appendOnlyDir] : ['--appendonly', 'no'];
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', HOST, '--save', '', ...persistence, '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Read on so a full pipe never blocks the server; kept for the error message.
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answersPing(port))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server on port ${port} exited:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return child;
}

/**
 * Starts a spare Redis on `port` (default: a free one). Call `stop()` in afterAll: it is also the
 * cleanup, and a process exit kills a server left running.
 * @param options.appendOnlyDir keep an append-only file in this directory (and load the one there).
 */
export async function startSpareRedis(port?: number, options: { appendOnlyDir?: string } = {}): Promise<SpareRedis> {
  const chosen = port ?? (await freePort());
  let child: ChildProcess | undefined = await launch(chosen, options.appendOnlyDir);
  // A test that times out may never reach afterAll; the server must not outlive the test process.
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  const signal = (name: NodeJS.Signals) => {
    if (!child) throw new Error(`the spare Redis on port ${chosen} is not running`);
    child.kill(name);
  };

  return {
    port: chosen,
    url: `redis://${HOST}:${chosen}`,
    stop: async () => {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      if (child) throw new Error(`the spare Redis on port ${chosen} is still running`);
      child = await launch(chosen, options.appendOnlyDir);
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}
