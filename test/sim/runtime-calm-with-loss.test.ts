// The node runtime (NodeHost on simulated disks, network and clocks) over the "calm-with-loss" profile:
// no violation on any seed, and the profile's faults were exercised.
import { test } from "node:test";
import {
  RUNTIME_SEEDS_PER_PROFILE,
  assertExercised,
  runtimeSweepWithoutViolations,
} from "./runtime-support.js";

test(`runtime, calm-with-loss: ${RUNTIME_SEEDS_PER_PROFILE} seeds without a violation`, async () => {
  const stats = await runtimeSweepWithoutViolations("calm-with-loss");
  assertExercised(stats, { acked: 3000, readsServed: 2500, ambiguous: 20, snapshotsRestored: 10 });
});
