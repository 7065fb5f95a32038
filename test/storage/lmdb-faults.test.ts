// Disk failures in the lmdb engine: a failed commit poisons the engine for good (never
// retried), a full disk refuses writes but keeps serving reads, and how errors are classified.
// Faults are injected in front of a real lmdb store; one test fills a real (tmpfs) disk when the
// process may mount one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { entriesFrom, observe } from "../../src/storage/conformance-model.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { DiskFullError, StorageFatalError, isDiskFull } from "../../src/storage/errors.js";
import { openLmdbStore } from "../../src/storage/lmdb/store.js";
import { FaultyStore, freshDir, removeDir, systemError, withDir } from "./support.js";

const EIO = 5;
const ENOSPC = 28;
const MDB_MAP_FULL = -30792;
const PLENTY_OF_SPACE = 2 ** 40;

/** An engine over a fault-injecting store, with the store's commit count reset after opening. */
async function openFaulty(dir: string): Promise<{ engine: LmdbStorageEngine; store: FaultyStore }> {
  const store = new FaultyStore(openLmdbStore({ path: dir, mapSizeBytes: 1 << 26 }));
  const engine = await LmdbStorageEngine.openOn(store);
  store.commitsAttempted = 0;
  return { engine, store };
}

function causedBy<T extends Error>(
  type: new (...args: never[]) => T,
  cause: Error,
): (error: unknown) => boolean {
  return (error) => error instanceof type && error.cause === cause;
}

