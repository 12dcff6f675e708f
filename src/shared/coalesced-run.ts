/**
 * A background task that must see every change announced to it, run one at a time: the registries'
 * reloads (resource servers, groups and entitlements) and the relay of the revocation event outbox.
 * A change announced while a run is reading may have committed after that run read its rows, so a
 * request during a run makes the task run once more as soon as it ends, instead of waiting for the
 * next timer (or never, when nothing changes again). Requests during one run fold into one more run.
 */
export class CoalescedRun {
  #running: Promise<void> | undefined;
  #requestedWhileRunning = false;
  #stopped = false;

  /**
   * @param task the work; a rejection is handed to `onError` (a registry keeps serving what it holds).
   */
  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Starts a run, or asks for one more after the run under way. Never rejects. */
  request(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#requestedWhileRunning = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#requestedWhileRunning = false;
        await this.task().catch(this.onError);
      } while (this.#requestedWhileRunning && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
  }

  /**
   * Resolves when the runs under way (and the ones they owe) have finished. With none under way
   * (nearly always) it answers `undefined` at once, so that awaiting it on a hot path costs no promise.
   */
  settled(): Promise<void> | undefined {
    return this.#running;
  }

  /** Takes no more requests and owes no more runs; resolves when the run under way has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }
}
