// Idle ranges quiesce: 200 ranges on three hosts go quiet (no Raft messages while nothing
// happens, only the node-level liveness messages), a write wakes only its own range, and a
// leader's node that stops or is partitioned away loses every range it led to new leaders
// within bounded virtual time (the liveness rule wakes the quiesced followers).
import assert from "node:assert/strict";
import { test } from "node:test";
import { leaseGrantRequest } from "../../src/kv/commands.js";
import { NotLeaderError } from "../../src/node/errors.js";
import { StateRole, type NodeId } from "../../src/raft/types.js";
import { TestCluster, get, put, track } from "./harness.js";

const RANGES = 200;
const rangeIds = Array.from({ length: RANGES }, (_, i) => i + 1);

function sum(cluster: TestCluster, count: (id: NodeId) => number): number {
  return [...cluster.hosts.keys()].reduce((total, id) => total + count(id), 0);
}

function messagesSent(cluster: TestCluster): number {
  return sum(cluster, (id) => cluster.host(id).counters.messagesSent);
}

/** Every running host's replicas of every range are dormant. */
function allDormant(cluster: TestCluster): boolean {
  return [...cluster.hosts.values()].every((host) => host.dormantReplicas === RANGES);
}

/** Range id → the node leading it, once every range has a leader every running replica knows. */
function agreedLeaders(cluster: TestCluster): Map<number, NodeId> | null {
  const leaders = new Map<number, NodeId>();
  for (const rangeId of rangeIds) {
    const leader = cluster.leader(rangeId);
    if (leader === null) return null;
    for (const host of cluster.hosts.values()) {
      if (host.replica(rangeId)!.termLeaderRevision().leader !== leader) return null;
    }
    leaders.set(rangeId, leader);
  }
  return leaders;
}

async function quietCluster(): Promise<{ cluster: TestCluster; leaders: Map<number, NodeId> }> {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  for (const rangeId of rangeIds) cluster.bootstrap(rangeId);
  let leaders: Map<number, NodeId> | null = null;
  await cluster.runUntil(() => (leaders = agreedLeaders(cluster)) !== null, "a leader for every range");
  await cluster.runUntil(() => allDormant(cluster), "every replica dormant", 100);
  return { cluster, leaders: leaders! };
}

