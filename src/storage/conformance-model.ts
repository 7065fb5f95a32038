/**
 * Support for the storage conformance suite (test-support code, like conformance.ts): value
 * fixtures, `observe` (everything a replica exposes as plain, comparable data), and the
 * reference model behind the suite's property test. The model keeps each group's log,
 * metadata and snapshot as plain values under the rules of contracts.ts; a run applies random
 * operations to an engine and to the model and compares them. Writes reach the model's
 * "disk" only on sync; a crash must leave the engine equal to the durable model plus some
 * prefix of the unsynced writes, in write order across groups.
 */
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  EntryType,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from "../raft/types.js";
import type { EngineUnderTest } from "./conformance.js";
import { StorageUsageError, type ReplicaStorage } from "./contracts.js";

export const NO_LIMIT = Number.POSITIVE_INFINITY;

export function entry(index: number, term: number, size = 4): Entry {
  const data = new Uint8Array(size).fill((index * 31 + term) & 0xff);
  return { index, term, type: EntryType.Normal, data };
}

export function entriesFrom(first: number, terms: readonly number[], size = 4): Entry[] {
  return terms.map((term, i) => entry(first + i, term, size));
}

export function voters(...ids: number[]): ConfState {
  return { ...EMPTY_CONF_STATE, voters: ids };
}

export function snapshotAt(index: number, term: number, conf: ConfState, data: Uint8Array): Snapshot {
  return { metadata: { index, term, confState: conf }, data };
}

/** Everything a replica exposes, as plain data that compares with deepEqual. */
export interface Observation {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly termBeforeFirst: number;
  readonly entries: readonly { index: number; term: number; type: EntryType; data: number[] }[];
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly appliedIndex: number;
  readonly snapshot: { index: number; term: number; confState: ConfState; data: number[] };
}

export function plainConf(conf: ConfState): ConfState {
  return {
    voters: [...conf.voters],
    learners: [...conf.learners],
    votersOutgoing: [...conf.votersOutgoing],
    learnersNext: [...conf.learnersNext],
    autoLeave: conf.autoLeave,
  };
}

export function plainEntries(entries: readonly Entry[]): Observation["entries"] {
  return entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));
}

export function observe(replica: ReplicaStorage): Observation {
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

const MODEL_GROUPS = [3, 11] as const;

/** An operation as generated: parameters relative to the state it will meet. */
export type Operation =
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

/** Random operations, mostly valid, some aimed at a rule the engine must enforce. */
export const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
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

function modelAt(states: readonly ModelReplica[], group: number): ModelReplica {
  const state = states[group];
  if (state === undefined) throw new Error(`model: no group at position ${group}`);
  return state;
}

function withGroup(states: readonly ModelReplica[], group: number, next: ModelReplica): ModelReplica[] {
  return states.map((state, position) => (position === group ? next : state));
}

function applyToGroups(states: readonly ModelReplica[], write: ModelWrite): ModelReplica[] {
  const next = modelApply(modelAt(states, write.group), write);
  if (next === null) throw new Error(`model: an accepted write no longer applies: ${JSON.stringify(write)}`);
  return withGroup(states, write.group, next);
}

/** The states a crash may leave: the durable ones plus each prefix of the pending writes. */
function crashCandidates(durable: readonly ModelReplica[], pending: readonly ModelWrite[]): ModelReplica[][] {
  const candidates = [[...durable]];
  for (const write of pending) candidates.push(applyToGroups(candidates[candidates.length - 1]!, write));
  return candidates;
}

/**
 * Runs `ops` against the engine and the model side by side, comparing everything observable
 * after each one; after a crash the engine must match the durable model plus some prefix of
 * the unsynced writes.
 */
export async function checkAgainstModel(subject: EngineUnderTest, ops: readonly Operation[]): Promise<void> {
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
      const write = resolve(op, modelAt(visible, op.group));
      const next = modelApply(modelAt(visible, op.group), write);
      const replica = engine.replica(modelGroupId(op.group));
      if (next === null) {
        assert.throws(
          () => perform(replica, write),
          StorageUsageError,
          `expected rejection of ${JSON.stringify(write)}`,
        );
      } else {
        perform(replica, write);
        visible = withGroup(visible, op.group, next);
        pending.push(write);
      }
    }
    assert.deepEqual(observeEngine(), visible.map(observeModel), `after ${JSON.stringify(op)}`);
  }
}
