// SplitCoordinator over a real RouteCatalog (MemoryMetaKv) and fake ranges: a split ends in
// the new layout; refusals change nothing; a crash after each protocol step in turn followed
// by recover() (a fresh coordinator, as after a restart) ends in exactly the new layout, with
// a valid catalog whose versions are contiguous and whose deltas are all present; catalog
// races and concurrent splits and recoveries all converge. Then the SplitLoop that drives the
// coordinator and the policy.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RouteCatalog } from "../../src/placement/catalog/catalog.js";
import { MemoryMetaKv } from "../../src/placement/catalog/memory-meta-kv.js";
import { SplitCoordinator, type RangeOps, type SplitResult } from "../../src/placement/split/coordinator.js";
import { SplitRefusedError, SplitStateError } from "../../src/placement/split/errors.js";
import { LoadSampler } from "../../src/placement/split/load-sampler.js";
import { SplitLoop } from "../../src/placement/split/loop.js";
import { MergeCoordinator } from "../../src/placement/split/merge-coordinator.js";
import { SplitPolicy, type RangeSizeSource } from "../../src/placement/split/policy.js";
import { SYSTEM_PREFIX } from "../../src/placement/router/system-keys.js";
import { RecordingLogger, VirtualTime, seededRandom } from "../node/harness.js";
import { b, plain, route, split } from "./arbitraries.js";
import { Crash, CrashingProcess, FakeRanges, checkHistory } from "./range-fakes.js";

/** Routes 1 = ["", "m") and 2 = ["m", +inf) in catalog version 2, with matching ranges. */
async function setup() {
  const kv = new MemoryMetaKv();
  const catalog = new RouteCatalog(kv);
  await catalog.initialize();
  await catalog.save(1, split(["m"]));
  const ranges = new FakeRanges();
  ranges.add(1, "", "m");
  ranges.add(2, "m", null);
  return { kv, catalog, ranges };
}

/** Route 2 split at "t" into 2 = ["m", "t") and `rhs` = ["t", +inf), in catalog and ranges alike. */
async function checkSplitLayout(catalog: RouteCatalog, ranges: FakeRanges, rhs: number): Promise<void> {
  const snapshot = await catalog.snapshot();
  const revision = ranges.ranges.get(2)!.lastSplit!.revision;
  assert.deepEqual(snapshot.routes.map(plain), [
    plain(route(1, "", "m")),
    plain(route(2, "m", "t")),
    plain(route(rhs, "t", null, { parentRouteId: 2, splitAt: revision })),
  ]);
  assert.deepEqual(ranges.ranges.get(2)!.bounds, { start: b("m"), end: b("t") });
  assert.equal(ranges.ranges.get(2)!.state, "active");
  assert.deepEqual(ranges.ranges.get(rhs)!.bounds, { start: b("t"), end: null });
  await checkHistory(catalog);
}

test("a recovery pass of the same coordinator leaves its split under way alone: one split, counted once", async () => {
  const { catalog, ranges } = await setup();
  const pass: { recovery?: Promise<unknown> } = {};
  const ops: RangeOps = {
    fence: (g, k, n) => ranges.fence(g, k, n),
    split: async (g, k, n) => {
      if (pass.recovery === undefined) {
        pass.recovery = coordinator.recover();
        await pass.recovery;
      }
      return ranges.split(g, k, n);
    },
    describe: (g) => ranges.describe(g),
    mergeFence: (g) => ranges.mergeFence(g),
    mergeImage: (g) => ranges.mergeImage(g),
    merge: (g, rhs, image, revision) => ranges.merge(g, rhs, image, revision),
  };
  const coordinator = new SplitCoordinator({ catalog, ranges: ops });
  const result = await coordinator.split(2, b("t"));
  assert.equal(result.cause, "manual");
  assert.deepEqual(await pass.recovery, { completed: [], failed: [] });
  assert.deepEqual(coordinator.counters.splits, { load: 0, size: 0, manual: 1, recovered: 0 });
  await checkSplitLayout(catalog, ranges, 3);
});

test("a split fences, saves, splits and saves the new layout", async () => {
  const { catalog, ranges } = await setup();
  const seen: SplitResult[] = [];
  const coordinator = new SplitCoordinator({ catalog, ranges, onSplit: (r) => seen.push(r) });
  const result = await coordinator.split(2, b("t"));
  assert.equal(result.right.routeId, 3);
  assert.equal(result.right.groupId, 3);
  assert.equal(result.revision, 1_001n);
  assert.equal(result.catalogVersion, 4, "one save for the fence, one for the layout");
  assert.equal(result.cause, "manual");
  assert.deepEqual(seen, [result]);
  await checkSplitLayout(catalog, ranges, 3);
  assert.equal(coordinator.counters.splits.manual, 1);
  const read = await catalog.deltasSince(2);
  assert.equal(read.kind === "deltas" && read.deltas[0]!.upserts[0]!.state, "write-fenced");
});

