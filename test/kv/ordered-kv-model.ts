// The reference model, generators and shared checks of the OrderedKv engine tests (memory and
// lmdb): a Map from latin1 key to pair, scanned by sorting, and arbitraries for keys and scans.
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes, latin1 } from "../../src/kv/bytes.js";
import { WriteBatch, type KvPair, type OrderedKv, type ScanOptions } from "../../src/kv/engine.js";

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

/** A view (and a scan begun in it) keeps seeing the state it was opened on, whatever is written later. */
export function checkViewIsolation(engine: OrderedKv): void {
  const first = new WriteBatch();
  for (let i = 0; i < 2000; i++) first.put(Uint8Array.of(i >> 8, i & 0xff), Uint8Array.of(1));
  engine.write(first);
  const before = engine.view();
  const iterator = before.scan(new Uint8Array(0), null)[Symbol.iterator]();
  const second = new WriteBatch();
  for (let i = 0; i < 2000; i += 2) second.delete(Uint8Array.of(i >> 8, i & 0xff));
  second.put(Uint8Array.of(0xff), Uint8Array.of(2));
  engine.write(second);
  let seen = 0;
  for (let step = iterator.next(); step.done !== true; step = iterator.next()) seen += 1;
  assert.equal(seen, 2000, "a scan begun before the write sees the old state to the end");
  assert.equal(before.get(Uint8Array.of(0xff)), undefined);
  before.release();
  const now = engine.view();
  assert.equal([...now.scan(new Uint8Array(0), null)].length, 1001);
  now.release();
}
