/**
 * The storage conformance suite: every StorageEngine implementation must pass it. This is
 * test-support code, not runtime code: it imports node:test and, when called, registers
 * describe/it blocks. Each engine's test file (test/storage/*.test.ts) calls
 * `runStorageConformance` with a factory that opens fresh engines for it.
 *
 * Besides example tests of each rule in contracts.ts, it runs a fast-check property: random
 * appends, compactions, hard states, snapshots, syncs and crashes over two groups, compared
 * with a plain model. After a crash the engine must look exactly like the model after the
 * synced writes plus some prefix of the unsynced ones, in write order across both groups.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { LogCompactedError, LogUnavailableError, entrySize } from "../raft/storage.js";
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  EntryType,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from "../raft/types.js";
import { StorageUsageError, type ReplicaStorage, type StorageEngine } from "./contracts.js";

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

const NO_LIMIT = Number.POSITIVE_INFINITY;

function entry(index: number, term: number, size = 4): Entry {
  const data = new Uint8Array(size).fill((index * 31 + term) & 0xff);
  return { index, term, type: EntryType.Normal, data };
}

function entriesFrom(first: number, terms: readonly number[], size = 4): Entry[] {
  return terms.map((term, i) => entry(first + i, term, size));
}

function voters(...ids: number[]): ConfState {
  return { ...EMPTY_CONF_STATE, voters: ids };
}

function snapshotAt(index: number, term: number, conf: ConfState, data: Uint8Array): Snapshot {
  return { metadata: { index, term, confState: conf }, data };
}

/** Everything a replica exposes, as plain data that compares with deepEqual. */
interface Observation {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly termBeforeFirst: number;
  readonly entries: readonly { index: number; term: number; type: EntryType; data: number[] }[];
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly appliedIndex: number;
  readonly snapshot: { index: number; term: number; confState: ConfState; data: number[] };
}

function plainConf(conf: ConfState): ConfState {
  return {
    voters: [...conf.voters],
    learners: [...conf.learners],
    votersOutgoing: [...conf.votersOutgoing],
    learnersNext: [...conf.learnersNext],
    autoLeave: conf.autoLeave,
  };
}

function plainEntries(entries: readonly Entry[]): Observation["entries"] {
  return entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));
}

function observe(replica: ReplicaStorage): Observation {
  const first = replica.firstIndex();
  const last = replica.lastIndex();
  const hard = replica.hardState();
  const snap = replica.snapshot();
  return {
    firstIndex: first,
    lastIndex: last,
    termBeforeFirst: replica.term(first - 1),
    entries: plainEntries(replica.entries(first, last + 1, NO_LIMIT)),
    hardState: { term: hard.term, vote: hard.vote, commit: hard.commit },
    confState: plainConf(replica.confState()),
    appliedIndex: replica.appliedIndex(),
    snapshot: {
      index: snap.metadata.index,
      term: snap.metadata.term,
      confState: plainConf(snap.metadata.confState),
      data: Array.from(snap.data),
    },
  };
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

// ---- the model-based property ----

const MODEL_GROUPS = [3, 11] as const;

/** An operation as generated: parameters relative to the state it will meet. */
type Operation =
  | {
      kind: "append";
      group: number;
      back: number;
      count: number;
      termBump: number;
      size: number;
      gap: boolean;
    }
  | { kind: "compact"; group: number; back: number }
  | { kind: "hardState"; group: number; termBump: number; vote: number; commitStep: number }
  | { kind: "snapshot"; group: number; ahead: number; conflict: boolean; size: number }
  | { kind: "sync" }
  | { kind: "crash"; keep: number };

const groupArbitrary = fc.constantFrom(0, 1);

function modelGroupId(group: number): number {
  const groupId = MODEL_GROUPS[group];
  if (groupId === undefined) throw new Error(`model: no group at position ${group}`);
  return groupId;
}

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      group: groupArbitrary,
      back: fc.nat(4),
      count: fc.integer({ min: 1, max: 4 }),
      termBump: fc.nat(2),
      size: fc.nat(24),
      gap: fc.nat(5).map((n) => n === 0),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("compact" as const),
      group: groupArbitrary,
      back: fc.integer({ min: -1, max: 6 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("hardState" as const),
      group: groupArbitrary,
      termBump: fc.nat(1),
      vote: fc.nat(3),
      commitStep: fc.nat(3),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("snapshot" as const),
      group: groupArbitrary,
      ahead: fc.integer({ min: -4, max: 2 }),
      conflict: fc.boolean(),
      size: fc.nat(8),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("sync" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("crash" as const), keep: fc.nat(12) }) },
);

