/**
 * Starts a throwaway Redis Cluster of three masters (no replicas) on loopback ports, for tests that must
 * see what Cluster refuses and standalone Redis lets pass (keys of one command in different slots).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const HOST = '127.0.0.1';
/** A node's cluster bus listens on its port + 10000, which must be a valid port too. */
const BUS_PORT_OFFSET = 10_000;
const MAX_NODE_PORT = 55_000;
const NODE_COUNT = 3;
const START_TIMEOUT_MS = 15_000;
const DEFAULT_NODE_TIMEOUT_MS = 15_000;

const run = promisify(execFile);

/** Resolves with a node's `cluster_state` (ok or fail). */
export async function clusterState(port: number): Promise<string> {
  const { stdout } = await run(REDIS_CLI, ['-h', HOST, '-p', String(port), 'cluster', 'info']);
  return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown';
}

/** A running cluster: its nodes, any of which an ioredis `Cluster` can start from. */
export interface RedisCluster {
  readonly nodes: { host: string; port: number }[];
  /** Kills the node on `port` with SIGKILL (a crash: the shard it masters is gone); resolves once it has exited. */
  kill(port: number): Promise<void>;
  /** Kills the nodes and removes their directory. */
  stop(): Promise<void>;
}

/** Listens on `port` (0: any) for a moment; the port it got, or undefined if `port` is taken. */
async function probePort(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    probe.listen(port, HOST, () => {
      const { port: bound } = probe.address() as { port: number };
      probe.close(() => resolve(bound));
    });
  });
}

/** `count` ports that were free a moment ago, each with its bus port free too, none overlapping. */
async function freeNodePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  const taken = new Set<number>();
  while (ports.length < count) {
    const port = await probePort(0);
    if (port === undefined || port >= MAX_NODE_PORT) continue;
    const busPort = port + BUS_PORT_OFFSET;
    if (taken.has(port) || taken.has(busPort) || (await probePort(busPort)) === undefined) continue;
    ports.push(port);
    taken.add(port).add(busPort);
  }
  return ports;
}

/** A node process and a promise that resolves once it accepts connections, or rejects if it exits first. */
function startNode(port: number, dir: string, nodeTimeoutMs: number): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(
    REDIS_SERVER,
    [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout',
      String(nodeTimeoutMs),
      '--port',
      String(port),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Kept whole (a node logs a few lines) for the error message, and read on so a full pipe never blocks the node.
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server on port ${port} did not start in time:\n${output}`)), START_TIMEOUT_MS);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited with ${code}:\n${output}`));
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, ready };
}

/** Resolves once every node reports `cluster_state:ok`, i.e. sees every slot served. */
async function waitUntilClusterOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (const port of ports) {
    for (;;) {
      const { stdout } = await run(REDIS_CLI, ['-h', HOST, '-p', String(port), 'cluster', 'info']);
      if (stdout.includes('cluster_state:ok')) break;
      if (Date.now() > deadline) throw new Error(`node ${port} is not ok:\n${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Nothing to save (`--save ""`), so no need to wait for a clean shutdown.
  child.kill('SIGKILL');
  await exited;
}

/**
 * Starts three `redis-server` nodes in cluster mode in a fresh temporary directory, joins them with
 * `redis-cli --cluster create` and resolves once the cluster serves every slot. On failure, whatever
 * was started is stopped again.
 * @param options.nodeTimeoutMs how long a node may be unreachable before the others call it failed
 *   (and, without a replica to promote, the whole cluster down); Redis's default is 15 s.
 */
export async function startRedisCluster(options: { nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(kill));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports = await freeNodePorts(NODE_COUNT);
    const nodes = ports.map((port) => startNode(port, dir, options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS));
    children.push(...nodes.map((node) => node.child));
    await Promise.all(nodes.map((node) => node.ready));
    const addresses = ports.map((port) => `${HOST}:${port}`);
    await run(REDIS_CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    await waitUntilClusterOk(ports);
    return {
      nodes: ports.map((port) => ({ host: HOST, port })),
      kill: async (port) => {
        const index = ports.indexOf(port);
        if (index < 0) throw new Error(`no node of this cluster listens on ${port}`);
        await kill(children[index]);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
