// The node runtime (NodeHost on simulated disks, network and clocks) over the "partitions" profile:
// no violation on any seed, and the profile's faults were exercised.
import { test } from "node:test";
import {
  RUNTIME_SEEDS_PER_PROFILE,
  assertExercised,
  runtimeSweepWithoutViolations,
} from "./runtime-support.js";

test(`runtime, partitions: ${RUNTIME_SEEDS_PER_PROFILE} seeds without a violation`, async () => {
  const stats = await runtimeSweepWithoutViolations("partitions");
  assertExercised(stats, {
    partitions: 60,
    leaderChanges: 120,
    acked: 2000,
    ambiguous: 50,
    snapshotsRestored: 10,
  });
});
