// MvccStore beyond single requests: compaction (etcd semantics), HLC revisions, the watch
// feed returned by apply, and the store's life cycle (reopen, entry indexes, namespaces).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compactRequest, deleteRangeRequest, putRequest, rangeRequest } from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { rangeNamespace } from "../../src/kv/keys.js";
import { MvccStore, storedAppliedIndex } from "../../src/kv/store.js";
import { FROM_KEY, Harness, b, collect, dataDump, get, keys, kvText } from "./helpers.js";

describe("Compact (etcd semantics)", () => {
  it("keeps the newest version at or below the revision and every later one; drops the rest", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put"); // 1
    h.ok(putRequest({ key: b("a"), value: b("2") }), "put"); // 2
    h.ok(putRequest({ key: b("b"), value: b("1") }), "put"); // 3
    h.ok(deleteRangeRequest({ key: b("b") }), "deleteRange"); // 4
    h.ok(putRequest({ key: b("c"), value: b("1") }), "put"); // 5
    h.ok(deleteRangeRequest({ key: b("c") }), "deleteRange"); // 6
    h.ok(putRequest({ key: b("a"), value: b("3") }), "put"); // 7
    const dataKeys = () => dataDump(h.kv).length;
    assert.equal(dataKeys(), 7);
    const reads = () => [get(h, "a", 5n), keys(h, "a", FROM_KEY, 5n), keys(h, "a", FROM_KEY)];
    const hashBefore = h.store.hashKv(0n).hash;
    h.ok(compactRequest(5n), "compact");
    assert.equal(h.store.compactedRevision, 5n);
    // The command only moves the compacted revision: the versions go in removalStep.
    assert.equal(dataKeys(), 7);
    assert.equal(h.store.removalPending, true);
    const expected = ["a=2 c1 m2 v2 l0", ["a", "c"], ["a"]];
    assert.deepEqual(reads(), expected);
    const hashCompacted = h.store.hashKv(0n).hash;
    assert.notEqual(hashCompacted, hashBefore);
    // Steps of 2 versions, ending only between keys (a: 3 versions, b: 2, c: 2): 3 steps.
    const steps: boolean[] = [];
    while (h.store.removalPending) steps.push(h.store.removalStep(2));
    assert.deepEqual(steps, [true, true, false]);
    // a: version at 2 (newest <= 5) and 7 stay; b: tombstone at 4 goes with its history;
    // c: its put at 5 stays (newest <= 5), its tombstone at 6 is above the compaction.
    assert.equal(dataKeys(), 4);
    assert.deepEqual(reads(), expected);
    assert.equal(h.store.hashKv(0n).hash, hashCompacted, "the hash counted the removed versions out before");
    assert.equal(h.store.removalStep(2), false);
  });

  it("a step never uncovers a deleted key: a tombstone goes with the versions behind it (model-test counterexample)", () => {
    const h = new Harness();
    for (let i = 0; i < 4; i++) h.ok(putRequest({ key: b("a"), value: b(`${i}`) }), "put"); // 1..4
    h.ok(deleteRangeRequest({ key: b("a") }), "deleteRange"); // 5
    h.ok(compactRequest(5n), "compact");
    h.store.removalStep(1);
    assert.deepEqual(keys(h, "a", FROM_KEY, 5n), [], "the key was deleted at 5");
    while (h.store.removalStep(1));
    assert.equal(dataDump(h.kv).length, 0);
  });

  it("removes in steps while writes and a later compaction go on; a restart starts the pass again", () => {
    const h = new Harness();
    for (let i = 0; i < 6; i++) h.ok(putRequest({ key: b(`k${i % 3}`), value: b(`${i}`) }), "put"); // 1..6
    h.ok(compactRequest(4n), "compact");
    assert.equal(h.store.removalStep(2), true);
    // A write between steps, then a compaction that overtakes the pass under way.
    h.ok(putRequest({ key: b("k0"), value: b("7") }), "put"); // 7
    h.ok(compactRequest(7n), "compact");
    // Over the same engine: a restarted store knows nothing of the pass.
    const restarted = new MvccStore(h.kv);
    assert.equal(restarted.removalPending, true);
    while (restarted.removalStep(1));
    // At 7 each key keeps its newest version only: k0@7, k1@5, k2@6.
    assert.equal(dataDump(h.kv).length, 3);
    assert.equal(new MvccStore(h.kv).removalPending, false, "the finished pass is recorded");
  });

  it("fails with ErrCompacted at or below the compacted revision and ErrFutureRevision above the current one", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    h.ok(putRequest({ key: b("a"), value: b("2") }), "put");
    assert.equal(h.error(compactRequest(3n)), "mvcc: required revision is a future revision");
    h.ok(compactRequest(2n), "compact");
    assert.equal(h.error(compactRequest(2n)), "mvcc: required revision has been compacted");
    assert.equal(h.error(compactRequest(1n)), "mvcc: required revision has been compacted");
  });

  it("creates no revision", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    const { result, events } = h.apply(compactRequest(1n), 500n);
    assert.equal(result.revision, 1n);
    assert.deepEqual(events, []);
    assert.equal(h.store.revision, 1n);
  });
});

