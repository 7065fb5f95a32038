// The etcd comparison's arithmetic and table: one repetition's figures, medians over
// repetitions (metric by metric), Concord/etcd ratios, row groups for --only, the flags, and
// the printed table (a line per system, a ratio line, every column aligned).
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseCompareFlags } from "../../bench/etcd-compare/command.js";
import { ROWS } from "../../bench/etcd-compare/compare.js";
import {
  formatComparisonTable,
  formatFigure,
  measurementOf,
  median,
  medianMetrics,
  ratios,
  rowGroup,
  summarizeRow,
  type Measurement,
} from "../../bench/etcd-compare/stats.js";

function measurement(opsPerSecond: number, p99Ms: number, serverCpuUsPerOp: number): Measurement {
  return {
    ops: 100,
    elapsedMs: 1000,
    opsPerSecond,
    p50Ms: p99Ms / 2,
    p99Ms,
    serverCpuUsPerOp,
    clientCpuUsPerOp: 50,
  };
}

test("measurementOf derives rate, percentiles and CPU per operation", () => {
  const latencies = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepEqual(measurementOf(latencies, 2000, 30_000, 10_000), {
    ops: 100,
    elapsedMs: 2000,
    opsPerSecond: 50,
    p50Ms: 50,
    p99Ms: 99,
    serverCpuUsPerOp: 300,
    clientCpuUsPerOp: 100,
  });
  assert.throws(() => measurementOf([], 1000, 0, 0), RangeError);
  assert.throws(() => measurementOf([1], 0, 0, 0), RangeError);
  assert.throws(() => measurementOf([1], 10, -1, 0), RangeError);
});

test("median is the middle value, or the mean of the two middle values", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.throws(() => median([]), RangeError);
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 50 }),
      (values) => {
        const m = median(values);
        assert.ok(values.filter((v) => v <= m).length >= values.length / 2);
        assert.ok(values.filter((v) => v >= m).length >= values.length / 2);
      },
    ),
  );
});

test("medians are taken metric by metric, and ratios are concord over etcd", () => {
  const concord = medianMetrics([
    measurement(100, 9, 300),
    measurement(300, 1, 100),
    measurement(200, 5, 200),
  ]);
  assert.equal(concord.opsPerSecond, 200);
  assert.equal(concord.p99Ms, 5);
  assert.equal(concord.serverCpuUsPerOp, 200);
  const etcd = medianMetrics([measurement(400, 10, 100)]);
  const ratio = ratios(concord, etcd);
  assert.equal(ratio.opsPerSecond, 0.5);
  assert.equal(ratio.p99Ms, 0.5);
  assert.equal(ratio.serverCpuUsPerOp, 2);
  assert.ok(Number.isNaN(ratios(concord, { ...etcd, p50Ms: 0 }).p50Ms), "no ratio over zero");
});

test("summarizeRow gives a ratio only when both systems ran", () => {
  const spec = { id: "put c=1", workload: "closed-put", concurrency: 1 } as const;
  const both = summarizeRow(spec, { concord: [measurement(100, 2, 10)], etcd: [measurement(200, 1, 20)] });
  assert.equal(both.concordOverEtcd?.opsPerSecond, 0.5);
  assert.equal(both.group, "put");
  const one = summarizeRow(spec, { etcd: [measurement(200, 1, 20)] });
  assert.equal(one.concordOverEtcd, undefined);
  assert.equal(one.median.concord, undefined);
  const open = summarizeRow({ id: "get @1000/s", workload: "open-get", offeredPerSecond: 1000 }, {});
  assert.equal(open.offeredPerSecond, 1000);
});

test("every row belongs to an --only group, and the issue's rows are all there", () => {
  const ids = ROWS.map((row) => row.id);
  for (const c of [1, 16, 64, 256]) assert.ok(ids.includes(`put c=${c}`) && ids.includes(`get c=${c}`));
  for (const r of [1000, 2000]) assert.ok(ids.includes(`put @${r}/s`) && ids.includes(`get @${r}/s`));
  assert.deepEqual(new Set(ROWS.map(rowGroup)), new Set(["put", "get", "txn", "watch"]));
  assert.equal(new Set(ids).size, ids.length, "row ids are unique");
});

test("formatComparisonTable prints each system, then the ratio, aligned under the header", () => {
  const row = summarizeRow(
    { id: "put c=16", workload: "closed-put", concurrency: 16 },
    { concord: [measurement(1500, 20, 150)], etcd: [measurement(3000, 10, 300)] },
  );
  const lines = formatComparisonTable([row]).split("\n");
  assert.equal(lines.length, 5);
  assert.match(
    lines[0] ?? "",
    /^row\s+system\s+ops\/s\s+p50 ms\s+p99 ms\s+server CPU µs\/op\s+client CPU µs\/op$/,
  );
  assert.match(lines[2] ?? "", /^put c=16\s+concord\s+1500\s+10\.0\s+20\.0\s+150\s+50\.0$/);
  assert.match(lines[3] ?? "", /^\s+etcd\s+3000/);
  assert.match(lines[4] ?? "", /^\s+concord\/etcd\s+0\.50x\s+2\.00x\s+2\.00x\s+0\.50x\s+1\.00x$/);
  const ends = lines.filter((line) => !line.startsWith("-")).map((line) => line.length);
  assert.equal(new Set(ends).size, 1, "right-aligned numbers end in the same column");
});

test("formatFigure keeps three significant-ish digits and marks the undefined", () => {
  assert.equal(formatFigure(1234.6), "1235");
  assert.equal(formatFigure(12.34), "12.3");
  assert.equal(formatFigure(1.234), "1.23");
  assert.equal(formatFigure(NaN), "-");
});

test("parseCompareFlags has defaults, and refuses bad values before anything runs", () => {
  const defaults = parseCompareFlags({});
  assert.equal(defaults.reps, 3);
  assert.equal(defaults.seconds, 4);
  assert.deepEqual([...defaults.only], ["put", "get", "txn", "watch", "perf"]);
  assert.deepEqual([...defaults.systems], ["concord", "etcd"]);
  assert.equal(defaults.bothRunning, false, "the other cluster is paused by default");
  assert.equal(parseCompareFlags({ "both-running": true }).bothRunning, true);
  const picked = parseCompareFlags({ seconds: "1.5", reps: "5", only: "put, get", systems: "etcd" });
  assert.deepEqual(
    [picked.seconds, picked.reps, [...picked.only], [...picked.systems]],
    [1.5, 5, ["put", "get"], ["etcd"]],
  );
  for (const bad of [{ seconds: "0" }, { seconds: "x" }, { seconds: "601" }, { reps: "1.5" }, { reps: "0" }])
    assert.throws(() => parseCompareFlags(bad), RangeError);
  assert.throws(() => parseCompareFlags({ only: "put,delete" }), /--only .* not "put,delete"/);
  assert.throws(() => parseCompareFlags({ systems: "zookeeper" }), /--systems/);
});
