/**
 * The registries' reload loop (CoalescedRun): a change announced while a reload is reading must be read by one more
 * reload (the race that left a second instance on an old introspection secret), and many
 * announcements during one reload cost one more reload, not one each.
 */
import { describe, expect, it } from '@jest/globals';
import { CoalescedRun } from '../../src/shared/coalesced-run.js';

/** A stored value, and a reload that reads it only once the test lets it go on (a slow query). */
function slowRegistry() {
  let stored = 'old';
  let held = 'none';
  let reads = 0;
  const gates: Array<() => void> = [];
  const reload = new CoalescedRun(
    async () => {
      reads++;
      const seen = stored;
      await new Promise<void>((resolve) => gates.push(resolve));
      held = seen;
    },
    () => undefined,
  );
  return {
    reload,
    write: (value: string) => (stored = value),
    held: () => held,
    reads: () => reads,
    letOneReloadFinish: async () => {
      while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
      gates.shift()!();
    },
  };
}

describe("CoalescedRun (the registries' reloads, the outbox relay)", () => {
  it('reads again a change announced while a reload was reading, and ends holding it', async () => {
    const registry = slowRegistry();
    registry.reload.request();
    // The change commits after the running reload read its rows, then is announced.
    registry.write('new');
    registry.reload.request();
    await registry.letOneReloadFinish();
    await registry.letOneReloadFinish();
    await registry.reload.settled();
    expect(registry.held()).toBe('new');
    expect(registry.reads()).toBe(2);
    expect(registry.reload.settled()).toBeUndefined();
  });

  it('folds announcements made during one reload into a single further reload', async () => {
    const registry = slowRegistry();
    registry.reload.request();
    for (let i = 0; i < 5; i++) registry.reload.request();
    await registry.letOneReloadFinish();
    await registry.letOneReloadFinish();
    await registry.reload.settled();
    expect(registry.reads()).toBe(2);
  });

  it('owes no run after stop: a request during the last run is dropped, later ones too', async () => {
    const registry = slowRegistry();
    registry.reload.request();
    registry.reload.request();
    const stopped = registry.reload.stop();
    await registry.letOneReloadFinish();
    await stopped;
    registry.reload.request();
    expect(registry.reads()).toBe(1);
    expect(registry.reload.settled()).toBeUndefined();
  });

  it('keeps serving after a failed reload and hands the error over', async () => {
    const errors: unknown[] = [];
    const reload = new CoalescedRun(
      () => Promise.reject(new Error('PostgreSQL away')),
      (error) => errors.push(error),
    );
    reload.request();
    await reload.settled();
    expect(errors).toEqual([new Error('PostgreSQL away')]);
    expect(reload.settled()).toBeUndefined();
  });
});
