/**
 * SplitPolicy: decides which ranges to split, and where, from their load and size; and which
 * adjacent cold, small ranges are merge candidates. Pure: time comes in as an argument, load
 * and size through the `LoadSource` and `RangeSizeSource` interfaces, and nothing is changed
 * but the policy's own cooldown and merge-delay records. The coordinator carries the plans out.
 *
 * Defaults (each an option):
 * - load split: a range that took >= 1,000 ops/s in each of its last 15 completed windows,
 *   at the load-weighted median of its sampled keys;
 * - size split: a range above 64 MiB, at its size-median key;
 * - after a split, both sides rest for 30 s (cooldown) before either is planned again;
 * - at most 4 splits per evaluation, hottest (latest window's ops/s) first, then largest;
 * - never a key at a range boundary nor at or below the end of the system span;
 * - merge plans: adjacent active ranges together below 8 MiB (the right one's image travels
 *   in one Raft entry), each below 100 ops/s in each of its last 60 windows, neither in
 *   cooldown; a merged range rests for the cooldown too;
 * - both sides of a split stay apart for 5 minutes (the merge delay), however cold they
 *   are: load that split a range tends to come back, and a merge is not free (the right
 *   range's image is built, replicated in one entry and applied while that range refuses
 *   writes). Without the delay, a burst that splits a range and a minute's lull merge it
 *   back, over and over. TiKV's PD keeps split ranges apart for an hour
 *   (`split-merge-interval`), CockroachDB load-split ones for 5 minutes
 *   (`kv.range_split.by_load_merge_delay`).
 */
import type { RangeBounds } from "../../kv/bounds.js";
import { compareBytes } from "../../kv/bytes.js";
import type { RouteState } from "../catalog/descriptor.js";
import type { WindowLoad } from "./load-sampler.js";
import { SYSTEM_SPAN_END, splitKeyRefusal } from "./split-key.js";

/** Load per range (LoadSampler implements it; a cluster-wide aggregate may too). */
export interface LoadSource {
  /** Completed windows, oldest first. */
  windowLoads(rangeId: number): readonly WindowLoad[];
  loadWeightedMedian(rangeId: number, bounds: RangeBounds): Uint8Array | null;
}

/** Size per range (implemented over the store by the node). */
export interface RangeSizeSource {
  approximateBytes(rangeId: number): number;
  /** A key with about half of the range's bytes below it, or null. */
  sizeMedianKey(rangeId: number, bounds: RangeBounds): Uint8Array | null;
}

/** One range as the catalog lists it. */
export interface RangeCandidate {
  /** The Raft group (route groupId). */
  readonly rangeId: number;
  readonly routeId: number;
  readonly bounds: RangeBounds;
  readonly state: RouteState;
}

export type SplitReason = "load" | "size";

export interface SplitPlan {
  readonly routeId: number;
  readonly rangeId: number;
  readonly splitKey: Uint8Array;
  readonly reason: SplitReason;
  /** The range's latest completed window (0 when none). */
  readonly opsPerSecond: number;
  readonly bytes: number;
}

export interface MergePlan {
  /** Keeps its route id and group; absorbs the right one. */
  readonly left: RangeCandidate;
  readonly right: RangeCandidate;
  readonly bytes: number;
  readonly opsPerSecond: number;
}

export interface SplitPolicyOptions {
  /** Ops per second a window must reach to count as hot (default 1,000). */
  readonly loadSplitOpsPerSecond?: number;
  /** Consecutive hot windows before a load split (default 15). */
  readonly loadSplitWindows?: number;
  /** Bytes above which a range is split by size (default 64 MiB). */
  readonly maxRangeBytes?: number;
  /** Milliseconds both sides of a split rest before the next plan (default 30,000). */
  readonly cooldownMs?: number;
  /** Plans per evaluation (default 4). */
  readonly maxSplitsPerCycle?: number;
  /** Split keys must be strictly greater (default: the end of the system span). */
  readonly minSplitKey?: Uint8Array;
  /** A merge plan's two ranges are below this many bytes together (default 8 MiB). */
  readonly mergeMaxBytes?: number;
  /** ... and below this many ops per second in each window (default 100) ... */
  readonly mergeMaxOpsPerSecond?: number;
  /** ... of their last this many windows (default 60). */
  readonly mergeWindows?: number;
  /** Milliseconds after a split before either side may merge (default 300,000). */
  readonly mergeDelayAfterSplitMs?: number;
}

