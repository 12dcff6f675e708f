/**
 * The load generator process (forked by LoadGenerator): runs one job at a time with autocannon and
 * answers with what it measured. Latencies are recorded here per response rather than taken from
 * autocannon's summary, so that the cycles of a revocation job add up into one distribution.
 */
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import type {
  FixedJob,
  GeneratorMessage,
  JobMessage,
  LoadStats,
  MixedJob,
  RequestSpec,
  RevocationJob,
} from './load-protocol.js';

/** Starts autocannon; the instance (for its events) and its end. */
function start(options: autocannon.Options): { instance: autocannon.Instance; done: Promise<autocannon.Result> } {
  let instance!: autocannon.Instance;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({ ...options, pipelining: 1, sampleInt: 100 }, (error, result) => (error ? reject(error as Error) : resolve(result)));
  });
  return { instance, done };
}

/** What a connection of a mixed job keeps between the steps of one cycle. */
interface MixedContext {
  token?: string;
}

/** Accumulates responses over one or more autocannon runs. */
class Recorder {
  latencies: number[] = [];
  errors = 0;
  seconds = 0;
  statusCodes: Record<string, number> = {};

  /** Runs autocannon with `options`, timing from its start to its last response. */
  async measure(options: autocannon.Options): Promise<void> {
    const started = performance.now();
    let last = started;
    const { instance, done } = start(options);
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      last = performance.now();
      this.latencies.push(responseTime);
      this.statusCodes[statusCode] = (this.statusCodes[statusCode] ?? 0) + 1;
      if (statusCode < 200 || statusCode > 299) this.errors++;
    });
    instance.on('reqError', () => this.errors++);
    await done;
    this.seconds += (last - started) / 1000;
  }

  stats(): LoadStats {
    const sorted = Float64Array.from(this.latencies).sort();
    const percentile = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : 0);
    return {
      requests: sorted.length,
      seconds: this.seconds,
      rps: this.seconds > 0 ? sorted.length / this.seconds : 0,
      p50: percentile(50),
      p99: percentile(99),
      errors: this.errors,
      statusCodes: this.statusCodes,
    };
  }
}

const toAutocannon = (request: RequestSpec) => ({
  method: request.method,
  path: request.path,
  headers: { ...request.headers },
  ...(request.body !== undefined ? { body: request.body } : {}),
});

async function runFixed(job: FixedJob): Promise<LoadStats> {
  const recorder = new Recorder();
  await recorder.measure({ url: job.url, connections: job.connections, duration: job.seconds, requests: [toAutocannon(job.request)] });
  return recorder.stats();
}

/** Issues `count` tokens; failures count as errors of the job. */
async function issueTokens(job: RevocationJob, issue: RequestSpec, count: number, errors: { count: number }): Promise<string[]> {
  const tokens: string[] = [];
  const { instance, done } = start({
    url: job.url,
    connections: job.connections,
    amount: count,
    requests: [
      {
        ...toAutocannon(issue),
        onResponse: (status: number, body: string) => {
          if (status === 200) tokens.push((JSON.parse(body) as { access_token: string }).access_token);
          else errors.count++;
        },
      },
    ],
  });
  instance.on('reqError', () => errors.count++);
  await done;
  return tokens;
}

async function runRevocation(job: RevocationJob, id: number): Promise<LoadStats> {
  const recorder = new Recorder();
  const issueErrors = { count: 0 };
  while (recorder.seconds < job.seconds) {
    const tokens = job.issue
      ? await issueTokens(job, job.issue, job.batch, issueErrors)
      : Array.from({ length: job.batch }, () => randomBytes(32).toString('base64url'));
    if (tokens.length < job.connections) throw new Error(`only ${tokens.length} of ${job.batch} tokens were issued`);
    let next = 0;
    // The orchestrator counts the servers' CPU time between these two messages only.
    send({ id, timed: true });
    await recorder.measure({
      url: job.url,
      connections: job.connections,
      amount: tokens.length,
      requests: [
        {
          ...toAutocannon(job.revoke),
          setupRequest: (request) => {
            // autocannon may send a request or two past `amount` as it stops; those revoke again.
            request.body = job.revoke.body + encodeURIComponent(tokens[next++ % tokens.length]);
            return request;
          },
        },
      ],
    });
    send({ id, timed: false });
  }
  recorder.errors += issueErrors.count;
  return recorder.stats();
}

async function runMixed(job: MixedJob, id: number): Promise<LoadStats> {
  const recorder = new Recorder();
  let seen = { requests: 0, errors: 0 };
  const ticker = setInterval(() => {
    const now = { requests: recorder.latencies.length, errors: recorder.errors };
    send({ id, tick: { requests: now.requests - seen.requests, errors: now.errors - seen.errors } });
    seen = now;
  }, 1000);
  try {
    await recorder.measure({
      url: job.url,
      connections: job.connections,
      duration: job.seconds,
      requests: job.steps.map((step) => ({
        ...toAutocannon(step.request),
        ...(step.captureToken
          ? {
              onResponse: (status: number, body: string, context: object) => {
                if (status === 200) (context as MixedContext).token = (JSON.parse(body) as { access_token: string }).access_token;
              },
            }
          : {}),
        ...(step.appendToken
          ? {
              setupRequest: (request: autocannon.Request, context: object) => {
                const { token } = context as MixedContext;
                // Without a token (its issuance failed) the cycle starts over: autocannon restarts on a falsy return.
                if (token === undefined) return undefined as unknown as autocannon.Request;
                request.body = (step.request.body ?? '') + encodeURIComponent(token);
                return request;
              },
            }
          : {}),
      })),
    });
  } finally {
    clearInterval(ticker);
  }
  return recorder.stats();
}

function send(message: GeneratorMessage): void {
  process.send!(message);
}

process.on('message', (message: JobMessage) => {
  const { id, job } = message;
  const run = job.kind === 'fixed' ? runFixed(job) : job.kind === 'revocation' ? runRevocation(job, id) : runMixed(job, id);
  run.then(
    (stats) => send({ id, stats }),
    (error: unknown) => send({ id, error: error instanceof Error ? error.message : String(error) }),
  );
});
