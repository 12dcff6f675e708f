/**
 * The revocation event channel: SETs fetched by polling the issuer (RFC 8936, the default: a long poll
 * that returns as soon as an event is written) or pushed by it (RFC 8935), verified and applied. A
 * poll reads by position by default (the issuer's `cursor` extension): nothing is acknowledged, so
 * every instance of an API, all polling with the same credentials, applies every event; on start it
 * reads from the oldest event the issuer retains. It also knows whether it is working: while it has
 * been down for longer than a bound, the kit stops trusting what it cached (see `isStale`).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { AccessDenied } from '../errors.js';
import { report, type KitHooks, type SecurityEventReceived } from '../hooks.js';
import type { RevocationFacts } from '../revocation-list.js';
import { SetRejected, type SecurityEventVerifier, type SetErrorCode } from './security-event.js';

/** How the kit receives revocation events. */
export interface EventChannelOptions {
  /**
   * `poll` (default): the kit polls the issuer's poll endpoint; `push`: the issuer pushes to a
   * receiver the application mounts (`pushReceiver` of each framework adapter); `off`: no events
   * (a revocation then reaches the kit only when a cached answer expires, and JWTs at their expiry).
   */
  readonly mode?: 'poll' | 'push' | 'off';
  /** Push: the bearer token registered with the issuer for this receiver. */
  readonly pushToken?: string;
  /** How long the channel may be down before the kit stops trusting its caches. Default 30 s. */
  readonly staleAfterMs?: number;
  /**
   * Poll: `false` (default) reads by position (the issuer's `cursor` extension) and acknowledges
   * nothing, so every instance of the API sees every event. `true` acknowledges what was applied
   * (plain RFC 8936): each event then goes to whichever instance polls first, so run a single
   * poller per API (and no reading instance beside it: an acknowledged event is gone for all).
   */
  readonly acknowledge?: boolean;
  /** Poll: wait this long between polls that return at once, instead of long polling. Default: long poll. */
  readonly pollIntervalMs?: number;
  /** Poll: how long one long poll may take before it counts as failed. Default 45 s (the issuer holds it up to ~30 s). */
  readonly longPollTimeoutMs?: number;
  /** Push: how often the issuer's reachability is checked (it has no other heartbeat). Default 10 s. */
  readonly probeIntervalMs?: number;
}

/** What the channel needs from the kit. */
export interface EventChannelDependencies {
  readonly verifier: SecurityEventVerifier;
  readonly apply: (facts: readonly RevocationFacts[]) => void;
  /** RFC 8936 poll endpoint (from the SSF configuration). */
  readonly pollEndpoint: string | undefined;
  /** The SSF configuration URL, probed in push mode. */
  readonly configurationUrl: string;
  /** HTTP Basic value for the resource server's credentials. */
  readonly basicAuthorization: string;
  readonly hooks?: KitHooks | undefined;
}

/** A push request as the framework adapters hand it over. */
export interface PushedRequest {
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly body: string;
}

/** The answer to a push: 202, or 400 with an RFC 8935 error. */
export interface PushAnswer {
  readonly status: number;
  readonly body?: { err: SetErrorCode | 'temporarily_unavailable'; description: string };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Polls or receives, verifies, applies and acknowledges SETs; tracks whether it works. */
export class EventChannel {
  readonly mode: 'poll' | 'push' | 'off';
  private readonly staleAfterMs: number;
  private readonly stopping = new AbortController();
  private failingSince: number | undefined = Date.now();
  private reportedState: 'up' | 'down' | 'stale' | undefined;
  private loop: Promise<void> | undefined;
  private probe: ReturnType<typeof setInterval> | undefined;
  private readonly pushTokenDigest: Buffer | undefined;

  constructor(
    private readonly options: EventChannelOptions,
    private readonly deps: EventChannelDependencies,
  ) {
    this.mode = options.mode ?? 'poll';
    this.staleAfterMs = options.staleAfterMs ?? 30_000;
    if (this.mode === 'push' && !options.pushToken) throw new TypeError('events.pushToken is required in push mode');
    if (this.mode === 'poll' && !deps.pollEndpoint) throw new TypeError('the issuer announces no poll endpoint');
    this.pushTokenDigest = options.pushToken === undefined ? undefined : digest(options.pushToken);
  }

  /** Starts polling (poll mode) or probing the issuer (push mode). */
  start(): void {
    if (this.mode === 'poll') this.loop = this.pollLoop();
    if (this.mode === 'push') {
      const check = () => void this.probeIssuer();
      check();
      this.probe = setInterval(check, this.options.probeIntervalMs ?? 10_000);
      this.probe.unref();
    }
  }

