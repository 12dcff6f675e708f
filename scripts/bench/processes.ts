/**
 * The processes the benchmark starts and watches: servers as child processes, ready once they print
 * that they listen, and their resident memory read from /proc (Linux only; elsewhere it reads as 0).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A server the benchmark started. */
export interface ServerProcess {
  readonly name: string;
  readonly baseUrl: string;
  readonly process: ChildProcess;
  /** The processes that serve requests: the child itself, or its workers when it forks any. */
  servingPids(): number[];
  /** Everything the process wrote so far (for error messages). */
  output(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node [nodeFlags] entry` and resolves once its stdout matches `ready`.
 * @param options.forks - How many worker processes the child forks (0: it serves by itself).
 */
export async function startServerProcess(options: {
  name: string;
  entry: string;
  port: number;
  env: Record<string, string>;
  ready: RegExp;
  nodeFlags?: readonly string[];
  forks?: number;
}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), options.entry], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    // Only the tail matters for diagnostics; a chatty server must not grow the orchestrator.
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.name} did not start in 60 s:\n${output}`)), 60_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited with ${code} while starting:\n${output}`));
    };
    child.once('exit', onExit);
    child.stdout.on('data', function check() {
      if (!options.ready.test(output)) return;
      child.stdout.off('data', check);
      child.off('exit', onExit);
      clearTimeout(timer);
      resolve();
    });
  });

  const forks = options.forks ?? 0;
  const servingPids = () => (forks > 0 ? childPids(child.pid!) : [child.pid!]);
  if (forks > 0 && servingPids().length !== forks) {
    throw new Error(`${options.name} has ${servingPids().length} workers, expected ${forks}:\n${output}`);
  }

  return {
    name: options.name,
    baseUrl: `http://127.0.0.1:${options.port}`,
    process: child,
    servingPids,
    output: () => output,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The direct children of `pid` (node:cluster forks from the main thread, whose task id is the pid). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Resident memory now and at its peak (VmRSS, VmHWM), in bytes; zeros when /proc cannot say. */
export function residentMemory(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** Clock ticks per second, the unit of CPU times in /proc/<pid>/stat. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time the process has used so far (user and system), in seconds; 0 when /proc cannot say. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** What a set of processes used while a measurement ran. */
export interface ProcessUsage {
  /** Highest resident size seen per process, in bytes. */
  readonly peakRss: Map<number, number>;
  /** CPU seconds the processes used meanwhile, all of them together. */
  readonly cpuSeconds: number;
}

/**
 * Samples a set of processes while a measurement runs: resident memory every `intervalMs`, and CPU
 * time at the start and the end. CPU time per request is the figure that drifts least on a shared
 * machine: other load takes CPU away from the server, but not what each request costs it.
 */
export class ProcessSampler {
  readonly #peaks = new Map<number, number>();
  readonly #cpuAtStart = new Map<number, number>();
  readonly #timer: NodeJS.Timeout;

  /** Starts sampling `pids()`; `onSample` sees each memory sample (for time series). */
  constructor(
    private readonly pids: () => number[],
    intervalMs = 250,
    private readonly onSample?: (rssByPid: Map<number, number>) => void,
  ) {
    for (const pid of pids()) this.#cpuAtStart.set(pid, cpuSeconds(pid));
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  /** CPU seconds the processes used since sampling started, all of them together. */
  cpuSoFar(): number {
    let cpu = 0;
    for (const [pid, atStart] of this.#cpuAtStart) cpu += cpuSeconds(pid) - atStart;
    return cpu;
  }

  /** Stops sampling. */
  stop(): ProcessUsage {
    clearInterval(this.#timer);
    this.#sample();
    return { peakRss: this.#peaks, cpuSeconds: this.cpuSoFar() };
  }

  #sample(): void {
    const sample = new Map<number, number>();
    for (const pid of this.pids()) {
      const { rss } = residentMemory(pid);
      sample.set(pid, rss);
      this.#peaks.set(pid, Math.max(this.#peaks.get(pid) ?? 0, rss));
    }
    this.onSample?.(sample);
  }
}
