/**
 * The storage conformance suite: every StorageEngine implementation must pass it. This is
 * test-support code, not runtime code: it imports node:test and, when called, registers
 * describe/it blocks. Each engine's test file (test/storage/*.test.ts) calls
 * `runStorageConformance` with a factory that opens fresh engines for it.
 *
 * Besides example tests of each rule in contracts.ts, it runs a fast-check property: random
 * appends, compactions, hard states, snapshots, syncs and crashes over two groups, compared
 * with the plain model of conformance-model.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LogCompactedError, LogUnavailableError, entrySize } from "../raft/storage.js";
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE, type ConfState } from "../raft/types.js";
import {
  NO_LIMIT,
  checkAgainstModel,
  entriesFrom,
  entry,
  observe,
  operationArbitrary,
  plainConf,
  plainEntries,
  snapshotAt,
  voters,
} from "./conformance-model.js";
import { StorageUsageError, type StorageEngine } from "./contracts.js";

/** One engine opened for a test, with the means to crash it and to clean it up. */
export interface EngineUnderTest {
  readonly engine: StorageEngine;
  /**
   * Power loss and restart: unsynced writes may be lost (any suffix of them) and the returned
   * engine is the restarted process's view. Engines that can choose how many unsynced writes
   * survive (the in-memory one) keep min(keepHint, pending) of them; others ignore the hint.
   */
  crashAndReopen(keepHint: number): Promise<StorageEngine>;
  /** Releases whatever the engine holds (files, directories). */
  close(): Promise<void>;
}

export interface ConformanceFactory {
  /** A fresh, empty engine, independent of every other one opened. */
  open(): Promise<EngineUnderTest>;
}

export interface ConformanceOptions {
  /** Runs of the model-based property (default 100). */
  readonly propertyRuns?: number;
}

async function withEngine(
  factory: ConformanceFactory,
  body: (subject: EngineUnderTest) => Promise<void> | void,
) {
  const subject = await factory.open();
  try {
    await body(subject);
  } finally {
    await subject.close();
  }
}

