/**
 * SplitLoop: the background driver of splits and merges, run by whichever node leads the meta
 * range. Every `intervalMs` (injected timers) it runs one cycle, only while `isMetaLeader()`
 * says so: the split and merge coordinators' `recover()` first (finish what a crashed or
 * deposed leader left), then the policy's split plans for the catalog's routes, one after
 * another, then (with `autoMerge`) at most `mergesPerCycle` of its merge plans. Cycles never
 * overlap: the next one is armed when the previous ends. Both sides of every split it makes or
 * finishes, and the grown range of every merge, start the policy's cooldown.
 */
import type { Timers, TimerHandle } from "../../transport/timers.js";
import type { Logger } from "../../transport/transport.js";
import type { CatalogSnapshot } from "../catalog/catalog.js";
import type { SplitCoordinator, SplitResult } from "./coordinator.js";
import type { MergeCoordinator, MergeResult } from "./merge-coordinator.js";
import type { RangeCandidate, SplitPolicy } from "./policy.js";
import type { RecoveryPass } from "./route-edits.js";
import { positiveInteger } from "../option-checks.js";

export interface SplitLoopOptions {
  readonly coordinator: SplitCoordinator;
  readonly mergeCoordinator: MergeCoordinator;
  readonly policy: SplitPolicy;
  readonly timers: Timers;
  /** Monotonic milliseconds (the policy's cooldown clock). */
  readonly clock: () => number;
  /** Whether this node leads the meta range now; cycles do nothing otherwise. */
  readonly isMetaLeader: () => boolean;
  /** Milliseconds between the end of one cycle and the start of the next (default 1,000). */
  readonly intervalMs?: number;
  /** Merge cold, small neighbours on the policy's plans (default true); recovery runs regardless. */
  readonly autoMerge?: boolean;
  /** Merges per cycle (default 1: each image is one Raft entry of up to mergeMaxBytes). */
  readonly mergesPerCycle?: number;
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
  /** Merge plans the policy made (at most mergesPerCycle taken per cycle). */
  mergesPlanned: number;
  /** Merges made or finished by this loop. */
  merges: number;
  /** Failed recoveries, failed splits and failed cycles (each logged). */
  failures: number;
}

/** What one cycle did. */
export interface SplitCycleReport {
  readonly ran: boolean;
  readonly recovered: readonly SplitResult[];
  readonly split: readonly SplitResult[];
  readonly mergesRecovered: readonly MergeResult[];
  readonly merged: readonly MergeResult[];
  readonly failures: number;
}

const silentLogger: Logger = { warn: () => undefined, info: () => undefined };

export class SplitLoop {
  readonly counters: SplitLoopCounters = {
    cycles: 0,
    notLeader: 0,
    planned: 0,
    splits: 0,
    mergesPlanned: 0,
    merges: 0,
    failures: 0,
  };
  private readonly intervalMs: number;
  private readonly mergesPerCycle: number;
  private readonly logger: Logger;
  private timer: TimerHandle | null = null;
  private running: Promise<SplitCycleReport> | null = null;
  private started = false;
  private stopped = false;

  constructor(private readonly options: SplitLoopOptions) {
    this.intervalMs = positiveInteger("intervalMs", options.intervalMs ?? 1_000);
    this.mergesPerCycle = options.mergesPerCycle ?? 1;
    if (!Number.isSafeInteger(this.mergesPerCycle) || this.mergesPerCycle < 0) {
      throw new RangeError(`mergesPerCycle must be an integer >= 0, got ${this.mergesPerCycle}`);
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
    const { coordinator, mergeCoordinator, policy, clock } = this.options;
    const report = {
      ran: false,
      recovered: [] as SplitResult[],
      split: [] as SplitResult[],
      mergesRecovered: [] as MergeResult[],
      merged: [] as MergeResult[],
      failures: 0,
    };
    if (this.stopped || !this.options.isMetaLeader()) {
      this.counters.notLeader += 1;
      return report;
    }
    report.ran = true;
    this.counters.cycles += 1;
    const failed = (error: unknown, what: string, fields: object): void => {
      report.failures += 1;
      this.counters.failures += 1;
      this.logger.warn({ ...fields, error: String(error) }, what);
    };
    try {
      // One catalog read serves the whole cycle until something in it acts: each read is a
      // linearizable read of the meta range, which wakes it from quiescence. A step that
      // acts reads the catalog again itself, and its save is checked against the version.
      const read = (): Promise<CatalogSnapshot> => coordinator.catalog.snapshot();
      let snapshot = await read();
      // Splits first: a merge held up by its left neighbour's split goes on once that is done.
      const splits = await coordinator.recover(snapshot);
      for (const { routeId, error } of splits.failed) failed(error, "split recovery failed", { routeId });
      for (const result of splits.completed) this.madeSplit(result, report.recovered);
      if (actedOn(splits)) snapshot = await read();
      const merges = await mergeCoordinator.recover(snapshot);
      for (const { routeId, error } of merges.failed) failed(error, "merge recovery failed", { routeId });
      for (const result of merges.completed) this.madeMerge(result, report.mergesRecovered);
      if (actedOn(merges)) snapshot = await read();
      const plans = policy.evaluate(clock(), candidates(snapshot));
      this.counters.planned += plans.length;
      for (const plan of plans) {
        if (!this.leading()) break;
        try {
          this.madeSplit(await coordinator.split(plan.routeId, plan.splitKey, plan.reason), report.split);
        } catch (error) {
          failed(error, "planned split failed", { routeId: plan.routeId, reason: plan.reason });
        }
      }
      if (this.options.autoMerge === false || this.mergesPerCycle === 0 || !this.leading()) return report;
      if (plans.length > 0) snapshot = await read();
      const mergePlans = policy.mergeCandidates(clock(), candidates(snapshot));
      this.counters.mergesPlanned += mergePlans.length;
      for (const plan of mergePlans.slice(0, this.mergesPerCycle)) {
        if (!this.leading()) break;
        try {
          this.madeMerge(await mergeCoordinator.merge(plan.right.routeId, "cold"), report.merged);
        } catch (error) {
          failed(error, "planned merge failed", { routeId: plan.right.routeId });
        }
      }
    } catch (error) {
      failed(error, "split cycle failed", {});
    }
    return report;
  }

  private leading(): boolean {
    return !this.stopped && this.options.isMetaLeader();
  }

  private madeSplit(result: SplitResult, into: SplitResult[]): void {
    into.push(result);
    this.counters.splits += 1;
    this.options.policy.recordSplit(this.options.clock(), result.left.groupId, result.right.groupId);
  }

  private madeMerge(result: MergeResult, into: MergeResult[]): void {
    into.push(result);
    this.counters.merges += 1;
    this.options.policy.recordMerge(this.options.clock(), result.merged.groupId, result.removed.groupId);
  }
}

/** Whether a recovery pass finished or failed anything (either may have saved to the catalog). */
function actedOn(pass: RecoveryPass<unknown>): boolean {
  return pass.completed.length > 0 || pass.failed.length > 0;
}

function candidates(snapshot: CatalogSnapshot): RangeCandidate[] {
  return snapshot.routes.map((route) => ({
    rangeId: route.groupId,
    routeId: route.routeId,
    bounds: { start: route.start, end: route.end },
    state: route.state,
  }));
}
