// What opening an lmdb store checks: bytes tampered with at rest (flipped bits, missing or
// misplaced entries, foreign keys) cut a log's uncommitted tail with a warning, and refuse to
// open when committed entries or metadata are affected.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NO_LIMIT, entriesFrom, plainEntries } from "../../src/storage/conformance-model.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { StorageCorruptionError } from "../../src/storage/errors.js";
import { FORMAT_KEY, RecordKind, entryKey, frame, groupRecordKey } from "../../src/storage/lmdb/layout.js";
import { openLmdbStore, type DurableStore, type StoreWrite } from "../../src/storage/lmdb/store.js";
import { RecordingLogger, withDir } from "./support.js";

/** Group 1: entries 1..10 (terms 1,1,1,2,2,2,3,3,3,3), commit 4. Group 2: entries 1..3, commit 3. */
const GROUP_1_TERMS = [1, 1, 1, 2, 2, 2, 3, 3, 3, 3];

async function seed(dir: string): Promise<void> {
  const engine = await LmdbStorageEngine.open({ path: dir });
  const a = engine.replica(1);
  a.append(entriesFrom(1, GROUP_1_TERMS));
  a.setHardState({ term: 3, vote: 1, commit: 4 });
  const b = engine.replica(2);
  b.append(entriesFrom(1, [1, 1, 1]));
  b.setHardState({ term: 1, vote: 2, commit: 3 });
  await engine.close();
}

/** Commits raw writes straight to the store, bypassing the engine. */
async function tamper(dir: string, writes: (store: DurableStore) => StoreWrite[]): Promise<void> {
  const store = openLmdbStore({ path: dir, mapSizeBytes: 1 << 26 });
  try {
    await store.commit(writes(store));
  } finally {
    await store.close();
  }
}

function storedCopy(store: DurableStore, key: Uint8Array): Uint8Array {
  const value = store.get(key);
  assert.ok(value !== undefined, "the key to tamper with exists");
  return Uint8Array.from(value);
}

/** The value at `key` with its last byte flipped, put back without a new checksum. */
function flipLastByte(store: DurableStore, key: Uint8Array): StoreWrite {
  const value = storedCopy(store, key);
  value[value.byteLength - 1]! ^= 0x01;
  return { kind: "put", key, value };
}

function remove(key: Uint8Array): StoreWrite {
  return { kind: "deleteRange", start: key, end: Uint8Array.from([...key, 0]) };
}

async function openWithLogger(dir: string): Promise<{ engine: LmdbStorageEngine; logger: RecordingLogger }> {
  const logger = new RecordingLogger();
  return { engine: await LmdbStorageEngine.open({ path: dir, logger }), logger };
}

