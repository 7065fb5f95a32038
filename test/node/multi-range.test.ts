// Several ranges on the same hosts: each progresses on its own, their writes share syncs, and
// messages for a range a node does not host are dropped and counted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TestCluster, get, put, track } from "./harness.js";

test("two ranges on the same hosts progress independently", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(1);
  cluster.bootstrap(2);
  const leader1 = await cluster.elect(1);
  const leader2 = await cluster.elect(2);
  await cluster.tick(2);
  const range2Applied = cluster.replica(leader2, 2).appliedIndex;

  const writes = Array.from({ length: 10 }, (_, i) =>
    track(cluster.replica(leader1, 1).propose(put(`one${i}`, "1"))),
  );
  await cluster.runUntil(() => writes.every((w) => w.settled), "range 1's writes");
  assert.ok(writes.every((w) => w.error === undefined));
  await cluster.tick(2);
  for (const id of cluster.ids) {
    assert.equal(cluster.replica(id, 2).appliedIndex, range2Applied, `range 2 on node ${id} did not move`);
    assert.equal(await get(cluster.replica(id, 2), "one0"), null);
    assert.equal(await get(cluster.replica(id, 1), "one9"), "1");
  }

  const other = track(cluster.replica(leader2, 2).propose(put("two", "2")));
  await cluster.runUntil(() => other.settled, "range 2's write");
  assert.equal(other.error, undefined);
  await cluster.tick(2);
  for (const id of cluster.ids) {
    assert.equal(await get(cluster.replica(id, 2), "two"), "2");
    assert.equal(await get(cluster.replica(id, 1), "two"), null);
  }
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("writes of two ranges made together are made durable by one sync per node", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(1);
  cluster.bootstrap(2);
  const leader1 = await cluster.elect(1);
  const leader2 = await cluster.elect(2);
  await cluster.tick(2);
  const syncsBefore = new Map(cluster.ids.map((id) => [id, cluster.disks.get(id)!.engine.syncs.length]));

  const writes = [
    ...Array.from({ length: 5 }, (_, i) => track(cluster.replica(leader1, 1).propose(put(`a${i}`, "x")))),
    ...Array.from({ length: 5 }, (_, i) => track(cluster.replica(leader2, 2).propose(put(`b${i}`, "y")))),
  ];
  await cluster.runUntil(() => writes.every((w) => w.settled), "writes to both ranges");
  assert.ok(writes.every((w) => w.error === undefined));

  for (const id of cluster.ids) {
    const host = cluster.host(id);
    const syncs = cluster.disks.get(id)!.engine.syncs.slice(syncsBefore.get(id));
    // Never more than one sync per turn, and at least one sync covered both ranges at once.
    assert.equal(cluster.disks.get(id)!.engine.syncs.length, host.counters.syncs);
    assert.ok(host.counters.syncs <= host.counters.turns);
    assert.ok(
      syncs.some((groups) => groups.includes(1) && groups.includes(2)),
      `node ${id} syncs: ${JSON.stringify(syncs)}`,
    );
  }
  await cluster.shutdown();
});

test("messages for a range this node does not host are dropped and counted", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(1);
  // Range 3 names node 3 as a member, but node 3 never creates it.
  const confState = {
    voters: [1, 2, 3],
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
  for (const id of [1, 2]) cluster.host(id).createReplica(3, { bootstrap: confState });
  await cluster.elect(3);
  await cluster.elect(1);
  assert.ok(cluster.host(3).counters.dropped.unknownRange > 0);
  assert.equal(cluster.host(3).replica(3), undefined);
  const write = track(cluster.replica(1, 3).propose(put("k", "v")));
  await cluster.runUntil(() => write.settled, "a write to the two-replica range");
  assert.equal(write.error, undefined);
  cluster.assertHealthy();
  await cluster.shutdown();
});
