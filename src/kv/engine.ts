/**
 * The ordered byte key-value contract the MVCC store runs on (`OrderedKv`), the write batch
 * it commits atomically (`WriteBatch`), and `BatchOverlay`, a reader that shows a batch's
 * pending writes on top of a read view (how a transaction reads its own writes before it
 * commits).
 *
 * Engines: `MemoryOrderedKv` (memory-engine.ts) and `LmdbOrderedKv` (lmdb-engine.ts).
 * Everything is synchronous: the state machine applies a batch of entries in one write and
 * must not interleave with itself.
 */
import { compareBytes, latin1 } from "./bytes.js";

export interface KvPair {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ScanOptions {
  /** Descending order: from the largest key below `end` down to `start`. */
  readonly reverse?: boolean;
  /** Stop after this many pairs (a positive integer); unlimited when absent. */
  readonly limit?: number;
}

/** Read access to one consistent state. Returned bytes belong to the engine: do not mutate. */
export interface KvReader {
  get(key: Uint8Array): Uint8Array | undefined;
  /**
   * Pairs with `start <= key < end` in key order (`end` null: no upper bound). The iterable
   * reflects the reader's state for as long as it is iterated.
   */
  scan(start: Uint8Array, end: Uint8Array | null, options?: ScanOptions): Iterable<KvPair>;
}

/** A consistent, unchanging picture of the engine, unaffected by later writes until released. */
export interface ReadView extends KvReader {
  /** Ends the view (an lmdb engine ends its read transaction); using it afterwards is a bug. */
  release(): void;
}

/**
 * An ordered map from byte strings to byte strings. Writes are visible to views opened after
 * `write` returns; when they become durable is the engine's contract (like src/storage: a
 * later sync), and a crash never exposes part of a batch.
 */
export interface OrderedKv {
  view(): ReadView;
  /** Applies every operation of `batch` atomically: all of them, or (on a throw) none. */
  write(batch: WriteBatch): void;
}

/** One pending change: a put, or a delete when `value` is null. */
export interface WriteOp {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

/**
 * Pending puts and deletes, at most one per key (the last call wins). The batch, and after
 * the write the engine, keep the key and value arrays given to it (copying every one would
 * double the allocations of a large batch): callers must not modify them afterwards.
 *
 * Once `sortedOps()` has been asked for, the order is kept up to date on every later change
 * (a binary-search insert), so a batch that is read through a `BatchOverlay` while it grows
 * (many log entries applied in one write) is never sorted again from scratch.
 */
/**
 * Up to this many ops, `absorb` inserts them into a batch's order one by one: each insert moves
 * part of the order (a memmove), cheaper than a merge that rebuilds it until the ops are many.
 */
const ABSORB_INSERTS_AT_MOST = 32;

export class WriteBatch {
  private readonly ops = new Map<string, WriteOp>();
  /** When present: the ops in ascending key order, and their keys as latin1 strings. */
  private sorted: { readonly ops: WriteOp[]; readonly names: string[] } | null = null;

  get size(): number {
    return this.ops.size;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.record({ key, value });
  }

  delete(key: Uint8Array): void {
    this.record({ key, value: null });
  }

  /**
   * Stages every op of `other` on top of this batch's (`other`'s win on the same key). When this
   * batch keeps its order already, a few ops are inserted one by one (a binary search and a
   * splice each), and many are merged with the order in one pass. Either alone is slow somewhere:
   * inserting a split's copy of every moving version op by op is quadratic (it took over a second),
   * and merging each applied command's few ops into the order of the entries applied with it
   * rebuilt that whole order for every command (a fifth of what a follower allocated for puts).
   */
  absorb(other: WriteBatch): void {
    if (other.ops.size === 0) return;
    if (this.sorted === null || other.ops.size <= ABSORB_INSERTS_AT_MOST) {
      for (const [name, op] of other.ops) this.recordNamed(name, op);
      return;
    }
    other.sortedOps();
    const incoming = other.sorted!;
    const { ops, names } = this.sorted;
    const mergedOps: WriteOp[] = [];
    const mergedNames: string[] = [];
    let i = 0;
    let j = 0;
    while (i < names.length || j < incoming.names.length) {
      const own = names[i];
      const theirs = incoming.names[j];
      if (theirs === undefined || (own !== undefined && own < theirs)) {
        mergedOps.push(ops[i]!);
        mergedNames.push(own!);
        i++;
        continue;
      }
      if (own === theirs) i++;
      mergedOps.push(incoming.ops[j]!);
      mergedNames.push(theirs);
      this.ops.set(theirs, incoming.ops[j]!);
      j++;
    }
    this.sorted = { ops: mergedOps, names: mergedNames };
  }

