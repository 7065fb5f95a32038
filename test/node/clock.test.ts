// One hybrid clock per node, and forwarded stamps observed by the leader: a client of one node
// that writes to range A and then to range B (led by a node whose wall clock is behind) sees
// the second write get the higher revision — real-time order across ranges for one node's
// clients. A forwarded stamp far ahead of the leader's wall clock is not observed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TestCluster, put, putRevision, track } from "./harness.js";

const RANGE_A = 1;
const RANGE_B = 2;

async function clusterWithRangeBLedBy(leaderOfB: number, skewMs: number): Promise<TestCluster> {
  const cluster = new TestCluster([1, 2, 3]);
  cluster.wallSkewMs.set(leaderOfB, skewMs);
  await cluster.startAll();
  cluster.bootstrap(RANGE_A);
  cluster.bootstrap(RANGE_B);
  await cluster.elect(RANGE_A);
  const first = await cluster.elect(RANGE_B);
  if (first !== leaderOfB) {
    const moved = track(cluster.replica(first, RANGE_B).transferLeader(leaderOfB));
    await cluster.runUntil(() => moved.settled, "leadership of range B moved");
    assert.equal(moved.error, undefined);
  }
  return cluster;
}

async function writeAThenB(cluster: TestCluster, via: number): Promise<{ a: bigint; b: bigint }> {
  const first = track(cluster.replica(via, RANGE_A).propose(put("a", "1")));
  await cluster.runUntil(() => first.settled, "the write to range A answered");
  const second = track(cluster.replica(via, RANGE_B).propose(put("b", "1")));
  await cluster.runUntil(() => second.settled, "the write to range B answered");
  assert.equal(first.error, undefined);
  assert.equal(second.error, undefined);
  return { a: putRevision(first.value), b: putRevision(second.value) };
}

test("a node's client writing range A then range B gets increasing revisions though B's leader clock is behind", async () => {
  const cluster = await clusterWithRangeBLedBy(3, -500);
  const leaderOfA = cluster.leader(RANGE_A)!;
  const via = [1, 2].find((id) => id !== leaderOfA) ?? 1;
  for (let round = 0; round < 5; round++) {
    const { a, b } = await writeAThenB(cluster, via);
    assert.ok(b > a, `round ${round}: range B's revision ${b} is not above range A's ${a}`);
  }
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a forwarded stamp more than a second ahead of the leader's wall clock is not observed", async () => {
  const cluster = await clusterWithRangeBLedBy(3, -60_000);
  const via = cluster.leader(RANGE_A) === 1 ? 2 : 1;
  const { b } = await writeAThenB(cluster, via);
  const leaderWall = cluster.time.wall() - 60_000;
  assert.ok(Number(b >> 16n) <= leaderWall + 1_000, "the leader stamped with its own clock");
  await cluster.shutdown();
});
