// The node runtime (NodeHost on simulated disks, network and clocks) over the "crashes" profile:
// no violation on any seed, and the profile's faults were exercised.
import { test } from "node:test";
import {
  RUNTIME_SEEDS_PER_PROFILE,
  assertExercised,
  runtimeSweepWithoutViolations,
} from "./runtime-support.js";

test(`runtime, crashes: ${RUNTIME_SEEDS_PER_PROFILE} seeds without a violation`, async () => {
  const stats = await runtimeSweepWithoutViolations("crashes");
  assertExercised(stats, {
    crashes: 60,
    lostUnsyncedWrites: 20,
    leaderChanges: 120,
    acked: 2000,
    ambiguous: 50,
  });
});
