// The simulator over the "partitions" profile: no violation on any seed, and symmetric and
// one-way partitions forced leader changes and snapshot catch-up.
import { test } from "node:test";
import { SEEDS_PER_PROFILE, assertExercised, sweepWithoutViolations } from "./sweep-support.js";

test(`partitions: ${SEEDS_PER_PROFILE} seeds without a violation`, () => {
  const stats = sweepWithoutViolations("partitions");
  assertExercised(stats, {
    partitions: 200,
    oneWayPartitions: 60,
    leaderChanges: 150,
    messagesDropped: 5000,
    snapshotsInstalled: 50,
    opsAcked: 3000,
    opsAmbiguous: 100,
  });
});
