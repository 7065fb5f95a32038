// Proposals that cannot succeed must fail, with the right kind of error, and never hang or
// report a success that did not happen: a partitioned old leader's proposals, a follower's
// proposal forwarded into the void, proposals with no leader at all.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AmbiguousResultError, NotLeaderError, ProposalDroppedError } from "../../src/node/errors.js";
import { StateRole, type NodeId } from "../../src/raft/types.js";
import { TestCluster, get, put, track, type Tracked } from "./harness.js";

const RANGE = 1;

function isolate(cluster: TestCluster, node: NodeId): void {
  for (const id of cluster.ids) {
    if (id === node) continue;
    cluster.network.cut(id, node);
    cluster.network.cut(node, id);
  }
}

function settledAll(tracked: readonly Tracked<unknown>[]): boolean {
  return tracked.every((t) => t.settled);
}

test("proposals on a partitioned old leader are reported overwritten (retryable), never a success", async () => {
  const cluster = new TestCluster([1, 2, 3], { proposalTimeoutMs: 60_000 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const oldLeader = await cluster.elect(RANGE);
  const applied = new Map<NodeId, string[]>();
  for (const id of cluster.ids) {
    const seen: string[] = [];
    applied.set(id, seen);
    cluster
      .replica(id, RANGE)
      .addApplyListener({ onCommand: ({ envelope }) => seen.push(envelope.clientId) });
  }

  isolate(cluster, oldLeader);
  const doomed = [1, 2, 3].map((sequence) =>
    track(
      cluster.replica(oldLeader, RANGE).propose(put("x", `old${sequence}`), { clientId: "old", sequence }),
    ),
  );
  const others = cluster.ids.filter((id) => id !== oldLeader);
  await cluster.runUntil(() => {
    const leader = cluster.leader(RANGE);
    return leader !== null && leader !== oldLeader;
  }, "a new leader on the majority side");
  const newLeader = cluster.leader(RANGE)!;
  // The new leader writes enough to take every log index the old leader used.
  const fresh = [1, 2, 3].map((sequence) =>
    track(
      cluster.replica(newLeader, RANGE).propose(put("x", `new${sequence}`), { clientId: "new", sequence }),
    ),
  );
  await cluster.runUntil(() => settledAll(fresh), "the new leader's writes");
  assert.ok(fresh.every((t) => t.error === undefined));
  await cluster.runUntil(
    () => cluster.replica(oldLeader, RANGE).status().role !== StateRole.Leader,
    "the old leader stepping down (check-quorum)",
  );
  assert.equal(doomed.filter((t) => t.settled).length, 0, "nothing decided while partitioned");

  cluster.network.healAll();
  await cluster.runUntil(() => settledAll(doomed), "the old leader's proposals decided");
  for (const t of doomed) {
    assert.ok(t.error instanceof ProposalDroppedError, `got ${String(t.error)}`);
    assert.equal(t.error.retryable, true);
  }
  await cluster.tick(3);
  for (const id of cluster.ids) {
    assert.equal(await get(cluster.replica(id, RANGE), "x"), "new3");
    assert.deepEqual(applied.get(id), ["new", "new", "new"], `node ${id} applied only the new leader's`);
  }
  assert.ok(others.includes(newLeader));
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a proposal forwarded to a leader that cannot be reached ends ambiguous after the timeout", async () => {
  const cluster = new TestCluster([1, 2, 3], { proposalTimeoutMs: 500 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const follower = cluster.ids.find((id) => id !== leader)!;
  cluster.network.cut(follower, leader);
  const lost = track(cluster.replica(follower, RANGE).propose(put("k", "v")));
  await cluster.runUntil(() => lost.settled, "the forwarded proposal timing out");
  assert.ok(lost.error instanceof AmbiguousResultError, `got ${String(lost.error)}`);
  assert.equal(lost.error.retryable, false);
  assert.equal(cluster.host(follower).counters.proposalsTimedOut, 1);
  await cluster.shutdown();
});

test("without a leader, proposals and linearizable reads fail at once as NotLeader; serializable reads work", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const replica = cluster.replica(1, RANGE);
  const write = track(replica.propose(put("k", "v")));
  const read = track(get(replica, "k", "linearizable"));
  await cluster.settle();
  assert.ok(write.error instanceof NotLeaderError);
  assert.equal(write.error.retryable, true);
  assert.ok(read.error instanceof NotLeaderError);
  assert.equal(await get(replica, "k", "serializable"), null);
  await cluster.shutdown();
});

test("an isolated leader that stepped down refuses new proposals as NotLeader", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const oldLeader = await cluster.elect(RANGE);
  isolate(cluster, oldLeader);
  await cluster.runUntil(
    () => cluster.replica(oldLeader, RANGE).status().role !== StateRole.Leader,
    "the old leader stepping down",
  );
  const refused = track(cluster.replica(oldLeader, RANGE).propose(put("k", "v")));
  await cluster.settle();
  assert.ok(refused.error instanceof NotLeaderError, `got ${String(refused.error)}`);
  await cluster.shutdown();
});