  /** The pending value for `key`: bytes, null when deleted, undefined when untouched. */
  pending(key: Uint8Array): Uint8Array | null | undefined {
    return this.ops.get(latin1(key))?.value;
  }

  /** The pending operation with the smallest key in [start, end), if any. */
  firstOpIn(start: Uint8Array, end: Uint8Array): WriteOp | undefined {
    if (this.ops.size === 0) return undefined;
    const ops = this.sortedOps();
    const at = lowerBound(ops, start);
    const op = ops[at];
    return op !== undefined && compareBytes(op.key, end) < 0 ? op : undefined;
  }

  /** A batch with the same ops (and order, if known) that later changes to either leave the other alone. */
  copy(): WriteBatch {
    const copied = new WriteBatch();
    for (const [name, op] of this.ops) copied.ops.set(name, op);
    if (this.sorted !== null) copied.sorted = { ops: [...this.sorted.ops], names: [...this.sorted.names] };
    return copied;
  }

  /** The pending operations in ascending key order. */
  sortedOps(): readonly WriteOp[] {
    if (this.sorted === null) {
      // latin1 strings compare like the bytes they came from.
      const entries = [...this.ops.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.sorted = { ops: entries.map(([, op]) => op), names: entries.map(([name]) => name) };
    }
    return this.sorted.ops;
  }

  private record(op: WriteOp): void {
    this.recordNamed(latin1(op.key), op);
  }

  private recordNamed(name: string, op: WriteOp): void {
    const existed = this.ops.has(name);
    this.ops.set(name, op);
    if (this.sorted === null) return;
    const { ops, names } = this.sorted;
    let lo = 0;
    let hi = names.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (names[mid]! < name) lo = mid + 1;
      else hi = mid;
    }
    if (existed) {
      ops[lo] = op;
    } else {
      ops.splice(lo, 0, op);
      names.splice(lo, 0, name);
    }
  }
}

/** The scan limit as a count, after checking it is a positive integer when given. */
export function scanLimit(options: ScanOptions): number {
  const { limit } = options;
  if (limit === undefined) return Infinity;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`scan limit must be a positive integer: ${limit}`);
  return limit;
}

/** Index of the first op whose key is >= `key`. */
function lowerBound(ops: readonly WriteOp[], key: Uint8Array): number {
  let lo = 0;
  let hi = ops.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(ops[mid]!.key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * `base` with `batch` applied on top, without committing anything. The batch must not change
 * while a scan of the overlay is being iterated.
 */
export class BatchOverlay implements KvReader {
  constructor(
    private readonly base: KvReader,
    private readonly batch: WriteBatch,
  ) {}

  get(key: Uint8Array): Uint8Array | undefined {
    const pending = this.batch.pending(key);
    if (pending === null) return undefined;
    return pending ?? this.base.get(key);
  }

  *scan(start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}): Generator<KvPair> {
    const reverse = options.reverse ?? false;
    const limit = scanLimit(options);
    const ops = this.batch.sortedOps();
    const first = lowerBound(ops, start);
    const last = end === null ? ops.length : lowerBound(ops, end);
    // Walk the pending ops inside [start, end) alongside the base scan, in the scan direction;
    // a pending op on the same key as a base pair replaces (or, as a delete, hides) it.
    const step = reverse ? -1 : 1;
    let next = reverse ? last - 1 : first;
    let yielded = 0;
    for (const pair of this.base.scan(start, end, { reverse })) {
      let shadowed = false;
      while (next >= first && next < last) {
        const op = ops[next]!;
        const order = compareBytes(op.key, pair.key) * step;
        if (order > 0) break;
        next += step;
        if (order === 0) shadowed = true;
        if (op.value !== null) {
          yield { key: op.key, value: op.value };
          if (++yielded >= limit) return;
        }
      }
      if (!shadowed) {
        yield pair;
        if (++yielded >= limit) return;
      }
    }
    for (; next >= first && next < last; next += step) {
      const op = ops[next]!;
      if (op.value !== null) {
        yield { key: op.key, value: op.value };
        if (++yielded >= limit) return;
      }
    }
  }
}
