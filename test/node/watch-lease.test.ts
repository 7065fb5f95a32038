// Watches and leases wired into the node, on virtual time: a follower's watch sees every put
// once and in order, also across a leader change; a lease with an attached key expires after
// its TTL (the key deleted on every replica through one replicated revocation, which a watch
// sees), keep-alives on the leader hold it, and a new leader gives it a full TTL again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { leaseGrantRequest, putRequest, type KvCommand } from "../../src/kv/commands.js";
import type { CommandResult } from "../../src/kv/results.js";
import type { Watch } from "../../src/kv/watch.js";
import { NotLeaderError } from "../../src/node/errors.js";
import type { NodeId } from "../../src/raft/types.js";
import { TestCluster, b, get, s, track } from "./harness.js";

const RANGE = 1;

interface SeenEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  readonly value: string;
  readonly revision: bigint;
}

/** Everything a watch can deliver now, without waiting, appended to `into`. */
function drain(watch: Watch, into: SeenEvent[]): SeenEvent[] {
  for (let response = watch.poll(); response !== undefined; response = watch.poll()) {
    assert.equal(response.canceled, false, `watch cancelled: ${response.cancelReason}`);
    for (const event of response.events) {
      into.push({
        type: event.type,
        key: s(event.kv.key),
        value: s(event.kv.value),
        revision: event.kv.modRevision,
      });
    }
  }
  return into;
}

function isolate(cluster: TestCluster, node: NodeId): void {
  for (const id of cluster.ids) {
    if (id === node) continue;
    cluster.network.cut(id, node);
    cluster.network.cut(node, id);
  }
}

function grantedId(result: CommandResult): bigint {
  if (result.response.kind !== "leaseGrant")
    throw new Error(`not a grant: ${JSON.stringify(result.response)}`);
  return result.response.id;
}

async function startCluster(): Promise<{ cluster: TestCluster; leader: NodeId }> {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  return { cluster, leader };
}

type PutFields = Parameters<typeof putRequest>[0];

/** Proposes (a put given by its fields, or any command) through `node`; runs until it settles. */
/** A keep-alive on `node`, run until it settles (its leadership check needs a ReadIndex round). */
async function keepAlive(cluster: TestCluster, node: NodeId, id: bigint): Promise<number | null> {
  const renewal = track(cluster.replica(node, RANGE).leaseKeepAlive(id));
  await cluster.runUntil(() => renewal.settled, "the keep-alive to settle");
  if (renewal.error !== undefined) throw new Error("the keep-alive failed", { cause: renewal.error });
  return renewal.value!;
}

async function propose(
  cluster: TestCluster,
  node: NodeId,
  command: PutFields | KvCommand,
): Promise<CommandResult> {
  const request = "kind" in command ? command : putRequest(command);
  const proposal = track(cluster.replica(node, RANGE).propose(request));
  await cluster.runUntil(() => proposal.settled, "the proposal to settle");
  if (proposal.error !== undefined) throw new Error("the proposal failed", { cause: proposal.error });
  return proposal.value!;
}

/** Runs until every replica has applied what the leader has. */
async function converge(cluster: TestCluster): Promise<void> {
  await cluster.settle();
  const target = Math.max(...cluster.ids.map((id) => cluster.replica(id, RANGE).appliedIndex));
  await cluster.waitApplied(RANGE, target);
}

