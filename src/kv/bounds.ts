/**
 * RangeBounds: the keys a range holds, `[start, end)` compared bytewise (`end` null = no upper
 * bound). A store checks every command's keys against its bounds when it applies it, and
 * routers use the same helpers to tell which range a key or a span belongs to.
 */
import { compareBytes } from "./bytes.js";
import { keyInterval } from "./range.js";

export interface RangeBounds {
  readonly start: Uint8Array;
  /** Exclusive; null means no upper bound. */
  readonly end: Uint8Array | null;
}

/** A span of keys `[start, end)`; `end` null = every key from `start` on. */
export type KeySpan = RangeBounds;

/** The whole keyspace: what a range that was never split holds. */
export const FULL_BOUNDS: RangeBounds = Object.freeze({ start: new Uint8Array(0), end: null });

export function boundsContainKey(bounds: RangeBounds, key: Uint8Array): boolean {
  return compareBytes(bounds.start, key) <= 0 && (bounds.end === null || compareBytes(key, bounds.end) < 0);
}

/** Whether every key of `[start, end)` (end null = +infinity) lies inside `bounds`. */
export function boundsContainSpan(bounds: RangeBounds, start: Uint8Array, end: Uint8Array | null): boolean {
  if (compareBytes(bounds.start, start) > 0) return false;
  if (bounds.end === null) return true;
  return end !== null && compareBytes(end, bounds.end) <= 0;
}

/**
 * The span etcd's (key, rangeEnd) names: the key alone when rangeEnd is empty (as the span
 * `[key, key + "\0")`), every key from `key` on when rangeEnd is "\0", else `[key, rangeEnd)`.
 */
export function spanOfRequest(key: Uint8Array, rangeEnd: Uint8Array): KeySpan {
  const interval = keyInterval(key, rangeEnd);
  if (interval.single) {
    const end = new Uint8Array(key.length + 1);
    end.set(key);
    return { start: key, end };
  }
  return { start: interval.start, end: interval.end };
}

export function boundsEqual(a: RangeBounds, b: RangeBounds): boolean {
  if (compareBytes(a.start, b.start) !== 0) return false;
  if (a.end === null || b.end === null) return a.end === b.end;
  return compareBytes(a.end, b.end) === 0;
}
