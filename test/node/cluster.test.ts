// Three NodeHosts on virtual time: election, writes through the leader and through followers,
// linearizable reads on a follower, at-most-once application of a request proposed twice, and
// the batching of proposals made together.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rangeRequest } from "../../src/kv/commands.js";
import type { CommandResult } from "../../src/kv/results.js";
import type { AppliedCommand } from "../../src/node/types.js";
import { StateRole, type NodeId } from "../../src/raft/types.js";
import { TestCluster, b, get, put, putRevision, track } from "./harness.js";

const RANGE = 1;

async function startedCluster(): Promise<TestCluster> {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  return cluster;
}

function followerOf(cluster: TestCluster, leader: NodeId): NodeId {
  return cluster.ids.find((id) => id !== leader)!;
}

/** Records, per node, the request ids its state machine applied (not counting dedup answers). */
function recordApplies(cluster: TestCluster): Map<NodeId, string[]> {
  const applied = new Map<NodeId, string[]>();
  for (const id of cluster.ids) {
    const seen: string[] = [];
    applied.set(id, seen);
    cluster.replica(id, RANGE).addApplyListener({
      onCommand: ({ envelope, outcome }: AppliedCommand) => {
        if (!outcome.duplicate) seen.push(`${envelope.clientId}#${envelope.sequence}`);
      },
    });
  }
  return applied;
}

test("three hosts elect exactly one leader, and all agree on it", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  await cluster.tick(3);
  const statuses = cluster.ids.map((id) => cluster.replica(id, RANGE).status());
  assert.equal(statuses.filter((st) => st.role === StateRole.Leader).length, 1);
  for (const st of statuses) {
    assert.equal(st.leader, leader);
    assert.equal(st.term, statuses[0]!.term);
  }
  assert.deepEqual(
    cluster
      .replica(leader, RANGE)
      .status()
      .progress.map((p) => p.nodeId),
    [1, 2, 3],
  );
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("puts through the leader and through a follower apply on every node, once each", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  const follower = followerOf(cluster, leader);
  const applied = recordApplies(cluster);

  const viaLeader = track(cluster.replica(leader, RANGE).propose(put("a", "1")));
  const viaFollower = track(cluster.replica(follower, RANGE).propose(put("b", "2")));
  await cluster.runUntil(() => viaLeader.settled && viaFollower.settled, "both puts answered");
  assert.equal(viaLeader.error, undefined);
  assert.equal(viaFollower.error, undefined);
  assert.ok(putRevision(viaFollower.value) !== putRevision(viaLeader.value));

  await cluster.tick(3);
  for (const id of cluster.ids) {
    const replica = cluster.replica(id, RANGE);
    assert.equal(await get(replica, "a"), "1");
    assert.equal(await get(replica, "b"), "2");
    assert.equal(applied.get(id)!.length, 2, `node ${id} applied each put once`);
  }
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a follower's proposal is stamped by the leader's clock, not the follower's", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  // Every node's wall clock is an hour off, each by a different amount.
  const HOUR = 3_600_000;
  for (const id of cluster.ids) cluster.wallSkewMs.set(id, id * HOUR);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const follower = followerOf(cluster, leader);
  const stamps: bigint[] = [];
  cluster.replica(leader, RANGE).addApplyListener({
    onCommand: ({ envelope }) => stamps.push(envelope.timestamp),
  });
  const write = track(cluster.replica(follower, RANGE).propose(put("k", "v")));
  await cluster.runUntil(() => write.settled, "the forwarded put answered");
  assert.equal(write.error, undefined);
  assert.equal(stamps.length, 1);
  const wallMillis = Number(stamps[0]! >> 16n);
  const leaderWall = cluster.time.wall() + leader * HOUR;
  assert.ok(leaderWall - 60_000 <= wallMillis && wallMillis <= leaderWall, `stamp ${wallMillis}`);
  assert.equal(putRevision(write.value), stamps[0]);
  await cluster.shutdown();
});

test("a linearizable read on a follower sees a write acknowledged before it started", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  const follower = followerOf(cluster, leader);

  const write = track(cluster.replica(leader, RANGE).propose(put("x", "new")));
  // Stop the moment the leader acknowledges: the follower has not heard of the commit yet.
  await cluster.runUntil(() => write.settled, "the write acknowledged");
  assert.equal(write.error, undefined);
  const followerReplica = cluster.replica(follower, RANGE);
  assert.equal(await get(followerReplica, "x", "serializable"), null, "the follower is still behind");

  const read = track(get(followerReplica, "x", "linearizable"));
  await cluster.runUntil(() => read.settled, "the follower's linearizable read");
  assert.equal(read.error, undefined);
  assert.equal(read.value, "new");
  await cluster.shutdown();
});

