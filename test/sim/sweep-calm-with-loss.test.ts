// The simulator over the "calm-with-loss" profile: no violation on any seed, and the light
// network faults (loss, duplication, reordering) and client traffic really happened.
import { test } from "node:test";
import { SEEDS_PER_PROFILE, assertExercised, sweepWithoutViolations } from "./sweep-support.js";

test(`calm-with-loss: ${SEEDS_PER_PROFILE} seeds without a violation`, () => {
  const stats = sweepWithoutViolations("calm-with-loss");
  assertExercised(stats, {
    leadersElected: SEEDS_PER_PROFILE,
    messagesDropped: 1000,
    messagesDuplicated: 1000,
    messagesReordered: 10_000,
    snapshotsTaken: 500,
    opsAcked: 5000,
    opsAmbiguous: 20,
    readsServed: 3000,
  });
});