describe("revisions are HLC timestamps", () => {
  it("a write gets max(last revision + 1, its stamp): lagging stamps still move forward", () => {
    const h = new Harness();
    assert.equal(h.apply(putRequest({ key: b("a"), value: b("1") }), 5000n).result.revision, 5000n);
    assert.equal(h.apply(putRequest({ key: b("a"), value: b("2") }), 4000n).result.revision, 5001n);
    assert.equal(h.apply(putRequest({ key: b("a"), value: b("3") }), 9000n).result.revision, 9000n);
    assert.equal(get(h, "a", 5000n), "a=1 c5000 m5000 v1 l0");
    assert.equal(get(h, "a", 8999n), "a=2 c5000 m5001 v2 l0", "a read between writes sees the earlier one");
  });

  it("every result carries the header revision, errors included", () => {
    const h = new Harness();
    h.apply(putRequest({ key: b("a"), value: b("1") }), 10n);
    assert.equal(h.apply(putRequest({ key: b("a"), ignoreValue: true, value: b("x") })).result.revision, 10n);
    assert.equal(h.apply(deleteRangeRequest({ key: b("a") })).result.revision, 11n);
  });
});

describe("watch feed", () => {
  it("apply returns put and delete events with prev_kv, at the write's revision", () => {
    const h = new Harness();
    const first = h.apply(putRequest({ key: b("a"), value: b("1"), lease: 3n }));
    assert.deepEqual(
      first.events.map((e) => [e.type, kvText(e.kv), e.prevKv]),
      [["put", "a=1 c1 m1 v1 l3", null]],
    );
    h.apply(putRequest({ key: b("b"), value: b("2") }));
    const deleted = h.apply(deleteRangeRequest({ key: b("a"), rangeEnd: FROM_KEY }));
    assert.deepEqual(
      deleted.events.map((e) => [e.type, kvText(e.kv), e.prevKv && kvText(e.prevKv)]),
      [
        ["delete", "a= c0 m3 v0 l0", "a=1 c1 m1 v1 l3"],
        ["delete", "b= c0 m3 v0 l0", "b=2 c2 m2 v1 l0"],
      ],
    );
  });
});

