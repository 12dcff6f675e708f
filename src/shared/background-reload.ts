/**
 * The reload loop of the in-process registries (resource servers, groups and entitlements): a
 * change published while a reload runs may have committed after that reload read its rows, so it
 * is read again as soon as the running reload ends, instead of waiting for the TTL (or never, when
 * nothing changes again). Requests that arrive during a reload fold into one more reload.
 */
export class BackgroundReload {
  #running: Promise<void> | undefined;
  #requestedWhileRunning = false;

  /**
   * @param reload reads the registry again; a rejection is handed to `onError` and the registry
   *   keeps serving what it holds.
   */
  constructor(
    private readonly reload: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Starts a reload, or asks for one more after the reload under way. Never rejects. */
  request(): void {
    if (this.#running) {
      this.#requestedWhileRunning = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#requestedWhileRunning = false;
        await this.reload().catch(this.onError);
      } while (this.#requestedWhileRunning);
    })().finally(() => {
      this.#running = undefined;
    });
  }

  /**
   * Resolves when the reloads under way (and the ones they owe) have finished. With none under way
   * (nearly always) it answers `undefined` at once, so that awaiting it on a hot path costs no promise.
   */
  settled(): Promise<void> | undefined {
    return this.#running;
  }
}
