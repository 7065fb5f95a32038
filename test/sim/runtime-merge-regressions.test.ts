// Regression seeds found by the merge simulation (long runs: 3,000 virtual ms of faults).
//
// Destroying merged replicas (NodeRanges reconciliation): a restarted node's route table is at
// its first version (range 1 alone) and its range 1 store may have reverted to before a split,
// so range 1's bounds "held" the start of every other range: the node destroyed live ranges'
// replicas (seed 191: range 2 re-created empty on every node, leaderless; seed 101: a
// re-created range's Raft core failed), or destroyed a merged range while range 1's log replay
// re-created it by re-applying the old split (seed 65: host failure). Destroying waits for a
// table read from the catalog and a covering replica with exactly its route's bounds.
//
// Stale reads from a merged-away range (partitions seed 499): a node cut off from the catalog
// routed a linearizable get to the right-hand range, merge-fenced and frozen, after the merge
// had applied in the left range and newer writes had gone there; it answered the frozen value.
// A merge-fenced range refuses linearizable reads (RangeFenced: the router reloads and retries).
//
// A stale merge applied twice (partitions seed 9181, concurrent splits): one coordinator merged
// route 11 into range 16 and range 16 then split at route 11's start, so it ended there again;
// a second coordinator, which had decided the same merge before, proposed it and range 16 took
// the image in once more, overlapping the split-off range (its bounds never matched the catalog
// again). A merge names the target's bounds revision, and the catalog is read again after the
// target's look (MergeCoordinator).
//
// A live range destroyed on a stale table's word (partitions seed 21019, concurrent splits, 5
// nodes): a node whose table predated range 6's merge into range 8 still had its lagging
// replica of range 6 over [k2, k4), so range 14, split off range 8 at k2~ since, looked merged
// into range 6; the node destroyed it after acknowledging entries, created it again empty when
// the table listed it, and failed on a heartbeat committing an entry it no longer had.
// Destroying now also needs proof the range is gone: a table here listed it once, or the
// covering replica's revision is above the range's.
//
// Replay one:
//   npm run sim -- --runtime --seed 191 --profile crashes --duration 3000 --crash-interval 150 --nodes 3 --splits --split-interval 40 --merges --merge-interval 30
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RuntimeProfileName } from "../../src/sim/runtime/runtime-run.js";
import { describeRuntimeFailure, sweepRuntime } from "../../src/sim/runtime/runtime-sweep.js";
import { settleMicrotasks } from "./runtime-support.js";
import { SPLIT_SWEEP_SETTINGS } from "./runtime-split-support.js";

const SETTINGS = { ...SPLIT_SWEEP_SETTINGS, durationMs: 3000 } as const;

async function assertSeedPasses(
  seed: number,
  profile: RuntimeProfileName,
  settings: Omit<typeof SETTINGS, "clusterSize"> & {
    readonly clusterSize: 3 | 5;
    readonly concurrentSplits?: boolean;
  } = SETTINGS,
): Promise<void> {
  const summary = await sweepRuntime({ firstSeed: seed, seeds: 1, profile, ...settings, settleMicrotasks });
  const report = summary.failures.map((f) => describeRuntimeFailure(f, settings)).join("\n\n");
  assert.equal(summary.failures.length, 0, `seed ${seed}:\n${report}`);
}

test("restarted nodes destroy only replicas merged away: the seeds that lost ranges now pass", async () => {
  for (const seed of [65, 101, 191]) await assertSeedPasses(seed, "crashes");
});

test("a merge-fenced range serves no stale linearizable read: the seed that read one now passes", async () => {
  await assertSeedPasses(499, "partitions");
});

test("a merge decided before its target merged and split again is refused: the seed that merged twice now passes", async () => {
  await assertSeedPasses(9181, "partitions", { ...SETTINGS, concurrentSplits: true });
});

test("a stale table and a lagging replica do not get a live range destroyed: the seed that lost one now passes", async () => {
  await assertSeedPasses(21019, "partitions", { ...SETTINGS, clusterSize: 5, concurrentSplits: true });
});
