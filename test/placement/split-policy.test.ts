// SplitPolicy: 15 windows at 1,000 ops/s split a range and 14 do not (on a real LoadSampler);
// cooldown of both sides; the per-cycle cap, hottest first; never a boundary key nor one in
// the system span; size splits at the size median; merge candidates.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RangeBounds } from "../../src/kv/bounds.js";
import { LoadSampler, type WindowLoad } from "../../src/placement/split/load-sampler.js";
import {
  SplitPolicy,
  type LoadSource,
  type RangeCandidate,
  type RangeSizeSource,
} from "../../src/placement/split/policy.js";
import { SYSTEM_PREFIX } from "../../src/placement/router/system-keys.js";
import { SYSTEM_SPAN_END } from "../../src/placement/split/split-key.js";
import { seededRandom } from "../node/harness.js";
import { b } from "./arbitraries.js";

function hex(key: Uint8Array | null | undefined): string | null {
  return key === null || key === undefined ? null : Buffer.from(key).toString("hex");
}

function candidate(
  rangeId: number,
  start: string | Uint8Array,
  end: string | null,
  fields: Partial<RangeCandidate> = {},
): RangeCandidate {
  return {
    rangeId,
    routeId: rangeId,
    bounds: { start: typeof start === "string" ? b(start) : start, end: end === null ? null : b(end) },
    state: "active",
    ...fields,
  };
}

/** Load and size as the test sets them. */
class FakeSources implements LoadSource, RangeSizeSource {
  readonly windows = new Map<number, WindowLoad[]>();
  readonly medians = new Map<number, Uint8Array | null>();
  readonly bytes = new Map<number, number>();
  readonly sizeMedians = new Map<number, Uint8Array | null>();

  /** `count` completed windows of `opsPerSecond` each. */
  setLoad(
    rangeId: number,
    opsPerSecond: number,
    count: number,
    median: string | Uint8Array | null = null,
  ): void {
    this.windows.set(
      rangeId,
      Array.from({ length: count }, (_, i) => ({
        startMs: i * 1_000,
        reads: opsPerSecond,
        writes: 0,
        opsPerSecond,
      })),
    );
    this.medians.set(rangeId, typeof median === "string" ? b(median) : median);
  }
  windowLoads(rangeId: number): readonly WindowLoad[] {
    return this.windows.get(rangeId) ?? [];
  }
  loadWeightedMedian(rangeId: number, _bounds: RangeBounds): Uint8Array | null {
    return this.medians.get(rangeId) ?? null;
  }
  approximateBytes(rangeId: number): number {
    return this.bytes.get(rangeId) ?? 0;
  }
  sizeMedianKey(rangeId: number, _bounds: RangeBounds): Uint8Array | null {
    return this.sizeMedians.get(rangeId) ?? null;
  }
}

/** A real sampler fed `windows` full windows of 1,000 requests over keys k0..k9 of range 1. */
function sampledFor(windows: number): { policy: SplitPolicy; now: number } {
  const clock = { now: 0 };
  const sampler = new LoadSampler({ clock: () => clock.now, random: seededRandom(3) });
  for (let w = 0; w < windows; w++) {
    clock.now = w * 1_000;
    for (let i = 0; i < 1_000; i++) sampler.record(1, b(`k${i % 10}`), i % 2 === 0 ? "read" : "write");
  }
  clock.now = windows * 1_000;
  return { policy: new SplitPolicy(sampler, new FakeSources()), now: clock.now };
}

test("15 windows at 1,000 ops/s split the range at its load median; 14 do not", () => {
  const range = candidate(1, "k", "l");
  const hot = sampledFor(15);
  const [plan, ...rest] = hot.policy.evaluate(hot.now, [range]);
  assert.equal(rest.length, 0);
  assert.equal(plan!.reason, "load");
  assert.equal(plan!.opsPerSecond, 1_000);
  // Exactly k5 on every request; the sample of two windows lands next to it.
  assert.ok(
    ["k4", "k5", "k6"].map((k) => hex(b(k))).includes(hex(plan!.splitKey)),
    "about half the load below",
  );
  const warm = sampledFor(14);
  assert.deepEqual(warm.policy.evaluate(warm.now, [range]), []);
});

