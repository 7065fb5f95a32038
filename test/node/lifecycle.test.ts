// The host's life cycle: a clean stop (no more ticks, pending requests failed, nothing it does
// not own closed), requests after stop, and apply listeners that throw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AmbiguousResultError, ReplicaStoppedError } from "../../src/node/errors.js";
import { NodeHost } from "../../src/node/host.js";
import { MemoryStorageEngine } from "../../src/storage/memory.js";
import type { StorageEngine } from "../../src/storage/contracts.js";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { EMPTY_CONF_STATE } from "../../src/raft/types.js";
import { RecordingLogger, TestCluster, VirtualTime, get, put, seededRandom, track } from "./harness.js";

const RANGE = 1;

/** Node 1 alone on `network`, over `engine`, started with its transport. */
async function startLoneHost(
  time: VirtualTime,
  network: MemoryNetwork,
  engine: StorageEngine,
  onFailure?: (error: Error) => void,
): Promise<{ host: NodeHost; transport: MemoryTransport }> {
  const transport = network.createTransport(1);
  const host = new NodeHost({
    nodeId: 1,
    engine,
    transport,
    timers: time.timers,
    monotonicClock: time.monotonic,
    wallClock: time.wall,
    random: seededRandom(1),
    logger: new RecordingLogger(),
    ...(onFailure === undefined ? {} : { onFailure }),
    stateMachine: () => ({ kv: new MemoryOrderedKv(), sync: () => Promise.resolve() }),
  });
  await transport.start();
  host.start();
  return { host, transport };
}

test("stop() stops ticking, fails pending requests, and leaves the transport and engine open", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const follower = cluster.ids.find((id) => id !== leader)!;
  // The follower's proposal reaches nobody, so it is still pending when the node stops.
  cluster.network.cut(follower, leader);
  const replica = cluster.replica(follower, RANGE);
  const inFlight = track(replica.propose(put("k", "v")));
  await cluster.settle();
  const timersBefore = cluster.time.pendingTimers;
  const host = cluster.host(follower);

  await host.stop();
  assert.ok(inFlight.error instanceof AmbiguousResultError, `got ${String(inFlight.error)}`);
  assert.equal(cluster.time.pendingTimers, timersBefore - 1, "its tick timer is gone");
  await assert.rejects(replica.propose(put("k", "w")), ReplicaStoppedError);
  await assert.rejects(get(replica, "k", "linearizable"), ReplicaStoppedError);
  // Messages that still arrive are dropped and counted; the transport was not closed.
  cluster.network.healAll();
  const droppedBefore = host.counters.dropped.notRunning;
  await cluster.tick(3);
  assert.ok(host.counters.dropped.notRunning > droppedBefore);
  assert.equal(host.isIdle(), true);
  assert.equal(host.failure, null);
  // The storage engine stays usable by its owner.
  assert.doesNotThrow(() => cluster.disks.get(follower)!.engine.replica(RANGE).lastIndex());
  await cluster.shutdown();
});

test("stop() lets the turn in progress finish before it returns", async () => {
  const time = new VirtualTime();
  const network = new MemoryNetwork();
  const engine = new MemoryStorageEngine();
  let releaseSync: () => void = () => {};
  let syncsStarted = 0;
  const slowEngine = {
    replica: (id: number) => engine.replica(id),
    groups: () => engine.groups(),
    dropGroup: (id: number) => engine.dropGroup(id),
    sync: () =>
      new Promise<void>((resolve) => {
        syncsStarted++;
        releaseSync = () => resolve(engine.sync());
      }),
    syncNow: () => false,
  };
  const { host, transport } = await startLoneHost(time, network, slowEngine);
  const replica = host.createReplica(RANGE, { bootstrap: { ...EMPTY_CONF_STATE, voters: [1] } });
  for (let i = 0; i < 30 && syncsStarted === 0; i++) {
    time.advance(100);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(syncsStarted, 1, "a single-voter range campaigns and syncs its vote");
  const stopped = track(host.stop());
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped.settled, false, "stop waits for the turn blocked on the disk");
  releaseSync();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped.settled, true);
  assert.equal(host.failure, null);
  assert.ok(replica.status().term > 0);
  await transport.close();
});

// A sync fails by rejecting; a write made at once (syncNow) fails by throwing in the turn.
const FAILING_SYNCS = {
  "a failed sync": {
    sync: () => Promise.reject(new Error("fsync failed: EIO")),
    syncNow: () => false,
  },
  "a failed inline write": {
    sync: () => Promise.reject(new Error("unexpected: the write was to be made at once")),
    syncNow: (): boolean => {
      throw new Error("fsync failed: EIO");
    },
  },
};

for (const [name, failing] of Object.entries(FAILING_SYNCS)) {
  test(`${name} stops the host, fails its requests and reports the cause once`, async () => {
    const time = new VirtualTime();
    const network = new MemoryNetwork();
    const engine = new MemoryStorageEngine();
    const failingEngine = {
      replica: (id: number) => engine.replica(id),
      groups: () => engine.groups(),
      dropGroup: (id: number) => engine.dropGroup(id),
      ...failing,
    };
    const reported: Error[] = [];
    const { host, transport } = await startLoneHost(time, network, failingEngine, (error) =>
      reported.push(error),
    );
    const replica = host.createReplica(RANGE, { bootstrap: { ...EMPTY_CONF_STATE, voters: [1] } });
    for (let i = 0; i < 30 && host.failure === null; i++) {
      time.advance(100);
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.match(host.failure?.message ?? "", /fsync failed: EIO/);
    assert.deepEqual(
      reported.map((e) => e.message),
      ["fsync failed: EIO"],
    );
    await assert.rejects(replica.propose(put("k", "v")), ReplicaStoppedError);
    await transport.close();
  });
}

test("an apply listener that throws is counted and does not stop the apply", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const replica = cluster.replica(leader, RANGE);
  const seen: number[] = [];
  replica.addApplyListener({
    onCommand: () => {
      throw new Error("listener bug");
    },
  });
  const remove = replica.addApplyListener({ onCommand: ({ index }) => seen.push(index) });
  const first = track(replica.propose(put("a", "1")));
  await cluster.runUntil(() => first.settled, "the put");
  assert.equal(first.error, undefined);
  assert.equal(seen.length, 1);
  assert.equal(cluster.host(leader).counters.listenerErrors, 1);
  remove();
  const second = track(replica.propose(put("b", "2")));
  await cluster.runUntil(() => second.settled, "the second put");
  assert.equal(seen.length, 1, "a removed listener hears nothing");
  await cluster.shutdown();
});
