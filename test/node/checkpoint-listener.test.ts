// NodeHost.observeCheckpoints: every local snapshot a host takes is told to its listeners
// (what etcd_debugging_snap_save_total_duration_seconds is fed from), a listener that throws
// neither stops the host nor the other listeners, and a removed listener hears nothing more.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TestCluster, put, track } from "./harness.js";

const RANGE = 1;

test("every local snapshot is told to each listener; a throwing one is ignored; a removed one hears nothing", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 5 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const host = cluster.host(leader);
  const heard: number[] = [];
  const stopHearing = host.observeCheckpoints((milliseconds) => heard.push(milliseconds));
  let thrown = 0;
  host.observeCheckpoints(() => {
    thrown++;
    throw new Error("a broken metrics listener");
  });
  // Six rounds of six writes: each round's apply leaves a snapshot due.
  const writeKeys = async (prefix: string) => {
    for (let round = 0; round < 6; round++) {
      const writes = Array.from({ length: 6 }, (_, i) =>
        track(cluster.replica(leader, RANGE).propose(put(`${prefix}${round}/${i}`, "v"))),
      );
      await cluster.runUntil(() => writes.every((w) => w.settled), `round ${round}'s writes`);
      for (const w of writes) assert.equal(w.error, undefined);
    }
  };

  const before = host.counters.checkpoints;
  await writeKeys("a");
  const taken = host.counters.checkpoints - before;
  assert.ok(taken >= 3, `36 writes at a snapshot per 5 entries took ${taken} snapshots`);
  assert.equal(heard.length, taken, "each snapshot taken is told once");
  assert.equal(thrown, taken, "the throwing listener was told as often");
  for (const milliseconds of heard) assert.ok(milliseconds >= 0);
  assert.equal(host.failure, null, "a throwing listener does not stop the host");

  stopHearing();
  await writeKeys("b");
  assert.ok(host.counters.checkpoints - before > taken, "more snapshots were taken");
  assert.equal(heard.length, taken, "the removed listener heard none of them");
  cluster.assertHealthy();
  await cluster.shutdown();
});
