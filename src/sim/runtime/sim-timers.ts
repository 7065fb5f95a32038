/**
 * Virtual time for one simulated process of the node runtime: `Timers` backed by the
 * simulator's Scheduler, the monotonic and wall clocks read from it, and the process's
 * freezes. A crashed process's timers are killed all at once, so nothing of a dead
 * incarnation ever runs again.
 *
 * `freeze(ms)` is SIGSTOP (a VM pause, a long GC stop): nothing of the process runs until it
 * thaws. Every input of the process goes through `deliver` — its timers, and (wired by the
 * node) its network deliveries, its disk completions and its clients' requests, each from a
 * named source — so whatever comes due while it is frozen is held, while the clocks go on.
 * At the thaw the held inputs run as Node's event loop would take them: the timers first (its
 * timers phase; one that fell due during the freeze fires once, late), then the I/O, each
 * source's inputs in their order (a TCP stream, a file) but the sources interleaved at random,
 * as one poll hands over every ready socket at once: a process does not see which of two
 * messages arrived first while it was stopped.
 */
import type { SeededRandom } from "../random.js";
import type { Scheduler, ScheduledEvent } from "../scheduler.js";
import type { TimerHandle, Timers } from "../../transport/timers.js";

/** Virtual time 0 on the wall clock: any fixed instant works, HLC revisions only need it positive. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

export class SimTimers implements Timers {
  private readonly pending = new Set<ScheduledEvent>();
  /** Inputs that came due while frozen, in the order they came due; source null: a timer. */
  private held: { readonly source: string | null; readonly run: () => void }[] = [];
  private thawEvent: ScheduledEvent | null = null;
  private killed = false;

  /** `random`: how a thaw interleaves the held inputs of different sources. */
  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: SeededRandom,
  ) {}

  get frozen(): boolean {
    return this.thawEvent !== null;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    if (this.killed) return { cancel: () => undefined };
    let cancelled = false;
    const event = this.scheduler.after(Math.max(0, delayMs), () => {
      this.pending.delete(event);
      this.deliver(() => {
        if (!cancelled) callback();
      }, null);
    });
    this.pending.add(event);
    return {
      cancel: () => {
        cancelled = true;
        event.cancel();
        this.pending.delete(event);
      },
    };
  }

  /**
   * Runs `run`, an input from `source` (null: a timer), in this process: now, at the thaw when
   * frozen, never once killed.
   */
  deliver(run: () => void, source: string | null): void {
    if (this.killed) return;
    if (this.frozen) this.held.push({ source, run });
    else run();
  }

  /** `call` made in this process by `source`: now, or at the thaw; never settles once it is killed. */
  within<T>(call: () => Promise<T>, source: string): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.deliver(() => {
        call().then(resolve, reject);
      }, source),
    );
  }

  /** SIGSTOP for `ms` of virtual time, then SIGCONT (a freeze while frozen extends it to the later end). */
  freeze(ms: number): void {
    if (this.killed) return;
    const until = this.scheduler.now + ms;
    if (this.thawEvent !== null && this.thawEvent.time >= until) return;
    this.thawEvent?.cancel();
    this.thawEvent = this.scheduler.at(until, () => this.thaw());
  }

  /** SIGCONT now: what came due meanwhile runs, timers first, then the sources' I/O interleaved. */
  thaw(): void {
    this.thawEvent?.cancel();
    this.thawEvent = null;
    const held = this.held;
    this.held = [];
    const bySource = new Map<string, (() => void)[]>();
    for (const { source, run } of held) {
      if (source === null) this.deliver(run, null);
      else if (bySource.has(source)) bySource.get(source)!.push(run);
      else bySource.set(source, [run]);
    }
    const queues = [...bySource.values()];
    while (queues.length > 0) {
      const at = this.random.nextInt(queues.length);
      const queue = queues[at]!;
      this.deliver(queue.shift()!, "thawed");
      if (queue.length === 0) queues.splice(at, 1);
    }
  }

  /** The process died: cancel every pending timer, drop what it held, ignore anything later. */
  kill(): void {
    this.killed = true;
    this.thawEvent?.cancel();
    this.thawEvent = null;
    this.held = [];
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
