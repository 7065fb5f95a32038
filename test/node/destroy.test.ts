// NodeHost.destroyReplica on three hosts in virtual time, over ranges made by splits (one
// state-machine engine per node, a namespace per range): requests pending on the destroyed
// replica reject with KeyOutsideRange and its watches end with KeyOutsideRange; its Raft
// storage and store namespace are gone; messages for it are dropped and counted and never
// bring it back; the other ranges keep working; a restart does not reopen it; range 1 and
// unknown ranges are refused; and a crash between dropping the Raft storage and deleting the
// namespace leaves a node that restarts without the range.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rangeRequest } from "../../src/kv/commands.js";
import type { WriteBatch } from "../../src/kv/engine.js";
import { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "../../src/kv/errors.js";
import { prefixEnd } from "../../src/kv/bytes.js";
import { rangeNamespace } from "../../src/kv/keys.js";
import type { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import type { WatchResponse } from "../../src/kv/watch.js";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, b, get, put, track } from "./harness.js";

/** Range 1 holds [.., k20), range 2 [k20, k30) — the one destroyed —, range 3 [k30, ..). */
const DESTROYED = 2;

function isKeyOutsideRange(error: unknown): boolean {
  return error instanceof KvError && error.code === KvErrorCode.KeyOutsideRange;
}

async function settled<T>(cluster: TestCluster, promise: Promise<T>, what: string): Promise<T> {
  const tracked = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  if (tracked.error !== undefined) throw tracked.error as Error;
  return tracked.value as T;
}

/** Writes `key` through the leader of `rangeId` and waits until it applied there. */
async function write(cluster: TestCluster, rangeId: number, key: string, value: string): Promise<void> {
  const leader = await cluster.elect(rangeId);
  const result = await settled(
    cluster,
    cluster.replica(leader, rangeId).propose(put(key, value)),
    `put ${key}`,
  );
  assert.equal(result.response.kind, "put", `put ${key} on range ${rangeId}`);
}

/** Three nodes, ranges 1..3 split at k20 and k30, one key written in each. */
async function threeRanges(): Promise<TestCluster> {
  const cluster = new TestCluster([1, 2, 3], {}, { sharedStateMachine: true });
  await cluster.startAll();
  cluster.bootstrap(1);
  for (const key of ["k10", "k25", "k35"]) await write(cluster, 1, key, `v-${key}`);
  for (const [parent, splitKey, rhs] of [
    [1, "k20", 2],
    [2, "k30", 3],
  ] as const) {
    const leader = await cluster.elect(parent);
    const replica = cluster.replica(leader, parent);
    await settled(cluster, replica.fence(b(splitKey), rhs), `fence at ${splitKey}`);
    await settled(cluster, replica.split(b(splitKey), rhs), `split at ${splitKey}`);
    await cluster.runUntil(
      () => cluster.ids.every((id) => cluster.hosts.get(id)?.replica(rhs) !== undefined),
      `range ${rhs} everywhere`,
    );
    await cluster.elect(rhs);
  }
  return cluster;
}

/** How many keys node `id`'s state-machine engine holds under range `rangeId`'s namespace. */
function namespaceKeys(cluster: TestCluster, id: NodeId, rangeId: number): number {
  const kv = cluster.disks.get(id)!.kvs.get(0)!;
  const namespace = rangeNamespace(rangeId);
  const view = kv.view();
  try {
    return [...view.scan(namespace, prefixEnd(namespace))].length;
  } finally {
    view.release();
  }
}

function drain(responses: { poll(): WatchResponse | undefined }): WatchResponse[] {
  const seen: WatchResponse[] = [];
  for (let response = responses.poll(); response !== undefined; response = responses.poll())
    seen.push(response);
  return seen;
}

/** Runs until `rangeId` has a leader among the running nodes and every other range's reads work. */
async function assertServes(
  cluster: TestCluster,
  rangeId: number,
  key: string,
  value: string,
): Promise<void> {
  await write(cluster, rangeId, key, value);
  await cluster.waitApplied(
    rangeId,
    Math.max(...[...cluster.hosts.values()].map((h) => h.replica(rangeId)!.appliedIndex)),
  );
  for (const id of cluster.hosts.keys())
    assert.equal(await get(cluster.replica(id, rangeId), key), value, `${key} on node ${id}`);
}

test("destroying a replica ends its requests and watches, forgets its storage, and leaves the other ranges working", async () => {
  const cluster = await threeRanges();
  const leader = await cluster.elect(DESTROYED);
  const victim = leader;
  const host = cluster.host(victim);
  const replica = cluster.replica(victim, DESTROYED);
  const watch = replica.watch({ key: b("k20"), rangeEnd: b("k30") });
  assert.deepEqual(drain(watch), []);

  // A proposal the core has taken (appended, its messages not delivered), one still queued,
  // and a linearizable read, all pending when the replica is destroyed.
  const inCore = track(replica.propose(put("k26", "in core")));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(
    replica.status().lastIndex > replica.appliedIndex,
    "the proposal reached the log, not the state machine",
  );
  const queued = track(replica.propose(put("k27", "queued")));
  const read = track(replica.range(rangeRequest({ key: b("k25") })));
  const destroyed = track(host.destroyReplica(DESTROYED));
  await cluster.runUntil(
    () => destroyed.settled && inCore.settled && queued.settled && read.settled,
    "the destroy",
  );
  assert.equal(destroyed.error, undefined);
  for (const [what, request] of [
    ["in the core", inCore],
    ["queued", queued],
    ["read", read],
  ] as const) {
    assert.ok(isKeyOutsideRange(request.error), `${what}: ${String(request.error)}`);
  }
  const [last, ...after] = drain(watch);
  assert.deepEqual(after, []);
  assert.equal(last?.canceled, true);
  assert.equal(last?.cancelReason, KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange]);
  assert.throws(() => replica.watch({ key: b("k25") }));

  assert.equal(host.replica(DESTROYED), undefined);
  assert.deepEqual(host.rangeIds(), [1, 3]);
  assert.deepEqual(cluster.disks.get(victim)!.engine.groups(), [1, 3]);
  assert.equal(namespaceKeys(cluster, victim, DESTROYED), 0);
  assert.ok(namespaceKeys(cluster, victim, 1) > 0 && namespaceKeys(cluster, victim, 3) > 0);
  assert.equal(host.counters.replicasDestroyed, 1);
  // A stale handle asking for a turn never brings the replica back into the host's turns.
  replica.campaign();
  await cluster.tick(3);
  assert.equal(host.failure, null);
  assert.equal(host.replica(DESTROYED), undefined);

  // The other members still run range 2 and elect a leader among themselves; what they send
  // the destroyed member is dropped and counted, and never recreates the range there.
  const droppedBefore = host.counters.dropped.unknownRange;
  const survivors = cluster.ids.filter((id) => id !== victim);
  await cluster.runUntil(() => {
    const newLeader = cluster.leader(DESTROYED);
    return newLeader !== null && survivors.includes(newLeader);
  }, "a new leader of range 2 among the others");
  const newLeader = cluster.leader(DESTROYED)!;
  await settled(
    cluster,
    cluster.replica(newLeader, DESTROYED).propose(put("k28", "after")),
    "a write on range 2",
  );
  assert.ok(
    host.counters.dropped.unknownRange > droppedBefore,
    "messages for the destroyed range were dropped",
  );
  assert.equal(host.replica(DESTROYED), undefined);
  assert.deepEqual(cluster.disks.get(victim)!.engine.groups(), [1, 3]);
  assert.equal(namespaceKeys(cluster, victim, DESTROYED), 0);

  await assertServes(cluster, 1, "k11", "one");
  await assertServes(cluster, 3, "k36", "three");

  await assert.rejects(host.destroyReplica(1), /range 1 holds the catalog and is never destroyed/);
  await assert.rejects(host.destroyReplica(DESTROYED), /range 2 has no replica on this node/);
  await assert.rejects(host.destroyReplica(99), /range 99 has no replica on this node/);
  assert.deepEqual(host.rangeIds(), [1, 3]);

  // A restart reopens what the Raft storage holds: ranges 1 and 3, not 2.
  await cluster.stopNode(victim);
  const restarted = await cluster.startNode(victim);
  assert.deepEqual(
    restarted.openStoredReplicas().map((r) => r.rangeId),
    [1, 3],
  );
  await assertServes(cluster, 1, "k12", "one again");
  await assertServes(cluster, 3, "k37", "three again");
  assert.equal(restarted.replica(DESTROYED), undefined);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a crash between dropping the Raft storage and deleting the namespace leaves a node that restarts without the range", async () => {
  const cluster = await threeRanges();
  const victim: NodeId = 3;
  const kv = cluster.disks.get(victim)!.kvs.get(0)!;
  const namespace = rangeNamespace(DESTROYED);
  const namespaceEnd = prefixEnd(namespace)!;
  const keysBefore = namespaceKeys(cluster, victim, DESTROYED);
  assert.ok(keysBefore > 0);
  // The process dies at the namespace deletion: the write that deletes range 2's keys throws.
  const inject = (engine: MemoryOrderedKv): void => {
    const write = engine.write.bind(engine);
    engine.write = (batch: WriteBatch) => {
      const ops = batch.sortedOps();
      const deletesNamespace = ops.every(
        (op) =>
          op.value === null &&
          Buffer.compare(op.key, namespace) >= 0 &&
          Buffer.compare(op.key, namespaceEnd) < 0,
      );
      if (ops.length > 0 && deletesNamespace) throw new Error("injected crash before the namespace deletion");
      write(batch);
    };
  };
  inject(kv);
  await assert.rejects(cluster.host(victim).destroyReplica(DESTROYED), /injected crash/);
  assert.deepEqual(cluster.disks.get(victim)!.engine.groups(), [1, 3]);
  assert.equal(namespaceKeys(cluster, victim, DESTROYED), keysBefore, "the namespace is an orphan now");

  // Power loss: the Raft storage keeps what was synced — the drop was.
  await cluster.stopNode(victim);
  cluster.disks.get(victim)!.engine.inner.crash();
  const restarted = await cluster.startNode(victim);
  assert.deepEqual(
    restarted.openStoredReplicas().map((r) => r.rangeId),
    [1, 3],
  );
  assert.equal(restarted.replica(DESTROYED), undefined);
  await assertServes(cluster, 1, "k13", "one");
  await assertServes(cluster, 3, "k38", "three");
  // The orphan stays: nothing hosts range 2 here, and writes to other ranges never touch it.
  assert.equal(namespaceKeys(cluster, victim, DESTROYED), keysBefore);
  cluster.assertHealthy();
  await cluster.shutdown();
});
