/**
 * Readiness: whether every backing store answers. Probes run at most once a second whoever asks
 * (Kubernetes on every pod, load balancers, people), and each outcome is reported as login_store_up.
 */
import { storeUp } from './metrics.js';

/** One store's check, and what `/readyz` says when it fails. */
export interface StoreProbe {
  readonly store: string;
  readonly failure: string;
  check(): Promise<unknown>;
}

/** How long one round of probes answers every readiness request. */
export const READINESS_CACHE_MS = 1_000;

/**
 * A readiness check over `probes`: resolves when all of them pass, else rejects with the failures.
 * A round started less than `cacheMs` ago answers instead of a new one.
 */
export function readinessCheck(probes: ReadonlyArray<StoreProbe>, cacheMs = READINESS_CACHE_MS): () => Promise<void> {
  let last: { startedAt: number; outcome: Promise<void> } | undefined;
  return () => {
    const now = performance.now();
    if (!last || now - last.startedAt >= cacheMs) {
      const outcome = probeAll(probes);
      // A round nobody awaits any more (cached, then replaced) must not be an unhandled rejection.
      outcome.catch(() => undefined);
      last = { startedAt: now, outcome };
    }
    return last.outcome;
  };
}

async function probeAll(probes: ReadonlyArray<StoreProbe>): Promise<void> {
  const outcomes = await Promise.allSettled(probes.map((probe) => probe.check()));
  const failures: string[] = [];
  outcomes.forEach((outcome, i) => {
    const probe = probes[i];
    storeUp.set({ store: probe.store }, outcome.status === 'fulfilled' ? 1 : 0);
    if (outcome.status === 'rejected') failures.push(probe.failure);
  });
  if (failures.length > 0) throw new Error(failures.join('; '));
}