test("refused splits change nothing", async () => {
  const { catalog, ranges } = await setup();
  const coordinator = new SplitCoordinator({ catalog, ranges });
  const before = await catalog.snapshot();
  const cases: [number, Uint8Array, string][] = [
    [9, b("x"), "unknown-route"],
    [2, b("m"), "key-at-boundary"],
    [2, b("a"), "key-outside-route"],
    [1, b("m"), "key-outside-route"],
    [1, new Uint8Array([...SYSTEM_PREFIX, 1]), "system-span"],
    [1, SYSTEM_PREFIX, "system-span"],
  ];
  for (const [routeId, key, reason] of cases) {
    await assert.rejects(coordinator.split(routeId, key), (error: unknown) => {
      assert.ok(error instanceof SplitRefusedError);
      assert.equal(error.reason, reason);
      assert.equal(error.retryable, false);
      return true;
    });
  }
  await catalog.save(2, [route(1, "", "m"), route(2, "m", null, { state: "write-fenced" })]);
  await assert.rejects(coordinator.split(2, b("t")), (error: unknown) => {
    assert.ok(error instanceof SplitRefusedError && error.reason === "not-active" && error.retryable);
    return true;
  });
  const after = await catalog.snapshot();
  assert.equal(after.version, before.version + 1, "only the test's own save");
  assert.equal(after.nextRouteId, before.nextRouteId, "no id allocated");
  assert.equal(ranges.ranges.get(2)!.state, "active", "no range fenced");
  assert.equal(coordinator.counters.refused, 7);
  assert.equal(coordinator.counters.failures, 0);
});

for (const point of ["fence", "save-fenced", "split", "save-layout"] as const) {
  test(`a crash after ${point}, then recover(), ends in exactly the new layout`, async () => {
    const { catalog, ranges } = await setup();
    const crashing = new CrashingProcess(catalog, ranges, point);
    const first = new SplitCoordinator(crashing);
    await assert.rejects(first.split(2, b("t")), Crash);
    assert.ok(crashing.crashed);
    const restarted = new SplitCoordinator({ catalog, ranges });
    const report = await restarted.recover();
    assert.deepEqual(report.failed, []);
    assert.equal(report.completed.length, point === "save-layout" ? 0 : 1);
    await checkSplitLayout(catalog, ranges, 3);
    assert.equal((await catalog.snapshot()).version, 4, "no extra save");
    const again = await restarted.recover();
    assert.deepEqual([again.completed, again.failed], [[], []], "a second pass finds nothing");
    await checkSplitLayout(catalog, ranges, 3);
  });
}

test("a crash after the id allocation leaves the old layout and wastes the id", async () => {
  const { catalog, ranges } = await setup();
  const first = new SplitCoordinator(new CrashingProcess(catalog, ranges, "allocate"));
  await assert.rejects(first.split(2, b("t")), Crash);
  const restarted = new SplitCoordinator({ catalog, ranges });
  assert.deepEqual(await restarted.recover(), { completed: [], failed: [] });
  assert.deepEqual((await catalog.snapshot()).routes.map(plain), split(["m"]).map(plain));
  await restarted.split(2, b("t"));
  await checkSplitLayout(catalog, ranges, 4);
});

test("crashes during recovery too: every step still ends in the new layout", async () => {
  for (const later of ["save-fenced", "split", "save-layout"] as const) {
    const { catalog, ranges } = await setup();
    await assert.rejects(
      new SplitCoordinator(new CrashingProcess(catalog, ranges, "fence")).split(2, b("t")),
    );
    const crashingRecovery = new SplitCoordinator(new CrashingProcess(catalog, ranges, later));
    const report = await crashingRecovery.recover();
    assert.equal(report.failed.length, 1, later);
    await new SplitCoordinator({ catalog, ranges }).recover();
    await checkSplitLayout(catalog, ranges, 3);
  }
});

test("a catalog fence without a range fence or split is undone", async () => {
  const { catalog, ranges } = await setup();
  await catalog.save(2, [route(1, "", "m"), route(2, "m", null, { state: "write-fenced" })]);
  const coordinator = new SplitCoordinator({ catalog, ranges });
  assert.deepEqual(await coordinator.recover(), { completed: [], failed: [] });
  assert.deepEqual((await catalog.snapshot()).routes.map(plain), split(["m"]).map(plain));
  assert.equal(coordinator.counters.unfenced, 1);
});

