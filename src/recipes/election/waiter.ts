/**
 * Waiting on a subspace through watches, bounded by the runtime's timers and by abort
 * signals: `waitForChange` (a campaign's "something changed after the revision I decided on,
 * or it is time to look again"), and `follow` (a holder's stream of events, resumed from the
 * last revision seen when a watch breaks).
 */
import type { KvEvent } from "../../kv/results.js";
import type { WatchResponse } from "../../kv/watch.js";
import { sleep, type RecipeClient, type RecipeRuntime, type RecipeWatch } from "../client.js";

/** Pause after a watch failed before the caller looks again, so a broken client is not spun on. */
const WATCH_FAILURE_PAUSE_MS = 50;
/** Consecutive watch failures `follow` tolerates before giving up. */
const MAX_WATCH_FAILURES = 20;

function firstAborted(signals: readonly (AbortSignal | undefined)[]): boolean {
  return signals.some((signal) => signal?.aborted === true);
}

/** Resolves when any signal aborts; the returned function removes the listeners. */
function onAnyAbort(signals: readonly (AbortSignal | undefined)[], callback: () => void): () => void {
  const live = signals.filter((signal): signal is AbortSignal => signal !== undefined);
  for (const signal of live) signal.addEventListener("abort", callback, { once: true });
  return () => live.forEach((signal) => signal.removeEventListener("abort", callback));
}

export class WatchWaiter {
  constructor(
    private readonly client: RecipeClient,
    private readonly prefix: Uint8Array,
    private readonly runtime: RecipeRuntime,
  ) {}

  /**
   * Resolves once a change after `revision` is seen under the prefix, after `timeoutMs`, or
   * when a signal aborts, whichever comes first. Never rejects: the caller re-reads anyway.
   */
  async waitForChange(
    revision: bigint,
    timeoutMs: number,
    signals: readonly (AbortSignal | undefined)[],
  ): Promise<void> {
    if (firstAborted(signals)) return;
    let watch: RecipeWatch;
    try {
      watch = await this.client.watch(this.prefix, { prefix: true, startRevision: revision + 1n });
    } catch {
      await sleep(this.runtime, WATCH_FAILURE_PAUSE_MS);
      return;
    }
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const timer = this.runtime.setTimeout(wake, timeoutMs);
    const removeListeners = onAnyAbort(signals, wake);
    const changed = (async () => {
      for await (const response of watch) {
        if (response.events.length > 0 || response.canceled) return;
      }
    })().catch(() => sleep(this.runtime, WATCH_FAILURE_PAUSE_MS));
    try {
      await Promise.race([woken, changed]);
    } finally {
      timer.cancel();
      removeListeners();
      await watch.cancel();
    }
  }

  /**
   * Calls `onEvent` for every event under the prefix from `fromRevision` on, in revision
   * order, until it returns false or `stop` aborts. A broken watch is reopened after the last
   * revision delivered; a cancelled one (compaction) or too many failures in a row end it.
   */
  async follow(fromRevision: bigint, stop: AbortSignal, onEvent: (event: KvEvent) => boolean): Promise<void> {
    let next = fromRevision;
    let failures = 0;
    while (!stop.aborted) {
      let watch: RecipeWatch;
      try {
        watch = await this.client.watch(this.prefix, { prefix: true, startRevision: next });
      } catch (error) {
        if (++failures > MAX_WATCH_FAILURES) throw error;
        await sleep(this.runtime, WATCH_FAILURE_PAUSE_MS);
        continue;
      }
      const cancel = (): void => void watch.cancel();
      stop.addEventListener("abort", cancel, { once: true });
      try {
        for await (const response of watch as AsyncIterable<WatchResponse>) {
          failures = 0;
          for (const event of response.events) if (!onEvent(event)) return;
          if (response.canceled) throw new Error(`watch cancelled: ${response.cancelReason}`);
          next = response.revision + 1n;
        }
        if (stop.aborted) return;
      } catch (error) {
        if (stop.aborted) return;
        if (++failures > MAX_WATCH_FAILURES) throw error;
        await sleep(this.runtime, WATCH_FAILURE_PAUSE_MS);
      } finally {
        stop.removeEventListener("abort", cancel);
        await watch.cancel();
      }
    }
  }
}
