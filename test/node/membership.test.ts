// Configuration changes through a running cluster: a joining node is added as a learner (and
// caught up by snapshot), promoted to voter, an old member removed (and only it is told so); the membership is
// recorded with the applied index, so a restarted node starts with it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ProposalDroppedError } from "../../src/node/errors.js";
import { TestCluster, get, put, track, type Tracked } from "./harness.js";

const RANGE = 1;

async function answered<T>(cluster: TestCluster, promise: Promise<T>, what: string): Promise<T> {
  const tracked: Tracked<T> = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  if (tracked.error !== undefined) throw tracked.error as Error;
  return tracked.value as T;
}

test("a node joins as a learner, is promoted to voter, and an old member is removed", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 4 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  for (let i = 0; i < 10; i++)
    await answered(cluster, cluster.replica(leader, RANGE).propose(put(`k${i}`, "v")), "a put");

  const joiner = await cluster.startNode(4);
  const joined = joiner.createReplica(RANGE, { join: true });
  assert.deepEqual(joined.status().confState.voters, []);
  const asLearner = await answered(cluster, cluster.replica(leader, RANGE).addLearner(4), "add learner");
  assert.deepEqual(asLearner.learners, [4]);
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  assert.ok(joiner.counters.snapshotsRestored > 0, "the learner was caught up by a snapshot");
  assert.equal(await get(joined, "k9"), "v");

  // Proposed through a follower: forwarded to the leader, answered when applied here.
  const follower = cluster.ids.find((id) => id !== leader)!;
  const promoted = await answered(cluster, cluster.replica(follower, RANGE).addVoter(4), "promote");
  assert.deepEqual([...promoted.voters].sort(), [1, 2, 3, 4]);
  assert.deepEqual(promoted.learners, []);

  const removed = cluster.ids.find((id) => id !== leader && id !== follower)!;
  const toldRemoved = new Set<number>();
  for (const id of [...cluster.ids, 4]) cluster.replica(id, RANGE).onRemoved(() => toldRemoved.add(id));
  const afterRemoval = await answered(cluster, cluster.replica(leader, RANGE).removeNode(removed), "remove");
  assert.deepEqual(
    [...afterRemoval.voters].sort(),
    [1, 2, 3, 4].filter((id) => id !== removed),
  );
  // The removed member hears it from the commit the leader sends it; nobody else is told.
  await cluster.runUntil(() => toldRemoved.has(removed), "the removed member applies its removal");
  assert.deepEqual([...toldRemoved], [removed]);
  await cluster.stopNode(removed);

  await answered(
    cluster,
    cluster.replica(4, RANGE).propose(put("after", "change")),
    "a put via the new voter",
  );
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  assert.equal(await get(cluster.replica(4, RANGE), "after"), "change");

  // The membership was recorded with its applied index: a restart starts from it.
  await cluster.stopNode(4);
  const restarted = await cluster.startNode(4);
  const [reopened] = restarted.openStoredReplicas();
  assert.deepEqual([...reopened!.status().confState.voters].sort(), [...afterRemoval.voters].sort());
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a second configuration change while one is pending is refused, retryably", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  await cluster.tick(2);
  const replica = cluster.replica(leader, RANGE);
  const first = track(replica.addLearner(4));
  const second = track(replica.addLearner(5));
  await cluster.runUntil(() => first.settled && second.settled, "both answered");
  assert.equal(first.error, undefined);
  assert.ok(second.error instanceof ProposalDroppedError, `got ${String(second.error)}`);
  assert.equal(second.error.retryable, true);
  await cluster.shutdown();
});

test("a membership change lost by the Raft storage in a crash is applied again from the log", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const victim = cluster.ids.find((id) => id !== leader)!;
  await answered(cluster, cluster.replica(leader, RANGE).addLearner(4), "add learner");
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  const appliedBefore = cluster.replica(victim, RANGE).appliedIndex;

  await cluster.stopNode(victim);
  const engine = cluster.disks.get(victim)!.engine.inner;
  engine.crash();
  // The state machine kept the change's index; the Raft storage lost the membership record.
  assert.deepEqual(engine.replica(RANGE).confState().learners, []);

  const host = await cluster.startNode(victim);
  const replica = host.createReplica(RANGE, { join: true });
  assert.equal(replica.appliedIndex, appliedBefore);
  assert.deepEqual(replica.status().confState.learners, []);
  await cluster.runUntil(() => replica.status().confState.learners.includes(4), "the change applied again");
  assert.equal(replica.appliedIndex, appliedBefore, "nothing was applied twice to the state machine");
  await cluster.runUntil(
    () => cluster.disks.get(victim)!.engine.replica(RANGE).confState().learners.includes(4),
    "the membership recorded again",
  );
  cluster.assertHealthy();
  await cluster.shutdown();
});
