// The production pieces together, in one process: three NodeHosts on LmdbStorageEngines in
// temporary directories, talking TcpTransport over 127.0.0.1, on real time. Waits poll with a
// generous deadline (to fail rather than hang); nothing asserts on how long anything took.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { NodeHost } from "../../src/node/host.js";
import { EMPTY_CONF_STATE, StateRole, type NodeId } from "../../src/raft/types.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { TcpTransport } from "../../src/transport/tcp.js";
import { systemTimers } from "../../src/transport/timers.js";
import { RecordingLogger, get, put, seededRandom } from "./harness.js";

const RANGE = 1;
const IDS: readonly NodeId[] = [1, 2, 3];

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

test("three hosts over TCP with lmdb storage serve puts and reads", async () => {
  const logger = new RecordingLogger();
  const dirs = IDS.map(() => mkdtempSync(join(tmpdir(), "concord-node-")));
  const engines: LmdbStorageEngine[] = [];
  const transports: TcpTransport[] = [];
  const hosts: NodeHost[] = [];
  try {
    for (const [i, id] of IDS.entries()) {
      const engine = await LmdbStorageEngine.open({ path: dirs[i]!, logger: { warn: () => {} } });
      engines.push(engine);
      const transport = new TcpTransport({
        clusterId: "node-test",
        nodeId: id,
        listen: { host: "127.0.0.1", port: 0 },
        logger,
      });
      transports.push(transport);
      hosts.push(
        new NodeHost({
          nodeId: id,
          engine,
          transport,
          timers: systemTimers,
          monotonicClock: () => performance.now(),
          wallClock: () => Date.now(),
          random: seededRandom(id),
          logger,
          stateMachine: () => ({ kv: new MemoryOrderedKv(), sync: () => Promise.resolve() }),
          tickMs: 20,
        }),
      );
    }
    for (const transport of transports) await transport.start();
    for (const transport of transports) {
      for (const peer of transports) if (peer !== transport) transport.addPeer(peer.nodeId, peer.address());
    }
    const confState = { ...EMPTY_CONF_STATE, voters: [...IDS] };
    const replicas = hosts.map((host) => host.createReplica(RANGE, { bootstrap: confState }));
    for (const host of hosts) host.start();

    const leaderOf = () => replicas.find((r) => r.status().role === StateRole.Leader);
    await waitFor(() => {
      const leader = leaderOf();
      return leader !== undefined && replicas.every((r) => r.status().leader === leader.nodeId);
    }, "a leader known to all");
    const leader = leaderOf()!;
    const follower = replicas.find((r) => r !== leader)!;

    const results = await Promise.all([
      leader.propose(put("alpha", "1")),
      follower.propose(put("beta", "2")),
      leader.propose(put("gamma", "3")),
    ]);
    assert.ok(results.every((r) => r.response.kind === "put"));
    for (const replica of replicas) {
      assert.equal(await get(replica, "alpha", "linearizable"), "1");
      assert.equal(await get(replica, "beta", "linearizable"), "2");
      assert.equal(await get(replica, "gamma", "linearizable"), "3");
    }
    for (const [i, host] of hosts.entries()) {
      assert.equal(host.failure, null);
      // Everything the hosts synced reached lmdb as commits (one fsync each).
      assert.ok(engines[i]!.stats().commits > 0);
      assert.ok(host.counters.syncs > 0);
    }
  } finally {
    for (const host of hosts) await host.stop();
    for (const transport of transports) await transport.close();
    for (const engine of engines) await engine.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});
