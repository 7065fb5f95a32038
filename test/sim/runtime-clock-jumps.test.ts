// The node runtime with the machines' wall clocks stepping (forward or back, up to 10 minutes)
// under every profile's faults, and on a split keyspace with auto-compaction (whose retention
// is read from the wall clock) and freezes: no violation on any seed — revisions, which are
// hybrid-logical timestamps, still only grow — and the clock jumps were exercised.
import { test } from "node:test";
import { assertExercised, runtimeSweepWithoutViolations } from "./runtime-support.js";
import { SPLIT_SWEEP_SETTINGS } from "./runtime-split-support.js";

test("runtime with wall-clock jumps: 100 seeds over every profile without a violation", async () => {
  const stats = await runtimeSweepWithoutViolations("all", 1, 100, {
    clockJumpMeanIntervalMs: 100,
    durationMs: 1_000,
  });
  assertExercised(stats, { clockJumps: 500, acked: 1000, leaderChanges: 100 });
});

test("split keyspace with wall-clock jumps, freezes and auto-compaction: 40 seeds without a violation", async () => {
  const stats = await runtimeSweepWithoutViolations("all", 1, 40, {
    ...SPLIT_SWEEP_SETTINGS,
    clockJumpMeanIntervalMs: 100,
    freezeMeanIntervalMs: 300,
    durationMs: 1_000,
    crashMeanIntervalMs: 300,
    autoCompactionRetentionMs: 200,
  });
  assertExercised(stats, { clockJumps: 200, freezes: 50, splitsDone: 20, autoCompactions: 20 });
});
