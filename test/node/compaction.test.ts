// Removing compacted versions in the background: a Compact applies without removing anything,
// then each node removes the versions in steps on its own timer (also after a restart that
// interrupted it), replicas hash and read alike throughout, and compactedPhysically() waits
// for the removal (etcd's physical compaction).
import assert from "node:assert/strict";
import { test } from "node:test";
import { compactRequest, rangeRequest } from "../../src/kv/commands.js";
import { EMPTY } from "../../src/kv/bytes.js";
import { KeyLayout } from "../../src/kv/keys.js";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, b, put, track } from "./harness.js";

const RANGE = 1;
const KEYS = 50;
const ROUNDS = 5;

test("a compaction's versions are removed after it applies, in the background, on every node", async () => {
  // Followers hear of commits at once: they apply the compaction before time moves on.
  const cluster = new TestCluster([1, 2, 3], { commitNoticeDelayMs: 0 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leaderId = await cluster.elect(RANGE);
  const storedVersions = (id: NodeId) => {
    const layout = new KeyLayout(EMPTY);
    const view = cluster.disks.get(id)!.kvs.get(RANGE)!.view();
    try {
      return [...view.scan(layout.dataStart, layout.dataEnd)].length;
    } finally {
      view.release();
    }
  };
  const leader = () => cluster.replica(leaderId, RANGE);
  for (let round = 0; round < ROUNDS; round++) {
    const puts = Array.from({ length: KEYS }, (_, k) => track(leader().propose(put(`k${k}`, `v${round}`))));
    await cluster.runUntil(() => puts.every((p) => p.settled), `round ${round} of puts`);
    assert.equal(puts.filter((p) => p.error !== undefined).length, 0);
  }
  const compacted = track(leader().propose(compactRequest(leader().revision)));
  await cluster.runUntil(() => compacted.settled, "the compaction");
  assert.equal(compacted.value?.response.kind, "compact");
  await cluster.waitApplied(RANGE, leader().appliedIndex);

  // Applied everywhere, removed nowhere yet: time has not moved since.
  const hashes = (ids: readonly NodeId[]) => ids.map((id) => cluster.replica(id, RANGE).hashKv(0n, 0).hash);
  const hashCompacted = hashes(cluster.ids);
  for (const id of cluster.ids) assert.equal(storedVersions(id), KEYS * ROUNDS, `node ${id} before removal`);
  assert.equal(new Set(hashCompacted).size, 1, "replicas hash alike with the versions still stored");

  // A restart forgets the pass; the restarted replica starts it again by itself.
  const restartedId = cluster.ids.find((id) => id !== leaderId)!;
  await cluster.stopNode(restartedId);
  const restarted = await cluster.startNode(restartedId);
  assert.deepEqual(
    restarted.openStoredReplicas().map((replica) => replica.rangeId),
    [RANGE],
  );
  assert.equal(storedVersions(restartedId), KEYS * ROUNDS, "the restarted node had not removed any");

  const removed = cluster.ids.map((id) => track(cluster.replica(id, RANGE).compactedPhysically()));
  await cluster.runUntil(() => removed.every((p) => p.settled), "every node removed the versions");
  for (const id of cluster.ids)
    assert.equal(storedVersions(id), KEYS, `node ${id} keeps the newest versions`);
  assert.deepEqual(hashes(cluster.ids), hashCompacted);
  const read = await cluster
    .replica(restartedId, RANGE)
    .range(rangeRequest({ key: b("k7") }), "serializable");
  assert.equal(Buffer.from(read.kvs[0]!.value).toString(), `v${ROUNDS - 1}`);
  assert.equal(read.kvs[0]!.version, BigInt(ROUNDS));
  cluster.assertHealthy();
  await cluster.shutdown();
});