  /** Stops the channel; pending acknowledgements are sent once more, briefly. */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.probe) clearInterval(this.probe);
    await this.loop;
  }

  /**
   * Whether the channel has been down (or never up) for longer than `staleAfterMs`: revocations may
   * then have been missed, and cached answers are not to be trusted. With events off, never (the
   * application chose to rely on the cache's lifetime alone).
   */
  isStale(now = Date.now()): boolean {
    if (this.mode === 'off') return false;
    const stale = this.failingSince !== undefined && now - this.failingSince > this.staleAfterMs;
    if (stale) this.setState('stale');
    return stale;
  }

  /** Receives a pushed SET (RFC 8935): checks the bearer token, verifies and applies it. */
  async receivePush(request: PushedRequest): Promise<PushAnswer> {
    const [scheme, token] = (request.authorization ?? '').split(' ');
    const presented = scheme?.toLowerCase() === 'bearer' && token ? digest(token) : undefined;
    if (!this.pushTokenDigest || !presented || !timingSafeEqual(presented, this.pushTokenDigest)) {
      return { status: 400, body: { err: 'authentication_failed', description: 'the push is not authorized' } };
    }
    if (!/^application\/secevent\+jwt\s*(;|$)/i.test(request.contentType ?? '')) {
      return { status: 400, body: { err: 'invalid_request', description: 'the content type must be application/secevent+jwt' } };
    }
    try {
      await this.deliver(request.body.trim(), 'push');
      this.markUp();
      return { status: 202 };
    } catch (error) {
      if (error instanceof SetRejected) return { status: 400, body: { err: error.err, description: error.message } };
      // The keys cannot be fetched now: a 5xx makes the transmitter try again later.
      return { status: 503, body: { err: 'temporarily_unavailable', description: 'the SET cannot be verified now' } };
    }
  }

  private async deliver(set: string, delivery: SecurityEventReceived['delivery']): Promise<void> {
    try {
      const event = await this.deps.verifier.verify(set);
      this.deps.apply(event.facts);
      report(this.deps.hooks?.onSecurityEvent, {
        delivery,
        outcome: 'applied',
        types: event.types,
        lagMs: event.iat === undefined ? undefined : Date.now() - event.iat * 1000,
      });
    } catch (error) {
      if (error instanceof SetRejected || !(error instanceof AccessDenied))
        report(this.deps.hooks?.onSecurityEvent, { delivery, outcome: 'rejected', types: [] });
      throw error;
    }
  }

  private async pollLoop(): Promise<void> {
    const acknowledging = this.options.acknowledge === true;
    // Read by position: from the oldest event retained (what a restarted instance may have missed), then on.
    let cursor = '';
    let ack: string[] = [];
    let setErrs: Record<string, { err: string; description: string }> = {};
    let backoffMs = 250;
    const longPoll = this.options.pollIntervalMs === undefined;
    while (!this.stopping.signal.aborted) {
      try {
        // The first poll, and the first after a failure, returns at once: it shows the channel works
        // (and catches up on the backlog) without waiting for an event.
        const returnImmediately = !longPoll || this.failingSince !== undefined;
        const answer = await this.poll(
          acknowledging ? { maxEvents: 100, returnImmediately, ack, setErrs } : { maxEvents: 100, returnImmediately, cursor },
          this.stopping.signal,
        );
        if (!acknowledging && typeof answer.cursor !== 'string') throw new Error('the issuer does not read by cursor: set events.acknowledge');
        ack = [];
        setErrs = {};
        this.markUp();
        let retryLater = false;
        for (const [jti, set] of Object.entries(answer.sets ?? {})) {
          try {
            await this.deliver(set, 'poll');
            ack.push(jti);
          } catch (error) {
            // A SET refused for good is reported (acknowledging) or passed over (by position).
            if (error instanceof SetRejected) setErrs[jti] = { err: error.err, description: error.message };
            // One that cannot be verified now (keys unavailable) is neither acknowledged nor passed: it comes again.
            else retryLater = true;
          }
        }
        if (!acknowledging) {
          ack = [];
          setErrs = {};
          if (retryLater) {
            // The same page is read again (applying an event twice changes nothing), after a pause.
            await this.pause(backoffMs);
            backoffMs = Math.min(backoffMs * 2, 10_000);
            continue;
          }
          cursor = answer.cursor!;
        }
        backoffMs = 250;
        if (!longPoll && !answer.moreAvailable && ack.length === 0) await this.pause(this.options.pollIntervalMs);
      } catch {
        if (this.stopping.signal.aborted) break;
        this.markDown();
        await this.pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 10_000);
      }
    }
    if (ack.length > 0 || Object.keys(setErrs).length > 0) {
      await this.poll({ maxEvents: 0, returnImmediately: true, ack, setErrs }, AbortSignal.timeout(2_000)).catch(() => undefined);
    }
  }

  private async poll(
    request: { maxEvents: number; returnImmediately: boolean } & ({ ack: string[]; setErrs: Record<string, unknown> } | { cursor: string }),
    signal: AbortSignal,
  ): Promise<{ sets?: Record<string, string>; moreAvailable?: boolean; cursor?: string }> {
    const body: Record<string, unknown> = { maxEvents: request.maxEvents, returnImmediately: request.returnImmediately };
    if ('cursor' in request) body.cursor = request.cursor;
    else {
      if (request.ack.length > 0) body.ack = request.ack;
      if (Object.keys(request.setErrs).length > 0) body.setErrs = request.setErrs;
    }
    const response = await fetch(this.deps.pollEndpoint!, {
      method: 'POST',
      headers: { authorization: this.deps.basicAuthorization, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.longPollTimeoutMs ?? 45_000)]),
    });
    if (!response.ok) {
      await response.arrayBuffer();
      throw new Error(`the poll endpoint answered ${response.status}`);
    }
    return (await response.json()) as { sets?: Record<string, string>; moreAvailable?: boolean; cursor?: string };
  }

  private async probeIssuer(): Promise<void> {
    try {
      const response = await fetch(this.deps.configurationUrl, { signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      if (response.ok) this.markUp();
      else this.markDown();
    } catch {
      this.markDown();
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopping.signal;
      const wake = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      signal.addEventListener('abort', wake);
    });
  }

  private markUp(): void {
    this.failingSince = undefined;
    this.setState('up');
  }

  private markDown(): void {
    this.failingSince ??= Date.now();
    if (!this.isStale()) this.setState('down');
  }

  private setState(state: 'up' | 'down' | 'stale'): void {
    if (this.reportedState === state) return;
    this.reportedState = state;
    report(this.deps.hooks?.onEventChannel, { state });
  }
}