test("a split applied before its catalog save needs the range's last split to finish", async () => {
  const { catalog, ranges } = await setup();
  await assert.rejects(new SplitCoordinator(new CrashingProcess(catalog, ranges, "split")).split(2, b("t")));
  ranges.forgetLastSplit = true;
  const report = await new SplitCoordinator({ catalog, ranges }).recover();
  assert.equal(report.failed.length, 1);
  assert.ok(report.failed[0]!.error instanceof SplitStateError);
  ranges.forgetLastSplit = false;
  await new SplitCoordinator({ catalog, ranges }).recover();
  await checkSplitLayout(catalog, ranges, 3);
});

test("concurrent catalog saves: the split re-reads and retries", async () => {
  const { kv, catalog, ranges } = await setup();
  let concurrent = 0;
  // Before each of the next 6 transactions, another writer saves the catalog unchanged
  // (which still moves its version).
  const race = async (): Promise<void> => {
    concurrent += 1;
    const current = await catalog.snapshot();
    await catalog.save(current.version, current.routes);
    if (concurrent < 6) kv.beforeTxn = race;
  };
  kv.beforeTxn = race;
  const coordinator = new SplitCoordinator({ catalog, ranges });
  await coordinator.split(2, b("t"));
  assert.equal(concurrent, 6);
  assert.ok(coordinator.counters.catalogRaces >= 4, `races: ${coordinator.counters.catalogRaces}`);
  await checkSplitLayout(catalog, ranges, 3);
});

test("a catalog that keeps moving ends in SplitConflictError, and recover() finishes later", async () => {
  const { kv, catalog, ranges } = await setup();
  const race = async (): Promise<void> => {
    const current = await catalog.snapshot();
    await catalog.save(current.version, current.routes);
    kv.beforeTxn = race;
  };
  const coordinator = new SplitCoordinator({ catalog, ranges, maxAttempts: 3 });
  const [id] = await catalog.allocateRouteIds(1);
  kv.beforeTxn = race;
  await assert.rejects(coordinator.split(2, b("t")), /lost 4 catalog races/);
  kv.beforeTxn = null;
  assert.equal(ranges.ranges.get(2)!.state, "write-fenced");
  await coordinator.recover();
  await checkSplitLayout(catalog, ranges, id! + 1);
});

test("concurrent splits of different routes both land", async () => {
  const { catalog, ranges } = await setup();
  const one = new SplitCoordinator({ catalog, ranges });
  const two = new SplitCoordinator({ catalog, ranges });
  const [left, right] = await Promise.all([one.split(1, b("f")), two.split(2, b("t"))]);
  const snapshot = await catalog.snapshot();
  assert.deepEqual(
    snapshot.routes.map((r) => [Buffer.from(r.start).toString(), r.routeId, r.state]),
    [
      ["", 1, "active"],
      ["f", left.right.routeId, "active"],
      ["m", 2, "active"],
      ["t", right.right.routeId, "active"],
    ],
  );
  await checkHistory(catalog);
});

test("concurrent splits of one route: one wins, the other fails and changes nothing", async () => {
  const { catalog, ranges } = await setup();
  const results = await Promise.allSettled([
    new SplitCoordinator({ catalog, ranges }).split(2, b("p")),
    new SplitCoordinator({ catalog, ranges }).split(2, b("t")),
  ]);
  const won = results.filter((r) => r.status === "fulfilled");
  assert.equal(won.length, 1);
  const snapshot = await catalog.snapshot();
  assert.equal(snapshot.routes.length, 3);
  assert.ok(snapshot.routes.every((r) => r.state === "active"));
  await checkHistory(catalog);
});

test("concurrent recoveries of one crashed split both end in the layout", async () => {
  const { catalog, ranges } = await setup();
  await assert.rejects(
    new SplitCoordinator(new CrashingProcess(catalog, ranges, "save-fenced")).split(2, b("t")),
  );
  const reports = await Promise.all([
    new SplitCoordinator({ catalog, ranges }).recover(),
    new SplitCoordinator({ catalog, ranges }).recover(),
  ]);
  assert.deepEqual(
    reports.map((r) => r.failed),
    [[], []],
  );
  await checkSplitLayout(catalog, ranges, 3);
});

// SplitLoop: cycles only on the meta leader, recover first, then the policy's plans; one
// catalog read per quiet cycle; one cycle at a time on injected timers; stop leaves no timer.

/** Lets promises run until `predicate` holds (bounded). */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`not reached: ${what}`);
}

const noSize: RangeSizeSource = { approximateBytes: () => 0, sizeMedianKey: () => null };

