// Merges on a cluster of three hosts in virtual time: after a split, the right-hand range is
// merge-fenced (its writes and linearizable reads answer RangeFenced), its image is taken on a
// follower after a linearizable read reached its read index, and a merge on the left-hand range makes every node's left replica serve
// the right-hand keys, with the same data everywhere; a retried merge finds the end moved on
// (KeyOutsideRange) while lastMerge says it applied.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rangeRequest } from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import type { CommandResult } from "../../src/kv/results.js";
import { TestCluster, b, get, put, track } from "./harness.js";

async function settleProposal<T>(cluster: TestCluster, promise: Promise<T>, what: string): Promise<T> {
  const tracked = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  if (tracked.error !== undefined) throw tracked.error as Error;
  return tracked.value as T;
}

function errorCode(result: CommandResult): KvErrorCode | null {
  return result.response.kind === "error" ? result.response.code : null;
}

test("a merge after a split: every node's left replica serves the right-hand keys; a retry finds it applied", async () => {
  const cluster = new TestCluster([1, 2, 3], {}, { sharedStateMachine: true });
  await cluster.startAll();
  cluster.bootstrap(1);
  const leader = await cluster.elect(1);
  const lhs = () => cluster.replica(cluster.leader(1) ?? leader, 1);
  for (const [key, value] of [
    ["a", "a1"],
    ["n", "n1"],
    ["z", "z1"],
  ]) {
    await settleProposal(cluster, lhs().propose(put(key!, value!)), `put ${key}`);
  }
  await settleProposal(cluster, lhs().split(b("m"), 2), "the split");
  await cluster.elect(2);
  const rhs = () => cluster.replica(cluster.leader(2)!, 2);
  await settleProposal(cluster, rhs().propose(put("n", "n2")), "a write on the right");
  await settleProposal(cluster, rhs().mergeFence(), "the merge fence");
  const refused = await settleProposal(cluster, rhs().propose(put("q", "q1")), "a fenced write");
  assert.equal(errorCode(refused), KvErrorCode.RangeFenced);

  // The image, on a follower of range 2, once a linearizable read shows it applied the fence:
  // that read is refused (RangeFenced: the range is frozen and its keys may have newer writes
  // in the left range by now), but only once its read index is reached. Serializable reads go on.
  const follower = cluster.ids.find((id) => id !== cluster.leader(2))!;
  const source = cluster.replica(follower, 2);
  await assert.rejects(
    settleProposal(cluster, source.range(rangeRequest({ key: b("n") }), "linearizable"), "a barrier"),
    (e: unknown) => e instanceof KvError && e.code === KvErrorCode.RangeFenced,
  );
  assert.equal(source.rangeState, "merge-fenced");
  const local = await source.range(rangeRequest({ key: b("n") }), "serializable");
  assert.equal(new TextDecoder().decode(local.kvs[0]?.value), "n2");
  const image = source.mergeImage();

  const revision = await settleProposal(cluster, lhs().merge(2, image, lhs().boundsRevision), "the merge");
  await cluster.runUntil(
    () => cluster.ids.every((id) => cluster.replica(id, 1).lastMerge?.revision === revision),
    "every node applies the merge",
  );
  for (const id of cluster.ids) {
    const replica = cluster.replica(id, 1);
    assert.equal(replica.bounds.end, null, `node ${id}`);
    assert.equal(replica.rangeState, "active");
    assert.deepEqual(replica.lastMerge, { rhsRangeId: 2, revision });
    assert.equal(await get(replica, "a"), "a1", `node ${id}`);
    assert.equal(await get(replica, "n"), "n2", `node ${id}`);
    assert.equal(await get(replica, "z"), "z1", `node ${id}`);
    assert.ok(replica.revision >= revision);
  }
  const hashes = cluster.ids.map((id) => cluster.replica(id, 1).hashKv(revision).hash);
  assert.equal(new Set(hashes).size, 1, `range 1 hashes ${hashes.join(", ")}`);

  // A retry (another request) finds the range's end moved on; lastMerge tells it applied.
  await assert.rejects(
    settleProposal(cluster, lhs().merge(2, image, lhs().boundsRevision), "a retried merge"),
    (e: unknown) => e instanceof KvError && e.code === KvErrorCode.KeyOutsideRange,
  );
  assert.equal(lhs().lastMerge?.rhsRangeId, 2);
  // The merged range takes writes to the right-hand keys, above the merge's revision.
  const write = await settleProposal(cluster, lhs().propose(put("q", "q2")), "a write to a merged key");
  assert.equal(errorCode(write), null);
  assert.ok(write.revision > revision);
  cluster.assertHealthy();
  await cluster.shutdown();
});
