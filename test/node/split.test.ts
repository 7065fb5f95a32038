// Splits on a cluster of three hosts in virtual time: a split under a write load keeps every
// acknowledged write readable from the range that holds its key, the new range elects a
// leader and takes writes, a node cut off during the split catches up (by log, or by
// snapshots and a replica created with join), and a crash between the state-machine write
// and the new range's Raft storage loses nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { boundsContainKey } from "../../src/kv/bounds.js";
import { rangeRequest } from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import type { CommandResult } from "../../src/kv/results.js";
import { RHS_INITIAL_INDEX } from "../../src/kv/split.js";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, b, get, put, s, track, type HostOverrides, type Tracked } from "./harness.js";

const SPLIT_KEY = "k20";

function newCluster(overrides: HostOverrides = {}): TestCluster {
  return new TestCluster([1, 2, 3], overrides, { sharedStateMachine: true });
}

/** The range of node `id` that holds `key` (by its applied bounds). */
function rangeOf(cluster: TestCluster, id: NodeId, key: string): number {
  const host = cluster.host(id);
  const found = host.rangeIds().find((rangeId) => boundsContainKey(host.replica(rangeId)!.bounds, b(key)));
  if (found === undefined) throw new Error(`node ${id} holds no range with ${key}`);
  return found;
}

function key(i: number): string {
  return `k${String(i).padStart(2, "0")}`;
}

/**
 * Writes every key once (client id = key, sequence 1), at most 8 new ones per tick, routed by
 * the first running node's bounds and retried on routing errors and lost leaders, while
 * `during(round)` runs once per round. Returns the keys whose writes were acknowledged, and
 * how many attempts a range answered with a routing error (KeyOutsideRange, RangeFenced).
 */
async function writeAll(
  cluster: TestCluster,
  keys: readonly string[],
  during: (round: number) => void = () => {},
): Promise<{ acked: Set<string>; rerouted: number }> {
  const acked = new Set<string>();
  let rerouted = 0;
  const inFlight = new Map<string, Tracked<CommandResult>>();
  for (let round = 0; round < 400 && acked.size < keys.length; round++) {
    during(round);
    let started = 0;
    for (const k of keys) {
      if (acked.has(k) || inFlight.has(k) || started >= 8) continue;
      const router = [...cluster.hosts.keys()][0]!;
      const rangeId = rangeOf(cluster, router, k);
      const leader = cluster.leader(rangeId);
      if (leader === null) continue;
      const replica = cluster.replica(leader, rangeId);
      inFlight.set(k, track(replica.propose(put(k, `v-${k}`), { clientId: k, sequence: 1 })));
      started++;
    }
    await cluster.tick(1);
    for (const [k, write] of inFlight) {
      if (!write.settled) continue;
      inFlight.delete(k);
      const response = write.value?.response;
      if (response?.kind === "put") acked.add(k);
      else if (response?.kind === "error") rerouted++;
    }
  }
  return { acked, rerouted };
}

/** Every acknowledged key is readable, with its value, from the range holding it on every node. */
async function assertReadable(cluster: TestCluster, acked: Iterable<string>): Promise<void> {
  for (const id of cluster.hosts.keys()) {
    for (const k of acked) {
      const rangeId = rangeOf(cluster, id, k);
      assert.equal(
        await get(cluster.replica(id, rangeId), k),
        `v-${k}`,
        `${k} on node ${id} range ${rangeId}`,
      );
    }
  }
}

async function settleProposal<T>(cluster: TestCluster, promise: Promise<T>, what: string): Promise<T> {
  const tracked = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  if (tracked.error !== undefined) throw tracked.error as Error;
  return tracked.value as T;
}

/** Every running node's replicas of `rangeId` agree on the hash of their data. */
function assertSameData(cluster: TestCluster, rangeId: number): void {
  const hashes = [...cluster.hosts.keys()].map((id) => cluster.replica(id, rangeId).hashKv(0n).hash);
  assert.equal(new Set(hashes).size, 1, `range ${rangeId} hashes ${hashes.join(", ")}`);
}

test("a split under a write load keeps every acknowledged write; the new range elects and takes writes", async () => {
  const cluster = newCluster();
  await cluster.startAll();
  cluster.bootstrap(1);
  const leader = await cluster.elect(1);
  const keys = Array.from({ length: 40 }, (_, i) => key(i));
  let split: Tracked<bigint> | null = null;
  const { acked, rerouted } = await writeAll(cluster, keys, (round) => {
    if (round !== 2) return;
    const parent = cluster.replica(leader, 1);
    split = track(parent.fence(b(SPLIT_KEY), 2).then(() => parent.split(b(SPLIT_KEY), 2)));
  });
  await cluster.runUntil(() => split?.settled === true, "the split");
  assert.equal((split as Tracked<bigint> | null)?.error, undefined);
  assert.equal(acked.size, keys.length);
  assert.ok(rerouted > 0, "some writes met the fence or the split");
  await cluster.elect(2);
  await cluster.tick(3);
  for (const id of cluster.ids) {
    const rhs = cluster.replica(id, 2);
    assert.equal(rhs.rangeState, "active");
    assert.equal(s(rhs.bounds.start), SPLIT_KEY);
    assert.equal(s(cluster.replica(id, 1).bounds.end ?? new Uint8Array(0)), SPLIT_KEY);
  }
  await assertReadable(cluster, acked);
  // The new range takes writes, and its revisions stay above the split's.
  const rhsLeader = cluster.leader(2)!;
  const result = await settleProposal(
    cluster,
    cluster.replica(rhsLeader, 2).propose(put("z", "1")),
    "a write",
  );
  assert.ok(result.revision > (split as Tracked<bigint> | null)!.value!);
  // The parent refuses the moved keys.
  await assert.rejects(
    cluster.replica(leader, 1).range(rangeRequest({ key: b("z") }), "serializable"),
    (e: unknown) => e instanceof KvError && e.code === KvErrorCode.KeyOutsideRange,
  );
  await cluster.tick(3);
  assertSameData(cluster, 1);
  assertSameData(cluster, 2);
  cluster.assertHealthy();
  await cluster.shutdown();
});

