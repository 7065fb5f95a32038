// StorageEngine.dropGroup on both engines: a dropped group's log, hard state, membership,
// snapshot and applied index are gone (a later replica() starts empty), groups() stops listing
// it, other groups are untouched, handles from before refuse use, and the drop is durable only
// after a sync — a crash before it keeps the group whole, a restart after it never brings it back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  entriesFrom,
  observe,
  snapshotAt,
  voters,
  type Observation,
} from "../../src/storage/conformance-model.js";
import { StorageUsageError, type StorageEngine } from "../../src/storage/contracts.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from "../../src/raft/types.js";
import { freshDir, removeDir } from "./support.js";

/** An engine under test and its two ways of coming back: a restart, and a crash that loses unsynced writes. */
interface Subject {
  engine: StorageEngine;
  restart(): Promise<void>;
  crash(): Promise<void>;
  close(): Promise<void>;
}

function memorySubject(): Promise<Subject> {
  const engine = new MemoryStorageEngine();
  // The memory engine's disk is its durable state: a restart is a crash after everything synced.
  return Promise.resolve({
    engine,
    restart: () => {
      engine.syncNow();
      engine.crash();
      return Promise.resolve();
    },
    crash: () => {
      engine.crash();
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  });
}

async function lmdbSubject(): Promise<Subject> {
  const dir = freshDir();
  let engine = await LmdbStorageEngine.open({ path: dir });
  const subject: Subject = {
    engine,
    restart: async () => {
      await engine.close();
      engine = await LmdbStorageEngine.open({ path: dir });
      subject.engine = engine;
    },
    crash: async () => {
      await engine.abandon();
      engine = await LmdbStorageEngine.open({ path: dir });
      subject.engine = engine;
    },
    close: async () => {
      await engine.close();
      removeDir(dir);
    },
  };
  return subject;
}

const SNAPSHOT_DATA = Uint8Array.of(7, 7, 7);

/** Gives group `groupId` a snapshot, a log after it, a hard state, a membership and an applied index. */
function populate(engine: StorageEngine, groupId: number): void {
  const replica = engine.replica(groupId);
  replica.setConfState(voters(1, 2, 3));
  replica.saveSnapshot(snapshotAt(5, 2, voters(1, 2, 3), SNAPSHOT_DATA));
  replica.append(entriesFrom(6, [2, 2, 3, 3 + groupId]));
  replica.setHardState({ term: 3 + groupId, vote: 1, commit: 8 });
  replica.setAppliedIndex(7, voters(1, 2));
}

function observeGroups(engine: StorageEngine, groupIds: readonly number[]): Observation[] {
  return groupIds.map((groupId) => observe(engine.replica(groupId)));
}

/** What a group the engine has never held looks like. */
function assertEmpty(engine: StorageEngine, groupId: number): void {
  const replica = engine.replica(groupId);
  assert.equal(replica.firstIndex(), 1);
  assert.equal(replica.lastIndex(), 0);
  assert.deepEqual(replica.hardState(), EMPTY_HARD_STATE);
  assert.deepEqual(replica.confState(), EMPTY_CONF_STATE);
  assert.equal(replica.appliedIndex(), 0);
  assert.equal(replica.snapshot().metadata.index, 0);
  assert.equal(replica.snapshot().data.byteLength, 0);
}

for (const [name, open] of [
  ["MemoryStorageEngine", memorySubject],
  ["LmdbStorageEngine", lmdbSubject],
] as const) {
  describe(`${name}.dropGroup`, () => {
    it("forgets every record of the group, leaves the others alone, and stays dropped across a restart", async () => {
      const subject = await open();
      try {
        for (const groupId of [1, 2, 3]) populate(subject.engine, groupId);
        await subject.engine.sync();
        const others = observeGroups(subject.engine, [1, 3]);
        const handle = subject.engine.replica(2);

        subject.engine.dropGroup(2);
        assert.deepEqual(subject.engine.groups(), [1, 3]);
        assert.throws(() => handle.lastIndex(), StorageUsageError);
        assert.throws(() => handle.setHardState({ term: 9, vote: 1, commit: 8 }), StorageUsageError);
        assert.deepEqual(observeGroups(subject.engine, [1, 3]), others);
        await subject.engine.sync();

        await subject.restart();
        assert.deepEqual(subject.engine.groups(), [1, 3]);
        assert.deepEqual(observeGroups(subject.engine, [1, 3]), others);
        assertEmpty(subject.engine, 2);
      } finally {
        await subject.close();
      }
    });

    it("is lost whole by a crash before the sync that would have made it durable", async () => {
      const subject = await open();
      try {
        populate(subject.engine, 4);
        await subject.engine.sync();
        const before = observeGroups(subject.engine, [4]);
        subject.engine.dropGroup(4);
        assert.deepEqual(subject.engine.groups(), []);

        await subject.crash();
        assert.deepEqual(subject.engine.groups(), [4]);
        assert.deepEqual(observeGroups(subject.engine, [4]), before);
      } finally {
        await subject.close();
      }
    });

    it("lets the id start afresh: writes after the drop are all that a restart finds", async () => {
      const subject = await open();
      try {
        populate(subject.engine, 5);
        subject.engine.dropGroup(5);
        const fresh = subject.engine.replica(5);
        fresh.setConfState(voters(9));
        fresh.append(entriesFrom(1, [1]));
        await subject.engine.sync();
        const after = observeGroups(subject.engine, [5]);
        assert.equal(after[0]?.lastIndex, 1);

        await subject.restart();
        assert.deepEqual(subject.engine.groups(), [5]);
        assert.deepEqual(observeGroups(subject.engine, [5]), after);
      } finally {
        await subject.close();
      }
    });

    it("writes nothing for a group it does not hold, and refuses a bad id", async () => {
      const subject = await open();
      try {
        populate(subject.engine, 1);
        await subject.engine.sync();
        subject.engine.dropGroup(6);
        assert.deepEqual(subject.engine.groups(), [1]);
        if (subject.engine instanceof MemoryStorageEngine) {
          assert.equal(subject.engine.pendingWriteCount(), 0);
        }
        assert.throws(() => subject.engine.dropGroup(-1), StorageUsageError);
        assert.throws(() => subject.engine.dropGroup(1.5), StorageUsageError);
        assert.deepEqual(subject.engine.groups(), [1]);
      } finally {
        await subject.close();
      }
    });
  });
}
