/**
 * LoadSampler: what one node sees of each range's request load, in bounded memory, for the
 * split policy. Every request is `record`ed with its range, key and kind. Time is cut into
 * windows of `windowMs` on an injected monotonic clock; per range the sampler keeps
 *
 * - the read and write counts of the current window and of the last `historyWindows`
 *   completed ones (a window with no request counts as zero, so the history is contiguous);
 * - a uniform reservoir (Algorithm R, injected randomness) of at most `reservoirSize` keys for
 *   the current window and the one before it. Each reservoir entry stands for
 *   `requests in its window / entries` requests: that weight is what lets the two windows be
 *   combined into one load-weighted median.
 *
 * `loadWeightedMedian` picks the sampled key that divides the sampled load most evenly. A
 * range whose sampled load sits on ONE key gets null: a single hot key cannot be split (both
 * sides of any split key would not share its load). With load on two keys the answer is the
 * larger one, so the split falls between them.
 */
import { compareBytes } from "../../kv/bytes.js";
import type { RangeBounds } from "../../kv/bounds.js";
import type { RandomSource } from "../../raft/types.js";
import { positiveInteger } from "../option-checks.js";

export type RequestKind = "read" | "write";

/** The load of one completed window of one range. */
export interface WindowLoad {
  /** The window's start on the sampler's clock (a multiple of windowMs). */
  readonly startMs: number;
  readonly reads: number;
  readonly writes: number;
  /** (reads + writes) per second of the window. */
  readonly opsPerSecond: number;
}

export interface LoadSamplerOptions {
  /** Monotonic milliseconds. */
  readonly clock: () => number;
  /** Draws which keys the reservoirs keep. */
  readonly random: RandomSource;
  /** Window length in milliseconds (default 1,000). */
  readonly windowMs?: number;
  /** Keys kept per range per window (default 128). */
  readonly reservoirSize?: number;
  /** Completed windows kept per range (default 64; the policy looks at up to this many). */
  readonly historyWindows?: number;
}

export const DEFAULT_WINDOW_MS = 1_000;
export const DEFAULT_RESERVOIR_SIZE = 128;
export const DEFAULT_HISTORY_WINDOWS = 64;

/** Keys sampled uniformly from the `seen` requests of one window. */
interface Reservoir {
  readonly keys: Uint8Array[];
  seen: number;
}

interface RangeLoad {
  /** Index (start / windowMs) of the current window. */
  window: number;
  reads: number;
  writes: number;
  current: Reservoir;
  /** The window right before the current one (empty when that window had no request). */
  previous: Reservoir;
  /** Completed windows, oldest first, at most historyWindows. */
  history: WindowLoad[];
}

function emptyReservoir(): Reservoir {
  return { keys: [], seen: 0 };
}

/** A key weighed by the requests it stands for. */
export interface WeightedKey {
  readonly key: Uint8Array;
  readonly weight: number;
}

/**
 * The key that splits `samples` most evenly: among the distinct keys but the smallest, the
 * one whose strictly smaller keys carry weight closest to half the total (ties: the smaller
 * key). Null with fewer than two distinct keys. Exported so tests can check the sampler
 * against it on every request instead of a sample.
 */
export function weightedMedianKey(samples: readonly WeightedKey[]): Uint8Array | null {
  const sorted = [...samples].sort((a, b) => compareBytes(a.key, b.key));
  const distinct: WeightedKey[] = [];
  for (const sample of sorted) {
    const last = distinct[distinct.length - 1];
    if (last !== undefined && compareBytes(last.key, sample.key) === 0) {
      distinct[distinct.length - 1] = { key: last.key, weight: last.weight + sample.weight };
    } else distinct.push(sample);
  }
  if (distinct.length < 2) return null;
  const total = distinct.reduce((sum, entry) => sum + entry.weight, 0);
  let below = distinct[0]!.weight;
  let best = distinct[1]!.key;
  let bestImbalance = Math.abs(2 * below - total);
  for (let i = 2; i < distinct.length; i++) {
    below += distinct[i - 1]!.weight;
    const imbalance = Math.abs(2 * below - total);
    if (imbalance < bestImbalance) {
      bestImbalance = imbalance;
      best = distinct[i]!.key;
    }
  }
  return best;
}

function inside(bounds: RangeBounds, key: Uint8Array): boolean {
  return compareBytes(bounds.start, key) <= 0 && (bounds.end === null || compareBytes(key, bounds.end) < 0);
}

export class LoadSampler {
  readonly windowMs: number;
  readonly reservoirSize: number;
  readonly historyWindows: number;
  private readonly ranges = new Map<number, RangeLoad>();

