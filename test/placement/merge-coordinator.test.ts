// MergeCoordinator over a real RouteCatalog (MemoryMetaKv) and fake ranges that hold keys and
// move them: a merge ends in the new layout with every key in place; refusals change nothing;
// a crash after each protocol step followed by recover() ends in exactly the new layout; a
// catalog-only migrating-source is set back to active; merges and splits racing (the left
// neighbour splitting between the fence and the merge, a split fenced first, a split fenced on
// a range that grew by a merge) end, after both recoveries, in a valid catalog that agrees with
// the ranges, also for random interleavings with crashes (fast-check). Then the SplitLoop's
// merges: only with autoMerge, at most mergesPerCycle, only on the meta leader, recovery first.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { RouteCatalog } from "../../src/placement/catalog/catalog.js";
import { MemoryMetaKv } from "../../src/placement/catalog/memory-meta-kv.js";
import type { RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import { SplitCoordinator, type RangeOps } from "../../src/placement/split/coordinator.js";
import {
  MergeConflictError,
  MergeRefusedError,
  MergeStateError,
  SplitConflictError,
} from "../../src/placement/split/errors.js";
import { SplitLoop, type SplitLoopOptions } from "../../src/placement/split/loop.js";
import { MergeCoordinator, type MergeResult } from "../../src/placement/split/merge-coordinator.js";
import type { LoadSource, RangeSizeSource } from "../../src/placement/split/policy.js";
import { SplitPolicy } from "../../src/placement/split/policy.js";
import { VirtualTime } from "../node/harness.js";
import { b, plain, route, split } from "./arbitraries.js";
import {
  Crash,
  CrashingProcess,
  FakeRanges,
  checkAgreement,
  checkHistory,
  type CrashPoint,
} from "./range-fakes.js";

const KEYS = ["a", "c", "g", "h", "hh", "k", "n", "q", "z"];

/** Routes 1 = ["", "f"), 2 = ["f", "m"), 3 = ["m", +inf) in catalog version 2, ranges holding KEYS. */
async function setup() {
  const kv = new MemoryMetaKv();
  const catalog = new RouteCatalog(kv);
  await catalog.initialize();
  await catalog.save(1, split(["f", "m"]));
  const ranges = new FakeRanges();
  ranges.add(1, "", "f", ["a", "c"]);
  ranges.add(2, "f", "m", ["g", "h", "hh", "k"]);
  ranges.add(3, "m", null, ["n", "q", "z"]);
  return { kv, catalog, ranges };
}

/** Route 3 merged into route 2: catalog [1 ["", "f"), 2 ["f", +inf)], the ranges agreeing. */
async function checkMerged(catalog: RouteCatalog, ranges: FakeRanges): Promise<void> {
  const snapshot = await catalog.snapshot();
  assert.deepEqual(snapshot.routes.map(plain), [plain(route(1, "", "f")), plain(route(2, "f", null))]);
  assert.equal(ranges.get(2).lastMerge?.rhsRangeId, 3);
  await checkAgreement(catalog, ranges, KEYS);
  await checkHistory(catalog);
}

/** Route ids, starts and states of the catalog, for compact comparisons. */
async function layout(catalog: RouteCatalog): Promise<[number, string, string][]> {
  return (await catalog.snapshot()).routes.map((r) => [r.routeId, Buffer.from(r.start).toString(), r.state]);
}

test("a merge fences, saves, images, merges and saves the new layout", async () => {
  const { catalog, ranges } = await setup();
  const seen: MergeResult[] = [];
  const coordinator = new MergeCoordinator({ catalog, ranges, onMerge: (r) => seen.push(r) });
  const result = await coordinator.merge(3, "manual");
  assert.deepEqual(plain(result.merged), plain(route(2, "f", null)));
  assert.equal(result.removed.routeId, 3);
  assert.equal(result.removed.state, "migrating-source");
  assert.equal(result.revision, ranges.get(2).lastMerge!.revision);
  assert.equal(result.catalogVersion, 4, "one save for migrating-source, one for the layout");
  assert.equal(result.cause, "manual");
  assert.deepEqual(seen, [result]);
  assert.equal(coordinator.counters.merges.manual, 1);
  assert.equal(ranges.get(3).state, "merge-fenced", "R's store stays fenced until its replicas go");
  await checkMerged(catalog, ranges);
  const read = await catalog.deltasSince(2);
  assert.ok(read.kind === "deltas");
  assert.equal(read.deltas[0]!.upserts[0]!.state, "migrating-source");
  assert.deepEqual(read.deltas[1]!.removed, [3]);
});

test("a recovery pass of the same coordinator leaves its merge under way alone: one merge, counted once", async () => {
  // Found as a flaky etcd metrics test: the split loop's recovery ran while a manual merge
  // waited for its image, finished it, and both counted it (manual 1, recovered 1).
  const { catalog, ranges } = await setup();
  const pass: { recovery?: Promise<unknown> } = {};
  const ops: RangeOps = {
    ...bind(ranges),
    mergeImage: async (g) => {
      if (pass.recovery === undefined) {
        pass.recovery = coordinator.recover();
        await pass.recovery;
      }
      return ranges.mergeImage(g);
    },
  };
  const coordinator = new MergeCoordinator({ catalog, ranges: ops });
  const result = await coordinator.merge(3, "manual");
  assert.equal(result.cause, "manual");
  assert.deepEqual(await pass.recovery, { completed: [], failed: [] });
  assert.deepEqual(coordinator.counters.merges, { cold: 0, manual: 1, recovered: 0 });
  await checkMerged(catalog, ranges);
});

test("refused merges change nothing", async () => {
  const cases: {
    reason: string;
    retryable: boolean;
    routeId: number;
    prepare?: (catalog: RouteCatalog, ranges: FakeRanges) => Promise<void>;
  }[] = [
    { reason: "unknown-route", retryable: false, routeId: 9 },
    { reason: "first-route", retryable: false, routeId: 1 },
    {
      reason: "not-active",
      retryable: true,
      routeId: 3,
      prepare: (catalog) =>
        catalog
          .save(2, [
            ...split(["f"]).slice(0, 1),
            route(2, "f", "m"),
            route(3, "m", null, { state: "write-fenced" }),
          ])
          .then(() => undefined),
    },
    {
      reason: "left-not-active",
      retryable: true,
      routeId: 3,
      prepare: (catalog) =>
        catalog
          .save(2, [route(1, "", "f"), route(2, "f", "m", { state: "write-fenced" }), route(3, "m", null)])
          .then(() => undefined),
    },
    {
      reason: "fenced",
      retryable: true,
      routeId: 3,
      prepare: (_catalog, ranges) => ranges.fence(3, b("t"), 9),
    },
    {
      reason: "fenced",
      retryable: true,
      routeId: 3,
      prepare: (_catalog, ranges) => ranges.split(3, b("t"), 9).then(() => undefined),
    },
  ];
  for (const { reason, retryable, routeId, prepare } of cases) {
    const { catalog, ranges } = await setup();
    await prepare?.(catalog, ranges);
    const before = await catalog.snapshot();
    const coordinator = new MergeCoordinator({ catalog, ranges });
    await assert.rejects(coordinator.merge(routeId, "manual"), (error: unknown) => {
      assert.ok(error instanceof MergeRefusedError, String(error));
      assert.equal(error.reason, reason);
      assert.equal(error.retryable, retryable);
      return true;
    });
    assert.equal((await catalog.snapshot()).version, before.version, `${reason}: catalog unchanged`);
    assert.ok(
      [...ranges.ranges.values()].every((r) => r.state !== "merge-fenced"),
      `${reason}: nothing merge-fenced`,
    );
    assert.deepEqual([coordinator.counters.refused, coordinator.counters.failures], [1, 0]);
  }
  assert.equal(new MergeRefusedError("too-large", 3, "measured by the node").retryable, false);
});

test("a split fence landing between the look and the merge fence is a refusal too", async () => {
  const { catalog, ranges } = await setup();
  const racing: RangeOps = {
    ...bind(ranges),
    mergeFence: async (g) => {
      await ranges.fence(3, b("t"), 9);
      return ranges.mergeFence(g);
    },
  };
  const coordinator = new MergeCoordinator({ catalog, ranges: racing });
  await assert.rejects(coordinator.merge(3, "cold"), (error: unknown) => {
    assert.ok(error instanceof MergeRefusedError && error.reason === "fenced");
    return true;
  });
  assert.equal((await catalog.snapshot()).version, 2);
  assert.equal(ranges.get(3).state, "write-fenced");
});

/** FakeRanges' methods as a plain RangeOps object (to override some). */
function bind(ranges: FakeRanges): RangeOps {
  return {
    fence: (g, k, n) => ranges.fence(g, k, n),
    split: (g, k, n) => ranges.split(g, k, n),
    describe: (g) => ranges.describe(g),
    mergeFence: (g) => ranges.mergeFence(g),
    mergeImage: (g) => ranges.mergeImage(g),
    merge: (g, rhs, image, revision) => ranges.merge(g, rhs, image, revision),
  };
}

const MERGE_STEPS: readonly CrashPoint[] = ["merge-fence", "save-migrating", "image", "merge", "save-merged"];

for (const point of MERGE_STEPS) {
  test(`a merge crashing after ${point}, then recover(), ends in exactly the new layout`, async () => {
    const { catalog, ranges } = await setup();
    const crashing = new CrashingProcess(catalog, ranges, point);
    await assert.rejects(new MergeCoordinator(crashing).merge(3, "manual"), Crash);
    assert.ok(crashing.crashed);
    // The split recovery running first (as the loop does) leaves the merge alone.
    const splits = await new SplitCoordinator({ catalog, ranges }).recover();
    assert.deepEqual([splits.completed, splits.failed], [[], []]);
    const restarted = new MergeCoordinator({ catalog, ranges });
    const report = await restarted.recover();
    assert.deepEqual(report.failed, []);
    assert.equal(report.completed.length, point === "save-merged" ? 0 : 1);
    if (point !== "save-merged") assert.equal(report.completed[0]!.cause, "recovered");
    await checkMerged(catalog, ranges);
    assert.equal((await catalog.snapshot()).version, 4, "no extra save");
    const again = await restarted.recover();
    assert.deepEqual([again.completed, again.failed], [[], []], "a second pass finds nothing");
  });
}

test("crashes during the merge's recovery too: every step still ends in the new layout", async () => {
  for (const later of ["save-migrating", "image", "merge", "save-merged"] as const) {
    const { catalog, ranges } = await setup();
    await assert.rejects(
      new MergeCoordinator(new CrashingProcess(catalog, ranges, "merge-fence")).merge(3, "manual"),
    );
    const report = await new MergeCoordinator(new CrashingProcess(catalog, ranges, later)).recover();
    assert.equal(report.failed.length, 1, later);
    await new MergeCoordinator({ catalog, ranges }).recover();
    await checkMerged(catalog, ranges);
  }
});

test("a catalog-only migrating-source is set back to active", async () => {
  const { catalog, ranges } = await setup();
  await catalog.save(2, [
    route(1, "", "f"),
    route(2, "f", "m"),
    route(3, "m", null, { state: "migrating-source" }),
  ]);
  const coordinator = new MergeCoordinator({ catalog, ranges });
  assert.deepEqual(await coordinator.recover(), { completed: [], failed: [] });
  assert.deepEqual((await catalog.snapshot()).routes.map(plain), split(["f", "m"]).map(plain));
  assert.equal(coordinator.counters.unfenced, 1);
  await checkAgreement(catalog, ranges, KEYS);
});

test("a catalog migrating-source over a range fenced for a split: set back, then the split finishes", async () => {
  const { catalog, ranges } = await setup();
  const [rhs] = await catalog.allocateRouteIds(1);
  await ranges.fence(3, b("q"), rhs!);
  await catalog.save(2, [
    route(1, "", "f"),
    route(2, "f", "m"),
    route(3, "m", null, { state: "migrating-source" }),
  ]);
  const splits = new SplitCoordinator({ catalog, ranges });
  assert.deepEqual(await splits.recover(), { completed: [], failed: [] }, "migrating routes are the merge's");
  await new MergeCoordinator({ catalog, ranges }).recover();
  const report = await splits.recover();
  assert.equal(report.completed.length, 1);
  assert.deepEqual(await layout(catalog), [
    [1, "", "active"],
    [2, "f", "active"],
    [3, "m", "active"],
    [rhs!, "q", "active"],
  ]);
  await checkAgreement(catalog, ranges, KEYS);
});

test("the left neighbour splits between the merge's fence and its merge: the merge goes into its right half", async () => {
  for (const hook of ["mergeFence", "mergeImage"] as const) {
    const { catalog, ranges } = await setup();
    const splitter = new SplitCoordinator({ catalog, ranges });
    let splitDone = false;
    const ops: RangeOps = { ...bind(ranges) };
    const original = ops[hook].bind(ops) as (g: number) => Promise<unknown>;
    Object.assign(ops, {
      [hook]: async (g: number) => {
        const result = await original(g);
        if (!splitDone) {
          splitDone = true;
          await splitter.split(2, b("h"));
        }
        return result;
      },
    });
    const result = await new MergeCoordinator({ catalog, ranges: ops }).merge(3, "manual");
    assert.equal(result.merged.routeId, 4, hook);
    assert.deepEqual(await layout(catalog), [
      [1, "", "active"],
      [2, "f", "active"],
      [4, "h", "active"],
    ]);
    assert.equal(result.merged.end, null);
    await checkAgreement(catalog, ranges, KEYS);
    await checkHistory(catalog);
  }
});

test("a merge decided before another coordinator merged R and split the target at R's start changes nothing", async () => {
  // The target ends where R starts again, but took R in already. Overtaken before the target's
  // look (describe) or after it (mergeImage), the catalog read after the look turns the stale
  // merge away; overtaken after that read (merge), the target's bounds revision does.
  for (const hook of ["describe", "mergeImage", "merge"] as const) {
    const { catalog, ranges } = await setup();
    const other = new MergeCoordinator({ catalog, ranges });
    const splitter = new SplitCoordinator({ catalog, ranges });
    let overtaken = false;
    const ops: RangeOps = { ...bind(ranges) };
    const original = ops[hook].bind(ops) as (...args: unknown[]) => Promise<unknown>;
    Object.assign(ops, {
      [hook]: async (...args: unknown[]) => {
        if (!overtaken && (hook !== "describe" || args[0] === 2)) {
          overtaken = true;
          await other.recover();
          await splitter.split(2, b("m"));
        }
        return original(...args);
      },
    });
    await assert.rejects(
      new MergeCoordinator({ catalog, ranges: ops }).merge(3, "manual"),
      MergeStateError,
      hook,
    );
    assert.deepEqual(await layout(catalog), [
      [1, "", "active"],
      [2, "f", "active"],
      [4, "m", "active"],
    ]);
    assert.deepEqual(ranges.get(2).bounds.end, b("m"), hook);
    await checkAgreement(catalog, ranges, KEYS);
    await checkHistory(catalog);
  }
});

test("a split of the left neighbour fenced first holds the merge up; both recoveries finish both", async () => {
  const { catalog, ranges } = await setup();
  await assert.rejects(
    new SplitCoordinator(new CrashingProcess(catalog, ranges, "fence")).split(2, b("h")),
    Crash,
  );
  const merges = new MergeCoordinator({ catalog, ranges });
  await assert.rejects(merges.merge(3, "manual"), (error: unknown) => {
    assert.ok(error instanceof MergeConflictError && error.retryable, String(error));
    return true;
  });
  assert.equal(ranges.get(3).state, "merge-fenced", "the merge stands, fenced");
  const splits = await new SplitCoordinator({ catalog, ranges }).recover();
  assert.equal(splits.completed.length, 1);
  const report = await merges.recover();
  assert.deepEqual(report.failed, []);
  assert.equal(report.completed[0]!.merged.routeId, 4);
  assert.deepEqual(await layout(catalog), [
    [1, "", "active"],
    [2, "f", "active"],
    [4, "h", "active"],
  ]);
  await checkAgreement(catalog, ranges, KEYS);
});

test("a split fenced on a range that grew by a merge waits for the merge's layout, then goes on", async () => {
  const { catalog, ranges } = await setup();
  await assert.rejects(
    new MergeCoordinator(new CrashingProcess(catalog, ranges, "merge")).merge(3, "manual"),
    Crash,
  );
  const splitter = new SplitCoordinator({ catalog, ranges });
  await assert.rejects(splitter.split(2, b("h")), (error: unknown) => {
    assert.ok(error instanceof SplitConflictError && error.retryable, String(error));
    return true;
  });
  assert.equal(ranges.get(2).state, "write-fenced");
  assert.deepEqual(await splitter.recover(), { completed: [], failed: [] }, "the grown range is the merge's");
  const merged = await new MergeCoordinator({ catalog, ranges }).recover();
  assert.equal(merged.completed.length, 1);
  const report = await splitter.recover();
  assert.equal(report.completed.length, 1);
  assert.deepEqual(await layout(catalog), [
    [1, "", "active"],
    [2, "f", "active"],
    [report.completed[0]!.right.routeId, "h", "active"],
  ]);
  assert.equal(report.completed[0]!.right.end, null);
  await checkAgreement(catalog, ranges, KEYS);
});

test("a split of R applying between the merge's look and its fence: the split's layout first, then the merge", async () => {
  const { catalog, ranges } = await setup();
  const ops: RangeOps = {
    ...bind(ranges),
    mergeFence: async (g) => {
      const crashing = new CrashingProcess(catalog, ranges, "split");
      await assert.rejects(new SplitCoordinator(crashing).split(3, b("q")), Crash);
      return ranges.mergeFence(g);
    },
  };
  await assert.rejects(
    new MergeCoordinator({ catalog, ranges: ops }).merge(3, "manual"),
    (error: unknown) => {
      assert.ok(error instanceof MergeConflictError, String(error));
      return true;
    },
  );
  assert.equal((await catalog.snapshot()).routes.find((r) => r.routeId === 3)!.state, "write-fenced");
  const splits = await new SplitCoordinator({ catalog, ranges }).recover();
  assert.equal(splits.completed.length, 1);
  const merges = await new MergeCoordinator({ catalog, ranges }).recover();
  assert.deepEqual(merges.failed, []);
  assert.equal(merges.completed.length, 1);
  const rhs = splits.completed[0]!.right.routeId;
  assert.deepEqual(await layout(catalog), [
    [1, "", "active"],
    [2, "f", "active"],
    [rhs, "q", "active"],
  ]);
  await checkAgreement(catalog, ranges, KEYS);
  await checkHistory(catalog);
});

test("a merge and a concurrent recovery of it both end in the layout; the merge reports it", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { catalog, ranges } = await setup();
    const random = lcg(seed);
    ranges.yieldPoint = async () => {
      for (let i = Math.floor(random() * 4); i > 0; i--) await new Promise((r) => setImmediate(r));
    };
    const merging = new MergeCoordinator({ catalog, ranges });
    const recovering = new MergeCoordinator({ catalog, ranges });
    const [merged, recovered] = await Promise.all([
      merging.merge(3, "manual"),
      recovering.recover().then(async (first) => [first, await recovering.recover()]),
    ]);
    assert.equal(merged.merged.routeId, 2, `seed ${seed}`);
    assert.equal(merged.revision, ranges.get(2).lastMerge!.revision);
    assert.deepEqual(
      recovered.flatMap((r) => r.failed),
      [],
      `seed ${seed}`,
    );
    await checkMerged(catalog, ranges);
  }
});

