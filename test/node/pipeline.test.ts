// The turn pipeline: a leader sends its appends before its own fsync, answers a write once a
// quorum of followers made it durable even while its own sync is still pending, and runs
// further turns meanwhile; a follower acknowledges only after its sync, and its core learns
// the sync without a turn of its own; a follower whose log writes at once (syncNow)
// acknowledges before it applies.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { NodeId } from "../../src/raft/types.js";
import { RecordingEngine, TestCluster, get, put, track, type HostOverrides } from "./harness.js";

/** A RecordingEngine whose syncs can be held back until `release()`. */
class HoldingEngine extends RecordingEngine {
  holding = false;
  private held: (() => void)[] = [];

  override sync(): Promise<void> {
    const synced = super.sync();
    if (!this.holding) return synced;
    return new Promise((resolve) => this.held.push(() => void synced.then(resolve)));
  }

  get heldSyncs(): number {
    return this.held.length;
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

async function clusterWithHoldingDisks(overrides: HostOverrides = {}): Promise<{
  cluster: TestCluster;
  disk: (id: NodeId) => HoldingEngine;
}> {
  const cluster = new TestCluster([1, 2, 3], overrides);
  const engines = new Map<NodeId, HoldingEngine>();
  for (const id of cluster.ids) {
    const engine = new HoldingEngine();
    engines.set(id, engine);
    cluster.disks.set(id, { engine, kvs: new Map() });
  }
  await cluster.startAll();
  cluster.bootstrap(1);
  return { cluster, disk: (id) => engines.get(id)! };
}

test("a leader whose own sync is held answers a write once both followers synced it", async () => {
  const { cluster, disk } = await clusterWithHoldingDisks();
  const leader = await cluster.elect(1);
  await cluster.tick(2);
  disk(leader).holding = true;

  const first = track(cluster.replica(leader, 1).propose(put("k", "1")));
  await cluster.runUntil(() => first.settled, "the first write");
  assert.equal(first.error, undefined);
  assert.ok(disk(leader).heldSyncs > 0, "the leader's sync is still pending");

  // Turns go on while the sync is pending: a second write commits the same way.
  const second = track(cluster.replica(leader, 1).propose(put("k", "2")));
  await cluster.runUntil(() => second.settled, "the second write");
  assert.equal(second.error, undefined);
  assert.ok(disk(leader).heldSyncs > 0);
  assert.ok(!cluster.host(leader).isIdle(), "a host with a sync outstanding is not idle");

  disk(leader).release();
  await cluster.tick(2);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, 1), "k"), "2");
  cluster.assertHealthy();
  await cluster.shutdown();
});

/** Delivers messages and runs turns for a bounded number of rounds (held syncs keep hosts busy). */
async function runRounds(cluster: TestCluster, rounds = 50): Promise<void> {
  let round = 0;
  await cluster.settle(() => ++round >= rounds);
}

test("with one follower's sync held, a write waits for the leader's own sync, not for that follower", async () => {
  const { cluster, disk } = await clusterWithHoldingDisks();
  const leader = await cluster.elect(1);
  await cluster.tick(2);
  const [slow, fast] = cluster.ids.filter((id) => id !== leader) as [NodeId, NodeId];
  disk(slow).holding = true;
  disk(fast).holding = true;
  disk(leader).holding = true;

  const write = track(cluster.replica(leader, 1).propose(put("k", "v")));
  await runRounds(cluster);
  // Nobody's write is durable: no quorum, no answer.
  assert.equal(write.settled, false);

  disk(fast).release();
  await runRounds(cluster);
  // The fast follower acknowledged, but the leader's own log does not count before its sync.
  assert.equal(write.settled, false);

  disk(leader).release();
  await cluster.runUntil(() => write.settled, "the write");
  assert.equal(write.error, undefined);

  disk(slow).release();
  await cluster.tick(2);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, 1), "k"), "v");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a follower's sync that ends between turns asks for no turn; the next write still commits everywhere", async () => {
  // Turns deferred to the next event-loop pass, as in production: a host that asked for a turn
  // is not idle until that pass.
  const { cluster, disk } = await clusterWithHoldingDisks({ deferTurn: (run) => setImmediate(run) });
  const leader = await cluster.elect(1);
  await cluster.tick(2);
  const follower = cluster.ids.find((id) => id !== leader)!;
  disk(follower).holding = true;
  const write = track(cluster.replica(leader, 1).propose(put("k", "1")));
  await cluster.runUntil(() => write.settled, "the write");
  assert.equal(write.error, undefined);
  await runRounds(cluster);
  assert.ok(disk(follower).heldSyncs > 0, "the follower's sync is still pending");

  disk(follower).release();
  for (let i = 0; i < 20; i++) await Promise.resolve();
  assert.ok(
    cluster.host(follower).isIdle(),
    "the follower's core learned its sync without asking for a turn",
  );

  const next = track(cluster.replica(leader, 1).propose(put("k", "2")));
  await cluster.runUntil(() => next.settled, "the next write");
  assert.equal(next.error, undefined);
  await cluster.tick(2);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, 1), "k"), "2");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a follower whose log writes at once acknowledges an append before applying what it committed", async () => {
  const { cluster, disk } = await clusterWithHoldingDisks();
  const leader = await cluster.elect(1);
  await cluster.tick(2);
  const follower = cluster.ids.find((id) => id !== leader)!;
  disk(follower).syncsAtOnce = true;
  const first = track(cluster.replica(leader, 1).propose(put("k", "1")));
  await cluster.runUntil(() => first.settled, "the first write");
  assert.equal(first.error, undefined);

  // No time passes, so no commit notice: the second write's append tells the follower that
  // the first one committed, and the follower applies the first in the turn that writes the second.
  const sentBefore = cluster.transport(follower).counters.messagesSent;
  let sentAtApply: number | null = null;
  cluster.replica(follower, 1).addApplyListener({
    onCommand: () => {
      sentAtApply ??= cluster.transport(follower).counters.messagesSent;
    },
  });
  const second = track(cluster.replica(leader, 1).propose(put("k", "2")));
  await cluster.runUntil(() => second.settled, "the second write");
  assert.equal(second.error, undefined);
  assert.ok(sentAtApply !== null, "the follower applied the first write");
  assert.ok(sentAtApply > sentBefore, "the acknowledgement left before the apply");
  await cluster.tick(2);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, 1), "k"), "2");
  cluster.assertHealthy();
  await cluster.shutdown();
});
