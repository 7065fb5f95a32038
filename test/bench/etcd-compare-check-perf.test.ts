// Parsing `etcdctl check perf` output (the verdict and its three checks, passed or failed,
// behind a progress bar) and finding the leader in `etcdctl endpoint status -w json`, whose
// 64-bit member ids a JSON number cannot hold exactly.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatCheckPerf, parseCheckPerf } from "../../bench/etcd-compare/check-perf.js";
import { leaderFromEndpointStatus } from "../../bench/etcd-compare/servers.js";

const PASSING = [
  " 59 / 60   98.33% 60 / 60 Booooooo! 100.00% 1m0s",
  "PASS: Throughput is 150 writes/s",
  "PASS: Slowest request took 0.061265s",
  "PASS: Stddev is 0.002249s",
  "PASS",
  "",
].join("\n");

const FAILING = [
  " 60 / 60 Boooo! 100.00%1m0s",
  "FAIL: Throughput too low: 6491 writes/s",
  "Slowest request took too long: 0.786915s",
  "PASS: Stddev is 0.063215s",
  "FAIL",
].join("\n");

test("a passing check perf: every check and the verdict", () => {
  assert.deepEqual(parseCheckPerf(PASSING), {
    passed: true,
    throughputWritesPerSecond: { passed: true, value: 150 },
    slowestRequestSeconds: { passed: true, value: 0.061265 },
    stddevSeconds: { passed: true, value: 0.002249 },
  });
});

test("a failing check perf: failed checks are marked, with and without a FAIL prefix", () => {
  assert.deepEqual(parseCheckPerf(FAILING), {
    passed: false,
    throughputWritesPerSecond: { passed: false, value: 6491 },
    slowestRequestSeconds: { passed: false, value: 0.786915 },
    stddevSeconds: { passed: true, value: 0.063215 },
  });
  assert.equal(parseCheckPerf("FAIL: Stddev too high: 0.2s\nFAIL")?.stddevSeconds?.passed, false);
});

test("no verdict line means no result", () => {
  assert.equal(parseCheckPerf(""), undefined);
  assert.equal(parseCheckPerf("Error: context deadline exceeded"), undefined);
  assert.equal(parseCheckPerf(PASSING.replace(/\nPASS\n/, "\n")), undefined);
});

test("formatCheckPerf shows the verdict, the figures and the failures", () => {
  const result = parseCheckPerf(FAILING);
  assert.ok(result !== undefined);
  const line = formatCheckPerf("etcd", { load: "s", result, serverCpuUsPerWrite: 812.4 });
  assert.match(line, /^etcd: FAIL {2}throughput 6491 writes\/s \(fail\)/);
  assert.match(line, /stddev 0\.063215 s {2}server CPU\/write 812 µs$/);
  assert.equal(
    formatCheckPerf("concord", { load: "s", error: "dial timeout" }),
    "concord: no verdict (dial timeout)",
  );
});

test("the leader is the endpoint whose member id is the leader id, compared digit for digit", () => {
  const status = JSON.stringify([
    { Endpoint: "127.0.0.1:1", Status: { header: { member_id: "M1" }, leader: "M3" } },
    { Endpoint: "127.0.0.1:3", Status: { header: { member_id: "M3" }, leader: "M3" } },
  ])
    // Ids a double rounds to the same value: only an exact comparison tells them apart.
    .replace(/"M1"/g, "13865943269452286245")
    .replace(/"M3"/g, "13865943269452286244");
  assert.equal(leaderFromEndpointStatus(status), "127.0.0.1:3");
  assert.equal(leaderFromEndpointStatus("[]"), undefined);
  assert.equal(leaderFromEndpointStatus("not json"), undefined);
});
