// The simulator over the "membership" profile: no violation on any seed, and learners were
// added, promoted and removed through simple and joint changes while leadership moved.
import { test } from "node:test";
import { SEEDS_PER_PROFILE, assertExercised, sweepWithoutViolations } from "./sweep-support.js";

test(`membership: ${SEEDS_PER_PROFILE} seeds without a violation`, () => {
  const stats = sweepWithoutViolations("membership");
  assertExercised(stats, {
    confChangesApplied: 300,
    nodesAdded: 100,
    nodesRetired: 100,
    transfersRequested: 100,
    transfersCompleted: 80,
    snapshotsInstalled: 50,
    leaderChanges: 150,
    opsAcked: 3000,
    opsAmbiguous: 50,
  });
});