  constructor(private readonly options: LoadSamplerOptions) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.reservoirSize = options.reservoirSize ?? DEFAULT_RESERVOIR_SIZE;
    this.historyWindows = options.historyWindows ?? DEFAULT_HISTORY_WINDOWS;
    positiveInteger("windowMs", this.windowMs);
    positiveInteger("reservoirSize", this.reservoirSize);
    positiveInteger("historyWindows", this.historyWindows);
  }

  /** Counts one request of `rangeId` on `key` and offers the key to the window's reservoir. */
  record(rangeId: number, key: Uint8Array, kind: RequestKind): void {
    if (kind !== "read" && kind !== "write") throw new RangeError(`unknown request kind ${String(kind)}`);
    const load = this.current(rangeId, true)!;
    if (kind === "read") load.reads += 1;
    else load.writes += 1;
    const reservoir = load.current;
    reservoir.seen += 1;
    if (reservoir.keys.length < this.reservoirSize) {
      reservoir.keys.push(key.slice());
      return;
    }
    // Algorithm R: the seen-th request replaces a kept key with probability size / seen.
    const slot = this.options.random.nextInt(reservoir.seen);
    if (slot < this.reservoirSize) reservoir.keys[slot] = key.slice();
  }

  /**
   * The range's completed windows, oldest first (at most historyWindows). A range is tracked
   * from its first record or its first call here, whichever comes first, so a range that takes
   * no request at all still builds up a history of idle windows (and can look cold to the
   * merge finder).
   */
  windowLoads(rangeId: number): readonly WindowLoad[] {
    return this.current(rangeId, true)!.history;
  }

  /**
   * A key strictly inside (bounds.start, bounds.end) that divides the sampled load of the
   * current and the previous window most evenly, or null when the sample cannot give one
   * (no sample inside the bounds, or all of it on one key: a single hot key cannot be split).
   * Samples outside the bounds (left over from before a split) are ignored.
   */
  loadWeightedMedian(rangeId: number, bounds: RangeBounds): Uint8Array | null {
    const load = this.current(rangeId, false);
    if (load === undefined) return null;
    const samples: WeightedKey[] = [];
    for (const reservoir of [load.previous, load.current]) {
      if (reservoir.keys.length === 0) continue;
      const weight = reservoir.seen / reservoir.keys.length;
      for (const key of reservoir.keys) if (inside(bounds, key)) samples.push({ key, weight });
    }
    const median = weightedMedianKey(samples);
    // The smallest sampled key is never the answer, so the median is above bounds.start.
    return median === null ? null : median.slice();
  }

  /** Keys held for the range right now (both reservoirs): never more than 2 × reservoirSize. */
  sampledKeys(rangeId: number): number {
    const load = this.ranges.get(rangeId);
    return load === undefined ? 0 : load.current.keys.length + load.previous.keys.length;
  }

  /** Ranges with a record (not forgotten). */
  rangeIds(): number[] {
    return [...this.ranges.keys()];
  }

  /** Drops everything known about the range (it was merged away, or moved off this node). */
  forget(rangeId: number): void {
    this.ranges.delete(rangeId);
  }

  /** The range's state with its windows rolled up to now; created only when `create`. */
  private current(rangeId: number, create: boolean): RangeLoad | undefined {
    const window = Math.floor(this.options.clock() / this.windowMs);
    let load = this.ranges.get(rangeId);
    if (load === undefined) {
      if (!create) return undefined;
      load = {
        window,
        reads: 0,
        writes: 0,
        current: emptyReservoir(),
        previous: emptyReservoir(),
        history: [],
      };
      this.ranges.set(rangeId, load);
      return load;
    }
    // A clock that went backwards (it should not) leaves the window as it is.
    if (window > load.window) this.roll(load, window);
    return load;
  }

  private roll(load: RangeLoad, window: number): void {
    const completed = (index: number, reads: number, writes: number): WindowLoad => ({
      startMs: index * this.windowMs,
      reads,
      writes,
      opsPerSecond: ((reads + writes) * 1_000) / this.windowMs,
    });
    load.history.push(completed(load.window, load.reads, load.writes));
    // Windows without a request in between count as idle; only the last historyWindows matter.
    for (let index = Math.max(load.window + 1, window - this.historyWindows); index < window; index++) {
      load.history.push(completed(index, 0, 0));
    }
    if (load.history.length > this.historyWindows) {
      load.history.splice(0, load.history.length - this.historyWindows);
    }
    load.previous = window === load.window + 1 ? load.current : emptyReservoir();
    load.current = emptyReservoir();
    load.reads = 0;
    load.writes = 0;
    load.window = window;
  }
}
