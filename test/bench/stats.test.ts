// The benchmark's own arithmetic: nearest-rank percentiles (checked against their definition
// with fast-check), row summaries, the text table, and the closed-loop driver's budget (every
// op index issued exactly once, one outstanding op per handle, failures fail the row).
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { runRow } from "../../bench/load.js";
import { formatTable, percentile, summarize } from "../../bench/stats.js";

test("percentile is the nearest-rank sample", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
      fc.integer({ min: 1, max: 100 }),
      (samples, p) => {
        const value = percentile(samples, p);
        const rank = Math.ceil((p / 100) * samples.length);
        assert.ok(samples.includes(value));
        assert.ok(samples.filter((s) => s <= value).length >= rank);
        assert.ok(samples.filter((s) => s < value).length < rank);
      },
    ),
  );
  assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  assert.equal(percentile([1, 2, 3, 4], 25), 1);
});

test("percentile refuses no samples and percentiles outside (0, 100]", () => {
  assert.throws(() => percentile([], 50), RangeError);
  assert.throws(() => percentile([1], 0), RangeError);
  assert.throws(() => percentile([1], 101), RangeError);
});

test("summarize counts ops and derives throughput from the elapsed time", () => {
  const row = summarize({ setup: "s", operation: "put", concurrency: 2 }, [1, 2, 3, 4], 2000);
  assert.deepEqual(row, {
    setup: "s",
    operation: "put",
    concurrency: 2,
    ops: 4,
    elapsedMs: 2000,
    opsPerSecond: 2,
    p50Ms: 2,
    p99Ms: 4,
  });
  assert.throws(() => summarize({ setup: "s", operation: "put", concurrency: 1 }, [1], 0), RangeError);
});

test("formatTable aligns every column under its header", () => {
  const rows = [
    summarize({ setup: "1 process", operation: "put", concurrency: 1 }, [1.5], 10),
    summarize({ setup: "3 processes", operation: "get", concurrency: 64 }, [12.25, 100], 1000),
  ];
  const lines = formatTable(rows).split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0] ?? "", /^setup\s+op\s+conc\s+ops\s+ops\/s\s+p50 ms\s+p99 ms$/);
  assert.match(lines[1] ?? "", /^-+( +-+){6}$/);
  assert.match(lines[2] ?? "", /^1 process\s+put\s+1\s+1\s+100\s+1\.50\s+1\.50$/);
  assert.match(lines[3] ?? "", /^3 processes\s+get\s+64\s+2\s+2\s+12\.25\s+100\.00$/);
  // Right-aligned numbers end where their header ends.
  const header = lines[0] ?? "";
  for (const line of lines.slice(2)) assert.equal(line.length, header.length);
});

test("runRow issues each op index once, one at a time per handle, up to the op budget", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 60 }),
      async (handles, maxOps) => {
        const outstanding = new Map<number, number>();
        const seen: number[] = [];
        const row = await runRow(
          { setup: "fake", operation: "put" },
          Array.from({ length: handles }, (_, id) => id),
          async (handle, index) => {
            outstanding.set(handle, (outstanding.get(handle) ?? 0) + 1);
            assert.equal(outstanding.get(handle), 1, `handle ${handle} had two ops outstanding`);
            seen.push(index);
            await Promise.resolve();
            outstanding.set(handle, 0);
          },
          { maxOps, maxMs: 60_000 },
        );
        assert.equal(row.ops, maxOps);
        assert.equal(row.concurrency, handles);
        assert.deepEqual(
          [...seen].sort((a, b) => a - b),
          Array.from({ length: maxOps }, (_, i) => i),
        );
      },
    ),
    { numRuns: 50 },
  );
});

test("runRow fails the row when an operation fails", async () => {
  await assert.rejects(
    runRow(
      { setup: "fake", operation: "get" },
      [0, 1],
      async (_handle, index) => {
        await Promise.resolve();
        if (index === 3) throw new Error("boom");
      },
      { maxOps: 10, maxMs: 60_000 },
    ),
    /boom/,
  );
  await assert.rejects(
    runRow({ setup: "fake", operation: "get" }, [], () => Promise.resolve(), { maxOps: 1, maxMs: 1 }),
    RangeError,
  );
});
