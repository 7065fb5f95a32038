// LmdbStorageEngine: the shared storage conformance suite and the durable-engine tests
// (durable-engine.ts), plus group commit, coalescing, reads before and after a commit, and a
// map that grows past its initial size.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { entriesFrom, observe, plainEntries } from "../../src/storage/conformance-model.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { describeDurableEngine, runDurableConformance, type OpenDurableEngine } from "./durable-engine.js";
import { withDir } from "./support.js";

const openLmdb: OpenDurableEngine = (path, logger) =>
  LmdbStorageEngine.open(logger === undefined ? { path } : { path, logger });

runDurableConformance("LmdbStorageEngine", openLmdb);
describeDurableEngine("LmdbStorageEngine", "lmdb", openLmdb);

describe("LmdbStorageEngine", () => {
  it("one sync commits the writes of every group in a single transaction", () =>
    withDir(async (dir) => {
      const engine = await LmdbStorageEngine.open({ path: dir });
      for (const groupId of [4, 8, 15, 16, 23, 42]) {
        engine.replica(groupId).append(entriesFrom(1, [1, 1, 1]));
        engine.replica(groupId).setHardState({ term: 1, vote: 1, commit: 3 });
      }
      await engine.sync();
      assert.equal(engine.stats().commits, 1);
      await engine.sync();
      assert.equal(engine.stats().commits, 1, "a sync with nothing to write commits nothing");
      await engine.close();
    }));

  it("syncs called while a commit is in flight share one follow-up commit that covers them all", () =>
    withDir(async (dir) => {
      let engine = await LmdbStorageEngine.open({ path: dir });
      const a = engine.replica(1);
      const b = engine.replica(2);
      a.append(entriesFrom(1, [1]));
      const first = engine.sync();
      b.append(entriesFrom(1, [1]));
      const second = engine.sync();
      a.append(entriesFrom(2, [1]));
      const third = engine.sync();
      b.append(entriesFrom(2, [1]));
      const fourth = engine.sync();
      await Promise.all([first, second, third, fourth]);
      assert.equal(
        engine.stats().commits,
        2,
        "the first commit, then one follow-up for the three syncs behind it",
      );
      await engine.abandon();

      engine = await LmdbStorageEngine.open({ path: dir });
      assert.deepEqual([engine.replica(1).lastIndex(), engine.replica(2).lastIndex()], [2, 2]);
      await engine.close();
    }));

  it("reads come back the same from memory before the commit and from lmdb after it", () =>
    withDir(async (dir) => {
      const engine = await LmdbStorageEngine.open({ path: dir });
      const r = engine.replica(7);
      r.append(entriesFrom(1, [1, 1, 2, 2, 3], 40));
      r.setHardState({ term: 3, vote: 1, commit: 4 });
      r.compact(2);
      r.append(entriesFrom(5, [3, 3]));
      const before = observe(r);
      const limited = plainEntries(r.entries(3, 7, 120));
      await engine.sync();
      assert.deepEqual(observe(r), before);
      assert.deepEqual(plainEntries(r.entries(3, 7, 120)), limited);
      assert.equal(limited.length, 2, "the byte limit applies the same way");
      await engine.close();
    }));

  it("grows the map past its initial size: the map size is a reservation, not a limit", () =>
    withDir(async (dir) => {
      let engine = await LmdbStorageEngine.open({ path: dir, mapSizeBytes: 1 << 20 });
      for (let index = 1; index <= 40; index++) {
        engine.replica(1).append(entriesFrom(index, [1], 256 << 10));
        await engine.sync();
      }
      await engine.close();
      engine = await LmdbStorageEngine.open({ path: dir, mapSizeBytes: 1 << 20 });
      assert.equal(engine.replica(1).lastIndex(), 40);
      assert.equal(engine.replica(1).entries(40, 41, 0)[0]?.data.byteLength, 256 << 10);
      await engine.close();
    }));
});
