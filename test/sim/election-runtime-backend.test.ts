// The simulator's client process and RuntimeBackend: a real ConcordDb on virtual time against
// a simulated 3-node cluster — requests, leases and watches work; a frozen process gets its
// answers only at the thaw; a crashed one never again; a client fails over from a dead node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ElectionCluster, runUntil } from "../../src/sim/election/cluster.js";
import { SeededRandom } from "../../src/sim/random.js";
import { SimClientProcess, simConcordDb } from "../../src/sim/runtime/runtime-backend.js";
import { Scheduler } from "../../src/sim/scheduler.js";

const LIMIT_MS = 20_000;

function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function startCluster(seed: number): Promise<{ cluster: ElectionCluster; scheduler: Scheduler }> {
  const scheduler = new Scheduler();
  const violations: string[] = [];
  const cluster = new ElectionCluster(
    scheduler,
    new SeededRandom(seed),
    {
      size: 3,
      preVote: true,
      checkQuorum: true,
      network: { minDelay: 1, maxDelay: 5, lossRate: 0, duplicateRate: 0, slowRate: 0, slowMaxDelay: 0 },
      diskLatencyMs: [1, 3],
      snapshotEvery: 1000,
    },
    () => undefined,
    (invariant, detail) => violations.push(`${invariant}: ${detail}`),
    () => undefined,
  );
  cluster.start();
  const led = await runUntil(
    scheduler,
    settleMicrotasks,
    () => cluster.checkAfterEvent(),
    () => cluster.leader() !== undefined,
    LIMIT_MS,
  );
  assert.ok(led, "no leader");
  assert.deepEqual(violations, []);
  return { cluster, scheduler };
}

/** Steps the simulation until `promise` settles (bounded); returns its outcome. */
async function settle<T>(
  scheduler: Scheduler,
  cluster: ElectionCluster,
  promise: Promise<T>,
  limitMs = LIMIT_MS,
): Promise<{ done: true; value: T } | { done: true; error: unknown } | { done: false }> {
  let outcome: { done: true; value: T } | { done: true; error: unknown } | undefined;
  promise.then(
    (value) => (outcome = { done: true, value }),
    (error: unknown) => (outcome = { done: true, error }),
  );
  await runUntil(
    scheduler,
    settleMicrotasks,
    () => cluster.checkAfterEvent(),
    () => outcome !== undefined,
    limitMs,
  );
  return outcome ?? { done: false };
}

