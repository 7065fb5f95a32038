// LoadSampler: memory stays bounded however many requests arrive, windows roll on the
// injected clock (idle windows count as zero, history is capped), the load-weighted median
// equals the brute-force median of every request while the reservoir holds them all, stays
// strictly inside the bounds, refuses a single hot key and splits between two.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compareBytes } from "../../src/kv/bytes.js";
import { FULL_BOUNDS } from "../../src/kv/bounds.js";
import { LoadSampler, weightedMedianKey } from "../../src/placement/split/load-sampler.js";
import { seededRandom } from "../node/harness.js";
import { b } from "./arbitraries.js";

function sampler(options: { reservoirSize?: number; historyWindows?: number } = {}) {
  const clock = { now: 0 };
  const load = new LoadSampler({ clock: () => clock.now, random: seededRandom(7), ...options });
  return { clock, load };
}

function hex(key: Uint8Array | null): string | null {
  return key === null ? null : Buffer.from(key).toString("hex");
}

test("a million records keep at most the reservoir size of keys per window", () => {
  const { clock, load } = sampler({ reservoirSize: 64 });
  const key = new Uint8Array(8);
  for (let i = 0; i < 1_000_000; i++) {
    new DataView(key.buffer).setUint32(4, i);
    load.record(1, key, i % 3 === 0 ? "write" : "read");
    if (i === 999_999) assert.equal(load.sampledKeys(1), 64, "one window: the reservoir, full");
  }
  clock.now = 1_000;
  for (let i = 0; i < 100_000; i++) load.record(1, key, "read");
  assert.equal(load.sampledKeys(1), 128, "two windows: two reservoirs at most");
  const [window] = load.windowLoads(1);
  assert.equal(window!.reads + window!.writes, 1_000_000);
  assert.equal(window!.writes, 333_334);
  assert.equal(window!.opsPerSecond, 1_000_000);
});

test("windows roll on the injected clock; idle windows count as zero and history is capped", () => {
  const { clock, load } = sampler({ historyWindows: 5 });
  for (let i = 0; i < 30; i++) load.record(4, b("k"), "write");
  assert.deepEqual(load.windowLoads(4), [], "nothing completed before the clock moves");
  clock.now = 999;
  load.record(4, b("k"), "read");
  assert.equal(load.windowLoads(4).length, 0);
  clock.now = 1_000;
  assert.deepEqual(load.windowLoads(4), [{ startMs: 0, reads: 1, writes: 30, opsPerSecond: 31 }]);
  clock.now = 3_500;
  assert.deepEqual(
    load.windowLoads(4).map((w) => [w.startMs, w.opsPerSecond]),
    [
      [0, 31],
      [1_000, 0],
      [2_000, 0],
    ],
  );
  clock.now = 100_000;
  const history = load.windowLoads(4);
  assert.deepEqual(
    history.map((w) => w.startMs),
    [95_000, 96_000, 97_000, 98_000, 99_000],
  );
  assert.ok(history.every((w) => w.opsPerSecond === 0));
  assert.equal(load.loadWeightedMedian(4, FULL_BOUNDS), null, "old samples are gone");
  load.forget(4);
  assert.deepEqual(load.rangeIds(), []);
});

test("a window of another length reports ops per second", () => {
  const clock = { now: 0 };
  const load = new LoadSampler({ clock: () => clock.now, random: seededRandom(1), windowMs: 250 });
  for (let i = 0; i < 50; i++) load.record(1, b("a"), "read");
  clock.now = 250;
  assert.equal(load.windowLoads(1)[0]!.opsPerSecond, 200);
});

