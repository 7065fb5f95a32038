// The node runtime on a split keyspace (every node runs its placement layer, clients go
// through its router, random nodes split random keys and merge random ranges back) under the
// "crashes" profile: no violation on any seed — per-key linearizability across range
// boundaries, no acknowledged write lost, per-range state-machine safety, a valid catalog every
// route table converges to, range bounds matching their routes, a cross-range scan equal to
// single-key reads, no replica left of a range merged away — and splits and merges did happen.
import { test } from "node:test";
import { assertExercised } from "./runtime-support.js";
import { SPLIT_SEEDS_PER_PROFILE, splitSweepWithoutViolations } from "./runtime-split-support.js";

test(`runtime with splits and merges, crashes: ${SPLIT_SEEDS_PER_PROFILE} seeds without a violation`, async () => {
  const stats = await splitSweepWithoutViolations("crashes");
  assertExercised(stats, {
    splitsDone: 60,
    mergesDone: 10,
    acked: 1000,
    crashes: 60,
    lostUnsyncedWrites: 10,
  });
});
