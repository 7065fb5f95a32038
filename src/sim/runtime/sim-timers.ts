/**
 * Virtual time for one simulated process of the node runtime: `Timers` backed by the
 * simulator's Scheduler, and the monotonic and wall clocks read from it. A crashed process's
 * timers are killed all at once, so nothing of a dead incarnation ever runs again.
 */
import type { Scheduler, ScheduledEvent } from "../scheduler.js";
import type { TimerHandle, Timers } from "../../transport/timers.js";

/** Virtual time 0 on the wall clock: any fixed instant works, HLC revisions only need it positive. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

export class SimTimers implements Timers {
  private readonly pending = new Set<ScheduledEvent>();
  private killed = false;

  constructor(private readonly scheduler: Scheduler) {}

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    if (this.killed) return { cancel: () => undefined };
    const event = this.scheduler.after(Math.max(0, delayMs), () => {
      this.pending.delete(event);
      callback();
    });
    this.pending.add(event);
    return {
      cancel: () => {
        event.cancel();
        this.pending.delete(event);
      },
    };
  }

  /** The process died: cancel every pending timer and ignore any set later. */
  kill(): void {
    this.killed = true;
    for (const event of this.pending) event.cancel();
    this.pending.clear();
  }
}

/** Milliseconds of virtual time: never goes backwards. */
export function simMonotonicClock(scheduler: Scheduler): () => number {
  return () => scheduler.now;
}

/** Milliseconds since the epoch, on virtual time. */
export function simWallClock(scheduler: Scheduler): () => number {
  return () => SIM_EPOCH_MS + scheduler.now;
}