test("200 idle ranges go quiet, and a write wakes only its own range", async () => {
  const { cluster, leaders } = await quietCluster();
  // One liveness interval for the last Raft messages to go by (they stand in for liveness).
  await cluster.tick(2);
  const sentBefore = messagesSent(cluster);
  const livenessBefore = sum(cluster, (id) => cluster.host(id).counters.livenessSent);
  await cluster.tick(50);
  assert.equal(messagesSent(cluster) - sentBefore, 0, "no Raft message in 50 idle ticks");
  const liveness = sum(cluster, (id) => cluster.host(id).counters.livenessSent) - livenessBefore;
  // One per peer per liveness interval (2 ticks: a quarter of the 10-tick election timeout):
  // 3 nodes x 2 peers x 25 intervals, whatever the number of ranges.
  assert.equal(liveness, 150);
  assert.ok(allDormant(cluster));
  assert.deepEqual(agreedLeaders(cluster), leaders, "no leader changed while quiet");

  const wakeUpsBefore = sum(cluster, (id) => cluster.host(id).counters.wakeUps);
  const sentBeforeWrite = messagesSent(cluster);
  const rangeId = 7;
  const leader = leaders.get(rangeId)!;
  const write = track(cluster.replica(leader, rangeId).propose(put("k", "v")));
  await cluster.runUntil(() => write.settled, "the write");
  assert.equal(write.error, undefined);
  await cluster.runUntil(() => allDormant(cluster), "every replica dormant again", 50);
  for (const id of cluster.ids) assert.equal(await get(cluster.replica(id, rangeId), "k"), "v");
  // Only range 7's three replicas woke (each a few times: append, commit, quiesce); a range
  // of its own would cost three wake-ups per replica at most, 200 ranges hundreds.
  const wakeUps = sum(cluster, (id) => cluster.host(id).counters.wakeUps) - wakeUpsBefore;
  assert.ok(wakeUps > 0 && wakeUps <= 9, `wake-ups: ${wakeUps}`);
  const sent = messagesSent(cluster) - sentBeforeWrite;
  assert.ok(sent > 0 && sent <= 20, `messages for one write: ${sent}`);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a peer that hears Raft messages from a node gets no liveness messages from it", async () => {
  const { cluster, leaders } = await quietCluster();
  // A leader holding a lease does not quiesce: it heartbeats both followers every tick, and
  // they answer it. Only the two followers still owe each other liveness messages.
  const leader = leaders.get(1)!;
  const granted = track(cluster.replica(leader, 1).propose(leaseGrantRequest(60)));
  await cluster.runUntil(() => granted.settled, "the lease grant");
  assert.equal(granted.error, undefined);
  await cluster.tick(4);
  const livenessOf = (id: NodeId): number => cluster.host(id).counters.livenessSent;
  const before = new Map(cluster.ids.map((id) => [id, livenessOf(id)]));
  await cluster.tick(20);
  for (const id of cluster.ids) {
    // 10 liveness intervals of 2 ticks; a follower owes one per interval to the other follower.
    assert.equal(livenessOf(id) - before.get(id)!, id === leader ? 0 : 10, `liveness sent by node ${id}`);
  }
  assert.deepEqual(agreedLeaders(cluster), leaders, "no leader changed");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a whole cluster stopped for a minute resumes with the same leaders and wakes nothing", async () => {
  const { cluster, leaders } = await quietCluster();
  const wakeUpsBefore = sum(cluster, (id) => cluster.host(id).counters.livenessWakeUps);
  cluster.time.stall(60_000);
  await cluster.tick(50);
  assert.equal(sum(cluster, (id) => cluster.host(id).counters.livenessWakeUps) - wakeUpsBefore, 0);
  assert.deepEqual(agreedLeaders(cluster), leaders, "no election after the stop");
  assert.ok(allDormant(cluster));
  cluster.assertHealthy();
  await cluster.shutdown();
});

/** The ranges `node` leads, and how long (ticks) until each has another leader all running replicas know. */
async function expectNewLeaders(cluster: TestCluster, leaders: Map<number, NodeId>, node: NodeId) {
  const led = rangeIds.filter((rangeId) => leaders.get(rangeId) === node);
  assert.ok(led.length > 0, `node ${node} leads some range`);
  const others = cluster.ids.filter((id) => id !== node);
  const replaced = (): boolean =>
    led.every((rangeId) => {
      const known = others.map((id) => cluster.replica(id, rangeId).termLeaderRevision().leader);
      return known.every((leader) => leader !== node && leader !== 0 && leader === known[0]);
    });
  // Liveness silence (one election timeout) + an election (at most two more), with room.
  await cluster.runUntil(replaced, `new leaders for the ${led.length} ranges node ${node} led`, 100);
  return led;
}