describe("lmdb recovery", () => {
  it("an uncommitted entry that fails its checksum cuts the log there, once and for good", () =>
    withDir(async (dir) => {
      await seed(dir);
      await tamper(dir, (store) => [flipLastByte(store, entryKey(1, 7))]);
      const { engine, logger } = await openWithLogger(dir);
      assert.equal(engine.replica(1).lastIndex(), 6);
      assert.deepEqual(
        plainEntries(engine.replica(1).entries(1, 7, NO_LIMIT)),
        plainEntries(entriesFrom(1, GROUP_1_TERMS.slice(0, 6))),
      );
      assert.equal(engine.replica(2).lastIndex(), 3, "other groups are untouched");
      assert.equal(logger.warnings.length, 1);
      assert.match(
        logger.warnings[0]!,
        /group 1: entry 7 fails its checksum; cutting the log after entry 6 \(4 stored/,
      );
      engine.replica(1).append(entriesFrom(7, [4]));
      await engine.close();

      const reopened = await openWithLogger(dir);
      assert.deepEqual(reopened.logger.warnings, [], "the cut was made durable");
      assert.equal(reopened.engine.replica(1).lastIndex(), 7, "the dropped entries 8..10 do not come back");
      assert.equal(reopened.engine.replica(1).term(7), 4);
      await reopened.engine.close();
    }));

  it("a missing uncommitted entry (a gap) cuts the log before it", () =>
    withDir(async (dir) => {
      await seed(dir);
      await tamper(dir, () => [remove(entryKey(1, 6))]);
      const { engine, logger } = await openWithLogger(dir);
      assert.equal(engine.replica(1).lastIndex(), 5);
      assert.match(logger.warnings.join("\n"), /entry 6 is missing \(the next stored entry is 7\)/);
      await engine.close();
    }));

  it("a value moved under another entry's key fails its check", () =>
    withDir(async (dir) => {
      await seed(dir);
      await tamper(dir, (store) => [
        { kind: "put", key: entryKey(1, 9), value: storedCopy(store, entryKey(1, 8)) },
      ]);
      const { engine, logger } = await openWithLogger(dir);
      assert.equal(engine.replica(1).lastIndex(), 8);
      assert.match(logger.warnings.join("\n"), /entry 9 fails its checksum/);
      await engine.close();
    }));

  it("stale entries below the log start are deleted with a warning", () =>
    withDir(async (dir) => {
      await seed(dir);
      const compacting = await LmdbStorageEngine.open({ path: dir });
      compacting.replica(1).compact(3);
      await compacting.close();
      const stale = entryKey(1, 2);
      await tamper(dir, () => [{ kind: "put", key: stale, value: frame(stale, new Uint8Array(9)) }]);
      const { engine, logger } = await openWithLogger(dir);
      assert.deepEqual([engine.replica(1).firstIndex(), engine.replica(1).lastIndex()], [4, 10]);
      assert.match(logger.warnings.join("\n"), /deleting 1 stale entries at or below 3/);
      await engine.close();
      const reopened = await openWithLogger(dir);
      assert.deepEqual(reopened.logger.warnings, []);
      await reopened.engine.close();
    }));

  it("refuses to open when a committed entry fails its checksum or is missing", () =>
    withDir(async (dir) => {
      await seed(dir);
      await tamper(dir, (store) => [flipLastByte(store, entryKey(1, 3))]);
      await assert.rejects(
        LmdbStorageEngine.open({ path: dir }),
        (error: unknown) =>
          error instanceof StorageCorruptionError &&
          /group 1: entries up to 4 are committed, but entry 3 fails its checksum/.test(error.message),
      );
      await assert.rejects(
        LmdbStorageEngine.open({ path: dir }),
        StorageCorruptionError,
        "still refused, not 'already open'",
      );
      await tamper(dir, (store) => [flipLastByte(store, entryKey(1, 3)), remove(entryKey(2, 2))]);
      await assert.rejects(
        LmdbStorageEngine.open({ path: dir }),
        /group 2: entries up to 3 are committed, but entry 2 is missing/,
      );
    }));

  it("refuses to open when a metadata record fails its checksum", () =>
    withDir(async (dir) => {
      await seed(dir);
      await tamper(dir, (store) => [flipLastByte(store, groupRecordKey(2, RecordKind.HardState))]);
      await assert.rejects(
        LmdbStorageEngine.open({ path: dir }),
        /group 2: its HardState record fails its checksum/,
      );
    }));

  it("refuses foreign keys, a missing layout marker and other layout versions", () =>
    withDir(async (dir) => {
      await seed(dir);
      const foreign = new TextEncoder().encode("not ours");
      await tamper(dir, () => [{ kind: "put", key: foreign, value: new Uint8Array([1]) }]);
      await assert.rejects(LmdbStorageEngine.open({ path: dir }), /unexpected key 6e6f74206f757273/);
      await tamper(dir, () => [remove(foreign), remove(FORMAT_KEY)]);
      await assert.rejects(LmdbStorageEngine.open({ path: dir }), /group data without a layout marker/);
      await tamper(dir, () => [
        { kind: "put", key: FORMAT_KEY, value: frame(FORMAT_KEY, new Uint8Array([0, 0, 0, 2])) },
      ]);
      await assert.rejects(
        LmdbStorageEngine.open({ path: dir }),
        /layout version 2 is not the supported version 1/,
      );
    }));
});
