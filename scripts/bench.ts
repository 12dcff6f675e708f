/**
 * `npm run bench`: measures every hot path of the project side by side with two stock oidc-providers
 * (the peers: its in-memory adapter, and a plain Redis adapter) and bare node:http (the floor), in one
 * run, alternating the sides round after round so that drift on a shared machine cancels out; prints
 * a markdown table (medians of the rounds) and writes bench/results.json.
 * `npm run bench -- --soak 300` holds a mixed load on the project instead and reports its memory over
 * time (bench/soak.json). Options: see HELP below.
 *
 * It starts everything it measures: the project (dist/, on a database and Redis prefix of its own,
 * removed afterwards), the peers, the floor, and the load generator in a process of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/free-port.js';
import { discover } from './bench/http.js';
import { LoadGenerator } from './bench/load-protocol.js';
import { ProcessSampler, residentMemory, startServerProcess, type ServerProcess } from './bench/processes.js';
import { createProjectStores, provisionProject, startProject, type ProjectStores } from './bench/project-server.js';
import {
  judgeTargets,
  MEMORY_PEER,
  notes,
  ratiosOf,
  REDIS_PEER,
  resultsTable,
  summarize,
  targetsTable,
  type ComparisonResult,
  type WindowResult,
} from './bench/report.js';
import { provisionPerson } from './bench/person-scenario.js';
import {
  comparisons,
  ENTITLEMENTS_SCENARIOS,
  entitlementsComparisons,
  scalingComparison,
  tracingComparisons,
  TRACING_SCENARIOS,
  heapSettingsComparisons,
  HEAP_SETTINGS_SCENARIOS,
  type Comparison,
  type Contender,
  type ProjectTarget,
} from './bench/scenarios.js';
import { soak, type SoakResult } from './bench/soak.js';
import { startTraceSink } from './bench/trace-sink.js';

const HELP = `npm run bench [-- options]
  --duration N     seconds measured per side per round (default 4; --quick: 2)
  --warmup N       seconds of load before each measured window, three times that in the first
                   round (default 1; --quick: 0.5)
  --rounds N       rounds per scenario, alternating the order of the sides (default 3)
  --connections N  concurrent keep-alive connections (default 32)
  --workers N      worker processes for the scaling comparison (default 2; 1 skips it)
  --only IDS       comma-separated scenario ids (see bench/results.json), for development;
                   tracing-cost (tracing off against on, issuance and introspection, about 70 s at the
                   default settings) runs only when named here, and so does heap-settings (the
                   project against a second project process with BENCH_COMPARE_FLAGS)
  --quick          short windows, for development
  --cpu-prof       run the project and the peers under node --cpu-prof (bench/profiles/)
  --soak N         instead: hold a mixed load on the project for N seconds, report memory over time
Environment: DATABASE_URL (a server where a database may be created; default
postgres://postgres@127.0.0.1:5432/postgres), REDIS_URL (default redis://127.0.0.1:6379), BENCH_NODE_FLAGS
(Node.js flags for the project instead of those of npm start), BENCH_COMPARE_FLAGS (with --only heap-settings:
Node.js flags of a second project process measured against the first, rounds alternating, e.g.
"--max-old-space-size=160").`;

const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));
const PEER_ENTRY = fileURLToPath(new URL('./bench/peer-server.js', import.meta.url));
const FLOOR_ENTRY = fileURLToPath(new URL('./bench/floor-server.js', import.meta.url));

interface Settings {
  readonly seconds: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly connections: number;
  readonly workers: number;
  readonly only: readonly string[] | undefined;
  readonly cpuProf: boolean;
  readonly soak: number | undefined;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      workers: { type: 'string' },
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      soak: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const number = (name: string, value: string | undefined, fallback: number, minimum: number) => {
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < minimum) throw new Error(`--${name} must be a number of at least ${minimum}`);
    return parsed;
  };
  return {
    seconds: number('duration', values.duration, values.quick ? 2 : 4, 0.5),
    warmup: number('warmup', values.warmup, values.quick ? 0.5 : 1, 0),
    rounds: Math.round(number('rounds', values.rounds, 3, 1)),
    connections: Math.round(number('connections', values.connections, 32, 1)),
    workers: Math.round(number('workers', values.workers, 2, 1)),
    only: values.only?.split(',').map((id) => id.trim()),
    cpuProf: values['cpu-prof'],
    soak: values.soak === undefined ? undefined : number('soak', values.soak, 0, 10),
  };
}

/** Tokens issued then revoked per cycle: fits the peer's in-memory adapter (see RevocationJob). */
const REVOCATION_BATCH = 1000;

