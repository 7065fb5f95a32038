// Recovery: a node restarted from its storage engine (after losing its unsynced writes) picks
// up where its state machine was and catches up; a node cut off while the others compacted
// their logs is caught up by a snapshot streamed from the leader's state machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, get, put, track, type Tracked } from "./harness.js";

const RANGE = 1;

async function writeAll(
  cluster: TestCluster,
  via: NodeId,
  keys: readonly string[],
  value: string,
): Promise<void> {
  const writes: Tracked<unknown>[] = keys.map((key) =>
    track(cluster.replica(via, RANGE).propose(put(key, value))),
  );
  await cluster.runUntil(() => writes.every((w) => w.settled), `${keys.length} writes`);
  for (const w of writes) assert.equal(w.error, undefined);
}

function keys(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

test("a node restarted from its storage engine recovers its state and catches up", async () => {
  // Snapshots every 8 entries: one before the stop, none while the node is down, so it
  // catches up from the log.
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 8 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const restarted = cluster.ids.find((id) => id !== leader)!;
  await writeAll(cluster, leader, keys("before", 10), "1");
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  assert.ok(cluster.replica(restarted, RANGE).status().snapshotIndex > 0, "it took a snapshot");
  // Appending these syncs the engine, which makes the snapshot durable too.
  await writeAll(cluster, leader, keys("after-snapshot", 2), "1");
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  const appliedBeforeStop = cluster.replica(restarted, RANGE).appliedIndex;

  await cluster.stopNode(restarted);
  const engine = cluster.disks.get(restarted)!.engine.inner;
  // Power loss: whatever the engine had not synced is gone.
  engine.crash();
  const storedApplied = engine.replica(RANGE).appliedIndex();
  assert.ok(0 < storedApplied && storedApplied < appliedBeforeStop, `stored applied index ${storedApplied}`);
  await writeAll(cluster, leader, keys("while-down", 3), "2");

  const host = await cluster.startNode(restarted);
  const [replica] = host.openStoredReplicas();
  assert.ok(replica !== undefined);
  assert.equal(replica.rangeId, RANGE);
  assert.equal(replica.appliedIndex, appliedBeforeStop, "the state machine survived the restart");
  assert.deepEqual([...replica.status().confState.voters].sort(), [1, 2, 3]);
  const reapplied: string[] = [];
  replica.addApplyListener({ onCommand: ({ envelope }) => reapplied.push(envelope.clientId) });

  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  for (const key of keys("before", 10)) assert.equal(await get(replica, key), "1");
  for (const key of keys("while-down", 3)) assert.equal(await get(replica, key), "2");
  // The core handed out again the entries after its durable applied index; those the state
  // machine already held were skipped, not applied twice.
  assert.equal(reapplied.length, 3);
  assert.equal(cluster.host(restarted).counters.snapshotsRestored, 0);

  await writeAll(cluster, restarted, ["after"], "3");
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, RANGE), "after"), "3");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a lagging node is caught up by a snapshot after the others compacted their logs", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 5 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const lagging = cluster.ids.find((id) => id !== leader)!;
  for (const id of cluster.ids) {
    if (id === lagging) continue;
    cluster.network.cut(id, lagging);
    cluster.network.cut(lagging, id);
  }
  await writeAll(cluster, leader, keys("k", 30), "v");
  const leaderReplica = cluster.replica(leader, RANGE);
  const laggingReplica = cluster.replica(lagging, RANGE);
  assert.ok(leaderReplica.status().firstIndex > laggingReplica.appliedIndex + 1, "the leader compacted");
  assert.ok(cluster.host(leader).counters.checkpoints > 0);

  cluster.network.healAll();
  await cluster.waitApplied(RANGE, leaderReplica.appliedIndex);
  assert.ok(cluster.host(leader).counters.snapshotsSent > 0);
  assert.ok(cluster.host(lagging).counters.snapshotsRestored > 0);
  const status = laggingReplica.status();
  assert.ok(status.snapshotIndex > 0, "the lagging node installed the snapshot in its storage");
  assert.equal(status.firstIndex, status.snapshotIndex + 1);
  for (const key of keys("k", 30)) assert.equal(await get(laggingReplica, key), "v");

  // Replication goes on normally afterwards.
  await writeAll(cluster, lagging, ["later"], "w");
  await cluster.waitApplied(RANGE, leaderReplica.appliedIndex);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, RANGE), "later"), "w");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a state machine that lost synced writes is refused at startup", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 3 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const victim = cluster.ids.find((id) => id !== leader)!;
  await writeAll(cluster, leader, keys("k", 6), "v");
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  await cluster.stopNode(victim);
  cluster.disks.get(victim)!.kvs.clear();
  const host = await cluster.startNode(victim);
  assert.throws(() => host.createReplica(RANGE, { join: true }), /behind the Raft storage/);
  await cluster.shutdown();
});

test("a snapshot transfer that fails is reported to the core and retried", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 5 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const lagging = cluster.ids.find((id) => id !== leader)!;
  const cutOff = (): void => {
    for (const id of cluster.ids) {
      if (id === lagging) continue;
      cluster.network.cut(id, lagging);
      cluster.network.cut(lagging, id);
    }
  };
  cutOff();
  await writeAll(cluster, leader, keys("k", 20), "v");
  const counters = cluster.host(leader).counters;

  cluster.network.healAll();
  await cluster.runUntil(() => counters.snapshotsSent > 0, "a snapshot on its way");
  // The link fails while the snapshot is in flight.
  cutOff();
  await cluster.runUntil(() => counters.snapshotsSendFailed > 0, "the transfer failing");
  assert.equal(cluster.host(lagging).counters.snapshotsRestored, 0);

  cluster.network.healAll();
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  assert.ok(counters.snapshotsSent >= 2, "sent again");
  assert.ok(cluster.host(lagging).counters.snapshotsRestored > 0);
  assert.equal(await get(cluster.replica(lagging, RANGE), "k19"), "v");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a replica snapshots, compacting its log, once its applied entries reach snapshotBytes", async () => {
  // Each write's entry holds a 1,000-byte value; 4,000 bytes call for a snapshot long before
  // the 1,000,000 entries would.
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 1_000_000, snapshotBytes: 4_000 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  await writeAll(cluster, leader, keys("small", 2), "1");
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  assert.equal(cluster.replica(leader, RANGE).status().snapshotIndex, 0, "two small writes call for none");
  await writeAll(cluster, leader, keys("big", 6), "x".repeat(1_000));
  await cluster.waitApplied(RANGE, cluster.replica(leader, RANGE).appliedIndex);
  for (const id of cluster.ids) {
    assert.ok(cluster.replica(id, RANGE).status().snapshotIndex > 0, `node ${id} took a snapshot`);
  }
  cluster.assertHealthy();
  await cluster.shutdown();
});
