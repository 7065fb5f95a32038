// The simulator over the "crashes" profile: no violation on any seed, and crashes (leaders
// included) lost unsynced writes, restarts caught up, partly by snapshot.
import { test } from "node:test";
import { SEEDS_PER_PROFILE, assertExercised, sweepWithoutViolations } from "./sweep-support.js";

test(`crashes: ${SEEDS_PER_PROFILE} seeds without a violation`, () => {
  const stats = sweepWithoutViolations("crashes");
  assertExercised(stats, {
    crashes: 200,
    restarts: 200,
    unsyncedWritesLost: 50,
    leaderChanges: 100,
    snapshotsInstalled: 30,
    opsAcked: 3000,
    opsAmbiguous: 100,
  });
});
