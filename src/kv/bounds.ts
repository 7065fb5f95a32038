/**
 * RangeBounds: the keys a range holds, `[start, end)` compared bytewise (`end` null = no upper
 * bound). A store checks every command's keys against its bounds when it applies it, and
 * routers use the same helpers to tell which range a key or a span belongs to. Also: which keys
 * a command names (commandInsideBounds), whether it writes, and the stored form of bounds.
 */
import { ByteReader, ByteWriter, compareBytes } from "./bytes.js";
import type { Command, TxnOp, TxnRequest } from "./commands.js";
import { keyInterval, type KeyInterval } from "./range.js";

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

/**
 * The first key `bounds` holds, usable as a request's key (a request cannot name the empty
 * key, so a range starting there gives "\0", the first key after it): e.g. to make a
 * linearizable read of the range a barrier.
 */
export function firstKey(bounds: RangeBounds): Uint8Array {
  return bounds.start.length > 0 ? bounds.start : Uint8Array.of(0);
}

/** The part of `interval` inside `bounds`: an empty interval (start = end) where they do not meet. */
export function clipInterval(interval: KeyInterval, bounds: RangeBounds): KeyInterval {
  const empty = (at: Uint8Array): KeyInterval => ({ start: at, end: at, single: false });
  if (interval.single) return boundsContainKey(bounds, interval.start) ? interval : empty(bounds.start);
  const start = compareBytes(interval.start, bounds.start) < 0 ? bounds.start : interval.start;
  let end = interval.end;
  if (bounds.end !== null && (end === null || compareBytes(bounds.end, end) < 0)) end = bounds.end;
  if (end !== null && compareBytes(start, end) >= 0) return empty(start);
  return { start, end, single: false };
}

export function boundsEqual(a: RangeBounds, b: RangeBounds): boolean {
  if (compareBytes(a.start, b.start) !== 0) return false;
  if (a.end === null || b.end === null) return a.end === b.end;
  return compareBytes(a.end, b.end) === 0;
}

/** Whether `span` (etcd's key / range end) lies inside `bounds`. */
function requestInside(bounds: RangeBounds, key: Uint8Array, rangeEnd: Uint8Array): boolean {
  const span = spanOfRequest(key, rangeEnd);
  return boundsContainSpan(bounds, span.start, span.end);
}

function txnInside(bounds: RangeBounds, txn: TxnRequest): boolean {
  return (
    txn.compares.every((c) => requestInside(bounds, c.key, c.rangeEnd)) &&
    txn.success.every((op) => opInside(bounds, op)) &&
    txn.failure.every((op) => opInside(bounds, op))
  );
}

function opInside(bounds: RangeBounds, op: TxnOp): boolean {
  switch (op.kind) {
    case "put":
      return boundsContainKey(bounds, op.key);
    case "range":
    case "deleteRange":
      return requestInside(bounds, op.key, op.rangeEnd);
    case "txn":
      return txnInside(bounds, op);
  }
}

/**
 * Whether every key a key-value command names lies inside `bounds`: a put's key, a delete's
 * span, and every compare and op of a transaction (both branches, nested ones and reads
 * included, whichever would run). Compaction names no key.
 */
export function commandInsideBounds(bounds: RangeBounds, command: Command): boolean {
  switch (command.kind) {
    case "compact":
      return true;
    case "txn":
      return txnInside(bounds, command);
    default:
      return opInside(bounds, command);
  }
}

/** Whether a key-value command would write if it ran (a transaction with a put or delete in either branch). */
export function commandWrites(command: Command | TxnOp): boolean {
  switch (command.kind) {
    case "put":
    case "deleteRange":
      return true;
    case "range":
    case "compact":
      return false;
    case "txn":
      return command.success.some(commandWrites) || command.failure.some(commandWrites);
  }
}

const BOUNDS_FORMAT = 1;

/** The stored form of bounds: format, start, whether an end follows, end. */
export function encodeRangeBounds(bounds: RangeBounds): Uint8Array {
  const w = new ByteWriter()
    .u8(BOUNDS_FORMAT)
    .bytes(bounds.start)
    .bool(bounds.end !== null);
  if (bounds.end !== null) w.bytes(bounds.end);
  return w.finish();
}

/** Throws DecodeError on an unknown format, truncation, trailing bytes or an empty span. */
export function decodeRangeBounds(bytes: Uint8Array): RangeBounds {
  const r = new ByteReader(bytes, "range bounds");
  const format = r.u8();
  if (format !== BOUNDS_FORMAT) r.fail("unknown-version", `range bounds format ${format}`);
  const start = r.bytes();
  const end = r.bool() ? r.bytes() : null;
  r.end();
  if (end !== null && compareBytes(start, end) >= 0)
    r.fail("invalid-field", "range bounds end at or below start");
  return { start, end };
}