test("reads that arrive together share one ReadIndex round", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  const follower = cluster.replica(followerOf(cluster, leader), RANGE);
  const done = track(cluster.replica(leader, RANGE).propose(put("r", "1")));
  await cluster.runUntil(() => done.settled, "the write");

  const counters = cluster.host(follower.nodeId).counters;
  const requestsBefore = counters.readIndexRequests;
  const reads = Array.from({ length: 20 }, () => track(get(follower, "r", "linearizable")));
  await cluster.runUntil(() => reads.every((r) => r.settled), "twenty reads");
  assert.deepEqual(
    reads.map((r) => r.value),
    reads.map(() => "1"),
  );
  assert.equal(counters.readIndexRequests - requestsBefore, 1, "one ReadIndex request for all twenty");
  await cluster.shutdown();
});

test("the same (clientId, sequence) proposed twice applies once and both callers get its result", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  const follower = followerOf(cluster, leader);
  const applied = recordApplies(cluster);
  const request = { clientId: "client-7", sequence: 1 };

  // Together (one through each node), then once more after both were answered.
  const first = track(cluster.replica(leader, RANGE).propose(put("d", "once"), request));
  const second = track(cluster.replica(follower, RANGE).propose(put("d", "once"), request));
  await cluster.runUntil(() => first.settled && second.settled, "both copies answered");
  const retry = track(cluster.replica(leader, RANGE).propose(put("d", "once"), request));
  await cluster.runUntil(() => retry.settled, "the retry answered");

  const results = [first, second, retry].map((t) => t.value as CommandResult);
  assert.ok(results.every((r) => r !== undefined));
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  await cluster.tick(3);
  for (const id of cluster.ids) {
    assert.deepEqual(applied.get(id), ["client-7#1"], `node ${id} applied the request once`);
    const read = await cluster.replica(id, RANGE).range(rangeRequest({ key: b("d") }), "serializable");
    assert.equal(read.kvs[0]?.version, 1n);
  }
  await cluster.shutdown();
});

test("proposals made together go out in one turn and share one sync on the leader", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  await cluster.tick(2);
  const host = cluster.host(leader);
  const replica = cluster.replica(leader, RANGE);
  const syncsBefore = host.counters.syncs;
  const lastIndexBefore = replica.status().lastIndex;
  const writes = Array.from({ length: 25 }, (_, i) => track(replica.propose(put(`k${i}`, `${i}`))));
  await cluster.settle(() => host.counters.syncs > syncsBefore);
  // At the first sync after proposing, all 25 entries were already in the log.
  assert.equal(replica.status().lastIndex, lastIndexBefore + 25);
  await cluster.runUntil(() => writes.every((w) => w.settled), "25 writes");
  assert.ok(writes.every((w) => w.error === undefined));
  await cluster.shutdown();
});

test("a proposal with an empty client id is refused: results are matched by request id", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  await assert.rejects(
    cluster.replica(leader, RANGE).propose(put("z", "1"), { clientId: "", sequence: 0 }),
    RangeError,
  );
  await cluster.shutdown();
});

test("a follower's ReadIndex request lost on the way is sent again, and its read served", async () => {
  const cluster = await startedCluster();
  const leader = await cluster.elect(RANGE);
  const follower = followerOf(cluster, leader);
  const done = track(cluster.replica(leader, RANGE).propose(put("r", "1")));
  await cluster.runUntil(() => done.settled, "the write");

  // The request leaves the follower while its link to the leader is down: nothing answers
  // it, and (as a leader that steps down) nothing says it was lost.
  cluster.network.cut(follower, leader);
  const read = track(get(cluster.replica(follower, RANGE), "r", "linearizable"));
  await cluster.tick(1);
  assert.equal(read.settled, false);
  cluster.network.heal(follower, leader);
  await cluster.runUntil(() => read.settled, "the read");
  assert.equal(read.error, undefined);
  assert.equal(read.value, "1");
  assert.ok(cluster.host(follower).counters.readIndexResends >= 1);
  await cluster.shutdown();
});