test("one window below the threshold among the last 15 prevents a load split", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources);
  sources.setLoad(1, 1_000, 20, "m");
  sources.windows.get(1)![10] = { startMs: 10_000, reads: 999, writes: 0, opsPerSecond: 999 };
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", "z")]), []);
  sources.windows.get(1)![4] = { startMs: 4_000, reads: 0, writes: 0, opsPerSecond: 0 };
  sources.windows.get(1)![10] = { startMs: 10_000, reads: 1_000, writes: 0, opsPerSecond: 1_000 };
  assert.equal(policy.evaluate(0, [candidate(1, "a", "z")]).length, 1, "only the last 15 count");
});

test("a split starts a cooldown of both sides", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources, { cooldownMs: 30_000 });
  sources.setLoad(1, 5_000, 15, "f");
  sources.setLoad(7, 5_000, 15, "t");
  const ranges = [candidate(1, "a", "m"), candidate(7, "m", null)];
  assert.equal(policy.evaluate(100, ranges).length, 2);
  policy.recordSplit(100, 1, 7);
  assert.deepEqual(policy.evaluate(100, ranges), []);
  assert.deepEqual(policy.evaluate(30_099, ranges), [], "still cooling 1 ms before the end");
  assert.ok(policy.cooling(30_099, 7));
  assert.equal(policy.evaluate(30_100, ranges).length, 2);
});

test("at most maxSplitsPerCycle plans, hottest first, then largest", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources, { maxSplitsPerCycle: 3, maxRangeBytes: 1_000 });
  const ranges: RangeCandidate[] = [];
  const rates = [1_500, 9_000, 2_000, 4_000, 1_000];
  rates.forEach((rate, i) => {
    const id = i + 2;
    sources.setLoad(id, rate, 15, `r${i}m`);
    ranges.push(candidate(id, `r${i}`, `r${i + 1}`));
  });
  sources.bytes.set(20, 5_000);
  sources.sizeMedians.set(20, b("z5"));
  ranges.push(candidate(20, "z", null));
  const plans = policy.evaluate(0, ranges);
  assert.deepEqual(
    plans.map((p) => [p.rangeId, p.opsPerSecond, p.reason]),
    [
      [3, 9_000, "load"],
      [5, 4_000, "load"],
      [4, 2_000, "load"],
    ],
  );
  const idle = new SplitPolicy(sources, sources, { maxSplitsPerCycle: 8, maxRangeBytes: 1_000 });
  assert.deepEqual(
    idle.evaluate(0, ranges).map((p) => p.rangeId),
    [3, 5, 4, 2, 6, 20],
    "the size split of an idle range comes last",
  );
});

test("never a key at a boundary, outside the range or in the system span; only active ranges", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources);
  sources.setLoad(1, 5_000, 15, "m");
  assert.deepEqual(policy.evaluate(0, [candidate(1, "m", "z")]), [], "median at the start");
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", "m")]), [], "median at the end");
  assert.deepEqual(policy.evaluate(0, [candidate(1, "n", "z")]), [], "median outside");
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", "z", { state: "write-fenced" })]), []);
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", "z", { state: "migrating-source" })]), []);
  assert.equal(policy.evaluate(0, [candidate(1, "a", "z")]).length, 1);
  const system = new Uint8Array([...SYSTEM_PREFIX, ...b("catalog/route")]);
  for (const key of [system, SYSTEM_PREFIX, SYSTEM_SPAN_END]) {
    sources.setLoad(1, 5_000, 15, key);
    assert.deepEqual(policy.evaluate(0, [candidate(1, "", null)]), [], `system key ${hex(key)}`);
  }
  sources.setLoad(1, 5_000, 15, new Uint8Array([...SYSTEM_SPAN_END, 0]));
  assert.equal(policy.evaluate(0, [candidate(1, "", null)]).length, 1, "just above the system span");
});

