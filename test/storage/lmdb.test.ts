// LmdbStorageEngine: the shared storage conformance suite (a crash drops the engine without
// committing its unsynced writes and reopens the directory), plus group commit, coalescing,
// close and reopen, and a timing printout of many small syncs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runStorageConformance } from "../../src/storage/conformance.js";
import { entriesFrom, observe, plainEntries } from "../../src/storage/conformance-model.js";
import { StorageUsageError } from "../../src/storage/contracts.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { RecordingLogger, freshDir, removeDir, reportSmallSyncs, withDir } from "./support.js";

runStorageConformance(
  "LmdbStorageEngine",
  {
    open: async () => {
      const dir = freshDir();
      const logger = new RecordingLogger();
      let engine = await LmdbStorageEngine.open({ path: dir, logger });
      return {
        engine,
        crashAndReopen: async () => {
          await engine.abandon();
          engine = await LmdbStorageEngine.open({ path: dir, logger });
          return engine;
        },
        close: async () => {
          await engine.close();
          removeDir(dir);
          assert.deepEqual(logger.warnings, [], "a crash between commits never needs repairs");
        },
      };
    },
  },
  { propertyRuns: 100 },
);

describe("LmdbStorageEngine", () => {
  it("writes are readable at once, and durable only once a sync has committed them", () =>
    withDir(async (dir) => {
      let engine = await LmdbStorageEngine.open({ path: dir });
      engine.replica(1).append(entriesFrom(1, [1, 1]));
      engine.replica(2).setHardState({ term: 3, vote: 2, commit: 0 });
      assert.equal(engine.replica(1).lastIndex(), 2);
      assert.deepEqual(engine.replica(2).hardState(), { term: 3, vote: 2, commit: 0 });
      await engine.abandon();

      engine = await LmdbStorageEngine.open({ path: dir });
      assert.deepEqual(engine.groups(), [], "nothing was synced");
      engine.replica(1).append(entriesFrom(1, [1, 1]));
      engine.replica(2).setHardState({ term: 3, vote: 2, commit: 0 });
      await engine.sync();
      engine.replica(1).append(entriesFrom(3, [2]));
      await engine.abandon();

      engine = await LmdbStorageEngine.open({ path: dir });
      assert.deepEqual(engine.groups(), [1, 2]);
      assert.equal(engine.replica(1).lastIndex(), 2, "the write after the sync is lost");
      assert.deepEqual(engine.replica(2).hardState(), { term: 3, vote: 2, commit: 0 });
      await engine.close();
    }));

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

  it("close makes the pending writes durable; a closed engine refuses to be used", () =>
    withDir(async (dir) => {
      let engine = await LmdbStorageEngine.open({ path: dir });
      const r = engine.replica(3);
      r.append(entriesFrom(1, [1, 1, 1]));
      await engine.close();
      assert.throws(() => r.lastIndex(), StorageUsageError);
      assert.throws(() => engine.replica(3), StorageUsageError);
      await assert.rejects(engine.sync(), StorageUsageError);

      engine = await LmdbStorageEngine.open({ path: dir });
      assert.equal(engine.replica(3).lastIndex(), 3);
      await engine.close();
    }));

  it("refuses a second engine on a directory that is already open in this process", () =>
    withDir(async (dir) => {
      const engine = await LmdbStorageEngine.open({ path: dir });
      await assert.rejects(LmdbStorageEngine.open({ path: `${dir}/.` }), StorageUsageError);
      await engine.close();
      const again = await LmdbStorageEngine.open({ path: dir });
      await again.close();
    }));

  it("keeps large entries and snapshots intact across a restart", () =>
    withDir(async (dir) => {
      let engine = await LmdbStorageEngine.open({ path: dir });
      const big = entriesFrom(1, [1, 1], 1 << 20);
      const r = engine.replica(1);
      r.append(big);
      r.setHardState({ term: 1, vote: 1, commit: 2 });
      const image = new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff);
      r.saveSnapshot({
        metadata: { index: 2, term: 1, confState: { ...r.confState(), voters: [1] } },
        data: image,
      });
      await engine.close();

      engine = await LmdbStorageEngine.open({ path: dir });
      const after = engine.replica(1);
      assert.deepEqual(Buffer.from(after.snapshot().data), Buffer.from(image));
      assert.equal(after.firstIndex(), 3);
      assert.deepEqual(after.initialState().confState.voters, [1]);
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

  it("reports how long 1,000 syncs of 10 entries x 3 groups take (printed, not asserted)", () =>
    withDir(async (dir) => {
      const engine = await LmdbStorageEngine.open({ path: dir });
      await reportSmallSyncs("lmdb", engine);
      assert.equal(engine.stats().commits, 1000, "one commit per sync");
      await engine.close();
    }));
});