test("a watch from revision 0 on a follower sees every put, once each and in order", async () => {
  const { cluster, leader } = await startCluster();
  const follower = cluster.ids.find((id) => id !== leader)!;
  const watch = cluster.replica(follower, RANGE).watch({ key: b("k"), rangeEnd: b("l") });
  const expected: string[] = [];
  for (let i = 0; i < 12; i++) {
    // Alternate writers: the leader, and the follower itself (forwarded).
    await propose(cluster, i % 2 === 0 ? leader : follower, { key: b(`k${i % 4}`), value: b(`v${i}`) });
    expected.push(`k${i % 4}=v${i}`);
  }
  await propose(cluster, leader, { key: b("other"), value: b("not watched") });
  await converge(cluster);
  const seen = drain(watch, []);
  assert.deepEqual(
    seen.map((e) => `${e.key}=${e.value}`),
    expected,
  );
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.revision > seen[i - 1]!.revision);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("watches on the old leader and a follower see every put once across a leader change", async () => {
  const { cluster, leader: oldLeader } = await startCluster();
  const follower = cluster.ids.find((id) => id !== oldLeader)!;
  const watches = new Map<NodeId, Watch>([
    [oldLeader, cluster.replica(oldLeader, RANGE).watch({ key: b("x") })],
    [follower, cluster.replica(follower, RANGE).watch({ key: b("x") })],
  ]);
  const seen = new Map<NodeId, SeenEvent[]>([...watches.keys()].map((id) => [id, []]));
  for (let i = 0; i < 3; i++) await propose(cluster, oldLeader, { key: b("x"), value: b(`before${i}`) });

  isolate(cluster, oldLeader);
  await cluster.runUntil(() => {
    const leader = cluster.leader(RANGE);
    return leader !== null && leader !== oldLeader;
  }, "a new leader on the majority side");
  const newLeader = cluster.leader(RANGE)!;
  for (let i = 0; i < 3; i++) {
    await propose(cluster, newLeader, { key: b("x"), value: b(`after${i}`) });
    for (const [id, watch] of watches) drain(watch, seen.get(id)!);
  }
  cluster.network.healAll();
  await converge(cluster);

  const expected = ["before0", "before1", "before2", "after0", "after1", "after2"];
  for (const [id, watch] of watches) {
    const events = drain(watch, seen.get(id)!);
    assert.deepEqual(
      events.map((e) => e.value),
      expected,
      `the watch on node ${id}`,
    );
  }
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a watch on a replica caught up by a snapshot image replays the revisions it skipped, once each", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 5 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const lagging = cluster.ids.find((id) => id !== leader)!;
  const watch = cluster.replica(lagging, RANGE).watch({ key: b("k"), rangeEnd: b("l") });
  await propose(cluster, leader, { key: b("k-first"), value: b("0") });
  await converge(cluster);
  isolate(cluster, lagging);
  const expected = ["k-first=0"];
  for (let i = 0; i < 20; i++) {
    await propose(cluster, leader, { key: b(`k${i % 3}`), value: b(`${i}`) });
    expected.push(`k${i % 3}=${i}`);
  }
  assert.ok(
    cluster.replica(leader, RANGE).status().firstIndex > cluster.replica(lagging, RANGE).appliedIndex + 1,
    "the leader compacted past the lagging node",
  );
  cluster.network.healAll();
  await converge(cluster);
  assert.ok(cluster.host(lagging).counters.snapshotsRestored > 0, "caught up by a snapshot image");
  await propose(cluster, leader, { key: b("k-last"), value: b("1") });
  await converge(cluster);
  expected.push("k-last=1");
  assert.deepEqual(
    drain(watch, []).map((e) => `${e.key}=${e.value}`),
    expected,
  );
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a lease expires after its TTL on virtual time: its key is deleted everywhere, and watched", async () => {
  const { cluster, leader } = await startCluster();
  const follower = cluster.ids.find((id) => id !== leader)!;
  const watch = cluster.replica(follower, RANGE).watch({ key: b("session") });
  const ttlMs = 5_000;
  const granted = await propose(cluster, leader, leaseGrantRequest(ttlMs / 1000));
  const grantedAt = cluster.time.monotonic();
  const id = grantedId(granted);
  await propose(cluster, leader, { key: b("session"), value: b("alive"), lease: id });
  assert.deepEqual(cluster.replica(follower, RANGE).leases(), [{ id, ttlSeconds: 5 }]);
  assert.equal(cluster.replica(leader, RANGE).leaseTimeToLive(id, true)?.keys.map(s).join(), "session");

  // Just before the deadline everything is still there.
  await cluster.tick((ttlMs - 500 - (cluster.time.monotonic() - grantedAt)) / cluster.tickMs);
  await converge(cluster);
  for (const node of cluster.ids) assert.equal(await get(cluster.replica(node, RANGE), "session"), "alive");

  await cluster.runUntil(
    () => cluster.ids.every((node) => cluster.replica(node, RANGE).leases().length === 0),
    "the lease revoked on every replica",
    30,
  );
  assert.ok(cluster.time.monotonic() - grantedAt >= ttlMs, "never before the TTL has passed");
  await converge(cluster);
  for (const node of cluster.ids) assert.equal(await get(cluster.replica(node, RANGE), "session"), null);
  const events = drain(watch, []);
  assert.deepEqual(
    events.map((e) => `${e.type} ${e.key}`),
    ["put session", "delete session"],
  );
  assert.equal(cluster.replica(leader, RANGE).leaseTimeToLive(id), null);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("keep-alives on the leader hold a lease; keep-alive and time-to-live are leader-only", async () => {
  const { cluster, leader } = await startCluster();
  const follower = cluster.ids.find((id) => id !== leader)!;
  const id = grantedId(await propose(cluster, leader, leaseGrantRequest(3)));
  await propose(cluster, leader, { key: b("held"), value: b("yes"), lease: id });
  await assert.rejects(cluster.replica(follower, RANGE).leaseKeepAlive(id), NotLeaderError);
  assert.throws(() => cluster.replica(follower, RANGE).leaseTimeToLive(id), NotLeaderError);

  // Ten seconds, more than three TTLs, with a keep-alive every second.
  for (let second = 0; second < 10; second++) {
    assert.equal(await keepAlive(cluster, leader, id), 3);
    await cluster.tick(1000 / cluster.tickMs);
  }
  await converge(cluster);
  for (const node of cluster.ids) assert.equal(await get(cluster.replica(node, RANGE), "held"), "yes");
  const remaining = cluster.replica(leader, RANGE).leaseTimeToLive(id)?.remainingTtlSeconds;
  assert.ok(remaining !== undefined && remaining >= 1 && remaining <= 3, `remaining ${remaining}`);

  // Without keep-alives it goes.
  await cluster.runUntil(() => cluster.replica(leader, RANGE).leases().length === 0, "expiry", 60);
  await converge(cluster);
  for (const node of cluster.ids) assert.equal(await get(cluster.replica(node, RANGE), "held"), null);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("after a leader change a lease gets a full TTL from the new leader, never expiring early", async () => {
  const { cluster, leader: oldLeader } = await startCluster();
  const ttlMs = 5_000;
  const id = grantedId(await propose(cluster, oldLeader, leaseGrantRequest(ttlMs / 1000)));
  const grantedAt = cluster.time.monotonic();
  await propose(cluster, oldLeader, { key: b("owned"), value: b("v"), lease: id });
  await converge(cluster);

  // Three seconds into the TTL the leader is cut off; the majority elects another.
  await cluster.tick(3000 / cluster.tickMs);
  isolate(cluster, oldLeader);
  await cluster.runUntil(() => {
    const leader = cluster.leader(RANGE);
    return leader !== null && leader !== oldLeader;
  }, "a new leader on the majority side");
  const newLeader = cluster.leader(RANGE)!;
  const electedBy = cluster.time.monotonic();
  const majority = cluster.ids.filter((node) => node !== oldLeader);

  // Well past the original deadline, and short of a full TTL from the new leader's start.
  const checkAt = electedBy + ttlMs - 1000;
  assert.ok(checkAt > grantedAt + ttlMs, "the check falls after the original deadline");
  await cluster.tick((checkAt - cluster.time.monotonic()) / cluster.tickMs);
  await cluster.settle();
  for (const node of majority) assert.equal(await get(cluster.replica(node, RANGE), "owned"), "v");
  const ttl = cluster.replica(newLeader, RANGE).leaseTimeToLive(id);
  assert.ok(ttl !== null && ttl.remainingTtlSeconds >= 0 && ttl.remainingTtlSeconds <= 1);

  await cluster.runUntil(
    () => majority.every((node) => cluster.replica(node, RANGE).leases().length === 0),
    "the new leader revoking the lease after its full TTL",
    30,
  );
  for (const node of majority) assert.equal(await get(cluster.replica(node, RANGE), "owned"), null);
  cluster.network.healAll();
  await converge(cluster);
  assert.equal(await get(cluster.replica(oldLeader, RANGE), "owned"), null);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("a watch that asked for progress notifications gets one per interval, carrying the revision", async () => {
  const cluster = new TestCluster([1, 2, 3], { watchProgressIntervalMs: 2_000 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leader = await cluster.elect(RANGE);
  const follower = cluster.ids.find((id) => id !== leader)!;
  await propose(cluster, leader, { key: b("k"), value: b("v") });
  await cluster.runUntil(
    () => cluster.replica(follower, RANGE).appliedIndex === cluster.replica(leader, RANGE).appliedIndex,
    "the follower to catch up",
  );
  const notified = cluster.replica(follower, RANGE).watch({ key: b("k"), progressNotify: true });
  const silent = cluster.replica(follower, RANGE).watch({ key: b("k") });
  drain(notified, []);
  drain(silent, []);
  await cluster.tick(25);
  const progress = notified.poll();
  assert.ok(progress !== undefined, "a progress notification after the interval");
  assert.equal(progress.events.length, 0);
  assert.equal(progress.revision, cluster.replica(follower, RANGE).revision);
  assert.equal(silent.poll(), undefined, "no notification for a watch that did not ask");
  notified.cancel();
  silent.cancel();
  await cluster.shutdown();
});

test("a leader cut off from its majority does not renew leases: its keep-alive fails", async () => {
  const { cluster, leader } = await startCluster();
  const id = grantedId(await propose(cluster, leader, leaseGrantRequest(5)));
  assert.equal(await keepAlive(cluster, leader, id), 5);
  for (const id of cluster.ids) {
    if (id === leader) continue;
    cluster.network.cut(id, leader);
    cluster.network.cut(leader, id);
  }
  const renewal = track(cluster.replica(leader, RANGE).leaseKeepAlive(id));
  await cluster.runUntil(() => renewal.settled, "the isolated leader's keep-alive to settle", 600);
  assert.ok(renewal.error !== undefined, "no renewal without a quorum confirming the leadership");
  await cluster.shutdown();
});
