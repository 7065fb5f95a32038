// Unit tests for the simulator's seeded PRNG: determinism, ranges, sub-stream independence.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { SeededRandom } from "../../src/sim/random.js";

function draws(random: SeededRandom, n: number): number[] {
  return Array.from({ length: n }, () => random.nextUint32());
}

test("the same seed yields the same stream, different seeds different streams", () => {
  assert.deepEqual(draws(new SeededRandom(42), 100), draws(new SeededRandom(42), 100));
  assert.notDeepEqual(draws(new SeededRandom(42), 100), draws(new SeededRandom(43), 100));
  // Seeds that differ only above bit 32 must still differ.
  assert.notDeepEqual(draws(new SeededRandom(7), 20), draws(new SeededRandom(7 + 2 ** 32), 20));
});

test("the stream for a fixed seed never changes (replaying old seeds depends on it)", () => {
  assert.deepEqual(draws(new SeededRandom(1), 4), [2771007240, 3505030613, 2364601062, 1267247690]);
  assert.equal(new SeededRandom(12345).nextInt(1_000_000), 106603);
  assert.equal(new SeededRandom(12345).fork("x").nextInt(1_000_000), 727760);
});

test("the first draw of consecutive seeds is itself well spread", () => {
  // Runs choose their cluster shape from the first draws, so seed 1, 2, 3... must differ there.
  const counts = [0, 0, 0, 0];
  for (let seed = 1; seed <= 4000; seed++) counts[new SeededRandom(seed).nextInt(4)]!++;
  for (const c of counts) assert.ok(c > 900 && c < 1100, `first-draw bucket ${c} of 4000`);
  let forkedOnes = 0;
  for (let seed = 1; seed <= 1000; seed++) forkedOnes += new SeededRandom(seed).fork("shape").nextInt(2);
  assert.ok(forkedOnes > 430 && forkedOnes < 570, `fork first draws: ${forkedOnes} ones of 1000`);
});

test("nextInt, intBetween and float stay in range", () => {
  fc.assert(
    fc.property(fc.nat(), fc.integer({ min: 1, max: 2 ** 32 }), (seed, bound) => {
      const r = new SeededRandom(seed);
      for (let i = 0; i < 20; i++) {
        const n = r.nextInt(bound);
        assert.ok(Number.isInteger(n) && n >= 0 && n < bound);
        const f = r.float();
        assert.ok(f >= 0 && f < 1);
        const b = r.intBetween(-3, 3);
        assert.ok(b >= -3 && b <= 3);
      }
    }),
  );
});

test("nextInt rejects bounds it cannot serve", () => {
  const r = new SeededRandom(1);
  assert.throws(() => r.nextInt(0));
  assert.throws(() => r.nextInt(1.5));
  assert.throws(() => r.nextInt(2 ** 32 + 1));
  assert.throws(() => new SeededRandom(-1));
});

test("nextInt is roughly uniform", () => {
  const r = new SeededRandom(99);
  const counts = [0, 0, 0, 0, 0, 0];
  const n = 60_000;
  for (let i = 0; i < n; i++) counts[r.nextInt(6)]!++;
  for (const c of counts) assert.ok(Math.abs(c - n / 6) < n / 60, `bucket count ${c} far from ${n / 6}`);
});

test("chance honours its edge probabilities", () => {
  const r = new SeededRandom(5);
  for (let i = 0; i < 100; i++) {
    assert.equal(r.chance(0), false);
    assert.equal(r.chance(1), true);
  }
  let hits = 0;
  for (let i = 0; i < 10_000; i++) if (r.chance(0.25)) hits++;
  assert.ok(hits > 2200 && hits < 2800, `chance(0.25) hit ${hits} of 10000`);
});

test("fork gives independent streams that do not depend on draws from the parent", () => {
  const a = new SeededRandom(7);
  const b = new SeededRandom(7);
  draws(b, 50);
  assert.deepEqual(draws(a.fork("net"), 10), draws(b.fork("net"), 10));
  assert.notDeepEqual(draws(a.fork("net"), 10), draws(a.fork("disk"), 10));
  assert.notDeepEqual(draws(a.fork("net"), 10), draws(new SeededRandom(8).fork("net"), 10));
  assert.notDeepEqual(draws(a.fork("net"), 10), draws(a.fork("net").fork("net"), 10));
});

test("pick and shuffled use every element and keep the multiset", () => {
  const r = new SeededRandom(3);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(r.pick(["a", "b", "c"]));
  assert.deepEqual([...seen].sort(), ["a", "b", "c"]);
  assert.throws(() => r.pick([]));
  const items = [1, 2, 3, 4, 5, 6, 7, 8];
  const shuffled = r.shuffled(items);
  assert.deepEqual(
    [...shuffled].sort((x, y) => x - y),
    items,
  );
  assert.deepEqual(items, [1, 2, 3, 4, 5, 6, 7, 8], "shuffled must not modify its input");
});

test("exponential draws are at least 1 and average near the mean", () => {
  const r = new SeededRandom(11);
  let sum = 0;
  for (let i = 0; i < 20_000; i++) {
    const d = r.exponential(100);
    assert.ok(d >= 1);
    sum += d;
  }
  const mean = sum / 20_000;
  assert.ok(mean > 90 && mean < 112, `mean ${mean}`);
});
