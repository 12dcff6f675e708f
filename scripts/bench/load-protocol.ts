/**
 * What the orchestrator asks of the load generator and what it answers. The generator runs in a child
 * process of its own so that firing requests never shares an event loop with the orchestrator's
 * bookkeeping (memory sampling, starting servers); jobs and answers cross as IPC messages, so they are
 * plain data.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** One HTTP request, as autocannon sends it. */
export interface RequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

interface JobBase {
  /** Origin of the server, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** Concurrent keep-alive connections, one request in flight on each (no pipelining). */
  readonly connections: number;
  /** How long to measure, in seconds. */
  readonly seconds: number;
}

/** The same request, over and over, for a fixed time. */
export interface FixedJob extends JobBase {
  readonly kind: 'fixed';
  readonly request: RequestSpec;
}

/**
 * Revocation, where every request must revoke a distinct live token: cycles of issuing `batch` tokens
 * (not timed) then revoking them all (timed) until `seconds` of revoking have passed. Batches rather
 * than one pool, because a stock oidc-provider's in-memory adapter keeps only its last 1,000 to 2,000
 * entries: a larger pool would be revoking forgotten tokens, a cheaper path.
 */
export interface RevocationJob extends JobBase {
  readonly kind: 'revocation';
  readonly batch: number;
  /** The token request; `undefined` revokes random strings (the floor, which keeps no tokens). */
  readonly issue: RequestSpec | undefined;
  /** The revocation request; each token is appended, URL-encoded, to its body. */
  readonly revoke: RequestSpec;
}

/** A step of a mixed load. */
export interface MixedStep {
  readonly request: RequestSpec;
  /** Keep the `access_token` of the answer for the following steps of this connection's cycle. */
  readonly captureToken?: boolean;
  /** Append the kept token, URL-encoded, to the body. */
  readonly appendToken?: boolean;
}

/** Each connection cycles through `steps` for a fixed time (the soak). Reports a tick every second. */
export interface MixedJob extends JobBase {
  readonly kind: 'mixed';
  readonly steps: readonly MixedStep[];
}

/** A job for the load generator. */
export type LoadJob = FixedJob | RevocationJob | MixedJob;

/** What a job measured. Latencies in milliseconds. */
export interface LoadStats {
  /** Responses received in the timed part. */
  readonly requests: number;
  /** Seconds from the first request sent to the last response received (timed parts only). */
  readonly seconds: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Non-2xx responses, connection errors and timeouts, in the timed and the untimed parts. */
  readonly errors: number;
  readonly statusCodes: Readonly<Record<string, number>>;
}

/** One second of a mixed job. */
export interface LoadTick {
  readonly requests: number;
  readonly errors: number;
}

/** Messages from the orchestrator. */
export interface JobMessage {
  readonly id: number;
  readonly job: LoadJob;
}

/** Messages from the generator. */
export type GeneratorMessage =
  | { readonly id: number; readonly stats: LoadStats }
  | { readonly id: number; readonly error: string }
  | { readonly id: number; readonly tick: LoadTick }
  /** A revocation job entering (true) or leaving (false) a timed part. */
  | { readonly id: number; readonly timed: boolean };

/** The orchestrator's handle on the load generator process. One job at a time. */
export class LoadGenerator {
  readonly #child: ChildProcess;
  #nextId = 1;

  constructor() {
    const entry = fileURLToPath(new URL('./load-generator.js', import.meta.url));
    this.#child = fork(entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  /**
   * Runs `job`; `onTick` sees each second of a mixed job, `onTimed` each start (true) and end (false)
   * of a timed part of a revocation job.
   */
  run(job: LoadJob, onTick?: (tick: LoadTick) => void, onTimed?: (timed: boolean) => void): Promise<LoadStats> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the load generator exited with ${code}`));
      const onMessage = (message: GeneratorMessage) => {
        if (message.id !== id) return;
        if ('tick' in message) {
          onTick?.(message.tick);
          return;
        }
        if ('timed' in message) {
          onTimed?.(message.timed);
          return;
        }
        this.#child.off('message', onMessage);
        this.#child.off('exit', onExit);
        if ('stats' in message) resolve(message.stats);
        else reject(new Error(`load generator: ${message.error}`));
      };
      this.#child.on('message', onMessage);
      this.#child.once('exit', onExit);
      this.#child.send({ id, job } satisfies JobMessage);
    });
  }

  /** Ends the generator process. */
  close(): void {
    this.#child.disconnect();
  }
}
