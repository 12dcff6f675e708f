/**
 * The soak: a mixed load held on the project for a long time, with its resident memory sampled every
 * second. A leak shows as growth between the start (after a warm-up) and the end.
 */
import { formPost, tokenRequest, type Endpoints } from './http.js';
import type { LoadGenerator, LoadStats, MixedJob } from './load-protocol.js';
import { ProcessSampler, type ServerProcess } from './processes.js';
import { PROJECT_SCOPE, type ProjectFixtures } from './project-server.js';

const MIB = 1024 * 1024;

/** One reporting interval of the soak. */
export interface SoakInterval {
  /** Seconds since the start, at the end of the interval. */
  readonly at: number;
  readonly rssMiB: number;
  readonly rps: number;
  readonly errors: number;
}

/** What a soak found. */
export interface SoakResult {
  readonly seconds: number;
  readonly intervals: readonly SoakInterval[];
  readonly stats: LoadStats;
  /** Mean resident memory over the tenth after the warm-up tenth, and over the last tenth. */
  readonly baselineMiB: number;
  readonly finalMiB: number;
  readonly peakMiB: number;
  /** finalMiB / baselineMiB - 1. */
  readonly growth: number;
}

/**
 * Each connection, over and over: an opaque token for the external client, its introspection by the
 * resource server, its revocation by the client, then a JWT for the internal client and the JWKS.
 * Every opaque token is revoked, so the store holds steady and only the server could grow.
 */
function mixedJob(server: ServerProcess, ep: Endpoints, f: ProjectFixtures, connections: number, seconds: number): MixedJob {
  return {
    kind: 'mixed',
    url: server.baseUrl,
    connections,
    seconds,
    steps: [
      { request: tokenRequest(ep.token, f.externalClient, PROJECT_SCOPE), captureToken: true },
      { request: formPost(ep.introspection, f.resourceServer, 'token='), appendToken: true },
      { request: formPost(ep.revocation, f.externalClient, 'token='), appendToken: true },
      { request: tokenRequest(ep.token, f.rs256Client, PROJECT_SCOPE) },
      { request: { method: 'GET', path: ep.jwks, headers: {} } },
    ],
  };
}

/** Holds the mixed load for `seconds`, reporting every `reportEvery` seconds through `onInterval`. */
export async function soak(options: {
  generator: LoadGenerator;
  server: ServerProcess;
  endpoints: Endpoints;
  fixtures: ProjectFixtures;
  connections: number;
  seconds: number;
  reportEvery: number;
  onInterval: (interval: SoakInterval) => void;
}): Promise<SoakResult> {
  const started = performance.now();
  const samples: { at: number; rss: number }[] = [];
  const sampler = new ProcessSampler(
    () => options.server.servingPids(),
    1000,
    (sample) => samples.push({ at: (performance.now() - started) / 1000, rss: Math.max(0, ...sample.values()) }),
  );
  const intervals: SoakInterval[] = [];
  let pending = { requests: 0, errors: 0, ticks: 0 };
  const stats = await options.generator.run(mixedJob(options.server, options.endpoints, options.fixtures, options.connections, options.seconds), (tick) => {
    pending = { requests: pending.requests + tick.requests, errors: pending.errors + tick.errors, ticks: pending.ticks + 1 };
    if (pending.ticks < options.reportEvery) return;
    const interval = {
      at: Math.round((performance.now() - started) / 1000),
      rssMiB: (samples.at(-1)?.rss ?? 0) / MIB,
      rps: pending.requests / pending.ticks,
      errors: pending.errors,
    };
    intervals.push(interval);
    options.onInterval(interval);
    pending = { requests: 0, errors: 0, ticks: 0 };
  });
  const { peakRss } = sampler.stop();

  const tenth = options.seconds / 10;
  const meanOver = (from: number, to: number) => {
    const inRange = samples.filter((s) => s.at >= from && s.at < to);
    return inRange.reduce((sum, s) => sum + s.rss, 0) / Math.max(1, inRange.length) / MIB;
  };
  const baselineMiB = meanOver(tenth, 2 * tenth);
  const finalMiB = meanOver(options.seconds - tenth, Infinity);
  return {
    seconds: options.seconds,
    intervals,
    stats,
    baselineMiB,
    finalMiB,
    peakMiB: Math.max(0, ...peakRss.values()) / MIB,
    growth: baselineMiB > 0 ? finalMiB / baselineMiB - 1 : 0,
  };
}