test("concurrent merges of neighbours: the left one first, the right one into the grown range", async () => {
  const { catalog, ranges } = await setup();
  const results = await Promise.allSettled([
    new MergeCoordinator({ catalog, ranges }).merge(3, "manual"),
    new MergeCoordinator({ catalog, ranges }).merge(2, "manual"),
  ]);
  await new MergeCoordinator({ catalog, ranges }).recover();
  assert.ok(results.some((r) => r.status === "fulfilled"));
  const routes = (await catalog.snapshot()).routes;
  assert.ok(routes.length < 3);
  await checkAgreement(catalog, ranges, KEYS);
  await checkHistory(catalog);
});

const ALPHABET = "abcdefghijklmnopqrstuvwxyz";
/** Many keys, so most routes have some to move. */
const MANY_KEYS = [...ALPHABET].flatMap((c) => [c, `${c}5`]);

/** A tiny deterministic generator (fast-check hands the seed). */
function lcg(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Operation {
  readonly kind: "split" | "merge";
  readonly pick: number;
  readonly crashAfter: number | null;
}

const operation: fc.Arbitrary<Operation> = fc.record({
  kind: fc.constantFrom("split" as const, "merge" as const),
  pick: fc.nat({ max: 1_000 }),
  crashAfter: fc.option(fc.integer({ min: 1, max: 12 }), { freq: 2 }),
});

/** Runs one operation as its own process: picks its route from the catalog it reads. */
async function runOperation(catalog: RouteCatalog, ranges: FakeRanges, op: Operation): Promise<void> {
  const process = new CrashingProcess(catalog, ranges, op.crashAfter);
  const routes: readonly RouteDescriptor[] = (await catalog.snapshot()).routes;
  const chosen = routes[op.pick % routes.length]!;
  if (op.kind === "merge") {
    await new MergeCoordinator(process).merge(chosen.routeId, "manual");
    return;
  }
  const inside = MANY_KEYS.map((k) => b(k)).filter(
    (k) => Buffer.compare(k, chosen.start) > 0 && (chosen.end === null || Buffer.compare(k, chosen.end) < 0),
  );
  if (inside.length === 0) return;
  await new SplitCoordinator(process).split(chosen.routeId, inside[op.pick % inside.length]!);
}

/** Routes 1..4 split at f, m, t in a fresh catalog, and fake ranges holding MANY_KEYS. */
async function fourRanges(): Promise<{ catalog: RouteCatalog; ranges: FakeRanges }> {
  const catalog = new RouteCatalog(new MemoryMetaKv());
  await catalog.initialize();
  await catalog.save(1, split(["f", "m", "t"]));
  const ranges = new FakeRanges();
  const starts = ["", "f", "m", "t"];
  starts.forEach((start, i) => {
    const end = starts[i + 1] ?? null;
    ranges.add(
      i + 1,
      start,
      end,
      MANY_KEYS.filter((k) => k >= start && (end === null || k < end)),
    );
  });
  return { catalog, ranges };
}

test("property: random splits and merges with crashes end, after both recoveries, in a layout agreeing with the ranges", async () => {
  const seen = { merged: 0, split: 0, crashed: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(operation, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
      fc.integer(),
      async (waves, seed) => {
        const { catalog, ranges } = await fourRanges();
        const random = lcg(seed);
        ranges.yieldPoint = async () => {
          for (let i = Math.floor(random() * 4); i > 0; i--) await new Promise((r) => setImmediate(r));
        };
        // Each wave's operations run concurrently; every outcome (refusal, conflict, crash) is allowed.
        for (const wave of waves) {
          const outcomes = await Promise.allSettled(wave.map((op) => runOperation(catalog, ranges, op)));
          seen.crashed += outcomes.filter((o) => o.status === "rejected" && o.reason instanceof Crash).length;
        }
        ranges.yieldPoint = () => Promise.resolve();
        const splits = new SplitCoordinator({ catalog, ranges });
        const merges = new MergeCoordinator({ catalog, ranges });
        let settled = false;
        for (let round = 0; round < 6 && !settled; round++) {
          const s = await splits.recover();
          const m = await merges.recover();
          settled = [s.completed, s.failed, m.completed, m.failed].every((list) => list.length === 0);
        }
        assert.ok(settled, "the recoveries settle");
        await checkAgreement(catalog, ranges, MANY_KEYS);
        await checkHistory(catalog);
        const read = await catalog.deltasSince(2);
        if (read.kind === "deltas") {
          seen.merged += read.deltas.filter((d) => d.removed.length > 0).length;
          seen.split += read.deltas.filter((d) => d.upserts.some((r) => r.parentRouteId !== null)).length;
        }
      },
    ),
    { numRuns: 60 },
  );
  assert.ok(seen.merged > 10 && seen.split > 10 && seen.crashed > 10, JSON.stringify(seen));
});

// The SplitLoop's merges.

/** Every range cold and tiny for as long as any policy asks. */
const COLD: LoadSource & RangeSizeSource = {
  windowLoads: () =>
    Array.from({ length: 60 }, (_, i) => ({ startMs: i * 1_000, reads: 0, writes: 0, opsPerSecond: 0 })),
  loadWeightedMedian: () => null,
  approximateBytes: () => 1,
  sizeMedianKey: () => null,
};

/** Routes 1..4 split at f, m, t, holding MANY_KEYS, and a loop over them. */
async function loopSetup(
  options: { autoMerge?: boolean; mergesPerCycle?: number; leader?: () => boolean } = {},
) {
  const { catalog, ranges } = await fourRanges();
  const time = new VirtualTime();
  const policy = new SplitPolicy(COLD, COLD);
  const loop = new SplitLoop({
    coordinator: new SplitCoordinator({ catalog, ranges }),
    mergeCoordinator: new MergeCoordinator({ catalog, ranges }),
    policy,
    timers: time.timers,
    clock: time.monotonic,
    isMetaLeader: options.leader ?? (() => true),
    ...(options.autoMerge === undefined ? {} : { autoMerge: options.autoMerge }),
    ...(options.mergesPerCycle === undefined ? {} : { mergesPerCycle: options.mergesPerCycle }),
  });
  return { catalog, ranges, time, policy, loop };
}

test("the loop merges cold pairs one per cycle, only on the meta leader, and cools the grown range", async () => {
  let leader = false;
  const { catalog, ranges, time, policy, loop } = await loopSetup({ leader: () => leader });
  assert.equal((await loop.runCycle()).ran, false);
  assert.equal((await catalog.snapshot()).routes.length, 4, "no merge off the leader");
  leader = true;
  const first = await loop.runCycle();
  assert.deepEqual(
    first.merged.map((m) => [m.merged.routeId, m.removed.routeId, m.cause]),
    [[1, 2, "cold"]],
  );
  assert.equal(loop.counters.mergesPlanned, 2, "two plans, one taken");
  assert.ok(policy.cooling(time.monotonic(), 1));
  const second = await loop.runCycle();
  assert.deepEqual(
    second.merged.map((m) => [m.merged.routeId, m.removed.routeId]),
    [[3, 4]],
    "the grown range rests; the next pair goes",
  );
  assert.deepEqual(await layout(catalog), [
    [1, "", "active"],
    [3, "m", "active"],
  ]);
  assert.deepEqual((await loop.runCycle()).merged, [], "both grown ranges rest");
  assert.equal(loop.counters.merges, 2);
  await checkAgreement(catalog, ranges, MANY_KEYS);
});

test("the loop merges nothing without autoMerge, and up to mergesPerCycle with it", async () => {
  const off = await loopSetup({ autoMerge: false });
  assert.deepEqual((await off.loop.runCycle()).merged, []);
  assert.equal((await off.catalog.snapshot()).routes.length, 4);
  const two = await loopSetup({ mergesPerCycle: 2 });
  assert.equal((await two.loop.runCycle()).merged.length, 2);
  assert.equal((await two.catalog.snapshot()).routes.length, 2);
  await checkAgreement(two.catalog, two.ranges, MANY_KEYS);
  const options: SplitLoopOptions = {
    coordinator: new SplitCoordinator(two),
    mergeCoordinator: new MergeCoordinator(two),
    policy: two.policy,
    timers: two.time.timers,
    clock: two.time.monotonic,
    isMetaLeader: () => true,
  };
  assert.throws(() => new SplitLoop({ ...options, mergesPerCycle: -1 }), RangeError);
  assert.throws(() => new SplitLoop({ ...options, mergesPerCycle: 1.5 }), RangeError);
});

test("the loop recovers a crashed merge every cycle, also without autoMerge", async () => {
  const { catalog, ranges, time, policy, loop } = await loopSetup({ autoMerge: false });
  await assert.rejects(
    new MergeCoordinator(new CrashingProcess(catalog, ranges, "save-migrating")).merge(3, "manual"),
    Crash,
  );
  const report = await loop.runCycle();
  assert.deepEqual(
    report.mergesRecovered.map((m) => [m.merged.routeId, m.removed.routeId, m.cause]),
    [[2, 3, "recovered"]],
  );
  assert.ok(policy.cooling(time.monotonic(), 2));
  assert.equal((await catalog.snapshot()).routes.length, 3);
  await checkAgreement(catalog, ranges, MANY_KEYS);
});
