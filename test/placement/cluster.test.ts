// The catalog over a real meta range: three NodeHosts on virtual time, range 1 replicated, the
// catalog used through replicaMetaKv on followers and the leader (transactions forwarded,
// linearizable reads), optimistic conflicts between nodes, and a RouteWatcher on a third node
// following the saves through its replica's watch.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RouteCatalog } from "../../src/placement/catalog/catalog.js";
import { CatalogVersionMismatchError } from "../../src/placement/catalog/errors.js";
import { replicaMetaKv } from "../../src/placement/catalog/meta-kv.js";
import { RouteWatcher } from "../../src/placement/routes/watcher.js";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, track } from "../node/harness.js";
import { plain, split } from "./arbitraries.js";

const META_RANGE = 1;

/** Runs the cluster until `promise` settles; returns its value or throws its error. */
async function run<T>(cluster: TestCluster, promise: Promise<T>, what: string): Promise<T> {
  const tracked = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  if (tracked.error instanceof Error) throw tracked.error;
  if (tracked.error !== undefined) throw new Error(`${what} failed`, { cause: tracked.error });
  return tracked.value as T;
}

test("a replicated catalog: saves through followers, conflicts between nodes, a watcher following", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  try {
    cluster.bootstrap(META_RANGE);
    const leader = await cluster.elect(META_RANGE);
    const [followerA, followerB] = cluster.ids.filter((id) => id !== leader) as [NodeId, NodeId];
    const catalogOn = (id: NodeId) => new RouteCatalog(replicaMetaKv(cluster.replica(id, META_RANGE)));
    const onFollower = catalogOn(followerA);
    const onLeader = catalogOn(leader);

    const initial = await run(cluster, onFollower.initialize(), "initialize through a follower");
    assert.equal(initial.version, 1);
    const again = await run(cluster, onLeader.initialize(), "initialize again on the leader");
    assert.equal(again.version, 1, "a second initialize changed the catalog");

    const watcherReplica = replicaMetaKv(cluster.replica(followerB, META_RANGE));
    const watcher = new RouteWatcher({
      catalog: new RouteCatalog(watcherReplica),
      watch: watcherReplica,
      timers: cluster.time.timers,
      pollIntervalMs: 10_000,
    });
    watcher.start();
    await cluster.runUntil(() => watcher.table.version === 1, "the watcher's first load");

    const ids = await run(cluster, onFollower.allocateRouteIds(2), "allocate through a follower");
    assert.deepEqual(ids, [2, 3]);
    await run(cluster, onFollower.save(1, split(["m"], 2)), "save through a follower");
    await cluster.runUntil(() => watcher.table.version === 2, "the watcher to see version 2");

    // The leader's catalog still believes version 1 was current: its save must fail whole.
    await assert.rejects(
      run(cluster, onLeader.save(1, split(["q"], 4)), "a stale save"),
      CatalogVersionMismatchError,
    );
    const fresh = await run(cluster, onLeader.snapshot(), "a snapshot on the leader");
    assert.equal(fresh.version, 2);
    await run(cluster, onLeader.save(2, split(["g", "m"], 4)), "save on the leader");
    await cluster.runUntil(() => watcher.table.version === 3, "the watcher to see version 3");

    const final = await run(cluster, onFollower.snapshot(), "a snapshot on a follower");
    assert.equal(final.version, 3);
    assert.ok(final.nextRouteId >= 7);
    assert.deepEqual(watcher.table.routes.map(plain), final.routes.map(plain));
    assert.equal(watcher.counters.deltasFromWatch, 2, "the watcher did not follow through its watch");
    assert.equal(watcher.counters.errors, 0);
    await watcher.stop();
    cluster.assertHealthy();
  } finally {
    await cluster.shutdown();
  }
});

test("a leader change and a restart of every node: the catalog and its next route id survive", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  try {
    cluster.bootstrap(META_RANGE);
    const leader = await cluster.elect(META_RANGE);
    const catalogOn = (id: NodeId) => new RouteCatalog(replicaMetaKv(cluster.replica(id, META_RANGE)));
    await run(cluster, catalogOn(leader).initialize(), "initialize");
    const first = await run(cluster, catalogOn(leader).allocateRouteIds(3), "allocate on the leader");
    await run(cluster, catalogOn(leader).save(1, split(["m"], first[0])), "save on the leader");

    const successor = cluster.ids.find((id) => id !== leader)!;
    await run(cluster, cluster.replica(leader, META_RANGE).transferLeader(successor), "a leader transfer");
    const second = await run(cluster, catalogOn(leader).allocateRouteIds(2), "allocate on the old leader");
    assert.ok(second[0]! > first[2]!, `ids ${second.join()} after ${first.join()}`);

    for (const id of cluster.ids) await cluster.stopNode(id);
    for (const id of cluster.ids) (await cluster.startNode(id)).openStoredReplicas();
    const newLeader = await cluster.elect(META_RANGE);
    const reopened = catalogOn(newLeader);
    const snapshot = await run(cluster, reopened.snapshot(), "a snapshot after the restart");
    assert.equal(snapshot.version, 2);
    assert.deepEqual(snapshot.routes.map(plain), split(["m"], first[0]).map(plain));
    const third = await run(cluster, reopened.allocateRouteIds(1), "allocate after the restart");
    assert.ok(third[0]! > second[1]!, `id ${third[0]} handed out again after the restart`);
    cluster.assertHealthy();
  } finally {
    await cluster.shutdown();
  }
});
