// MemoryOrderedKv against a plain sorted model: gets and scans (both directions, bounds,
// limits) after random batches, views that never see later writes, atomic batches, 100k keys;
// and BatchOverlay, which must read exactly like the batch committed, also while the batch
// grows between reads (WriteBatch keeps its order incrementally) and absorbs other batches.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { compareBytes } from "../../src/kv/bytes.js";
import {
  BatchOverlay,
  WriteBatch,
  type KvPair,
  type KvReader,
  type ScanOptions,
} from "../../src/kv/engine.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { checkViewIsolation, key, ModelKv, scanArb } from "./ordered-kv-model.js";

type Op =
  { put: Uint8Array; value: Uint8Array } | { del: Uint8Array } | { delRange: Uint8Array; to: Uint8Array };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ put: key, value: fc.uint8Array({ maxLength: 4 }) }),
  fc.record({ del: key }),
  fc.record({ delRange: key, to: key }),
);

function batchOf(ops: readonly Op[], existing: ModelKv): WriteBatch {
  const batch = new WriteBatch();
  for (const o of ops) {
    if ("put" in o) batch.put(o.put, o.value);
    else if ("del" in o) batch.delete(o.del);
    else for (const p of existing.scan(o.delRange, o.to)) batch.delete(p.key);
  }
  return batch;
}

function collect(
  reader: KvReader,
  start: Uint8Array,
  end: Uint8Array | null,
  options: ScanOptions,
): KvPair[] {
  return [...reader.scan(start, end, options)].map((p) => ({ key: p.key, value: p.value }));
}

