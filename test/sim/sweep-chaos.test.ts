// The simulator over the "chaos" profile (every fault at once): no violation on any seed, and
// every fault kind fired and every feature was exercised many times.
import { test } from "node:test";
import { SEEDS_PER_PROFILE, assertExercised, sweepWithoutViolations } from "./sweep-support.js";

test(`chaos: ${SEEDS_PER_PROFILE} seeds without a violation`, () => {
  const stats = sweepWithoutViolations("chaos");
  assertExercised(stats, {
    leaderChanges: 150,
    elections: 200,
    crashes: 100,
    restarts: 100,
    unsyncedWritesLost: 20,
    partitions: 100,
    oneWayPartitions: 30,
    messagesDropped: 5000,
    messagesDuplicated: 1000,
    messagesReordered: 10_000,
    snapshotsInstalled: 50,
    confChangesApplied: 200,
    transfersCompleted: 50,
    opsAcked: 2000,
    opsAmbiguous: 200,
    readsServed: 1000,
  });
});