describe("store life cycle", () => {
  it("reopening over the same engine resumes applied index, revision and compacted revision", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put", 40n);
    h.ok(putRequest({ key: b("a"), value: b("2") }), "put");
    h.ok(compactRequest(41n), "compact");
    h.store.markApplied(10);
    const reopened = new MvccStore(h.kv);
    assert.equal(reopened.appliedIndex, 10);
    assert.equal(reopened.revision, 41n);
    assert.equal(reopened.compactedRevision, 41n);
    assert.deepEqual(reopened.range(rangeRequest({ key: b("a") })).kvs.map(kvText), ["a=2 c40 m41 v2 l0"]);
  });

  it("storedAppliedIndex reads a store's applied index without opening it; 0 where there is none", () => {
    const kv = new MemoryOrderedKv();
    const namespace = rangeNamespace(7);
    const store = new MvccStore(kv, { namespace });
    store.markApplied(12);
    assert.equal(storedAppliedIndex(kv, namespace), 12);
    assert.equal(storedAppliedIndex(kv, rangeNamespace(8)), 0);
    assert.equal(storedAppliedIndex(kv), 0);
  });

  it("a reopened or restored store's puts find the versions it did not write itself", async () => {
    // An index that remembers one version: puts look for the others through the set of keys
    // with a version, which the first apply after opening or restoring loads from the engine.
    const forgetful = { newestVersions: { maxEntries: 1, maxBytes: 64, maxKnownKeys: 1_000 } };
    /** Puts as a client of its own, at the store's next entry index. */
    const putter = (store: MvccStore, clientId: string) => {
      let sequence = 0;
      return (key: string, value: string): void => {
        sequence += 1;
        const command = putRequest({ key: b(key), value: b(value) });
        store.apply(store.appliedIndex + 1, { clientId, sequence, timestamp: 0n, command });
      };
    };
    const source = new Harness(forgetful);
    source.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    source.ok(putRequest({ key: b("a"), value: b("2") }), "put");
    source.ok(putRequest({ key: b("b"), value: b("1") }), "put");
    const reopened = new Harness(forgetful, source.kv);
    putter(reopened.store, "reopened")("a", "3");
    assert.equal(get(reopened, "a"), "a=3 c1 m4 v3 l0");
    const restored = new Harness(forgetful);
    restored.ok(putRequest({ key: b("c"), value: b("1") }), "put");
    await restored.store.restore(await collect(reopened.store.snapshot()));
    const put = putter(restored.store, "restored");
    put("a", "4");
    put("c", "2");
    assert.deepEqual(keys(restored, "a", FROM_KEY), ["a", "b", "c"]);
    assert.equal(get(restored, "a"), "a=4 c1 m5 v4 l0");
    assert.equal(get(restored, "c"), "c=2 c6 m6 v1 l0", "c went with the restore: a new key again");
  });

  it("refuses an entry index at or below the applied index", () => {
    const h = new Harness();
    h.apply(putRequest({ key: b("a"), value: b("1") }));
    const envelope = { clientId: "", sequence: 0, timestamp: 0n, command: putRequest({ key: b("b") }) };
    assert.throws(() => h.store.apply(1, envelope), /not above the applied index/);
    assert.throws(() => h.store.markApplied(0), /not above the applied index/);
    assert.throws(() => h.store.apply(2.5, envelope), /not above the applied index/);
  });

  it("keeps stores under different namespaces of one engine apart", () => {
    const kv = new MemoryOrderedKv();
    const one = new Harness({ namespace: Uint8Array.of(0, 0, 0, 1) }, kv);
    const two = new Harness({ namespace: Uint8Array.of(0, 0, 0, 2) }, kv);
    one.ok(putRequest({ key: b("a"), value: b("one") }), "put");
    two.ok(putRequest({ key: b("a"), value: b("two") }), "put");
    two.ok(putRequest({ key: b("b"), value: b("two") }), "put");
    one.ok(deleteRangeRequest({ key: b("\0"), rangeEnd: FROM_KEY }), "deleteRange");
    assert.deepEqual(keys(one, "\0", FROM_KEY), []);
    assert.deepEqual(keys(two, "\0", FROM_KEY), ["a", "b"]);
    assert.equal(one.store.revision, 2n);
    assert.equal(two.store.revision, 2n);
  });
});