describe("MemoryOrderedKv", () => {
  it("matches a sorted-map model for gets and scans after any sequence of batches", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(op, { maxLength: 300 }), { maxLength: 12 }),
        fc.array(scanArb, { maxLength: 10 }),
        (batches, scans) => {
          const engine = new MemoryOrderedKv();
          const model = new ModelKv();
          for (const ops of batches) {
            const batch = batchOf(ops, model);
            engine.write(batch);
            model.apply(batch);
            assert.equal(engine.size, model.entries.size);
          }
          const view = engine.view();
          for (const { key: k, value } of model.entries.values()) assert.deepEqual(view.get(k), value);
          assert.equal(view.get(Uint8Array.of(9, 9, 9, 9)), undefined);
          assert.deepEqual(collect(view, new Uint8Array(0), null, {}), model.scan(new Uint8Array(0), null));
          for (const s of scans) {
            const options = { reverse: s.reverse, limit: s.limit };
            assert.deepEqual(collect(view, s.start, s.end, options), model.scan(s.start, s.end, options));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("gives views that never see writes made after they were opened", () => {
    checkViewIsolation(new MemoryOrderedKv());
  });

  it("applies nothing of a batch whose write throws", () => {
    const engine = new MemoryOrderedKv();
    const ok = new WriteBatch();
    ok.put(Uint8Array.of(1), Uint8Array.of(1));
    engine.write(ok);
    const poisoned = new WriteBatch();
    for (let i = 0; i < 500; i++) poisoned.put(Uint8Array.of(2, i >> 8, i & 0xff), Uint8Array.of(2));
    const ops = poisoned.sortedOps();
    // A batch whose op list breaks halfway through, as a failing engine write would.
    const broken = Object.assign(new WriteBatch(), {
      sortedOps: () => [...ops.slice(0, 250), null, ...ops.slice(250)],
    });
    assert.throws(() => engine.write(broken));
    assert.equal(engine.size, 1);
    assert.deepEqual([...engine.view().scan(new Uint8Array(0), null)].length, 1);
  });

  it("holds 100k keys with logarithmic lookups and ordered scans", () => {
    const engine = new MemoryOrderedKv();
    const n = 100_000;
    const keyOf = (i: number) => new TextEncoder().encode(`key/${String((i * 7919) % n).padStart(6, "0")}`);
    for (let chunk = 0; chunk < n; chunk += 10_000) {
      const batch = new WriteBatch();
      for (let i = chunk; i < chunk + 10_000; i++) batch.put(keyOf(i), Uint8Array.of(i & 0xff));
      engine.write(batch);
    }
    assert.equal(engine.size, n);
    const view = engine.view();
    for (let i = 0; i < n; i += 997) assert.deepEqual(view.get(keyOf(i)), Uint8Array.of(i & 0xff));
    let previous: Uint8Array | null = null;
    let count = 0;
    for (const { key: k } of view.scan(new Uint8Array(0), null)) {
      if (previous !== null) assert.ok(compareBytes(previous, k) < 0);
      previous = k;
      count += 1;
    }
    assert.equal(count, n);
    const removal = new WriteBatch();
    for (let i = 0; i < n; i += 2) removal.delete(keyOf(i));
    engine.write(removal);
    assert.equal(engine.size, n / 2);
    assert.equal([...engine.view().scan(new Uint8Array(0), null, { reverse: true })].length, n / 2);
  });

  it("refuses a non-positive scan limit and use of a released view", () => {
    const engine = new MemoryOrderedKv();
    const view = engine.view();
    assert.throws(() => view.scan(new Uint8Array(0), null, { limit: 0 }), RangeError);
    view.release();
    assert.throws(() => view.get(Uint8Array.of(1)), /after release/);
  });
});

describe("BatchOverlay", () => {
  it("reads exactly like the batch committed on top of the base", () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 80 }),
        fc.array(op, { maxLength: 40 }),
        fc.array(scanArb, { maxLength: 8 }),
        (baseOps, pendingOps, scans) => {
          const engine = new MemoryOrderedKv();
          const model = new ModelKv();
          const base = batchOf(baseOps, model);
          engine.write(base);
          model.apply(base);
          const pending = batchOf(pendingOps, model);
          const overlay = new BatchOverlay(engine.view(), pending);
          const committed = new MemoryOrderedKv();
          committed.write(base);
          committed.write(pending);
          const expected = committed.view();
          for (const s of scans) {
            const options = { reverse: s.reverse, limit: s.limit };
            assert.deepEqual(
              collect(overlay, s.start, s.end, options),
              collect(expected, s.start, s.end, options),
            );
            assert.deepEqual(overlay.get(s.start), expected.get(s.start));
          }
          for (const o of pendingOps) {
            const k = "put" in o ? o.put : "del" in o ? o.del : o.delRange;
            assert.deepEqual(overlay.get(k), expected.get(k));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("absorbs a batch of a few ops or of many into an ordered batch like a map overwrite", () => {
    // Keys from a small space, so that absorbed ops often replace pending ones; batches of up to
    // 80 ops, so that absorb both inserts ops one by one and merges orders.
    const smallKey = fc.integer({ min: 0, max: 120 }).map((n) => Uint8Array.of(n));
    const smallBatch = fc.array(
      fc.record({ key: smallKey, value: fc.option(fc.uint8Array({ maxLength: 2 }), { nil: null }) }),
      { maxLength: 80, size: "max" },
    );
    fc.assert(
      fc.property(smallBatch, fc.array(smallBatch, { maxLength: 6 }), (first, rest) => {
        const growing = new WriteBatch();
        const model = new Map<number, Uint8Array | null>();
        const stage = (batch: WriteBatch, ops: typeof first): void => {
          for (const { key: k, value } of ops) {
            if (value === null) batch.delete(k);
            else batch.put(k, value);
          }
        };
        stage(growing, first);
        for (const { key: k, value } of first) model.set(k[0]!, value);
        growing.sortedOps();
        for (const ops of rest) {
          const step = new WriteBatch();
          stage(step, ops);
          growing.absorb(step);
          for (const { key: k, value } of ops) model.set(k[0]!, value);
          const expected = [...model.entries()].sort(([a], [b]) => a - b);
          assert.deepEqual(
            growing.sortedOps().map((o) => [o.key[0], o.value]),
            expected,
          );
          for (const [k, value] of expected) assert.deepEqual(growing.pending(Uint8Array.of(k)), value);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps reading like the committed batch while the batch grows and absorbs others", () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 60 }),
        fc.array(fc.array(op, { maxLength: 12 }), { maxLength: 8 }),
        fc.array(scanArb, { minLength: 1, maxLength: 4 }),
        (baseOps, steps, scans) => {
          const engine = new MemoryOrderedKv();
          const model = new ModelKv();
          const base = batchOf(baseOps, model);
          engine.write(base);
          model.apply(base);
          const growing = new WriteBatch();
          const overlay = new BatchOverlay(engine.view(), growing);
          const committed = new MemoryOrderedKv();
          committed.write(base);
          steps.forEach((stepOps, i) => {
            const step = batchOf(stepOps, model);
            // Half the steps arrive op by op, half as one absorbed batch.
            if (i % 2 === 0) growing.absorb(step);
            else
              for (const o of step.sortedOps())
                if (o.value === null) growing.delete(o.key);
                else growing.put(o.key, o.value);
            committed.write(step);
            const expected = committed.view();
            for (const s of scans) {
              const options = { reverse: s.reverse, limit: s.limit };
              assert.deepEqual(
                collect(overlay, s.start, s.end, options),
                collect(expected, s.start, s.end, options),
              );
            }
            expected.release();
          });
          const written = new MemoryOrderedKv();
          written.write(base);
          written.write(growing);
          assert.deepEqual(
            collect(written.view(), new Uint8Array(0), null, {}),
            collect(committed.view(), new Uint8Array(0), null, {}),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
