// LmdbOrderedKv against the same sorted-map model as MemoryOrderedKv (gets and scans in both
// directions with bounds and limits, empty keys included), views that never see later
// writes, atomic batches, released views; and durability: data and an MvccStore (applied
// index, revision, contents) survive closing and reopening the environment after sync.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { open } from "lmdb";
import { putRequest, rangeRequest } from "../../src/kv/commands.js";
import { WriteBatch, type KvReader, type ScanOptions } from "../../src/kv/engine.js";
import { LmdbOrderedKv } from "../../src/kv/lmdb-engine.js";
import { checkViewIsolation, key, ModelKv, scanArb } from "./ordered-kv-model.js";
import { MvccStore } from "../../src/kv/store.js";

const directories: string[] = [];
after(() => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

function freshPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "concord-lmdb-kv-"));
  directories.push(dir);
  return dir;
}

type Op = { put: Uint8Array; value: Uint8Array } | { del: Uint8Array };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ put: key, value: fc.uint8Array({ maxLength: 4 }) }),
  fc.record({ del: key }),
);

function batchOf(ops: readonly Op[]): WriteBatch {
  const batch = new WriteBatch();
  for (const o of ops) {
    if ("put" in o) batch.put(o.put, o.value);
    else batch.delete(o.del);
  }
  return batch;
}

function collect(reader: KvReader, start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}) {
  return [...reader.scan(start, end, options)].map((p) => ({ key: p.key, value: p.value }));
}

function clear(engine: LmdbOrderedKv): void {
  const view = engine.view();
  const batch = new WriteBatch();
  for (const { key: k } of view.scan(new Uint8Array(0), null)) batch.delete(k);
  view.release();
  engine.write(batch);
}

const enc = (text: string) => new TextEncoder().encode(text);

describe("LmdbOrderedKv", () => {
  it("matches a sorted-map model for gets and scans after any sequence of batches", async () => {
    const engine = LmdbOrderedKv.open({ path: freshPath() });
    try {
      fc.assert(
        fc.property(
          fc.array(fc.array(op, { maxLength: 200 }), { maxLength: 8 }),
          fc.array(scanArb, { maxLength: 10 }),
          (batches, scans) => {
            clear(engine);
            const model = new ModelKv();
            for (const ops of batches) {
              const batch = batchOf(ops);
              engine.write(batch);
              model.apply(batch);
            }
            const view = engine.view();
            try {
              for (const { key: k, value } of model.entries.values()) assert.deepEqual(view.get(k), value);
              assert.equal(view.get(Uint8Array.of(9, 9, 9, 9)), undefined);
              assert.deepEqual(collect(view, new Uint8Array(0), null), model.scan(new Uint8Array(0), null));
              for (const s of scans) {
                const options = { reverse: s.reverse, limit: s.limit };
                assert.deepEqual(collect(view, s.start, s.end, options), model.scan(s.start, s.end, options));
              }
            } finally {
              view.release();
            }
          },
        ),
        { numRuns: 80 },
      );
    } finally {
      await engine.close();
    }
  });

  it("gives views that never see writes made after they were opened", async () => {
    const engine = LmdbOrderedKv.open({ path: freshPath() });
    checkViewIsolation(engine);
    await engine.close();
  });

  it("applies nothing of a batch whose write throws", async () => {
    const engine = LmdbOrderedKv.open({ path: freshPath() });
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
    const view = engine.view();
    assert.deepEqual(collect(view, new Uint8Array(0), null), [
      { key: Uint8Array.of(1), value: Uint8Array.of(1) },
    ]);
    view.release();
    await engine.close();
  });

  it("refuses a non-positive scan limit, use of a released view and use after close", async () => {
    const engine = LmdbOrderedKv.open({ path: freshPath() });
    const view = engine.view();
    assert.throws(() => view.scan(new Uint8Array(0), null, { limit: 0 }), RangeError);
    view.release();
    assert.throws(() => view.get(Uint8Array.of(1)), /after release/);
    await engine.close();
    assert.throws(() => engine.view(), /closed/);
  });

  it("keeps synced data across a close and reopen", async () => {
    const path = freshPath();
    const engine = LmdbOrderedKv.open({ path });
    const batch = new WriteBatch();
    for (let i = 0; i < 300; i++) batch.put(enc(`k${String(i).padStart(3, "0")}`), enc(`v${i}`));
    batch.put(new Uint8Array(0), enc("the empty key"));
    engine.write(batch);
    await engine.sync();
    await engine.close();

    const reopened = LmdbOrderedKv.open({ path });
    const view = reopened.view();
    assert.deepEqual(view.get(enc("k123")), enc("v123"));
    assert.deepEqual(view.get(new Uint8Array(0)), enc("the empty key"));
    assert.equal([...view.scan(enc("k"), enc("l"))].length, 300);
    view.release();
    await reopened.close();
  });

  it("shares an environment opened by its caller, one named database per engine", async () => {
    const root = open<Uint8Array, Uint8Array>({ path: freshPath(), maxDbs: 4, overlappingSync: false });
    const a = LmdbOrderedKv.onRoot(root, { name: "a" });
    const b = LmdbOrderedKv.onRoot(root, { name: "b" });
    const batch = new WriteBatch();
    batch.put(enc("x"), enc("in a"));
    a.write(batch);
    await a.sync();
    const inA = a.view();
    const inB = b.view();
    assert.deepEqual(inA.get(enc("x")), enc("in a"));
    assert.equal(inB.get(enc("x")), undefined);
    inA.release();
    inB.release();
    await a.close();
    // Closing an engine leaves its caller's environment open for the others.
    b.write(batch);
    const afterClose = b.view();
    assert.deepEqual(afterClose.get(enc("x")), enc("in a"));
    afterClose.release();
    await b.close();
    await root.close();
  });

  it("backs an MvccStore that reopens with its applied index, revision and data", async () => {
    const path = freshPath();
    const engine = LmdbOrderedKv.open({ path });
    const store = new MvccStore(engine);
    for (let index = 1; index <= 20; index++) {
      store.apply(index, {
        clientId: "c",
        sequence: index,
        timestamp: BigInt(index) << 16n,
        command: putRequest({ key: enc(`key${index % 5}`), value: enc(`value${index}`) }),
      });
    }
    const revision = store.revision;
    assert.ok(revision > 0n);
    await engine.sync();
    await engine.close();

    const reopenedEngine = LmdbOrderedKv.open({ path });
    const reopened = new MvccStore(reopenedEngine);
    assert.equal(reopened.appliedIndex, 20);
    assert.equal(reopened.revision, revision);
    const result = reopened.range(rangeRequest({ key: enc("key0") }));
    assert.deepEqual(result.kvs[0]?.value, enc("value20"));
    const duplicate = reopened.apply(21, {
      clientId: "c",
      sequence: 20,
      timestamp: 21n << 16n,
      command: putRequest({ key: enc("key0"), value: enc("again") }),
    });
    assert.equal(duplicate.duplicate, true, "the dedup table survived the reopen too");
    await reopenedEngine.close();
  });
});