async function value<T>(scheduler: Scheduler, cluster: ElectionCluster, promise: Promise<T>): Promise<T> {
  const outcome = await settle(scheduler, cluster, promise);
  assert.ok(outcome.done, "the request did not settle");
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

test("a ConcordDb in a simulated process: writes, reads, txn, leases and a watch", async () => {
  const { cluster, scheduler } = await startCluster(1);
  const clientProcess = new SimClientProcess("p", scheduler);
  const { db } = simConcordDb("client-p", {
    clientProcess,
    endpoints: () => cluster.endpoints(),
    firstNode: 1,
    requestTimeoutMs: 2_000,
  });
  assert.equal(db.clientId, "client-p");
  const watch = await value(scheduler, cluster, db.watch("k", { prefix: true }));
  const put = await value(scheduler, cluster, db.put("k1", "v1"));
  assert.ok(put.revision > 0n);
  const got = await value(scheduler, cluster, db.get("k1"));
  assert.equal(new TextDecoder().decode(got?.value), "v1");
  const txn = await value(scheduler, cluster, db.txn({ compares: [], success: [] }));
  assert.equal(txn.succeeded, true);
  const lease = await value(scheduler, cluster, db.leaseGrant(5));
  assert.equal(await value(scheduler, cluster, db.leaseKeepAlive(lease.id)), 5);
  await value(scheduler, cluster, db.leaseRevoke(lease.id));
  assert.equal(await value(scheduler, cluster, db.leaseKeepAlive(lease.id)), null);
  const iterator = watch[Symbol.asyncIterator]();
  const first = await value(scheduler, cluster, iterator.next());
  assert.equal(first.done, false);
  assert.equal(new TextDecoder().decode(first.value?.events[0]?.kv.key), "k1");
  watch.cancel();
});

test("a frozen process gets its answers at the thaw; its timers wait too", async () => {
  const { cluster, scheduler } = await startCluster(2);
  const clientProcess = new SimClientProcess("p", scheduler);
  const { db } = simConcordDb("client-p", {
    clientProcess,
    endpoints: () => cluster.endpoints(),
    firstNode: 2,
    requestTimeoutMs: 2_000,
  });
  let timerRanAt = -1;
  clientProcess.setTimeout(() => (timerRanAt = scheduler.now), 10);
  const frozenAt = scheduler.now;
  clientProcess.freeze(3_000);
  const put = db.put("k", "v");
  const outcome = await settle(scheduler, cluster, put);
  assert.ok(outcome.done && "value" in outcome);
  assert.ok(scheduler.now >= frozenAt + 3_000, `answered at ${scheduler.now}, frozen at ${frozenAt}`);
  assert.equal(timerRanAt, frozenAt + 3_000);
  assert.equal(clientProcess.frozen, false);
});

test("a crashed process never hears again; a live one fails over from a dead node", async () => {
  const { cluster, scheduler } = await startCluster(3);
  const dead = new SimClientProcess("dead", scheduler);
  const deadDb = simConcordDb("client-dead", {
    clientProcess: dead,
    endpoints: () => cluster.endpoints(),
    firstNode: 1,
    requestTimeoutMs: 2_000,
  }).db;
  const pending = deadDb.put("k", "never heard");
  dead.crash();
  assert.deepEqual(await settle(scheduler, cluster, pending, 5_000), { done: false });

  const target = cluster.nodes[0]!;
  target.crash();
  const live = new SimClientProcess("live", scheduler);
  const { db, backend } = simConcordDb("client-live", {
    clientProcess: live,
    endpoints: () => cluster.endpoints(),
    firstNode: target.id,
    requestTimeoutMs: 2_000,
  });
  const put = await value(scheduler, cluster, db.put("k", "v"));
  assert.ok(put.revision > 0n);
  assert.notEqual(backend.currentNode, target.id);
});

test("a process cut off the network gets no answers: writes end ambiguous, then it reconnects", async () => {
  const { cluster, scheduler } = await startCluster(4);
  const clientProcess = new SimClientProcess("p", scheduler);
  const { db } = simConcordDb(
    "client-p",
    { clientProcess, endpoints: () => cluster.endpoints(), firstNode: 1, requestTimeoutMs: 500 },
    { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 10 },
  );
  clientProcess.isolate(3_000);
  const cut = await settle(scheduler, cluster, db.put("k", "v"));
  assert.ok(cut.done && "error" in cut);
  assert.equal((cut.error as Error).name, "AmbiguousWriteError");
  const read = await settle(scheduler, cluster, db.get("k"));
  assert.ok(read.done && "error" in read, "a read while cut off fails");
  await runUntil(
    scheduler,
    settleMicrotasks,
    () => cluster.checkAfterEvent(),
    () => !clientProcess.isolated,
    LIMIT_MS,
  );
  const put = await value(scheduler, cluster, db.put("k", "again"));
  assert.ok(put.revision > 0n);
});

test("a deposed leader cut off from the majority does not renew a lease the majority revoked", async () => {
  const scheduler = new Scheduler();
  const cluster = new ElectionCluster(
    scheduler,
    new SeededRandom(5),
    {
      size: 3,
      preVote: false,
      checkQuorum: false,
      network: { minDelay: 1, maxDelay: 5, lossRate: 0, duplicateRate: 0, slowRate: 0, slowMaxDelay: 0 },
      diskLatencyMs: [1, 3],
      snapshotEvery: 1000,
    },
    () => undefined,
    () => undefined,
    () => undefined,
  );
  cluster.start();
  const afterEvent = (): void => cluster.checkAfterEvent();
  assert.ok(
    await runUntil(scheduler, settleMicrotasks, afterEvent, () => cluster.leader() !== undefined, LIMIT_MS),
  );
  const old = cluster.leader()!;
  const clientProcess = new SimClientProcess("p", scheduler);
  const { db } = simConcordDb("client-p", {
    clientProcess,
    endpoints: () => cluster.endpoints(),
    firstNode: old.id,
    requestTimeoutMs: 2_000,
  });
  const lease = await value(scheduler, cluster, db.leaseGrant(1));
  const majority = cluster.nodes.filter((n) => n.id !== old.id);
  cluster.hub.network.partition(
    [old.id],
    majority.map((n) => n.id),
  );
  const revoked = (): boolean =>
    majority.every(
      (n) =>
        !n
          .replica()!
          .leases()
          .some((l) => l.id === lease.id),
    );
  // The holder keeps renewing through the old leader, as a client given one endpoint would.
  for (let i = 0; i < 12 && !revoked(); i++) {
    await runUntil(scheduler, settleMicrotasks, afterEvent, () => false, 250);
    // Refused (NotLeaderError, no quorum to confirm the leadership) or never answered.
    old
      .replica()!
      .leaseKeepAlive(lease.id)
      .catch(() => undefined);
  }
  assert.ok(revoked(), "the majority revoked the lease");
  let renewed: number | null | undefined;
  let refused = false;
  old
    .replica()!
    .leaseKeepAlive(lease.id)
    .then(
      (ttl) => (renewed = ttl),
      () => (refused = true),
    );
  await runUntil(scheduler, settleMicrotasks, afterEvent, () => refused || renewed !== undefined, 2_000);
  assert.ok(renewed === undefined || renewed === null, `the deposed leader renewed it (TTL ${renewed})`);
});