test("a single hot key gets no load split; a too-large range falls back to a size split", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources, { maxRangeBytes: 64 });
  sources.setLoad(1, 50_000, 15, null);
  sources.sizeMedians.set(1, b("q"));
  sources.bytes.set(1, 64);
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", "z")]), [], "64 bytes is not above 64");
  sources.bytes.set(1, 65);
  const [plan] = policy.evaluate(0, [candidate(1, "a", "z")]);
  assert.equal(plan!.reason, "size");
  assert.equal(hex(plan!.splitKey), hex(b("q")));
  assert.equal(plan!.bytes, 65);
  sources.sizeMedians.set(1, b("a"));
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", "z")]), [], "size median at the boundary");
});

test("the default size split is above 64 MiB", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources);
  sources.sizeMedians.set(1, b("m"));
  sources.bytes.set(1, 64 * 1024 * 1024);
  assert.deepEqual(policy.evaluate(0, [candidate(1, "a", null)]), []);
  sources.bytes.set(1, 64 * 1024 * 1024 + 1);
  assert.equal(policy.evaluate(0, [candidate(1, "a", null)])[0]!.reason, "size");
});

test("merge candidates: adjacent, active, small and cold for long enough, each range once", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources, {
    mergeWindows: 5,
    mergeMaxOpsPerSecond: 10,
    mergeMaxBytes: 100,
  });
  const ranges = [
    candidate(1, "", "c"),
    candidate(2, "c", "f"),
    candidate(3, "f", "k"),
    candidate(4, "k", "p"),
    candidate(5, "p", "t", { state: "write-fenced" }),
    candidate(6, "t", null),
  ];
  for (const r of ranges) {
    sources.setLoad(r.rangeId, 1, 5);
    sources.bytes.set(r.rangeId, 10);
  }
  assert.deepEqual(
    policy.mergeCandidates(0, ranges).map((p) => [p.left.rangeId, p.right.rangeId, p.bytes]),
    [
      [1, 2, 20],
      [3, 4, 20],
    ],
  );
  sources.setLoad(2, 1, 4);
  assert.deepEqual(
    policy.mergeCandidates(0, ranges).map((p) => [p.left.rangeId, p.right.rangeId]),
    [[3, 4]],
    "a short history is not known cold",
  );
  sources.setLoad(2, 1, 5);
  sources.bytes.set(3, 100);
  sources.windows.get(4)![0] = { startMs: 0, reads: 10, writes: 0, opsPerSecond: 10 };
  assert.deepEqual(
    policy.mergeCandidates(0, ranges).map((p) => [p.left.rangeId, p.right.rangeId]),
    [[1, 2]],
  );
  policy.recordSplit(0, 1, 9);
  assert.deepEqual(policy.mergeCandidates(0, ranges), [], "a range in cooldown does not merge");
});

test("merge plans need the pair's bytes together below mergeMaxBytes (default 8 MiB)", () => {
  const sources = new FakeSources();
  const ranges = [candidate(1, "", "c"), candidate(2, "c", "f"), candidate(3, "f", null)];
  for (const r of ranges) sources.setLoad(r.rangeId, 0, 60);
  const policy = new SplitPolicy(sources, sources);
  assert.equal(policy.options.mergeMaxBytes, 8 * 1024 * 1024);
  const pairs = (): number[][] =>
    policy.mergeCandidates(0, ranges).map((p) => [p.left.rangeId, p.right.rangeId]);
  sources.bytes.set(1, 5 * 1024 * 1024);
  sources.bytes.set(2, 3 * 1024 * 1024);
  sources.bytes.set(3, 1024);
  assert.deepEqual(pairs(), [[2, 3]], "1 + 2 is exactly 8 MiB: too large together; 2 + 3 fits");
  sources.bytes.set(2, 3 * 1024 * 1024 - 1);
  assert.deepEqual(pairs(), [[1, 2]], "pairs are taken left to right, each range once");
  sources.bytes.set(3, 5 * 1024 * 1024 + 1);
  sources.bytes.set(1, 6 * 1024 * 1024);
  assert.deepEqual(pairs(), [], "each range small, no pair small enough");
});

