// The node runtime over the "membership" profile: learners join and catch up by snapshot, are
// promoted, and members are removed, under load; no violation on any seed.
import { test } from "node:test";
import { assertExercised, runtimeSweepWithoutViolations } from "./runtime-support.js";

const SEEDS = 50;

test(`runtime, membership: ${SEEDS} seeds without a violation`, async () => {
  const stats = await runtimeSweepWithoutViolations("membership", 1, SEEDS);
  assertExercised(stats, {
    membershipChanges: 40,
    snapshotsRestored: 25,
    acked: 1000,
  });
});
