/**
 * AutoCompactor: etcd's periodic auto-compaction (`--auto-compaction-retention`), run by the
 * node that leads the meta range. Every `min(retention, 1 h)` it compacts every range at the
 * revision of `retention` ago: revisions are HLC timestamps, so that is the timestamp of the
 * wall clock minus the retention — or, when no range has been written since (the router
 * answers FutureRevision with the newest revision it knows), that newest revision, which is
 * then older than the retention too. A cycle that would not move the compaction forward does
 * nothing; one that fails is counted and logged, and the next cycle tries again.
 *
 * The compaction itself only moves each range's compacted revision: every replica removes the
 * compacted versions afterwards, in steps (MvccStore.removalStep).
 */
import { KvErrorCode } from "../kv/errors.js";
import { MAX_WALL_MILLIS, makeTimestamp } from "../kv/hlc.js";
import type { CommandResult } from "../kv/results.js";
import type { Timers, TimerHandle } from "../transport/timers.js";
import type { Logger } from "../transport/transport.js";

/** The longest wait between two cycles, whatever the retention (etcd's hourly compaction). */
export const MAX_AUTO_COMPACTION_INTERVAL_MS = 60 * 60 * 1000;

export interface AutoCompactorOptions {
  /** History kept, in milliseconds (positive). */
  readonly retentionMs: number;
  readonly timers: Timers;
  /** Milliseconds since the epoch: the physical part of revisions. */
  readonly wallClock: () => number;
  /** Whether this node leads the meta range now; cycles do nothing otherwise. */
  readonly isMetaLeader: () => boolean;
  /** Compacts every range at `revision` (the router's Compact). */
  readonly compact: (revision: bigint) => Promise<CommandResult>;
  readonly logger?: Logger;
}

export interface AutoCompactorCounters {
  cycles: number;
  /** Compactions made. */
  compacted: number;
  failures: number;
}

export class AutoCompactor {
  readonly counters: AutoCompactorCounters = { cycles: 0, compacted: 0, failures: 0 };
  private timer: TimerHandle | null = null;
  private running = false;
  /** The revision of this node's last compaction (0: none yet): nothing at or below it is asked again. */
  private lastCompacted = 0n;
  private readonly intervalMs: number;

  constructor(private readonly options: AutoCompactorOptions) {
    const { retentionMs } = options;
    if (!Number.isSafeInteger(retentionMs) || retentionMs < 1) {
      throw new RangeError(`auto-compaction retention must be a positive number of ms, got ${retentionMs}`);
    }
    this.intervalMs = Math.min(retentionMs, MAX_AUTO_COMPACTION_INTERVAL_MS);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
  }

  /**
   * One cycle: on the meta leader, compacts at the revision of `retention` ago. Resolves with
   * the revision compacted at, or null when it did nothing (not the leader, nothing new, or a
   * failure, which is counted and logged).
   */
  async runOnce(): Promise<bigint | null> {
    this.counters.cycles++;
    if (!this.options.isMetaLeader()) return null;
    const wall = Math.min(this.options.wallClock() - this.options.retentionMs, MAX_WALL_MILLIS);
    if (wall <= 0) return null;
    try {
      let target = makeTimestamp(wall, 0);
      if (target <= this.lastCompacted) return null;
      let result = await this.options.compact(target);
      if (errorCode(result) === KvErrorCode.FutureRevision) {
        // Nothing was written since the retention began: the newest revision is old enough.
        target = result.revision;
        if (target <= this.lastCompacted || target === 0n) return null;
        result = await this.options.compact(target);
      }
      const code = errorCode(result);
      // Compacted: a compaction at or past the target happened already (by hand, or before a
      // change of meta leader); the next cycle's target is newer.
      if (code === KvErrorCode.Compacted) {
        this.lastCompacted = target;
        return null;
      }
      if (code !== null) throw new Error(`compaction at ${target} answered ${result.response.kind} ${code}`);
      this.lastCompacted = target;
      this.counters.compacted++;
      this.options.logger?.info(
        { revision: String(target), retentionMs: this.options.retentionMs },
        "auto-compaction compacted every range",
      );
      return target;
    } catch (error) {
      this.counters.failures++;
      this.options.logger?.warn(
        { error: error instanceof Error ? error.message : String(error) },
        "auto-compaction failed; the next cycle tries again",
      );
      return null;
    }
  }

  private arm(): void {
    if (!this.running) return;
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      void this.runOnce().finally(() => this.arm());
    }, this.intervalMs);
  }
}

function errorCode(result: CommandResult): KvErrorCode | null {
  return result.response.kind === "error" ? result.response.code : null;
}
