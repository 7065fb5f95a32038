// The etcd comparison's SVG chart: well-formed (balanced tags, escaped text), one panel per
// metric, one bar per system that ran a row, bar heights ordered like the values on the log
// axis, and the ratio printed above each group.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decadeRange, escapeXml, renderComparisonSvg } from "../../bench/etcd-compare/svg.js";
import { summarizeRow, type Measurement } from "../../bench/etcd-compare/stats.js";

function measurement(opsPerSecond: number): Measurement {
  return {
    ops: 10,
    elapsedMs: 1,
    opsPerSecond,
    p50Ms: 1,
    p99Ms: 2,
    serverCpuUsPerOp: 300,
    clientCpuUsPerOp: 40,
  };
}

const rows = [
  summarizeRow(
    { id: "put c=1", workload: "closed-put", concurrency: 1 },
    { concord: [measurement(500)], etcd: [measurement(1000)] },
  ),
  summarizeRow({ id: "watch <1w/100r> & co", workload: "watch" }, { etcd: [measurement(9000)] }),
];

/** Every element opened is closed, in order (self-closing ones aside). */
function assertBalanced(svg: string): void {
  const open: string[] = [];
  for (const [tag, closing, name] of [...svg.matchAll(/<(\/?)([a-z]+)[^>]*>/g)]) {
    if (tag?.endsWith("/>")) continue;
    if (closing === "/") assert.equal(open.pop(), name, `</${name}> closes the element last opened`);
    else open.push(name ?? "");
  }
  assert.deepEqual(open, []);
}

test("the chart is well-formed SVG with escaped text", () => {
  const svg = renderComparisonSvg(rows, 'Concord vs "etcd"');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assertBalanced(svg);
  assert.ok(svg.includes("watch &lt;1w/100r&gt; &amp; co"));
  assert.ok(svg.includes("Concord vs &quot;etcd&quot;"));
  assert.ok(!/<text[^>]*>[^<]*[<>"][^<]*<\/text>/.test(svg.replace(/&[a-z]+;/g, "")));
});

test("one panel per metric, one bar per system that ran a row, ratios above the groups", () => {
  const svg = renderComparisonSvg(rows, "t");
  for (const title of ["ops/s", "p50 ms", "p99 ms", "server CPU µs/op", "client CPU µs/op"])
    assert.ok(svg.includes(`>${title} (median, log scale)</text>`), title);
  const bars = [...svg.matchAll(/<rect [^>]*height="([\d.]+)"[^>]*><title>([^<]*)<\/title>/g)];
  assert.equal(bars.length, 5 * 3, "3 bars (concord + etcd, etcd) in each of 5 panels");
  const height = (title: string): number => Number(bars.find((bar) => bar[2] === title)?.[1]);
  assert.ok(height("put c=1 concord: 500") < height("put c=1 etcd: 1000"));
  assert.ok(height("put c=1 etcd: 1000") < height("watch &lt;1w/100r&gt; &amp; co etcd: 9000"));
  assert.ok(svg.includes(">0.50x</text>"), "ops/s ratio of put c=1");
});

test("decadeRange spans every positive value and at least one decade", () => {
  assert.deepEqual(decadeRange([500, 1000, 9000]), { low: 2, high: 4 });
  assert.deepEqual(decadeRange([0.3, 40]), { low: -1, high: 2 });
  assert.deepEqual(decadeRange([100]), { low: 2, high: 3 });
  assert.deepEqual(decadeRange([0, NaN]), { low: 0, high: 1 });
});

test("escapeXml escapes the five XML specials", () => {
  assert.equal(escapeXml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
});
