// The node runtime on a split keyspace (every node runs its placement layer, clients go
// through its router, random nodes split random keys) under the "calm-with-loss" profile: no violation
// on any seed — per-key linearizability across range boundaries, no acknowledged write lost,
// per-range state-machine safety, a valid catalog every route table converges to, range
// bounds matching their routes, a cross-range scan equal to single-key reads — and splits
// did happen.
import { test } from "node:test";
import { assertExercised } from "./runtime-support.js";
import { SPLIT_SEEDS_PER_PROFILE, splitSweepWithoutViolations } from "./runtime-split-support.js";

test(`runtime with splits, calm-with-loss: ${SPLIT_SEEDS_PER_PROFILE} seeds without a violation`, async () => {
  const stats = await splitSweepWithoutViolations("calm-with-loss");
  assertExercised(stats, { splitsDone: 60, acked: 1000 });
});