test("one hot key cannot be split; two keys split between them", () => {
  const { load } = sampler();
  for (let i = 0; i < 500; i++) load.record(1, b("hot"), "write");
  assert.equal(load.loadWeightedMedian(1, FULL_BOUNDS), null);
  for (let i = 0; i < 500; i++) load.record(2, b(i % 2 === 0 ? "apple" : "pear"), "read");
  assert.equal(hex(load.loadWeightedMedian(2, FULL_BOUNDS)), hex(b("pear")));
  assert.equal(load.loadWeightedMedian(3, FULL_BOUNDS), null, "an unknown range");
});

test("the median is strictly inside the bounds; samples outside them are ignored", () => {
  const { load } = sampler();
  for (const key of ["a", "b", "c", "d", "x", "y"]) load.record(1, b(key), "read");
  const bounds = { start: b("b"), end: b("x") };
  const median = load.loadWeightedMedian(1, bounds)!;
  assert.equal(hex(median), hex(b("c")), "b | c d: c leaves one below and two at or above");
  assert.equal(load.loadWeightedMedian(1, { start: b("d"), end: b("x") }), null, "only d inside");
});

// With no more requests than the reservoir holds, the sample is every request: the sampler's
// answer must be exactly the brute-force median of all of them, over one or two windows.
test("property: the median equals brute force over every request", () => {
  const keyArb = fc.uint8Array({ minLength: 0, maxLength: 3, max: 6 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(keyArb, fc.boolean()), { maxLength: 60 }),
      fc.array(fc.tuple(keyArb, fc.boolean()), { maxLength: 60 }),
      keyArb,
      fc.option(keyArb, { nil: null }),
      (first, second, start, end) => {
        const { clock, load } = sampler({ reservoirSize: 64 });
        for (const [key, write] of first) load.record(9, key, write ? "write" : "read");
        clock.now = 1_000;
        for (const [key, write] of second) load.record(9, key, write ? "write" : "read");
        const bounds = { start, end };
        const inside = [...first, ...second]
          .map(([key]) => key)
          .filter((key) => compareBytes(start, key) <= 0 && (end === null || compareBytes(key, end) < 0));
        const expected = weightedMedianKey(inside.map((key) => ({ key, weight: 1 })));
        const actual = load.loadWeightedMedian(9, bounds);
        assert.equal(hex(actual), hex(expected));
        if (actual !== null) {
          assert.ok(compareBytes(actual, start) > 0, "strictly above the start");
          assert.ok(end === null || compareBytes(actual, end) < 0, "below the end");
        }
        // Brute force of the brute force: no other candidate key balances better.
        if (expected !== null) {
          const total = inside.length;
          const below = (k: Uint8Array) => inside.filter((key) => compareBytes(key, k) < 0).length;
          const best = Math.abs(2 * below(expected) - total);
          for (const key of inside) {
            if (below(key) > 0) assert.ok(Math.abs(2 * below(key) - total) >= best);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test("property: a full reservoir still answers a sampled key strictly inside the bounds", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 2, max: 200 }), (seed, distinct) => {
      const load = new LoadSampler({ clock: () => 0, random: seededRandom(seed), reservoirSize: 16 });
      const bounds = { start: b("k"), end: b("l") };
      for (let i = 0; i < 2_000; i++) load.record(1, b(`k${i % distinct}`), "read");
      const median = load.loadWeightedMedian(1, bounds);
      assert.ok(load.sampledKeys(1) <= 16);
      if (median !== null) {
        assert.ok(compareBytes(median, bounds.start) > 0 && compareBytes(median, bounds.end) < 0);
      }
    }),
    { numRuns: 50 },
  );
});

test("bad options and kinds are refused", () => {
  assert.throws(() => new LoadSampler({ clock: () => 0, random: seededRandom(1), windowMs: 0 }), RangeError);
  assert.throws(
    () => new LoadSampler({ clock: () => 0, random: seededRandom(1), reservoirSize: 1.5 }),
    RangeError,
  );
  const { load } = sampler();
  assert.throws(() => load.record(1, b("a"), "scan" as "read"), RangeError);
  assert.equal(load.sampledKeys(1), 0, "nothing recorded");
});
