// Deferred commit notices (NodeHostOptions.commitNoticeDelayMs): a follower that holds a
// write hears that it committed from the leader's next append, or from the notice timer once
// the delay has passed, or at once with a delay of 0; its linearizable reads never wait for it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ReadOnlyOption } from "../../src/raft/config.js";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, b, get, put, putRevision, s, track } from "./harness.js";

const RANGE = 1;
const DELAY_MS = 20;

async function clusterWithLeader(
  commitNoticeDelayMs: number,
  readOnlyOption = ReadOnlyOption.Safe,
): Promise<{ cluster: TestCluster; leader: NodeId; follower: NodeId }> {
  // Not quiescing keeps a lease-based leader's lease valid: it answers a ReadIndex at once.
  const cluster = new TestCluster([1, 2, 3], {
    commitNoticeDelayMs,
    quiesce: false,
    raft: { readOnlyOption },
  });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  await cluster.tick(2);
  const follower = cluster.ids.find((id) => id !== leader)!;
  return { cluster, leader, follower };
}

/** Writes through the leader and lets messages flow, without moving time. */
async function write(cluster: TestCluster, leader: NodeId, key: string, value: string): Promise<number> {
  const done = track(cluster.replica(leader, RANGE).propose(put(key, value)));
  await cluster.settle(() => done.settled);
  assert.equal(done.error, undefined);
  putRevision(done.value);
  return cluster.replica(leader, RANGE).appliedIndex;
}

test("a follower hears of a commit once the notice delay has passed, not before", async () => {
  const { cluster, leader, follower } = await clusterWithLeader(DELAY_MS);
  const index = await write(cluster, leader, "k", "v");
  await cluster.settle();
  assert.ok(cluster.replica(follower, RANGE).appliedIndex < index, "the notice waits for its delay");
  assert.equal(await get(cluster.replica(follower, RANGE), "k"), null);

  cluster.time.advance(DELAY_MS - 1);
  await cluster.settle();
  assert.ok(cluster.replica(follower, RANGE).appliedIndex < index, "not before the delay");
  cluster.time.advance(1);
  await cluster.settle();
  assert.equal(cluster.replica(follower, RANGE).appliedIndex, index);
  assert.equal(await get(cluster.replica(follower, RANGE), "k"), "v");
  await cluster.shutdown();
});

test("the next write's append carries the last write's commit", async () => {
  const { cluster, leader, follower } = await clusterWithLeader(DELAY_MS);
  const first = await write(cluster, leader, "a", "1");
  const sentBefore = cluster.host(leader).counters.messagesSent;
  await write(cluster, leader, "b", "2");
  await cluster.settle();
  assert.ok(
    cluster.replica(follower, RANGE).appliedIndex >= first,
    "the first write applied without time passing",
  );
  // One append to each follower; no notice of its own for the first write.
  assert.equal(cluster.host(leader).counters.messagesSent - sentBefore, 2);
  await cluster.shutdown();
});

for (const readOnlyOption of [ReadOnlyOption.Safe, ReadOnlyOption.LeaseBased]) {
  test(`a follower's linearizable read does not wait for a deferred notice (${readOnlyOption} reads)`, async () => {
    const { cluster, leader, follower } = await clusterWithLeader(DELAY_MS, readOnlyOption);
    await write(cluster, leader, "k", "v");
    const read = track(get(cluster.replica(follower, RANGE), "k", "linearizable"));
    await cluster.settle(() => read.settled);
    assert.ok(read.settled, "served without time passing");
    assert.equal(read.error, undefined);
    assert.equal(read.value, "v");
    await cluster.shutdown();
  });
}

test("a write proposed through a follower is answered without waiting for the notice delay", async () => {
  const { cluster, follower } = await clusterWithLeader(DELAY_MS);
  const done = track(cluster.replica(follower, RANGE).propose(put("k", "v")));
  await cluster.settle(() => done.settled);
  assert.ok(done.settled, "answered without time passing");
  assert.equal(done.error, undefined);
  await cluster.shutdown();
});

test("a follower with a watch sees each write without waiting for the notice delay", async () => {
  const { cluster, leader, follower } = await clusterWithLeader(DELAY_MS);
  const watch = cluster.replica(follower, RANGE).watch({ key: b("k") });
  // The watch is known to the leader from the follower's next acknowledgement on.
  await write(cluster, leader, "other", "1");
  await write(cluster, leader, "k", "v");
  await cluster.settle();
  const response = watch.poll();
  assert.ok(response !== undefined, "the event arrived without time passing");
  assert.deepEqual(
    response.events.map((event) => s(event.kv.value)),
    ["v"],
  );
  watch.cancel();
  await cluster.shutdown();
});

test("with a delay of 0 every commit is told at once", async () => {
  const { cluster, leader, follower } = await clusterWithLeader(0);
  const index = await write(cluster, leader, "k", "v");
  await cluster.settle();
  assert.equal(cluster.replica(follower, RANGE).appliedIndex, index);
  await cluster.shutdown();
});

test("commitNoticeDelayMs must be a non-negative integer", async () => {
  for (const commitNoticeDelayMs of [-1, 1.5, Number.NaN]) {
    await assert.rejects(new TestCluster([1], { commitNoticeDelayMs }).startNode(1), /commitNoticeDelayMs/);
  }
});