const MIB = 1024 * 1024;
const log = (message: string) => process.stderr.write(`${message}\n`);

/** Measures one comparison: every contender once per round, the order reversed every other round. */
async function measure(comparison: Comparison, generator: LoadGenerator, settings: Settings): Promise<ComparisonResult> {
  const windows = new Map<Contender, WindowResult[]>(comparison.contenders.map((c) => [c, []]));
  for (let round = 0; round < settings.rounds; round++) {
    const order = round % 2 === 0 ? comparison.contenders : [...comparison.contenders].reverse();
    for (const contender of order) {
      const base = { url: contender.server.baseUrl, connections: settings.connections, seconds: settings.seconds, revocationBatch: REVOCATION_BATCH };
      const job = await contender.job(base);
      // A side's first window gets a longer warm-up: the JIT compiles its hot path then.
      const warmup = round === 0 ? 3 * settings.warmup : settings.warmup;
      const warmupRequests = warmup > 0 ? (await generator.run({ ...job, seconds: warmup })).requests : 0;
      const sampler = new ProcessSampler(() => contender.server.servingPids());
      // Revocation jobs also issue tokens between their timed parts: only CPU time within them counts.
      let timedCpu = 0;
      let timedSince = 0;
      const stats = await generator.run(job, undefined, (timed) => {
        if (timed) timedSince = sampler.cpuSoFar();
        else timedCpu += sampler.cpuSoFar() - timedSince;
      });
      const usage = sampler.stop();
      const peakRss = Math.max(0, ...usage.peakRss.values());
      const cpu = job.kind === 'revocation' ? timedCpu : usage.cpuSeconds;
      const cpuPerRequestUs = stats.requests > 0 ? (cpu / stats.requests) * 1e6 : undefined;
      windows.get(contender)!.push({ round, stats, warmupRequests, peakRss, ...(cpuPerRequestUs !== undefined ? { cpuPerRequestUs } : {}) });
      log(
        `  ${comparison.id} round ${round + 1} ${contender.label}: ${stats.rps.toFixed(0)} req/s, p50 ${stats.p50.toFixed(2)} ms, ` +
          `p99 ${stats.p99.toFixed(2)} ms, ${stats.errors} errors, ${(peakRss / MIB).toFixed(0)} MiB` +
          (cpuPerRequestUs !== undefined ? `, ${cpuPerRequestUs.toFixed(0)} µs CPU/request` : ''),
      );
    }
  }
  const contenders = comparison.contenders.map((c) => summarize(c.role, c.label, windows.get(c)!));
  return { id: comparison.id, title: comparison.title, ...(comparison.note ? { note: comparison.note } : {}), contenders, ...ratiosOf(contenders) };
}

/** Everything started, stopped in reverse order at the end (also on Ctrl-C). */
class Cleanup {
  readonly #steps: (() => Promise<void> | void)[] = [];
  #done: Promise<void> | undefined;

