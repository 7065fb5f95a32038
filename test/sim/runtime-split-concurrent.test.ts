// Regression seeds for concurrent splits of one range: split A applied and split B, planned
// from the catalog before A's layout was saved, fenced the shrunk range again; the coordinator
// then refused every step and the range stayed fenced (a liveness violation). It now saves A's
// layout first, whoever asks, and B goes on. Replay one:
//   npm run sim -- --runtime --seed 4 --profile partitions --duration 300 --splits --split-interval 60 --concurrent-splits
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeRuntimeFailure, sweepRuntime } from "../../src/sim/runtime/runtime-sweep.js";
import { settleMicrotasks } from "./runtime-support.js";

const SETTINGS = {
  durationMs: 300,
  clusterSize: 3,
  splitMeanIntervalMs: 60,
  concurrentSplits: true,
} as const;

test("concurrent splits of one range: the seeds that wedged a fenced range now pass", async () => {
  for (const seed of [4, 8, 13, 15]) {
    const summary = await sweepRuntime({
      firstSeed: seed,
      seeds: 1,
      profile: "partitions",
      ...SETTINGS,
      settleMicrotasks,
    });
    const report = summary.failures.map((f) => describeRuntimeFailure(f, SETTINGS)).join("\n\n");
    assert.equal(summary.failures.length, 0, `seed ${seed}:\n${report}`);
  }
});
