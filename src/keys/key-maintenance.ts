/**
 * Runs the periodic key work (scheduled rotation, removal of expired keys) on every instance; the
 * signing-key lock makes sure only one of them does it at a time.
 */
import type { Logger } from '../observability/logger.js';
import { maintainSigningKeys, observeSigningKeys, type KeyChangeContext } from './key-lifecycle.js';

/** How often each instance looks for due rotations and expired keys. */
export const KEY_MAINTENANCE_INTERVAL_MS = 60_000;

/** The periodic key work of one instance: a pass at start, then one every interval. */
export class KeyMaintenance {
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | undefined;

  constructor(
    private readonly change: KeyChangeContext,
    private readonly logger: Logger,
  ) {}

  /** Starts the passes (the first one at once, without waiting for it). */
  start(): void {
    this.#runPass();
    this.#timer = setInterval(() => this.#runPass(), KEY_MAINTENANCE_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Stops the passes; resolves when a pass under way has finished. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#pass;
  }

  #runPass(): void {
    // A slow pass is not overlapped by the next one: that one is skipped.
    this.#pass ??= maintainSigningKeys(this.change)
      .then((outcome) => {
        if (outcome && outcome.rotated + outcome.removed > 0) this.logger.info(outcome, 'signing keys maintained');
      })
      // Every instance reports the keys it sees, whether or not it held the lock for this pass.
      .then(() => observeSigningKeys(this.change.db, this.change.policy))
      .catch((error: unknown) => this.logger.error({ err: error }, 'signing key maintenance failed'))
      .finally(() => {
        this.#pass = undefined;
      });
  }
}
