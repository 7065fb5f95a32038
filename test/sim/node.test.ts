// Unit tests for one simulated node on its own: the Ready loop with disk latency, applying and
// answering, snapshots and compaction, crash (losing unsynced writes) and restart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReadOnlyOption, StateRole, type ConfState } from "../../src/raft/index.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import { InvariantMonitor, type Violation } from "../../src/sim/invariants.js";
import { KvStateMachine, type KvResult } from "../../src/sim/kv.js";
import { GROUP_ID, SimNode, type NodeEnvironment, type NodeSettings } from "../../src/sim/node.js";
import { SeededRandom } from "../../src/sim/random.js";
import { Scheduler } from "../../src/sim/scheduler.js";

const SOLO: ConfState = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

const SETTINGS: NodeSettings = {
  tickMs: 10,
  electionTick: 10,
  heartbeatTick: 2,
  preVote: false,
  checkQuorum: false,
  readOnlyOption: ReadOnlyOption.Safe,
  maxSizePerMsg: 1024,
  deferCommitNotices: false,
  maxInflightMsgs: 16,
  bugs: {},
  diskLatency: [2, 5],
  snapshotEvery: 5,
};

interface Harness {
  scheduler: Scheduler;
  node: SimNode;
  engine: MemoryStorageEngine;
  violations: Violation[];
  snapshotsTaken: number[];
  runUntil(done: () => boolean, limitMs?: number): void;
}

function harness(engine = new MemoryStorageEngine()): Harness {
  const scheduler = new Scheduler();
  const violations: Violation[] = [];
  const snapshotsTaken: number[] = [];
  const monitor = new InvariantMonitor(
    () => scheduler.now,
    (v) => violations.push(v),
  );
  const env: NodeEnvironment = {
    scheduler,
    monitor,
    send: () => assert.fail("a single-voter node has nobody to talk to"),
    touched: () => {},
    trace: () => {},
    confChangeApplied: () => {},
    snapshotInstalled: () => {},
    snapshotTaken: (_node, index) => snapshotsTaken.push(index),
  };
  const node = new SimNode(1, SETTINGS, env, new SeededRandom(9), engine);
  const runUntil = (done: () => boolean, limitMs = 5000): void => {
    const deadline = scheduler.now + limitMs;
    while (!done() && scheduler.now < deadline && scheduler.step());
    assert.ok(done(), `condition not reached by ${scheduler.now}ms`);
  };
  return { scheduler, node, engine, violations, snapshotsTaken, runUntil };
}

function startLeader(h: Harness): void {
  h.node.bootstrap(SOLO);
  h.node.start();
  h.runUntil(() => h.node.status().softState.role === StateRole.Leader);
}

/** Put `value` and wait for the answer; returns the index it was applied at. */
function put(h: Harness, seq: number, value: string): number {
  let applied: { result: KvResult; index: number } | null = null;
  h.node.propose({ kind: "put", id: { client: 7, seq }, key: "k", value }, (result, index) => {
    applied = { result, index };
  });
  h.runUntil(() => applied !== null);
  return (applied as unknown as { index: number }).index;
}

test("a proposal is applied and answered only after its entry was synced", () => {
  const h = harness();
  startLeader(h);
  const proposedAt = h.scheduler.now;
  const index = put(h, 1, "v1");
  assert.ok(
    h.scheduler.now >= proposedAt + SETTINGS.diskLatency[0],
    "answered before the disk latency passed",
  );
  assert.equal(h.node.applied, index);
  assert.equal(h.node.lastAppliedRequest(7), 1);
  let read: string | null | undefined;
  h.node.read("k", { client: 8, seq: 1 }, (value) => (read = value));
  h.runUntil(() => read !== undefined);
  assert.equal(read, "v1");
  assert.equal(h.violations.length, 0);
});

test("the node snapshots every few applied entries, which compacts its log", () => {
  const h = harness();
  startLeader(h);
  for (let seq = 1; seq <= 12; seq++) put(h, seq, `v${seq}`);
  assert.ok(h.snapshotsTaken.length >= 2, `snapshots at ${h.snapshotsTaken.join(",")}`);
  assert.equal(h.node.log.firstIndex(), h.snapshotsTaken.at(-1)! + 1);
});

test("a restart rebuilds the state machine from the snapshot and the committed entries", () => {
  const h = harness();
  startLeader(h);
  for (let seq = 1; seq <= 8; seq++) put(h, seq, `v${seq}`);
  h.runUntil(() => !h.node.hasPendingWork());
  const digest = h.node.kvDigest();
  const applied = h.node.applied;
  // Keep every unsynced write: this is about rebuilding, not about losing writes.
  h.node.crash({ intBetween: (_low, high) => high });
  assert.equal(h.node.running, false);
  h.node.start();
  h.runUntil(() => h.node.applied >= applied);
  assert.equal(h.node.kvDigest(), digest);
  assert.equal(h.violations.length, 0);
});

test("a crash before the sync loses the proposal, which is never answered", () => {
  const h = harness();
  startLeader(h);
  put(h, 1, "kept");
  let answered = false;
  h.node.propose(
    { kind: "put", id: { client: 7, seq: 2 }, key: "k", value: "lost" },
    () => (answered = true),
  );
  const { kept, pending } = h.node.crash({ intBetween: (low) => low });
  assert.equal(kept, 0);
  assert.ok(pending > 0, "the proposal's entry was written but not synced");
  h.node.start();
  h.runUntil(() => h.node.status().softState.role === StateRole.Leader);
  h.runUntil(() => !h.node.hasPendingWork(), 1000);
  assert.equal(answered, false);
  assert.equal(h.node.lastAppliedRequest(7), 1, "the unsynced put never took effect");
});

test("a node restarts from a durable snapshot ahead of its durable commit index", () => {
  const engine = new MemoryStorageEngine();
  const storage = engine.replica(GROUP_ID);
  const kv = new KvStateMachine();
  kv.apply({ kind: "put", id: { client: 3, seq: 4 }, key: "k", value: "from-snapshot" });
  storage.setHardState({ term: 2, vote: 1, commit: 0 });
  storage.saveSnapshot({ metadata: { index: 5, term: 2, confState: SOLO }, data: kv.encodeSnapshot() });
  engine.syncNow();
  const h = harness(engine);
  h.node.start();
  assert.equal(h.node.status().hardState.commit, 5, "the snapshot's index counts as committed");
  assert.equal(h.node.lastAppliedRequest(3), 4, "the state machine came from the snapshot");
  h.runUntil(() => h.node.status().softState.role === StateRole.Leader);
  assert.ok(put(h, 1, "after") > 5);
});