test("a stopped leader node's ranges get new leaders", async () => {
  const { cluster, leaders } = await quietCluster();
  const stopped = leaders.get(1)!;
  await cluster.stopNode(stopped);
  const led = await expectNewLeaders(cluster, leaders, stopped);
  const livenessWakeUps = sum(cluster, (id) => cluster.host(id).counters.livenessWakeUps);
  assert.ok(livenessWakeUps >= led.length, `liveness woke ${livenessWakeUps} replicas`);
  // The ranges the stopped node only followed stay quiet on the two live nodes (the transport
  // reporting it unreachable wakes nothing); those it led cannot quiesce without its match.
  await cluster.tick(20);
  const quiet = sum(cluster, (id) => cluster.host(id).dormantReplicas);
  assert.ok(quiet >= 2 * (RANGES - led.length), `dormant on live nodes: ${quiet}`);
  // The new leaders serve writes.
  const rangeId = led[0]!;
  const write = track(cluster.replica(cluster.leader(rangeId)!, rangeId).propose(put("after", "stop")));
  await cluster.runUntil(() => write.settled, "a write after the leader node stopped");
  assert.equal(write.error, undefined);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a partitioned leader node's ranges get new leaders, and all quiesce again after healing", async () => {
  const { cluster, leaders } = await quietCluster();
  const isolated = leaders.get(1)!;
  for (const other of cluster.ids) {
    if (other === isolated) continue;
    cluster.network.cut(isolated, other);
    cluster.network.cut(other, isolated);
  }
  const led = await expectNewLeaders(cluster, leaders, isolated);
  // A majority side write commits while the old leader is cut off.
  const rangeId = led[0]!;
  const newLeader = cluster.ids.find(
    (id) => id !== isolated && cluster.replica(id, rangeId).status().role === StateRole.Leader,
  )!;
  const write = track(cluster.replica(newLeader, rangeId).propose(put("during", "partition")));
  await cluster.runUntil(() => write.settled, "a write during the partition");
  assert.equal(write.error, undefined);

  cluster.network.healAll();
  await cluster.runUntil(() => agreedLeaders(cluster) !== null, "one leader per range known to all", 100);
  await cluster.runUntil(() => allDormant(cluster), "every replica dormant after healing", 100);
  assert.equal(await get(cluster.replica(isolated, rangeId), "during"), "partition");
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("with quiescence off, idle ranges keep heartbeating and nothing goes dormant", async () => {
  const cluster = new TestCluster([1, 2, 3], { quiesce: false });
  await cluster.startAll();
  for (const rangeId of [1, 2, 3, 4]) cluster.bootstrap(rangeId);
  for (const rangeId of [1, 2, 3, 4]) await cluster.elect(rangeId);
  await cluster.tick(10);
  const before = messagesSent(cluster);
  await cluster.tick(10);
  // Each leader heartbeats two followers every tick and each answers: 4 ranges x 4 x 10.
  assert.equal(messagesSent(cluster) - before, 160);
  assert.equal(
    sum(cluster, (id) => cluster.host(id).dormantReplicas),
    0,
  );
  assert.equal(
    sum(cluster, (id) => cluster.host(id).counters.livenessSent),
    0,
  );
  await cluster.shutdown();
});

test("a leader holding a lease does not quiesce, so cut off it still steps down and stops renewing", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(1);
  cluster.bootstrap(2);
  const leader = await cluster.elect(1);
  await cluster.elect(2);
  const granted = track(cluster.replica(leader, 1).propose(leaseGrantRequest(60)));
  await cluster.runUntil(() => granted.settled, "the lease grant");
  assert.equal(granted.error, undefined);
  await cluster.tick(20);
  assert.equal(cluster.replica(leader, 1).status().role, StateRole.Leader);
  const dormant = (id: NodeId) => cluster.host(id).dormantReplicas;
  // Range 2 (no lease) is dormant on the lease holder's node; range 1 is not.
  assert.equal(dormant(leader), 1);

  for (const other of cluster.ids) {
    if (other === leader) continue;
    cluster.network.cut(leader, other);
    cluster.network.cut(other, leader);
  }
  const leaseId = cluster.replica(leader, 1).leases()[0]!.id;
  await cluster.runUntil(
    () => cluster.replica(leader, 1).status().role !== StateRole.Leader,
    "the cut-off lease holder stepping down",
    50,
  );
  await assert.rejects(async () => cluster.replica(leader, 1).leaseKeepAlive(leaseId), NotLeaderError);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a busy range's leader sees its followers as reachable between heartbeats (etcd's reconfiguration check)", async () => {
  const cluster = new TestCluster([1, 2, 3], { quiesce: false });
  await cluster.startAll();
  cluster.bootstrap(1);
  const leader = await cluster.elect(1);
  const follower = cluster.ids.find((id) => id !== leader)!;
  const refusal = () => cluster.replica(leader, 1).reconfigurationRefusal({ kind: "remove", id: follower });
  // Checked between every two deliveries for 40 ticks (four election timeouts).
  await cluster.tick(40, () => refusal() !== null);
  assert.equal(refusal(), null, "removing a follower of a healthy three-member range is refused");
  await cluster.shutdown();
});
