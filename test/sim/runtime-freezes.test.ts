// The node runtime with processes frozen (SIGSTOP) and thawed under every profile's faults: one
// node, the leader half the time, or every node at once, for up to 15 election timeouts. No
// violation on any seed, and the freezes were exercised. Also the seed that showed the final
// checks comparing members before a just-elected leader's first commit.
import { test } from "node:test";
import { assertExercised, runtimeSweepWithoutViolations } from "./runtime-support.js";

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