  add(step: () => Promise<void> | void): void {
    this.#steps.push(step);
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      for (const step of this.#steps.reverse()) {
        try {
          await step();
        } catch (error) {
          log(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    return this.#done;
  }
}

function machine(settings: Settings) {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    loadAverageAtStart: loadavg(),
    settings: { ...settings, revocationBatch: REVOCATION_BATCH, pipelining: 1, projectLogLevel: 'warn' },
  };
}

async function startProjectTarget(stores: ProjectStores, workers: number, settings: Settings, cleanup: Cleanup): Promise<ProjectTarget> {
  const server = await startProject(stores, workers, workers === 1 ? profilerFlags(settings, 'project') : []);
  cleanup.add(() => server.stop());
  const endpoints = await discover(server.baseUrl);
  return { server, endpoints, fixtures: await provisionProject(server.baseUrl, endpoints.token, stores.admin) };
}

/** Node flags that write a CPU profile of `name` to bench/profiles/ when it stops, if asked for. */
function profilerFlags(settings: Settings, name: string): string[] {
  return settings.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${BENCH_DIR}profiles`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

async function startHelper(name: string, entry: string, env: Record<string, string>, cleanup: Cleanup, nodeFlags: string[] = []): Promise<ServerProcess> {
  const port = await freePort();
  const server = await startServerProcess({
    name,
    entry,
    port,
    nodeFlags,
    ready: /listening on port/,
    env: { NODE_ENV: 'production', PORT: String(port), ...env },
  });
  cleanup.add(() => server.stop());
  return server;
}

async function runComparisons(settings: Settings, stores: ProjectStores, generator: LoadGenerator, cleanup: Cleanup): Promise<void> {
  const info = machine(settings);
  log(`Node ${info.node}, ${info.cores} cores (${info.cpu}), load average ${info.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`);
  const project = await startProjectTarget(stores, 1, settings, cleanup);
  const peerSecret = randomBytes(32).toString('base64url');
  const peer = await startHelper(MEMORY_PEER, PEER_ENTRY, { PEER_CLIENT_SECRET: peerSecret }, cleanup, profilerFlags(settings, 'peer'));
  // Its keys live under the project's prefix, so removing the project's stores removes them too.
  const redisPeerEnv = { PEER_CLIENT_SECRET: peerSecret, PEER_REDIS_URL: stores.redisUrl, PEER_REDIS_PREFIX: `${stores.redisKeyPrefix}peer:` };
  const redisPeer = await startHelper(REDIS_PEER, PEER_ENTRY, redisPeerEnv, cleanup, profilerFlags(settings, 'peer-redis'));
  const floor = await startHelper('floor', FLOOR_ENTRY, {}, cleanup);
  const peers = await Promise.all(
    [peer, redisPeer].map(async (server) => ({ label: server.name, server, endpoints: await discover(server.baseUrl), clientSecret: peerSecret })),
  );

  const selected = (id: string) => !settings.only || settings.only.includes(id);
  const results: ComparisonResult[] = [];
  // VmHWM: the peak resident size of each process over its whole life, spikes between samples included.
  const highWater: Record<string, number> = {};
  const recordHighWater = (server: ServerProcess) => {
    highWater[server.name] = Math.max(0, ...server.servingPids().map((pid) => residentMemory(pid).hwm)) / MIB;
  };
  for (const comparison of comparisons(project, peers, floor).filter((c) => selected(c.id))) {
    log(`${comparison.title}`);
    results.push(await measure(comparison, generator, settings));
  }
  if (ENTITLEMENTS_SCENARIOS.some(selected)) {
    // The person signs in through the pages before any timed window.
    const person = await provisionPerson(project.server.baseUrl, project.endpoints.token, stores.admin);
    for (const comparison of entitlementsComparisons(project, person).filter((c) => selected(c.id))) {
      log(comparison.title);
      results.push(await measure(comparison, generator, settings));
    }
  }
  // Not in the default run: its two scenarios add about 70 s. `--only tracing-cost` runs both.
  const tracing = TRACING_SCENARIOS.filter((id) => settings.only?.includes(id) || settings.only?.includes('tracing-cost'));
  if (tracing.length > 0) {
    const sink = await startTraceSink();
    cleanup.add(() => sink.close());
    // Every span exported (no sampler is read), in batches of at most 512 spans every second.
    const traced = await startProject(stores, 1, [], {
      name: 'project (tracing on)',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'login-bench',
        OTEL_BSP_SCHEDULE_DELAY: '1000',
      },
    });
    cleanup.add(() => traced.stop());
    const on: ProjectTarget = { ...project, server: traced };
    for (const comparison of tracingComparisons(project, on).filter((c) => tracing.includes(c.id))) {
      log(comparison.title);
      const before = sink.spans();
      const result = await measure(comparison, generator, settings);
      // The traced process sends what it still buffers within OTEL_BSP_SCHEDULE_DELAY.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const spans = sink.spans() - before;
      const requests = result.contenders.find((c) => c.role === 'traced')?.windows.reduce((sum, w) => sum + w.stats.requests + (w.warmupRequests ?? 0), 0) ?? 0;
      const note =
        `the sink received ${spans} spans, ${(spans / Math.max(1, requests)).toFixed(2)} per request of the traced side (warm-ups included); ` +
        `the CPU ratio is off's µs over on's, so 1 / it is what tracing multiplies the CPU per request by`;
      results.push({ ...result, note });
    }
    const { received, unreadable } = sink.exports();
    log(`trace sink: ${sink.spans()} spans in ${received} exports (${unreadable} unreadable)`);
    recordHighWater(traced);
    await traced.stop();
  }
  // Not in the default run: a second project process with BENCH_COMPARE_FLAGS. `--only heap-settings` runs both.
  const heapSettings = HEAP_SETTINGS_SCENARIOS.filter((id) => settings.only?.includes(id) || settings.only?.includes('heap-settings'));
  if (heapSettings.length > 0) {
    const flags = process.env.BENCH_COMPARE_FLAGS?.trim();
    if (!flags) throw new Error('--only heap-settings needs BENCH_COMPARE_FLAGS: the Node.js flags to measure against those of npm start');
    const other = await startProject(stores, 1, flags.split(/\s+/), { name: `project (${flags})` });
    cleanup.add(() => other.stop());
    for (const comparison of heapSettingsComparisons(project, { ...project, server: other }, flags).filter((c) => heapSettings.includes(c.id))) {
      log(comparison.title);
      results.push(await measure(comparison, generator, settings));
    }
    recordHighWater(other);
    await other.stop();
  }
  if (settings.workers > 1 && selected('opaque-issuance-workers')) {
    // The project alone now: the peer and the floor would only take memory.
    for (const helper of [peer, redisPeer, floor]) {
      recordHighWater(helper);
      await helper.stop();
    }
    const several = await startProject(stores, settings.workers);
    cleanup.add(() => several.stop());
    const comparison = scalingComparison(project, { ...project, server: several }, settings.workers);
    log(comparison.title);
    results.push(await measure(comparison, generator, settings));
    recordHighWater(several);
  }
  for (const server of [project.server, peer, redisPeer, floor]) if (!(server.name in highWater)) recordHighWater(server);

  const targets = judgeTargets({ comparisons: results, connections: settings.connections, cores: info.cores, workers: settings.workers });
  const report = { ...info, loadAverageAtEnd: loadavg(), comparisons: results, targets, highWaterMiB: highWater };
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(`${BENCH_DIR}results.json`, JSON.stringify(report, null, 2) + '\n');

  console.log(
    `\n${info.date.slice(0, 10)}, Node ${info.node}, ${info.cores} cores (${info.cpu}), ${info.memoryGiB} GiB; ` +
      `${settings.connections} connections, ${settings.rounds} rounds of ${settings.seconds} s per side (after ${settings.warmup} s of warm-up, ${3 * settings.warmup} s in the first round); ` +
      `load average ${info.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')} at start, ${report.loadAverageAtEnd.map((l) => l.toFixed(2)).join(' ')} at end\n`,
  );
  console.log(resultsTable(results));
  const notesText = notes(results);
  if (notesText) console.log(`\n${notesText}`);
  const highWaterText = Object.entries(highWater)
    .map(([name, mib]) => `${name} ${mib.toFixed(0)} MiB`)
    .join(', ');
  console.log(`\nPeak resident size over each process's life (VmHWM): ${highWaterText}`);
  console.log(`\n${targetsTable(targets)}\n\nWritten to bench/results.json`);
  if (settings.cpuProf) console.log('CPU profiles: bench/profiles/project.cpuprofile, peer.cpuprofile and peer-redis.cpuprofile');
}

async function runSoak(settings: Settings, seconds: number, stores: ProjectStores, generator: LoadGenerator, cleanup: Cleanup): Promise<void> {
  const info = machine(settings);
  const project = await startProjectTarget(stores, 1, settings, cleanup);
  log(`Soak: ${seconds} s of mixed load on the project, ${settings.connections} connections`);
  console.log('| s | RSS MiB | req/s | errors |\n| ---: | ---: | ---: | ---: |');
  const result: SoakResult = await soak({
    generator,
    server: project.server,
    endpoints: project.endpoints,
    fixtures: project.fixtures,
    connections: settings.connections,
    seconds,
    reportEvery: Math.max(1, Math.round(seconds / 30)),
    onInterval: (i) => console.log(`| ${i.at} | ${i.rssMiB.toFixed(1)} | ${i.rps.toFixed(0)} | ${i.errors} |`),
  });
  const met = result.growth < 0.05 && result.stats.errors === 0;
  console.log(
    `\nResident memory ${result.baselineMiB.toFixed(1)} MiB after the warm-up, ${result.finalMiB.toFixed(1)} MiB at the end ` +
      `(growth ${(result.growth * 100).toFixed(1)} %, target < 5 %), peak ${result.peakMiB.toFixed(1)} MiB; ` +
      `${result.stats.rps.toFixed(0)} req/s, p50 ${result.stats.p50.toFixed(2)} ms, p99 ${result.stats.p99.toFixed(2)} ms, ${result.stats.errors} errors: ` +
      `${met ? 'met' : 'not met'}`,
  );
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(`${BENCH_DIR}soak.json`, JSON.stringify({ ...info, loadAverageAtEnd: loadavg(), soak: result }, null, 2) + '\n');
  console.log('Written to bench/soak.json');
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const cleanup = new Cleanup();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping and cleaning up`);
      void cleanup.run().then(() => process.exit(130));
    });
  }
  try {
    const stores = await createProjectStores(
      process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    );
    cleanup.add(() => stores.remove());
    const generator = new LoadGenerator();
    cleanup.add(() => generator.close());
    if (settings.soak !== undefined) await runSoak(settings, settings.soak, stores, generator, cleanup);
    else await runComparisons(settings, stores, generator, cleanup);
  } finally {
    await cleanup.run();
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