test("a merge starts the cooldown of the grown range and forgets the removed one", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources, {
    cooldownMs: 1_000,
    mergeWindows: 1,
    mergeDelayAfterSplitMs: 1_000,
  });
  const ranges = [candidate(1, "", "c"), candidate(2, "c", "f"), candidate(3, "f", null)];
  for (const r of ranges) {
    sources.setLoad(r.rangeId, 0, 1);
    sources.bytes.set(r.rangeId, 1);
  }
  policy.recordSplit(0, 2, 3);
  policy.recordMerge(500, 1, 2);
  assert.ok(policy.cooling(500, 1));
  assert.ok(!policy.cooling(500, 2), "the removed range is forgotten");
  const after = [candidate(1, "", "f"), candidate(3, "f", null)];
  assert.deepEqual(policy.mergeCandidates(1_000, after), [], "1 rests until 1,500");
  sources.bytes.set(1, 64 * 1024 * 1024 + 1);
  sources.sizeMedians.set(1, b("d"));
  assert.deepEqual(policy.evaluate(1_000, after), [], "no split plans for it while resting either");
  assert.equal(policy.evaluate(1_500, after).length, 1);
  sources.bytes.set(1, 1);
  assert.deepEqual(
    policy.mergeCandidates(1_500, after).map((p) => [p.left.rangeId, p.right.rangeId]),
    [[1, 3]],
  );
});

test("both sides of a split do not merge for the merge delay (default 5 minutes), cold or not", () => {
  const sources = new FakeSources();
  const policy = new SplitPolicy(sources, sources, { cooldownMs: 1_000, mergeWindows: 1 });
  assert.equal(policy.options.mergeDelayAfterSplitMs, 300_000);
  const ranges = [candidate(1, "", "c"), candidate(2, "c", "f"), candidate(3, "f", null)];
  for (const r of ranges) {
    sources.setLoad(r.rangeId, 0, 1);
    sources.bytes.set(r.rangeId, 1);
  }
  const pairs = (now: number): number[][] =>
    policy.mergeCandidates(now, ranges).map((p) => [p.left.rangeId, p.right.rangeId]);
  policy.recordSplit(0, 2, 3);
  assert.deepEqual(pairs(1_000), [], "out of cooldown, still inside the merge delay: neither side merges");
  sources.bytes.set(1, 64 * 1024 * 1024 + 1);
  sources.sizeMedians.set(1, b("b"));
  sources.bytes.set(2, 64 * 1024 * 1024 + 1);
  sources.sizeMedians.set(2, b("d"));
  assert.deepEqual(
    policy.evaluate(1_000, ranges).map((plan) => plan.rangeId),
    [1, 2],
    "the delay holds merges only: a side may split again after the cooldown",
  );
  sources.bytes.set(1, 1);
  sources.bytes.set(2, 1);
  assert.deepEqual(pairs(299_999), []);
  assert.deepEqual(pairs(300_000), [[1, 2]]);
  policy.recordMerge(300_000, 1, 2);
  policy.recordSplit(300_000, 1, 4);
  sources.setLoad(4, 0, 1);
  sources.bytes.set(4, 1);
  assert.deepEqual(
    policy.mergeCandidates(600_000, [candidate(1, "", "c"), candidate(4, "c", "f")]).length,
    1,
    "the later split's delay ends too",
  );
});

test("bad options are refused", () => {
  const sources = new FakeSources();
  assert.throws(() => new SplitPolicy(sources, sources, { loadSplitWindows: 0 }), RangeError);
  assert.throws(() => new SplitPolicy(sources, sources, { maxSplitsPerCycle: 2.5 }), RangeError);
  assert.throws(() => new SplitPolicy(sources, sources, { cooldownMs: Number.NaN }), RangeError);
  assert.throws(() => new SplitPolicy(sources, sources, { mergeDelayAfterSplitMs: -1 }), RangeError);
});