async function loopSetup(leader: { value: boolean }) {
  const { catalog, ranges } = await setup();
  const time = new VirtualTime();
  const sampler = new LoadSampler({ clock: time.monotonic, random: seededRandom(5) });
  const policy = new SplitPolicy(sampler, noSize);
  const coordinator = new SplitCoordinator({ catalog, ranges });
  const logger = new RecordingLogger();
  const loop = new SplitLoop({
    coordinator,
    mergeCoordinator: new MergeCoordinator({ catalog, ranges }),
    policy,
    timers: time.timers,
    clock: time.monotonic,
    isMetaLeader: () => leader.value,
    logger,
  });
  /** One second of 1,000 requests on range 2 over keys p0..p9. */
  const hotSecond = (): void => {
    for (let i = 0; i < 1_000; i++) sampler.record(2, b(`p${i % 10}`), "write");
    time.advance(1_000);
  };
  return { catalog, ranges, time, sampler, policy, coordinator, loop, logger, hotSecond };
}

test("the loop splits a range hot for 15 windows, only on the meta leader, then cools both sides", async () => {
  const leader = { value: false };
  const { catalog, ranges, policy, loop, hotSecond, time } = await loopSetup(leader);
  for (let s = 0; s < 16; s++) hotSecond();
  assert.deepEqual(await loop.runCycle(), {
    ran: false,
    recovered: [],
    split: [],
    mergesRecovered: [],
    merged: [],
    failures: 0,
  });
  assert.equal(loop.counters.notLeader, 1);
  assert.equal((await catalog.snapshot()).routes.length, 2, "no split off the leader");
  leader.value = true;
  const report = await loop.runCycle();
  assert.equal(report.split.length, 1);
  const [result] = report.split;
  const key = Buffer.from(result!.left.end!).toString();
  assert.ok(["p4", "p5", "p6"].includes(key), `split at ${key}`);
  assert.equal(result!.cause, "load");
  assert.equal((await catalog.snapshot()).routes.length, 3);
  assert.equal(ranges.ranges.get(result!.right.groupId)!.bounds.start.length, 2);
  assert.ok(policy.cooling(time.monotonic(), 2) && policy.cooling(time.monotonic(), result!.right.groupId));
  hotSecond();
  assert.deepEqual((await loop.runCycle()).split, [], "cooling");
  assert.equal(loop.counters.splits, 1);
});

test("the loop recovers a crashed split before planning", async () => {
  const leader = { value: true };
  const { catalog, ranges, loop } = await loopSetup(leader);
  await assert.rejects(
    new SplitCoordinator(new CrashingProcess(catalog, ranges, "save-fenced")).split(2, b("t")),
  );
  const report = await loop.runCycle();
  assert.equal(report.recovered.length, 1);
  await checkSplitLayout(catalog, ranges, 3);
});

test("a cycle reads the catalog once unless something in it acts", async () => {
  const leader = { value: true };
  const { catalog, ranges, loop, hotSecond } = await loopSetup(leader);
  const read = catalog.snapshot.bind(catalog);
  let reads = 0;
  catalog.snapshot = () => {
    reads += 1;
    return read();
  };
  const quiet = await loop.runCycle();
  assert.deepEqual([quiet.recovered, quiet.split, quiet.merged], [[], [], []]);
  assert.equal(reads, 1, "one read for recovery and planning alike");
  await assert.rejects(
    new SplitCoordinator(new CrashingProcess(catalog, ranges, "save-fenced")).split(2, b("t")),
  );
  for (let s = 0; s < 16; s++) hotSecond();
  reads = 0;
  const busy = await loop.runCycle();
  assert.equal(busy.recovered.length, 1);
  // The recovery's own reads, then a fresh read for planning after it acted.
  assert.ok(reads > 2, `catalog reads in a cycle that recovered: ${reads}`);
  await checkSplitLayout(catalog, ranges, 3);
});

test("the loop runs on its timer one cycle at a time, logs failures and stops cleanly", async () => {
  const leader = { value: true };
  const { loop, time, ranges, logger } = await loopSetup(leader);
  ranges.ranges.delete(1);
  loop.start();
  assert.throws(() => loop.start());
  assert.equal(time.pendingTimers, 1);
  time.advance(999);
  assert.equal(loop.counters.cycles, 0);
  time.advance(1);
  assert.equal(loop.counters.cycles, 1);
  assert.equal(time.pendingTimers, 0, "the next cycle is armed only when this one ends");
  await until(() => time.pendingTimers === 1, "re-armed");
  assert.equal(loop.counters.failures, 1, "describe of the missing range 1 failed");
  assert.ok(logger.warnings.some((w) => w.includes("split recovery failed")));
  time.advance(1_000);
  assert.equal(loop.counters.cycles, 2);
  await loop.stop();
  assert.equal(time.pendingTimers, 0);
  time.advance(10_000);
  assert.equal(loop.counters.cycles, 2);
});