/** A replica as the model sees it: the rules of contracts.ts over plain values. */
interface ModelReplica {
  readonly offset: number;
  readonly offsetTerm: number;
  readonly log: readonly Entry[];
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly appliedIndex: number;
  readonly snapshot: Snapshot;
}

const EMPTY_MODEL: ModelReplica = {
  offset: 0,
  offsetTerm: 0,
  log: [],
  hardState: EMPTY_HARD_STATE,
  confState: EMPTY_CONF_STATE,
  appliedIndex: 0,
  snapshot: snapshotAt(0, 0, EMPTY_CONF_STATE, new Uint8Array()),
};

/** A write with concrete values, addressed to MODEL_GROUPS[group]. */
type ModelWrite =
  | { kind: "append"; group: number; entries: Entry[] }
  | { kind: "compact"; group: number; index: number }
  | { kind: "hardState"; group: number; hardState: HardState }
  | { kind: "snapshot"; group: number; snapshot: Snapshot };

function modelLast(m: ModelReplica): number {
  return m.offset + m.log.length;
}

/** The term at `index`, or undefined where the model holds no entry (compacted or beyond). */
function modelTerm(m: ModelReplica, index: number): number | undefined {
  if (index === m.offset) return m.offsetTerm;
  return index > m.offset ? m.log[index - m.offset - 1]?.term : undefined;
}

function modelCompact(m: ModelReplica, index: number): ModelReplica {
  const offsetTerm = modelTerm(m, index);
  if (offsetTerm === undefined) throw new Error(`model: compacting to ${index} outside the log`);
  return { ...m, offset: index, offsetTerm, log: m.log.slice(index - m.offset) };
}

/** The state after `write`, or null when the contract says the write must be rejected. */
function modelApply(m: ModelReplica, write: ModelWrite): ModelReplica | null {
  switch (write.kind) {
    case "append": {
      const start = write.entries[0]?.index;
      if (start === undefined) throw new Error("model: empty append generated");
      if (start > modelLast(m) + 1) return null;
      return { ...m, log: [...m.log.slice(0, start - m.offset - 1), ...write.entries] };
    }
    case "compact":
      if (write.index > modelLast(m)) return null;
      return write.index <= m.offset ? m : modelCompact(m, write.index);
    case "hardState": {
      const next = write.hardState;
      const current = m.hardState;
      const rejected =
        next.term < current.term ||
        (next.term === current.term && current.vote !== 0 && next.vote !== current.vote) ||
        next.commit < current.commit ||
        next.commit > modelLast(m);
      return rejected ? null : { ...m, hardState: next };
    }
    case "snapshot": {
      const { index, term, confState } = write.snapshot.metadata;
      if (index <= m.snapshot.metadata.index || index < m.offset) return null;
      const holds = modelTerm(m, index) === term;
      if (!holds && (index <= m.hardState.commit || index === m.offset)) return null;
      const log = holds ? modelCompact(m, index) : { ...m, offset: index, offsetTerm: term, log: [] };
      const applied = index > m.appliedIndex ? { appliedIndex: index, confState } : {};
      return { ...log, snapshot: write.snapshot, ...applied };
    }
  }
}