describe("lmdb faults", () => {
  it("a failed commit poisons the engine: every later call throws StorageFatalError with the cause", () =>
    withDir(async (dir) => {
      const { engine, store } = await openFaulty(dir);
      const r = engine.replica(1);
      r.append(entriesFrom(1, [1, 1]));
      await engine.sync();
      r.append(entriesFrom(3, [1]));
      const ioError = systemError("Input/output error", EIO);
      store.failNextCommit = ioError;
      store.reportedFreeBytes = PLENTY_OF_SPACE;
      await assert.rejects(engine.sync(), causedBy(StorageFatalError, ioError));

      const fatal = causedBy(StorageFatalError, ioError);
      assert.throws(() => r.lastIndex(), fatal);
      assert.throws(() => r.entries(1, 2, 100), fatal);
      assert.throws(() => r.hardState(), fatal);
      assert.throws(() => r.append(entriesFrom(4, [1])), fatal);
      assert.throws(() => r.setHardState({ term: 1, vote: 0, commit: 0 }), fatal);
      assert.throws(() => engine.replica(2), fatal);
      assert.throws(() => engine.groups(), fatal);
      await assert.rejects(engine.sync(), fatal);
      assert.equal(store.commitsAttempted, 2, "the failed batch is never retried");
      await engine.close();
      assert.equal(store.commitsAttempted, 2, "close does not retry it either");

      const reopened = await LmdbStorageEngine.open({ path: dir });
      assert.equal(
        reopened.replica(1).lastIndex(),
        2,
        "the synced state survives, the failed batch does not",
      );
      await reopened.close();
    }));

  it("syncs queued behind a failed commit fail with it, without another commit", () =>
    withDir(async (dir) => {
      const { engine, store } = await openFaulty(dir);
      const ioError = systemError("Input/output error", EIO);
      store.failNextCommit = ioError;
      store.reportedFreeBytes = PLENTY_OF_SPACE;
      engine.replica(1).append(entriesFrom(1, [1]));
      const failing = engine.sync();
      engine.replica(2).append(entriesFrom(1, [1]));
      const queued = engine.sync();
      await assert.rejects(failing, causedBy(StorageFatalError, ioError));
      await assert.rejects(queued, causedBy(StorageFatalError, ioError));
      assert.equal(store.commitsAttempted, 1);
      await engine.close();
    }));

  for (const [label, failure, freeBytes] of [
    ["ENOSPC", systemError("No space left on device", ENOSPC), PLENTY_OF_SPACE],
    [
      "MDB_MAP_FULL",
      systemError("MDB_MAP_FULL: Environment mapsize limit reached", MDB_MAP_FULL),
      PLENTY_OF_SPACE,
    ],
    ["EIO on a filesystem with no space left", systemError("Input/output error", EIO), 0],
  ] as const) {
    it(`${label}: DiskFullError refuses writes and syncs, reads are still served`, () =>
      withDir(async (dir) => {
        const { engine, store } = await openFaulty(dir);
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1]));
        r.setHardState({ term: 1, vote: 1, commit: 2 });
        await engine.sync();
        r.append(entriesFrom(3, [2]));
        store.failNextCommit = failure;
        store.reportedFreeBytes = freeBytes;
        await assert.rejects(engine.sync(), causedBy(DiskFullError, failure));

        const seen = observe(r);
        assert.equal(seen.lastIndex, 3, "reads still see every write, including the unsynced one");
        assert.deepEqual(seen.hardState, { term: 1, vote: 1, commit: 2 });
        assert.deepEqual(engine.groups(), [1]);
        const full = causedBy(DiskFullError, failure);
        assert.throws(() => r.append(entriesFrom(4, [2])), full);
        assert.throws(() => r.compact(1), full);
        assert.throws(() => engine.replica(9).setHardState({ term: 1, vote: 0, commit: 0 }), full);
        await assert.rejects(engine.sync(), full);
        assert.equal(store.commitsAttempted, 2, "nothing is retried");
        await engine.close();

        const reopened = await LmdbStorageEngine.open({ path: dir });
        assert.equal(reopened.replica(1).lastIndex(), 2);
        await reopened.close();
      }));
  }

  it("classifies failures: ENOSPC and MDB_MAP_FULL are a full disk, EIO only when space ran out", () => {
    const askFree = (free: number) => () => free;
    assert.equal(isDiskFull(systemError("full", ENOSPC), 10, askFree(PLENTY_OF_SPACE)), true);
    assert.equal(
      isDiskFull(Object.assign(new Error("full"), { code: "ENOSPC" }), 10, askFree(PLENTY_OF_SPACE)),
      true,
    );
    assert.equal(isDiskFull(systemError("map full", MDB_MAP_FULL), 10, askFree(PLENTY_OF_SPACE)), true);
    assert.equal(
      isDiskFull(systemError("io", EIO), 1 << 20, askFree(2 << 20)),
      true,
      "no room for the batch",
    );
    assert.equal(isDiskFull(systemError("io", EIO), 1 << 20, askFree(16 << 20)), false);
    const statfsFails = () => {
      throw new Error("statfs failed");
    };
    assert.equal(isDiskFull(systemError("io", EIO), 10, statfsFails), false);
    assert.equal(isDiskFull(new Error("no code"), 10, askFree(0)), false);
    assert.equal(isDiskFull("not an error", 10, askFree(0)), false);
  });

  it("messages say what happened and what to do", () => {
    const cause = systemError("Input/output error", EIO);
    assert.match(
      new StorageFatalError(cause).message,
      /failed write or fsync.*never retried.*Input\/output error \(code 5\)/,
    );
    assert.match(new DiskFullError(cause).message, /disk full: .*refuses new writes and still serves reads/);
  });

  it(
    "fills a real disk: DiskFullError, then a restart shows every synced write",
    canMountTmpfs(),
    async () => {
      const mountPoint = freshDir();
      const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint]);
      assert.equal(mounted.status, 0, `mount failed: ${String(mounted.stderr)}`);
      try {
        const dir = join(mountPoint, "node");
        let engine = await LmdbStorageEngine.open({ path: dir, mapSizeBytes: 1 << 26 });
        const r = engine.replica(1);
        let synced = 0;
        let failure: unknown = null;
        while (failure === null && synced < 10_000) {
          r.append(entriesFrom(synced + 1, [1], 8 << 10));
          try {
            await engine.sync();
            synced++;
          } catch (error) {
            failure = error;
          }
        }
        assert.ok(failure instanceof DiskFullError, `expected DiskFullError, got ${String(failure)}`);
        assert.ok(synced > 10, `only ${synced} entries fitted`);
        assert.equal(r.entries(1, 2, 0)[0]?.data.byteLength, 8 << 10, "reads are still served");
        assert.throws(() => r.append(entriesFrom(synced + 2, [1])), DiskFullError);
        await engine.close();

        engine = await LmdbStorageEngine.open({ path: dir });
        assert.equal(engine.replica(1).lastIndex(), synced);
        await engine.close();
      } finally {
        spawnSync("umount", [mountPoint]);
        removeDir(mountPoint);
      }
    },
  );
});

/** Skips the real-disk test unless this process may mount a tmpfs (root with CAP_SYS_ADMIN). */
function canMountTmpfs(): { skip: string | false } {
  if (process.platform !== "linux" || process.getuid?.() !== 0)
    return { skip: "needs root on Linux to mount a tmpfs" };
  const probe = freshDir();
  try {
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]).status === 0;
    if (mounted) spawnSync("umount", [probe]);
    return { skip: mounted ? false : "this process may not mount a tmpfs" };
  } finally {
    rmdirSync(probe);
  }
}