async function partitionedSplit(snapshotEntries: number, joinFirst: boolean): Promise<void> {
  const cluster = newCluster({ snapshotEntries });
  await cluster.startAll();
  cluster.bootstrap(1);
  await cluster.elect(1);
  const lagging = 3;
  const { acked: before } = await writeAll(cluster, [key(1), key(30)]);
  for (const id of [1, 2]) {
    cluster.network.cut(id, lagging);
    cluster.network.cut(lagging, id);
  }
  await cluster.runUntil(
    () => cluster.leader(1) !== null && cluster.leader(1) !== lagging,
    "a leader without 3",
  );
  const leader = cluster.leader(1)!;
  const parent = cluster.replica(leader, 1);
  await settleProposal(cluster, parent.split(b(SPLIT_KEY), 2), "the split");
  await cluster.runUntil(
    () => cluster.leader(2) !== null && cluster.leader(2) !== lagging,
    "a leader of range 2",
  );
  // More writes on both sides while node 3 is away (enough to compact when snapshots are due).
  const { acked: during } = await writeAll(
    cluster,
    Array.from({ length: 12 }, (_, i) => key(i < 6 ? 2 + i : 31 + i)),
  );
  assert.equal(cluster.host(lagging).replica(2), undefined);
  if (joinFirst) cluster.host(lagging).createReplica(2, { join: true });
  const restoredBefore = cluster.host(lagging).counters.snapshotsRestored;
  cluster.network.healAll();
  // Without join, only applying the split from the log can start node 3's range 2.
  await cluster.runUntil(() => cluster.host(lagging).replica(2) !== undefined, "node 3 hosts range 2", 100);
  const rhs = cluster.replica(lagging, 2);
  await cluster.runUntil(() => rhs.appliedIndex > RHS_INITIAL_INDEX + 1, "node 3's range 2 catches up");
  await cluster.waitApplied(1, cluster.replica(leader, 1).appliedIndex);
  await cluster.waitApplied(2, cluster.replica(cluster.leader(2)!, 2).appliedIndex);
  await assertReadable(cluster, [...before, ...during]);
  const restored = cluster.host(lagging).counters.snapshotsRestored - restoredBefore;
  // A joined range 2 is caught up by a snapshot; with compacted logs range 1 is too.
  assert.ok(
    restored >= (joinFirst ? 1 : 0) + (snapshotEntries < 100 ? 1 : 0),
    `${restored} snapshots restored`,
  );
  assertSameData(cluster, 1);
  assertSameData(cluster, 2);
  cluster.assertHealthy();
  await cluster.shutdown();
}

test("a node cut off during the split catches up by log and starts the new range itself", async () => {
  await partitionedSplit(10_000, false);
});

test("a node cut off during the split, caught up by snapshot, joins the new range and gets its snapshot", async () => {
  await partitionedSplit(4, true);
});

test("a replica created with join before the parent's split reaches it is not clobbered by that split", async () => {
  await partitionedSplit(10_000, true);
});

test("a crash between the state-machine write and the new range's Raft storage loses no range", async () => {
  const cluster = newCluster();
  await cluster.startAll();
  cluster.bootstrap(1);
  const leader = await cluster.elect(1);
  const victim: NodeId = leader === 3 ? 2 : 3;
  const { acked } = await writeAll(cluster, [key(1), key(25), key(30)]);
  const disk = cluster.disks.get(victim)!;
  // Node `victim` dies right where it would write range 2's initial Raft state.
  disk.engine.failWrite = (groupId, method) => groupId === 2 && method === "saveSnapshot";
  await settleProposal(cluster, cluster.replica(leader, 1).split(b(SPLIT_KEY), 2), "the split");
  await cluster.runUntil(() => cluster.host(victim).failure !== null, "the victim fails");
  assert.match(cluster.host(victim).failure!.message, /injected crash/);
  disk.engine.failWrite = null;
  await cluster.stopNode(victim);
  disk.engine.inner.crash(0);
  assert.deepEqual(disk.engine.groups(), [1]);
  const host = await cluster.startNode(victim);
  host.openStoredReplicas();
  await cluster.runUntil(() => host.replica(2) !== undefined, "the victim hosts range 2 again");
  await cluster.elect(2);
  const { acked: more } = await writeAll(cluster, [key(26), key(3)]);
  await cluster.waitApplied(2, cluster.replica(cluster.leader(2)!, 2).appliedIndex);
  await cluster.waitApplied(1, cluster.replica(cluster.leader(1)!, 1).appliedIndex);
  await assertReadable(cluster, [...acked, ...more]);
  assertSameData(cluster, 2);
  cluster.assertHealthy();
  await cluster.shutdown();
});