export function runStorageConformance(
  name: string,
  factory: ConformanceFactory,
  options: ConformanceOptions = {},
): void {
  /** An `it` that runs `body` on a freshly opened engine and closes it afterwards. */
  const test = (title: string, body: (subject: EngineUnderTest) => Promise<void> | void): void => {
    it(title, () => withEngine(factory, body));
  };

  describe(`storage conformance: ${name}`, () => {
    describe("log", () => {
      test("a fresh replica is empty, with the dummy entry at index 0", ({ engine }) => {
        const r = engine.replica(1);
        assert.equal(r.firstIndex(), 1);
        assert.equal(r.lastIndex(), 0);
        assert.equal(r.term(0), 0);
        assert.deepEqual(r.entries(1, 1, NO_LIMIT), []);
        assert.deepEqual(r.initialState(), { hardState: EMPTY_HARD_STATE, confState: EMPTY_CONF_STATE });
        assert.equal(r.appliedIndex(), 0);
        assert.equal(r.snapshot().metadata.index, 0);
        assert.throws(() => r.term(1), LogUnavailableError);
      });

      test("appended entries read back exactly", ({ engine }) => {
        const r = engine.replica(1);
        const written = entriesFrom(1, [1, 1, 2, 3, 3], 7);
        r.append(written);
        assert.equal(r.lastIndex(), 5);
        assert.deepEqual(plainEntries(r.entries(1, 6, NO_LIMIT)), plainEntries(written));
        assert.deepEqual(plainEntries(r.entries(2, 4, NO_LIMIT)), plainEntries(written.slice(1, 3)));
        assert.deepEqual(
          [1, 2, 3, 4, 5].map((i) => r.term(i)),
          [1, 1, 2, 3, 3],
        );
        r.append(entriesFrom(6, [4]));
        assert.equal(r.lastIndex(), 6);
      });

      test("callers cannot change stored state through arguments or results", ({ engine }) => {
        const r = engine.replica(1);
        const written = entriesFrom(1, [1, 1]);
        r.append(written);
        written[0]!.data.fill(99);
        written.pop();
        const read = r.entries(1, 3, NO_LIMIT);
        read[1]!.data.fill(77);
        read.pop();
        assert.deepEqual(plainEntries(r.entries(1, 3, NO_LIMIT)), plainEntries(entriesFrom(1, [1, 1])));
        const snapData = new Uint8Array([1, 2, 3]);
        const conf = { ...EMPTY_CONF_STATE, voters: [1, 2] };
        r.setHardState({ term: 1, vote: 0, commit: 2 });
        r.saveSnapshot(snapshotAt(2, 1, conf, snapData));
        snapData.fill(0);
        conf.voters.push(9);
        r.snapshot().data.fill(0);
        assert.deepEqual(Array.from(r.snapshot().data), [1, 2, 3]);
        assert.deepEqual(r.snapshot().metadata.confState.voters, [1, 2]);
        assert.deepEqual(r.confState().voters, [1, 2]);
      });

      test("append replaces the conflicting suffix", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1, 1]));
        r.append(entriesFrom(3, [2, 2]));
        assert.equal(r.lastIndex(), 4);
        assert.deepEqual(plainEntries(r.entries(1, 5, NO_LIMIT)), plainEntries(entriesFrom(1, [1, 1, 2, 2])));
        r.append(entriesFrom(2, [3]));
        assert.equal(r.lastIndex(), 2);
        assert.equal(r.term(2), 3);
        assert.throws(() => r.term(3), LogUnavailableError);
      });

      test("append replaces a conflicting suffix that was already synced", async ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1]));
        await engine.sync();
        assert.equal(r.term(4), 1);
        r.append(entriesFrom(3, [2, 2, 2]));
        await engine.sync();
        assert.deepEqual(
          plainEntries(r.entries(1, 6, NO_LIMIT)),
          plainEntries(entriesFrom(1, [1, 1, 2, 2, 2])),
        );
        r.append(entriesFrom(2, [3]));
        assert.equal(r.term(2), 3);
        assert.throws(() => r.term(3), LogUnavailableError);
        await engine.sync();
        r.append(entriesFrom(3, [3]));
        assert.deepEqual(plainEntries(r.entries(1, 4, NO_LIMIT)), plainEntries(entriesFrom(1, [1, 3, 3])));
      });

      test("append rejects gaps, non-contiguous batches and falling terms, writing nothing", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [2, 2, 2]));
        const before = observe(r);
        assert.throws(() => r.append(entriesFrom(5, [2])), StorageUsageError);
        assert.throws(() => r.append([entry(4, 2), entry(6, 2)]), StorageUsageError);
        assert.throws(() => r.append([entry(4, 3), entry(5, 2)]), StorageUsageError);
        assert.throws(() => r.append(entriesFrom(4, [1])), StorageUsageError);
        assert.throws(() => r.append(entriesFrom(0, [1])), StorageUsageError);
        assert.deepEqual(observe(r), before);
        r.append([]);
        assert.deepEqual(observe(r), before);
      });

      test("append never truncates or replaces committed entries", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1, 1]));
        r.setHardState({ term: 1, vote: 1, commit: 3 });
        assert.throws(() => r.append(entriesFrom(3, [2, 2, 2])), StorageUsageError);
        assert.throws(() => r.append(entriesFrom(2, [1])), StorageUsageError);
        r.append(entriesFrom(2, [1, 1, 2]));
        assert.deepEqual(
          [1, 2, 3, 4].map((i) => r.term(i)),
          [1, 1, 1, 2],
        );
        assert.equal(r.lastIndex(), 4);
      });

      test("append skips entries that are already compacted", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1]));
        r.compact(3);
        r.append(entriesFrom(2, [1, 1, 2, 2]));
        assert.equal(r.firstIndex(), 4);
        assert.deepEqual(plainEntries(r.entries(4, 6, NO_LIMIT)), plainEntries(entriesFrom(4, [2, 2])));
        assert.throws(() => r.append(entriesFrom(3, [5, 5])), StorageUsageError);
        const before = observe(r);
        r.append(entriesFrom(1, [1, 1]));
        assert.deepEqual(observe(r), before, "a batch wholly below the first index changes nothing");
      });

      test("entries() honours the byte limit but returns at least one entry", ({ engine }) => {
        const r = engine.replica(1);
        const written = entriesFrom(1, [1, 1, 1, 1, 1], 10);
        r.append(written);
        const one = entrySize(written[0]!);
        assert.equal(r.entries(1, 6, 0).length, 1);
        assert.equal(r.entries(1, 6, one - 1).length, 1);
        assert.equal(r.entries(1, 6, one).length, 1);
        assert.equal(r.entries(1, 6, 2 * one).length, 2);
        assert.equal(r.entries(1, 6, 3 * one - 1).length, 2);
        assert.equal(r.entries(2, 4, 100 * one).length, 2);
        assert.equal(r.entries(1, 6, NO_LIMIT).length, 5);
        assert.deepEqual(r.entries(3, 3, 0), []);
        assert.throws(() => r.entries(4, 3, NO_LIMIT), StorageUsageError);
      });

      test("compaction keeps term(first - 1) and bounds reads on both sides", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 2, 2, 3, 3, 3, 4, 4, 4]));
        r.compact(4);
        assert.equal(r.firstIndex(), 5);
        assert.equal(r.lastIndex(), 10);
        assert.equal(r.term(4), 2);
        assert.equal(r.term(5), 3);
        assert.throws(() => r.term(3), LogCompactedError);
        assert.throws(() => r.entries(4, 6, NO_LIMIT), LogCompactedError);
        assert.throws(() => r.entries(5, 12, NO_LIMIT), LogUnavailableError);
        assert.throws(() => r.term(11), LogUnavailableError);
        assert.equal(r.entries(5, 11, NO_LIMIT).length, 6);
        const before = observe(r);
        r.compact(3);
        r.compact(4);
        assert.deepEqual(observe(r), before);
        assert.throws(() => r.compact(11), StorageUsageError);
        r.compact(10);
        assert.deepEqual([r.firstIndex(), r.lastIndex(), r.term(10)], [11, 10, 4]);
        assert.deepEqual(r.entries(11, 11, NO_LIMIT), []);
        r.append(entriesFrom(11, [5]));
        assert.deepEqual([r.firstIndex(), r.lastIndex(), r.term(11)], [11, 11, 5]);
      });
    });

    describe("metadata", () => {
      test("hard state round-trips and refuses to take promises back", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 2]));
        r.setHardState({ term: 2, vote: 3, commit: 2 });
        assert.deepEqual(r.hardState(), { term: 2, vote: 3, commit: 2 });
        assert.deepEqual(r.initialState().hardState, { term: 2, vote: 3, commit: 2 });
        assert.throws(() => r.setHardState({ term: 1, vote: 3, commit: 2 }), StorageUsageError);
        assert.throws(() => r.setHardState({ term: 2, vote: 4, commit: 2 }), StorageUsageError);
        assert.throws(() => r.setHardState({ term: 2, vote: 3, commit: 1 }), StorageUsageError);
        assert.throws(() => r.setHardState({ term: 2, vote: 3, commit: 4 }), StorageUsageError);
        assert.deepEqual(r.hardState(), { term: 2, vote: 3, commit: 2 });
        r.setHardState({ term: 3, vote: 0, commit: 3 });
        r.setHardState({ term: 3, vote: 5, commit: 3 });
        assert.deepEqual(r.hardState(), { term: 3, vote: 5, commit: 3 });
      });

      test("conf state and applied index round-trip, together or apart", ({ engine }) => {
        const r = engine.replica(1);
        const bootstrap = { ...voters(1, 2, 3), learners: [4] };
        r.setConfState(bootstrap);
        assert.deepEqual(plainConf(r.confState()), bootstrap);
        assert.deepEqual(plainConf(r.initialState().confState), bootstrap);
        r.append(entriesFrom(1, [1, 1, 1]));
        assert.throws(() => r.setAppliedIndex(1), StorageUsageError);
        r.setHardState({ term: 1, vote: 1, commit: 3 });
        r.setAppliedIndex(2);
        assert.equal(r.appliedIndex(), 2);
        assert.deepEqual(plainConf(r.confState()), bootstrap);
        const joint: ConfState = { ...voters(1, 2, 5), votersOutgoing: [1, 2, 3], autoLeave: true };
        r.setAppliedIndex(3, joint);
        assert.equal(r.appliedIndex(), 3);
        assert.deepEqual(plainConf(r.confState()), joint);
        assert.throws(() => r.setAppliedIndex(2), StorageUsageError);
        assert.throws(() => r.setAppliedIndex(4), StorageUsageError);
      });
    });

    describe("snapshots", () => {
      test("a snapshot ahead of the log resets it and round-trips", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1, 1]));
        r.setHardState({ term: 1, vote: 1, commit: 2 });
        const conf = voters(1, 2, 3);
        r.saveSnapshot(snapshotAt(8, 3, conf, new Uint8Array([5, 6, 7])));
        assert.deepEqual([r.firstIndex(), r.lastIndex(), r.term(8)], [9, 8, 3]);
        assert.deepEqual(r.entries(9, 9, NO_LIMIT), []);
        assert.throws(() => r.term(7), LogCompactedError);
        const snap = r.snapshot();
        assert.deepEqual([snap.metadata.index, snap.metadata.term], [8, 3]);
        assert.deepEqual(plainConf(snap.metadata.confState), conf);
        assert.deepEqual(Array.from(snap.data), [5, 6, 7]);
        assert.deepEqual(plainConf(r.initialState().confState), conf);
        assert.equal(r.appliedIndex(), 8);
        assert.deepEqual(r.hardState(), { term: 1, vote: 1, commit: 2 });
        r.append(entriesFrom(9, [3, 4]));
        assert.equal(r.lastIndex(), 10);
      });

      test("a snapshot the log agrees with drops only the prefix", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 2, 2, 2, 3]));
        r.setHardState({ term: 3, vote: 1, commit: 6 });
        r.setAppliedIndex(6, voters(1, 2));
        r.saveSnapshot(snapshotAt(4, 2, voters(1), new Uint8Array([1])));
        assert.deepEqual([r.firstIndex(), r.lastIndex(), r.term(4), r.term(6)], [5, 6, 2, 3]);
        assert.equal(r.snapshot().metadata.index, 4);
        assert.equal(r.appliedIndex(), 6, "an older snapshot does not move the applied index back");
        assert.deepEqual(r.confState().voters, [1, 2]);
      });

      test("a snapshot disagreeing with the log resets it, but never past committed entries", ({
        engine,
      }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1, 1, 1]));
        r.setHardState({ term: 1, vote: 1, commit: 3 });
        assert.throws(() => r.saveSnapshot(snapshotAt(3, 2, voters(1), new Uint8Array())), StorageUsageError);
        r.saveSnapshot(snapshotAt(5, 2, voters(1), new Uint8Array()));
        assert.deepEqual([r.firstIndex(), r.lastIndex(), r.term(5)], [6, 5, 2]);
      });

      test("stale snapshots and snapshots older than the compacted log are rejected", ({ engine }) => {
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1, 1, 1, 1]));
        r.setHardState({ term: 1, vote: 1, commit: 6 });
        r.saveSnapshot(snapshotAt(3, 1, voters(1), new Uint8Array()));
        const before = observe(r);
        assert.throws(() => r.saveSnapshot(snapshotAt(3, 1, voters(1), new Uint8Array())), StorageUsageError);
        assert.throws(() => r.saveSnapshot(snapshotAt(2, 1, voters(1), new Uint8Array())), StorageUsageError);
        r.compact(5);
        assert.throws(() => r.saveSnapshot(snapshotAt(4, 1, voters(1), new Uint8Array())), StorageUsageError);
        assert.deepEqual(observe(r).snapshot, before.snapshot);
      });
    });

    describe("engine", () => {
      test("replicas of one engine are isolated from each other", ({ engine }) => {
        const a = engine.replica(1);
        const b = engine.replica(70);
        a.append(entriesFrom(1, [1, 1, 1]));
        b.append(entriesFrom(1, [5]));
        a.setHardState({ term: 1, vote: 1, commit: 2 });
        b.setHardState({ term: 5, vote: 2, commit: 1 });
        a.compact(2);
        b.saveSnapshot(snapshotAt(4, 6, voters(2), new Uint8Array([4])));
        assert.deepEqual([a.firstIndex(), a.lastIndex(), a.term(3)], [3, 3, 1]);
        assert.deepEqual([b.firstIndex(), b.lastIndex(), b.term(4)], [5, 4, 6]);
        assert.deepEqual(a.hardState(), { term: 1, vote: 1, commit: 2 });
        assert.equal(a.snapshot().metadata.index, 0);
        assert.deepEqual(a.confState(), EMPTY_CONF_STATE);
        assert.deepEqual(engine.groups(), [1, 70]);
        assert.deepEqual(observe(engine.replica(70)), observe(b), "reopening a replica sees the same data");
      });

      test("synced writes of every replica survive a crash exactly (one sync covers all)", async (subject) => {
        const a = subject.engine.replica(2);
        const b = subject.engine.replica(9);
        a.append(entriesFrom(1, [1, 2, 2, 2]));
        a.setHardState({ term: 2, vote: 1, commit: 3 });
        a.setAppliedIndex(2, voters(1, 2));
        a.compact(1);
        b.setConfState(voters(7));
        b.saveSnapshot(snapshotAt(10, 4, voters(7, 8), new Uint8Array([9, 9])));
        b.append(entriesFrom(11, [4, 5]));
        const expected = [observe(a), observe(b)];
        await subject.engine.sync();
        const engine = await subject.crashAndReopen(0);
        assert.deepEqual(engine.groups(), [2, 9]);
        assert.deepEqual([observe(engine.replica(2)), observe(engine.replica(9))], expected);
      });

      test("a crash loses at most a suffix of the unsynced writes", async (subject) => {
        const r = subject.engine.replica(1);
        r.append(entriesFrom(1, [1, 1, 1]));
        r.setHardState({ term: 1, vote: 1, commit: 1 });
        await subject.engine.sync();
        const unsynced = entriesFrom(4, [2, 2, 3]);
        for (const e of unsynced) r.append([e]);
        r.setHardState({ term: 3, vote: 2, commit: 6 });
        const engine = await subject.crashAndReopen(2);
        const after = engine.replica(1);
        const last = after.lastIndex();
        assert.ok(last >= 3 && last <= 6, `last index ${last} outside [3, 6]`);
        const written = [...entriesFrom(1, [1, 1, 1]), ...unsynced];
        assert.deepEqual(
          plainEntries(after.entries(1, last + 1, NO_LIMIT)),
          plainEntries(written.slice(0, last)),
        );
        const hard = after.hardState();
        assert.ok(
          (hard.term === 1 && hard.commit === 1) || (hard.term === 3 && hard.commit === 6 && last === 6),
          `hard state ${JSON.stringify(hard)} was never written after the surviving entries`,
        );
        after.append(entriesFrom(last + 1, [3]));
        assert.equal(after.lastIndex(), last + 1);
      });
    });

    it("behaves like the model under random writes, syncs and crashes", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(operationArbitrary, { minLength: 1, maxLength: 60 }), (ops) =>
          withEngine(factory, (subject) => checkAgainstModel(subject, ops)),
        ),
        { numRuns: options.propertyRuns ?? 100 },
      );
    });
  });
}
