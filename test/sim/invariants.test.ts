// Unit tests for the invariant monitor: each property is fed a scenario that keeps it and one
// that breaks it, so a silent monitor cannot pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EntryType, StateRole, type ConfState, type Entry, type HardState } from "../../src/raft/types.js";
import { InvariantMonitor, type LogReader, type Violation } from "../../src/sim/invariants.js";

function monitor(): { m: InvariantMonitor; violations: Violation[] } {
  const violations: Violation[] = [];
  const m = new InvariantMonitor(
    () => 0,
    (v) => violations.push(v),
  );
  return { m, violations };
}

const THREE: ConfState = {
  voters: [1, 2, 3],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** A log holding terms[i] at index firstIndex + i; term(firstIndex - 1) is `snapshotTerm`. */
function log(terms: readonly number[], firstIndex = 1, snapshotTerm = 0): LogReader {
  return {
    firstIndex: () => firstIndex,
    lastIndex: () => firstIndex + terms.length - 1,
    term: (index) => {
      if (index === firstIndex - 1) return snapshotTerm;
      const t = terms[index - firstIndex];
      if (t === undefined) throw new Error(`no entry ${index}`);
      return t;
    },
  };
}

function entry(index: number, term: number, text: string): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

function hs(term: number, commit: number, vote = 0): HardState {
  return { term, vote, commit };
}

function startAll(m: InvariantMonitor, ids = [1, 2, 3]): void {
  for (const id of ids) m.onStart(id, 1, 0);
}

test("a leader elected with a quorum of granted votes is fine; two leaders in a term are not", () => {
  const { m, violations } = monitor();
  startAll(m);
  m.onVoteGranted(2, 1, 5);
  assert.deepEqual(m.observe(1, 5, StateRole.Leader, 0, THREE), { id: 1, term: 5 });
  assert.equal(m.observe(1, 5, StateRole.Leader, 0, THREE), null, "the same leader again is not new");
  assert.equal(violations.length, 0);
  m.onVoteGranted(3, 2, 5);
  m.observe(2, 5, StateRole.Leader, 0, THREE);
  assert.equal(violations.length, 1);
  assert.equal(violations[0]!.invariant, "election-safety");
  assert.match(violations[0]!.message, /both leader in term 5/);
});

test("a leader without a quorum of granted votes in its term is caught, joint halves included", () => {
  const { m, violations } = monitor();
  startAll(m, [1, 2, 3, 4, 5, 6]);
  m.onVoteGranted(2, 1, 4); // a grant from an earlier term does not count in term 5
  m.observe(1, 5, StateRole.Leader, 0, THREE);
  assert.equal(violations.length, 1);
  assert.match(violations[0]!.message, /without a quorum/);

  const joint: ConfState = { ...THREE, voters: [1, 2, 3], votersOutgoing: [1, 4, 5, 6] };
  m.onVoteGranted(2, 1, 6);
  m.observe(1, 6, StateRole.Leader, 0, joint);
  assert.equal(violations.length, 2, "a quorum of the incoming half alone is not enough");
  m.onVoteGranted(2, 3, 7);
  m.onVoteGranted(4, 3, 7);
  m.onVoteGranted(5, 3, 7);
  m.observe(3, 7, StateRole.Leader, 0, { ...joint, votersOutgoing: [3, 4, 5, 6] });
  assert.equal(violations.length, 2, "quorums in both halves elect");
});

test("a voter granting two candidates in one term is caught", () => {
  const { m, violations } = monitor();
  m.onVoteGranted(3, 1, 2);
  m.onVoteGranted(3, 1, 2);
  assert.equal(violations.length, 0, "a duplicated grant is the same vote");
  m.onVoteGranted(3, 2, 2);
  assert.equal(violations[0]?.invariant, "election-safety");
});

test("commit going backwards within an incarnation is caught, and durable commit across restarts", () => {
  const { m, violations } = monitor();
  m.onStart(1, 1, 0);
  m.observe(1, 1, StateRole.Follower, 5, THREE);
  m.observe(1, 1, StateRole.Follower, 7, THREE);
  assert.equal(violations.length, 0);
  m.observe(1, 1, StateRole.Follower, 6, THREE);
  assert.equal(violations[0]?.invariant, "commit-monotonic");

  m.onSynced(1, 7);
  m.onStart(1, 2, 4); // a restart below the volatile commit is fine if the durable one holds
  assert.equal(violations.length, 2);
  assert.equal(violations[1]?.invariant, "durable-commit-monotonic");
  m.onStart(1, 3, 7);
  assert.equal(violations.length, 2);
});

test("two copies of one (index, term) with different payloads break log matching", () => {
  const { m, violations } = monitor();
  m.onEntriesWritten(1, [entry(1, 1, "a"), entry(2, 1, "b")]);
  m.onEntriesWritten(2, [entry(2, 1, "b"), entry(2, 2, "other term is fine")]);
  assert.equal(violations.length, 0);
  m.onEntriesWritten(3, [entry(2, 1, "B")]);
  assert.equal(violations[0]?.invariant, "log-matching");
});

test("logs agreeing at an index must agree before it", () => {
  const { m, violations } = monitor();
  m.checkLogsAgree([
    [1, log([1, 1, 2, 3])],
    [2, log([1, 1, 2, 2, 2])],
    [3, log([2, 3], 3, 1)],
  ]);
  assert.equal(violations.length, 0, "a common prefix then divergence is allowed");
  m.checkLogsAgree([
    [1, log([1, 1, 2, 3])],
    [2, log([1, 2, 2, 3])],
  ]);
  assert.equal(violations[0]?.invariant, "log-matching");
  assert.match(violations[0].message, /agree on the term at index 4 but not at 2/);
});

test("two nodes applying different entries at one index break state-machine safety", () => {
  const { m, violations } = monitor();
  m.onApplied(1, entry(1, 1, "x"));
  m.onApplied(2, entry(1, 1, "x"));
  assert.equal(violations.length, 0);
  m.onApplied(3, entry(1, 1, "y"));
  assert.equal(violations[0]?.invariant, "state-machine-safety");
  m.onApplied(3, entry(2, 2, "z"));
  m.onWritten(1, 1, log([1, 3]), hs(3, 2));
  assert.equal(violations[1]?.invariant, "state-machine-safety", "index 2 committed at terms 2 and 3");
});

test("a new leader must hold every entry committed in an earlier term", () => {
  const { m, violations } = monitor();
  startAll(m);
  m.onWritten(2, 1, log([1, 1, 1]), hs(1, 3));
  m.onVoteGranted(3, 1, 2);
  m.observe(1, 2, StateRole.Leader, 0, THREE);
  m.onWritten(1, 1, log([1, 1]), null);
  assert.equal(violations[0]?.invariant, "leader-completeness");
  assert.match(violations[0].message, /log up to 2, but 3 was committed/);

  m.onVoteGranted(2, 3, 3);
  m.observe(3, 3, StateRole.Leader, 0, THREE);
  m.onWritten(3, 1, log([1, 1, 2, 3]), null);
  assert.equal(violations[1]?.invariant, "leader-completeness");
  assert.match(violations[1].message, /holds term 2 at index 3, committed at term 1/);

  m.onVoteGranted(1, 2, 4);
  m.observe(2, 4, StateRole.Leader, 3, THREE);
  m.onWritten(2, 1, log([1, 1, 1, 4]), null);
  assert.equal(violations.length, 2, "a complete log passes");
});

test("a leader may advance its commit only onto an entry of its own term", () => {
  const { m, violations } = monitor();
  startAll(m);
  m.onVoteGranted(2, 1, 3);
  m.observe(1, 3, StateRole.Leader, 1, THREE);
  m.onWritten(1, 1, log([1, 2, 3]), hs(3, 1, 1));
  m.onWritten(1, 1, log([1, 2, 3]), hs(3, 3, 1));
  assert.equal(violations.length, 0);
  m.onVoteGranted(3, 2, 4);
  m.observe(2, 4, StateRole.Leader, 1, THREE);
  m.onWritten(2, 1, log([1, 2, 3, 4]), hs(4, 2, 2));
  assert.equal(violations[0]?.invariant, "commit-rule");
  m.onWritten(3, 1, log([1, 2, 3]), hs(3, 2));
  assert.equal(violations.length, 1, "followers learn commits of any term");
});

test("the monitor counts elections, leader changes and the highest term", () => {
  const { m } = monitor();
  startAll(m);
  m.observe(1, 2, StateRole.Candidate, 0, THREE);
  m.onVoteGranted(2, 1, 2);
  m.observe(1, 2, StateRole.Leader, 0, THREE);
  m.observe(2, 3, StateRole.Candidate, 0, THREE);
  m.onVoteGranted(3, 2, 3);
  m.observe(2, 3, StateRole.Leader, 0, THREE);
  m.onVoteGranted(3, 2, 4);
  m.observe(2, 4, StateRole.Leader, 0, THREE);
  assert.deepEqual(m.counters, { leadersElected: 3, leaderChanges: 2, campaigns: 2, maxTerm: 4 });
});
