// What a member's metrics read from its replicas and host (src/api/etcd/metrics.ts): the leader
// changes a replica sees (etcd's rule: a leader after none, or another leader), the proposals
// waiting for an answer, the commit index, the proposals that end in an error, and the applies
// that took 100 ms or more, on three hosts over virtual time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { NotLeaderError } from "../../src/node/errors.js";
import { TestCluster, put, track } from "./harness.js";

const RANGE = 1;

test("a replica counts leaders taking over; pending and failed proposals; the commit index", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const replica = (id: number) => cluster.replica(id, RANGE);
  assert.deepEqual(
    cluster.ids.map((id) => replica(id).leaderChangesSeen),
    [0, 0, 0],
  );

  // No leader yet: the proposal waits for the next turn, then fails.
  const early = track(replica(1).propose(put("early", "v")));
  assert.equal(replica(1).pendingProposals, 1);
  await cluster.runUntil(() => early.settled, "the leaderless proposal to fail");
  assert.ok(early.error instanceof NotLeaderError, `failed with ${String(early.error)}`);
  assert.equal(replica(1).pendingProposals, 0);
  assert.equal(cluster.host(1).counters.proposalsFailed, 1);

  const leaderId = await cluster.elect(RANGE);
  assert.deepEqual(
    cluster.ids.map((id) => replica(id).leaderChangesSeen),
    [1, 1, 1],
    "every replica saw one leader take over",
  );
  const written = track(replica(leaderId).propose(put("k", "v")));
  await cluster.runUntil(() => written.settled, "a put");
  assert.equal(written.error, undefined);
  await cluster.waitApplied(RANGE, replica(leaderId).appliedIndex);
  for (const id of cluster.ids) {
    assert.equal(replica(id).commitIndex, replica(leaderId).commitIndex);
    assert.equal(replica(id).appliedIndex, replica(id).commitIndex);
  }
  const failed = cluster.ids.map((id) => cluster.host(id).counters.proposalsFailed);
  assert.deepEqual(failed, [1, 0, 0], "an answered proposal is not a failed one");

  const next = cluster.ids.find((id) => id !== leaderId)!;
  const transfer = track(replica(leaderId).transferLeader(next));
  await cluster.runUntil(() => transfer.settled, "the leadership transfer");
  assert.equal(transfer.error, undefined);
  await cluster.elect(RANGE);
  assert.deepEqual(
    cluster.ids.map((id) => replica(id).leaderChangesSeen),
    [2, 2, 2],
    "every replica saw the second leader take over",
  );
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("an apply that takes 100 ms or more is counted as slow, on the host where it was slow", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leaderId = await cluster.elect(RANGE);
  const slowApplies = () => cluster.ids.map((id) => cluster.host(id).counters.slowApplies);
  const write = async (key: string) => {
    const written = track(cluster.replica(leaderId, RANGE).propose(put(key, "v")));
    await cluster.runUntil(() => written.settled, `the put of ${key}`);
    assert.equal(written.error, undefined);
    await cluster.waitApplied(RANGE, cluster.replica(leaderId, RANGE).appliedIndex);
  };
  await write("quick");
  assert.deepEqual(slowApplies(), [0, 0, 0]);

  // On the leader only, applying the next put takes 99 ms, then the one after 100 ms.
  let applyTakesMs = 99;
  cluster.replica(leaderId, RANGE).addApplyListener({ onCommand: () => cluster.time.elapse(applyTakesMs) });
  await write("almost slow");
  assert.deepEqual(slowApplies(), [0, 0, 0]);
  applyTakesMs = 100;
  await write("slow");
  assert.deepEqual(
    slowApplies(),
    cluster.ids.map((id) => (id === leaderId ? 1 : 0)),
  );
  await cluster.shutdown();
});
