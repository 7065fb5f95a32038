// The node runtime with processes frozen (SIGSTOP) and thawed under every profile's faults: one
// node, the leader half the time, or every node at once, for up to 15 election timeouts. No
// violation on any seed, and the freezes were exercised. Also the two seeds that showed the
// settled condition passing before a leader's whole log was committed (the meta range's, then
// a split range's), so the final checks saw an entry apply after they began.
import { test } from "node:test";
import { assertExercised, runtimeSweepWithoutViolations } from "./runtime-support.js";
import { SPLIT_SWEEP_SETTINGS } from "./runtime-split-support.js";

const FREEZES = { freezeMeanIntervalMs: 200, durationMs: 1_000 };

test("runtime with freezes: 100 seeds over every profile without a violation", async () => {
  const stats = await runtimeSweepWithoutViolations("all", 1, 100, FREEZES);
  assertExercised(stats, { freezes: 300, leaderChanges: 100, acked: 1000, readsServed: 500 });
});

test("runtime with freezes, seed 46 (crashes): the final checks wait for the new leader's first commit", async () => {
  const stats = await runtimeSweepWithoutViolations("crashes", 46, 1, {
    freezeMeanIntervalMs: 200,
    durationMs: 3_000,
  });
  assertExercised(stats, { freezes: 10, crashes: 1 });
});

test("runtime with freezes, seed 373 (partitions, splits and merges): settled waits for a range's uncommitted merge fence", async () => {
  const stats = await runtimeSweepWithoutViolations("partitions", 373, 1, {
    ...SPLIT_SWEEP_SETTINGS,
    freezeMeanIntervalMs: 250,
    durationMs: 1_500,
    crashMeanIntervalMs: 300,
  });
  assertExercised(stats, { freezes: 5, splitsDone: 1, mergesRequested: 1 });
});