export const DEFAULT_SPLIT_POLICY = {
  loadSplitOpsPerSecond: 1_000,
  loadSplitWindows: 15,
  maxRangeBytes: 64 * 1024 * 1024,
  cooldownMs: 30_000,
  maxSplitsPerCycle: 4,
  mergeMaxBytes: 8 * 1024 * 1024,
  mergeMaxOpsPerSecond: 100,
  mergeWindows: 60,
  mergeDelayAfterSplitMs: 300_000,
} as const;

function checkNumber(value: number, name: string, integer: boolean, min: number): void {
  if (!Number.isFinite(value) || value < min || (integer && !Number.isSafeInteger(value))) {
    throw new RangeError(`${name} must be ${integer ? "an integer" : "a number"} >= ${min}, got ${value}`);
  }
}

export class SplitPolicy {
  readonly options: Required<SplitPolicyOptions>;
  /** Range id -> monotonic time until which it is not planned. */
  private readonly cooldownUntil = new Map<number, number>();
  /** Range id -> monotonic time until which it does not merge (both sides of a split). */
  private readonly mergeHeldUntil = new Map<number, number>();

  constructor(
    private readonly load: LoadSource,
    private readonly size: RangeSizeSource,
    options: SplitPolicyOptions = {},
  ) {
    this.options = { ...DEFAULT_SPLIT_POLICY, minSplitKey: SYSTEM_SPAN_END, ...options };
    const o = this.options;
    checkNumber(o.loadSplitOpsPerSecond, "loadSplitOpsPerSecond", false, 0);
    checkNumber(o.loadSplitWindows, "loadSplitWindows", true, 1);
    checkNumber(o.maxRangeBytes, "maxRangeBytes", false, 1);
    checkNumber(o.cooldownMs, "cooldownMs", false, 0);
    checkNumber(o.maxSplitsPerCycle, "maxSplitsPerCycle", true, 1);
    checkNumber(o.mergeMaxBytes, "mergeMaxBytes", false, 0);
    checkNumber(o.mergeMaxOpsPerSecond, "mergeMaxOpsPerSecond", false, 0);
    checkNumber(o.mergeWindows, "mergeWindows", true, 1);
    checkNumber(o.mergeDelayAfterSplitMs, "mergeDelayAfterSplitMs", false, 0);
    if (!(o.minSplitKey instanceof Uint8Array)) throw new TypeError("minSplitKey must be a byte array");
  }

  /**
   * The splits to make now, hottest first, at most maxSplitsPerCycle. Only active ranges out
   * of cooldown; a load split when the range was hot long enough and its sample gives a key,
   * else a size split when it is too large and its size median is a valid key.
   */
  evaluate(now: number, ranges: readonly RangeCandidate[]): SplitPlan[] {
    const plans: SplitPlan[] = [];
    for (const range of ranges) {
      if (range.state !== "active" || this.cooling(now, range.rangeId)) continue;
      const windows = this.load.windowLoads(range.rangeId);
      const opsPerSecond = windows[windows.length - 1]?.opsPerSecond ?? 0;
      const bytes = this.size.approximateBytes(range.rangeId);
      const plan = (splitKey: Uint8Array | null, reason: SplitReason): boolean => {
        if (splitKey === null || splitKeyRefusal(range.bounds, splitKey, this.options.minSplitKey) !== null)
          return false;
        plans.push({ routeId: range.routeId, rangeId: range.rangeId, splitKey, reason, opsPerSecond, bytes });
        return true;
      };
      if (this.hot(windows) && plan(this.load.loadWeightedMedian(range.rangeId, range.bounds), "load"))
        continue;
      if (bytes > this.options.maxRangeBytes)
        plan(this.size.sizeMedianKey(range.rangeId, range.bounds), "size");
    }
    plans.sort((a, b) => b.opsPerSecond - a.opsPerSecond || b.bytes - a.bytes || a.rangeId - b.rangeId);
    return plans.slice(0, this.options.maxSplitsPerCycle);
  }

