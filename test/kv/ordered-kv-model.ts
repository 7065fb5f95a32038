// The reference model and generators shared by the OrderedKv engine tests (memory and lmdb):
// a Map from latin1 key to pair, scanned by sorting, and arbitraries for keys and scans.
import fc from "fast-check";
import { compareBytes, latin1 } from "../../src/kv/bytes.js";
import type { KvPair, ScanOptions, WriteBatch } from "../../src/kv/engine.js";

export class ModelKv {
  readonly entries = new Map<string, KvPair>();

  apply(batch: WriteBatch): void {
    for (const op of batch.sortedOps()) {
      if (op.value === null) this.entries.delete(latin1(op.key));
      else this.entries.set(latin1(op.key), { key: op.key, value: op.value });
    }
  }

  scan(start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}): KvPair[] {
    const inRange = [...this.entries.values()]
      .filter((p) => compareBytes(p.key, start) >= 0 && (end === null || compareBytes(p.key, end) < 0))
      .sort((a, b) => compareBytes(a.key, b.key));
    if (options.reverse === true) inRange.reverse();
    return inRange.slice(0, options.limit ?? Infinity);
  }
}

/** Small keys, so that random operations collide often; the empty key included. */
export const key = fc.oneof(
  fc.uint8Array({ maxLength: 3 }).map((k) => k.map((b) => b % 6)),
  fc.integer({ min: 0, max: 5000 }).map((n) => Uint8Array.of(n >> 8, n & 0xff)),
);

export const scanArb = fc.record({
  start: fc.uint8Array({ maxLength: 2 }),
  end: fc.option(fc.uint8Array({ maxLength: 2 }), { nil: null }),
  reverse: fc.boolean(),
  limit: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
});
