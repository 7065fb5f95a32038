/**
 * SplitLoop: the background driver of splits, run by whichever node leads the meta range.
 * Every `intervalMs` (injected timers) it runs one cycle, only while `isMetaLeader()` says so:
 * `coordinator.recover()` first (finish what a crashed or deposed leader left), then the
 * policy's plans for the catalog's routes, one split after another. Cycles never overlap: the
 * next one is armed when the previous ends. Both sides of every split it makes or finishes
 * start the policy's cooldown.
 */
import type { Timers, TimerHandle } from "../../transport/timers.js";
import type { Logger } from "../../transport/transport.js";
import type { SplitCoordinator, SplitResult } from "./coordinator.js";
import type { RangeCandidate, SplitPolicy } from "./policy.js";

export interface SplitLoopOptions {
  readonly coordinator: SplitCoordinator;
  readonly policy: SplitPolicy;
  readonly timers: Timers;
  /** Monotonic milliseconds (the policy's cooldown clock). */
  readonly clock: () => number;
  /** Whether this node leads the meta range now; cycles do nothing otherwise. */
  readonly isMetaLeader: () => boolean;
  /** Milliseconds between the end of one cycle and the start of the next (default 1,000). */
  readonly intervalMs?: number;
  readonly logger?: Logger;
}

export interface SplitLoopCounters {
  cycles: number;
  /** Cycles skipped because this node did not lead the meta range. */
  notLeader: number;
  /** Plans the policy made. */
  planned: number;
  /** Splits made or finished by this loop. */
  splits: number;
  /** Failed recoveries, failed splits and failed cycles (each logged). */
  failures: number;
}

/** What one cycle did. */
export interface SplitCycleReport {
  readonly ran: boolean;
  readonly recovered: readonly SplitResult[];
  readonly split: readonly SplitResult[];
  readonly failures: number;
}

const silentLogger: Logger = { warn: () => undefined, info: () => undefined };

export class SplitLoop {
  readonly counters: SplitLoopCounters = { cycles: 0, notLeader: 0, planned: 0, splits: 0, failures: 0 };
  private readonly intervalMs: number;
  private readonly logger: Logger;
  private timer: TimerHandle | null = null;
  private running: Promise<SplitCycleReport> | null = null;
  private started = false;
  private stopped = false;

  constructor(private readonly options: SplitLoopOptions) {
    this.intervalMs = options.intervalMs ?? 1_000;
    if (!Number.isSafeInteger(this.intervalMs) || this.intervalMs < 1) {
      throw new RangeError(`intervalMs must be a positive integer, got ${this.intervalMs}`);
    }
    this.logger = options.logger ?? silentLogger;
  }

  start(): void {
    if (this.started) throw new Error("the split loop was already started");
    this.started = true;
    this.arm();
  }

  /** Cancels the timer and waits for a running cycle to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    await this.running;
  }

  /** Runs one cycle now (or joins the one running). */
  runCycle(): Promise<SplitCycleReport> {
    this.running ??= this.cycle().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      void this.runCycle().then(() => this.arm());
    }, this.intervalMs);
  }

  private async cycle(): Promise<SplitCycleReport> {
    const { coordinator, policy, clock } = this.options;
    if (this.stopped || !this.options.isMetaLeader()) {
      this.counters.notLeader += 1;
      return { ran: false, recovered: [], split: [], failures: 0 };
    }
    this.counters.cycles += 1;
    const split: SplitResult[] = [];
    let failures = 0;
    const failed = (error: unknown, what: string, fields: object): void => {
      failures += 1;
      this.counters.failures += 1;
      this.logger.warn({ ...fields, error: String(error) }, what);
    };
    let recovered: readonly SplitResult[] = [];
    try {
      const report = await coordinator.recover();
      recovered = report.completed;
      for (const { routeId, error } of report.failed) failed(error, "split recovery failed", { routeId });
      for (const result of recovered) this.made(result);
      const snapshot = await coordinator.catalog.snapshot();
      const candidates: RangeCandidate[] = snapshot.routes.map((route) => ({
        rangeId: route.groupId,
        routeId: route.routeId,
        bounds: { start: route.start, end: route.end },
        state: route.state,
      }));
      const plans = policy.evaluate(clock(), candidates);
      this.counters.planned += plans.length;
      for (const plan of plans) {
        if (this.stopped || !this.options.isMetaLeader()) break;
        try {
          const result = await coordinator.split(plan.routeId, plan.splitKey, plan.reason);
          split.push(result);
          this.made(result);
        } catch (error) {
          failed(error, "planned split failed", { routeId: plan.routeId, reason: plan.reason });
        }
      }
    } catch (error) {
      failed(error, "split cycle failed", {});
    }
    return { ran: true, recovered, split, failures };
  }

  private made(result: SplitResult): void {
    this.counters.splits += 1;
    this.options.policy.recordSplit(this.options.clock(), result.left.groupId, result.right.groupId);
  }
}