  /** Starts the cooldown and the merge delay of both sides of a split made at `now` (whoever made it). */
  recordSplit(now: number, leftRangeId: number, rightRangeId: number): void {
    for (const [times, until] of [
      [this.cooldownUntil, now + this.options.cooldownMs],
      [this.mergeHeldUntil, now + this.options.mergeDelayAfterSplitMs],
    ] as const) {
      times.set(leftRangeId, until);
      times.set(rightRangeId, until);
      for (const [rangeId, end] of times) if (end <= now) times.delete(rangeId);
    }
  }

  /**
   * Starts the cooldown of the range that grew by a merge made at `now` (whoever made it); the
   * range merged away is forgotten.
   */
  recordMerge(now: number, mergedRangeId: number, removedRangeId: number): void {
    this.cooldownUntil.delete(removedRangeId);
    this.mergeHeldUntil.delete(removedRangeId);
    this.cooldownUntil.set(mergedRangeId, now + this.options.cooldownMs);
    for (const [rangeId, end] of this.cooldownUntil) if (end <= now) this.cooldownUntil.delete(rangeId);
  }

  /** Whether the range is resting after a split or merge at `now`. */
  cooling(now: number, rangeId: number): boolean {
    return (this.cooldownUntil.get(rangeId) ?? -Infinity) > now;
  }

  /**
   * Adjacent pairs that should merge: both active, out of cooldown and merge delay, below mergeMaxOpsPerSecond
   * in each of their last mergeWindows windows (a range with a shorter history is not known to
   * be cold), and together below mergeMaxBytes. Each range is in at most one plan, pairs taken
   * left to right. Plans only: the merge coordinator carries them out.
   */
  mergeCandidates(now: number, ranges: readonly RangeCandidate[]): MergePlan[] {
    const sorted = [...ranges].sort((a, b) => compareBytes(a.bounds.start, b.bounds.start));
    const plans: MergePlan[] = [];
    for (let i = 0; i + 1 < sorted.length; i++) {
      const left = sorted[i]!;
      const right = sorted[i + 1]!;
      if (left.bounds.end === null || compareBytes(left.bounds.end, right.bounds.start) !== 0) continue;
      const leftLoad = this.cold(now, left);
      const rightLoad = leftLoad === null ? null : this.cold(now, right);
      if (leftLoad === null || rightLoad === null) continue;
      const bytes = leftLoad.bytes + rightLoad.bytes;
      if (bytes >= this.options.mergeMaxBytes) continue;
      plans.push({
        left,
        right,
        bytes,
        opsPerSecond: leftLoad.opsPerSecond + rightLoad.opsPerSecond,
      });
      i += 1;
    }
    return plans;
  }

  private hot(windows: readonly WindowLoad[]): boolean {
    const needed = this.options.loadSplitWindows;
    if (windows.length < needed) return false;
    return windows.slice(-needed).every((w) => w.opsPerSecond >= this.options.loadSplitOpsPerSecond);
  }

  /** The range's size and latest load when it is cold enough to merge, else null. */
  private cold(now: number, range: RangeCandidate): { bytes: number; opsPerSecond: number } | null {
    if (range.state !== "active" || this.cooling(now, range.rangeId)) return null;
    if ((this.mergeHeldUntil.get(range.rangeId) ?? -Infinity) > now) return null;
    const o = this.options;
    const windows = this.load.windowLoads(range.rangeId);
    if (windows.length < o.mergeWindows) return null;
    const recent = windows.slice(-o.mergeWindows);
    if (!recent.every((w) => w.opsPerSecond < o.mergeMaxOpsPerSecond)) return null;
    return {
      bytes: this.size.approximateBytes(range.rangeId),
      opsPerSecond: recent[recent.length - 1]!.opsPerSecond,
    };
  }
}
