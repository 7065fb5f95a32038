// MemoryStorageEngine: the shared storage conformance suite, plus what only the in-memory
// engine offers: choosing exactly which unsynced writes survive a crash, and its counters.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runStorageConformance } from "../../src/storage/conformance.js";
import { StorageUsageError } from "../../src/storage/contracts.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import { entriesSize } from "../../src/raft/storage.js";
import { EMPTY_HARD_STATE, EntryType, type Entry } from "../../src/raft/types.js";

runStorageConformance(
  "MemoryStorageEngine",
  {
    open: () => {
      const engine = new MemoryStorageEngine();
      return Promise.resolve({
        engine,
        crashAndReopen: (keepHint: number) => {
          engine.crash(Math.min(keepHint, engine.pendingWriteCount()));
          return Promise.resolve(engine);
        },
        close: () => Promise.resolve(),
      });
    },
  },
  { propertyRuns: 300 },
);

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array([index, term]) };
}

describe("MemoryStorageEngine", () => {
  it("a crash keeps exactly the chosen prefix of pending writes, in order across groups", () => {
    const written = () => {
      const engine = new MemoryStorageEngine();
      const a = engine.replica(1);
      const b = engine.replica(2);
      a.append([entry(1, 1)]);
      engine.syncNow();
      b.append([entry(1, 4)]);
      a.append([entry(2, 1)]);
      a.setHardState({ term: 1, vote: 1, commit: 2 });
      b.append([entry(2, 4)]);
      assert.equal(engine.pendingWriteCount(), 4);
      return engine;
    };
    const expectations = [
      { keep: 0, lastA: 1, lastB: 0, commitA: 0 },
      { keep: 1, lastA: 1, lastB: 1, commitA: 0 },
      { keep: 2, lastA: 2, lastB: 1, commitA: 0 },
      { keep: 3, lastA: 2, lastB: 1, commitA: 2 },
      { keep: 4, lastA: 2, lastB: 2, commitA: 2 },
    ];
    for (const { keep, lastA, lastB, commitA } of expectations) {
      const engine = written();
      engine.crash(keep);
      assert.equal(engine.pendingWriteCount(), 0);
      assert.deepEqual(engine.groups(), lastB > 0 ? [1, 2] : [1], "groups with durable data");
      const a = engine.replica(1);
      const b = engine.replica(2);
      assert.deepEqual(
        [a.lastIndex(), b.lastIndex(), a.hardState().commit],
        [lastA, lastB, commitA],
        `keep ${keep}`,
      );
    }
  });

  it("what survived a crash is durable: a second crash keeps it", () => {
    const engine = new MemoryStorageEngine();
    engine.replica(5).append([entry(1, 1), entry(2, 1)]);
    engine.replica(5).setHardState({ term: 1, vote: 0, commit: 0 });
    engine.crash(1);
    assert.equal(engine.replica(5).lastIndex(), 2);
    engine.replica(5).append([entry(3, 1)]);
    engine.crash();
    assert.equal(engine.replica(5).lastIndex(), 2);
    assert.deepEqual(engine.replica(5).hardState(), EMPTY_HARD_STATE);
  });

  it("rejects keeping more writes than are pending", () => {
    const engine = new MemoryStorageEngine();
    engine.replica(1).append([entry(1, 1)]);
    assert.throws(() => engine.crash(2), StorageUsageError);
    assert.throws(() => engine.crash(-1), StorageUsageError);
    assert.equal(engine.pendingWriteCount(), 1);
  });

  it("handles from before a crash stop working", () => {
    const engine = new MemoryStorageEngine();
    const stale = engine.replica(1);
    stale.append([entry(1, 1)]);
    engine.crash(1);
    assert.throws(() => stale.lastIndex(), StorageUsageError);
    assert.throws(() => stale.append([entry(2, 1)]), StorageUsageError);
    assert.equal(engine.replica(1).lastIndex(), 1);
  });

  it("sync() and syncNow() empty the journal; rejected writes and no-ops are not journaled", async () => {
    const engine = new MemoryStorageEngine();
    const r = engine.replica(1);
    r.append([entry(1, 1)]);
    await engine.sync();
    assert.equal(engine.pendingWriteCount(), 0);
    assert.throws(() => r.append([entry(3, 1)]), StorageUsageError);
    r.compact(0);
    r.append([]);
    assert.equal(engine.pendingWriteCount(), 0);
    r.append([entry(2, 1)]);
    engine.syncNow();
    engine.crash();
    assert.equal(engine.replica(1).lastIndex(), 2);
  });

  it("counts writes, bytes, syncs that flushed something, and crashes", () => {
    const engine = new MemoryStorageEngine();
    const batch = [entry(1, 1), entry(2, 1)];
    engine.replica(1).append(batch);
    engine.replica(2).append([entry(1, 1)]);
    assert.throws(() => engine.replica(1).append([entry(9, 1)]), StorageUsageError);
    engine.syncNow();
    engine.syncNow();
    engine.crash();
    const stats = engine.stats();
    assert.equal(stats.writes, 2);
    assert.equal(stats.bytesWritten, entriesSize(batch) + entriesSize([entry(1, 1)]));
    assert.equal(stats.syncs, 1);
    assert.equal(stats.crashes, 1);
  });

  it("stored values handed out are frozen", () => {
    const engine = new MemoryStorageEngine();
    const r = engine.replica(1);
    r.setConfState({ voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
    assert.ok(Object.isFrozen(r.hardState()));
    assert.ok(Object.isFrozen(r.confState()));
    assert.ok(Object.isFrozen(r.confState().voters));
    assert.ok(Object.isFrozen(r.snapshot().metadata));
  });
});