/** Turns a generated operation into a concrete write, valid unless the operation aims to break a rule. */
function resolve(op: Exclude<Operation, { kind: "sync" | "crash" }>, m: ModelReplica): ModelWrite {
  const last = modelLast(m);
  const lastTerm = modelTerm(m, last) ?? 0;
  switch (op.kind) {
    case "append": {
      const lowest = Math.max(m.offset + 1, m.hardState.commit + 1);
      const start = op.gap ? last + 2 : Math.max(lowest, last + 1 - op.back);
      const term = Math.max(1, (modelTerm(m, start - 1) ?? lastTerm) + op.termBump);
      const entries = Array.from({ length: op.count }, (_, k) => entry(start + k, term, op.size));
      return { kind: "append", group: op.group, entries };
    }
    case "compact":
      return { kind: "compact", group: op.group, index: Math.max(0, last - op.back) };
    case "hardState": {
      const current = m.hardState;
      const hardState = {
        term: current.term + op.termBump,
        vote: op.vote === 0 ? current.vote : op.vote,
        commit: current.commit + op.commitStep,
      };
      return { kind: "hardState", group: op.group, hardState };
    }
    case "snapshot": {
      const index = Math.max(0, last + op.ahead);
      const term = Math.max(1, (modelTerm(m, index) ?? lastTerm) + (op.conflict ? 1 : 0));
      const data = new Uint8Array(op.size).fill(index & 0xff);
      return {
        kind: "snapshot",
        group: op.group,
        snapshot: snapshotAt(index, term, voters((index % 5) + 1), data),
      };
    }
  }
}

function perform(replica: ReplicaStorage, write: ModelWrite): void {
  switch (write.kind) {
    case "append":
      replica.append(write.entries);
      return;
    case "compact":
      replica.compact(write.index);
      return;
    case "hardState":
      replica.setHardState(write.hardState);
      return;
    case "snapshot":
      replica.saveSnapshot(write.snapshot);
      return;
  }
}

function observeModel(m: ModelReplica): Observation {
  const snap = m.snapshot;
  return {
    firstIndex: m.offset + 1,
    lastIndex: modelLast(m),
    termBeforeFirst: m.offsetTerm,
    entries: plainEntries(m.log),
    hardState: { ...m.hardState },
    confState: plainConf(m.confState),
    appliedIndex: m.appliedIndex,
    snapshot: {
      index: snap.metadata.index,
      term: snap.metadata.term,
      confState: plainConf(snap.metadata.confState),
      data: Array.from(snap.data),
    },
  };
}

function applyToGroups(states: readonly ModelReplica[], write: ModelWrite): ModelReplica[] {
  const current = states[write.group];
  const next = current === undefined ? null : modelApply(current, write);
  if (next === null) throw new Error(`model: an accepted write no longer applies: ${JSON.stringify(write)}`);
  return states.map((state, group) => (group === write.group ? next : state));
}

/** The states a crash may leave: the durable ones plus each prefix of the pending writes. */
function crashCandidates(durable: readonly ModelReplica[], pending: readonly ModelWrite[]): ModelReplica[][] {
  const candidates = [[...durable]];
  for (const write of pending) candidates.push(applyToGroups(candidates[candidates.length - 1]!, write));
  return candidates;
}

async function checkAgainstModel(subject: EngineUnderTest, ops: readonly Operation[]): Promise<void> {
  let engine = subject.engine;
  let durable: ModelReplica[] = MODEL_GROUPS.map(() => EMPTY_MODEL);
  let visible = durable;
  let pending: ModelWrite[] = [];
  const observeEngine = () => MODEL_GROUPS.map((groupId) => observe(engine.replica(groupId)));
  for (const op of ops) {
    if (op.kind === "sync") {
      await engine.sync();
      durable = visible;
      pending = [];
    } else if (op.kind === "crash") {
      engine = await subject.crashAndReopen(op.keep);
      const seen = observeEngine();
      const survivor = crashCandidates(durable, pending).find((states) =>
        isDeepStrictEqual(states.map(observeModel), seen),
      );
      assert.ok(
        survivor,
        `after a crash the engine matches no prefix of the ${pending.length} unsynced writes: ${JSON.stringify(seen)}`,
      );
      durable = survivor;
      visible = survivor;
      pending = [];
    } else {
      const before = visible[op.group] ?? EMPTY_MODEL;
      const write = resolve(op, before);
      const replica = engine.replica(modelGroupId(op.group));
      if (modelApply(before, write) === null) {
        assert.throws(
          () => perform(replica, write),
          StorageUsageError,
          `expected rejection of ${JSON.stringify(write)}`,
        );
      } else {
        perform(replica, write);
        visible = applyToGroups(visible, write);
        pending.push(write);
      }
    }
    assert.deepEqual(observeEngine(), visible.map(observeModel), `after ${JSON.stringify(op)}`);
  }
}
