// The split keyspace under faults with every node's periodic auto-compaction on (150 virtual
// ms of history): compactions only move each range's compacted revision, and every replica
// removes the versions compacted away, and the ones a split left outside its bounds, in
// background steps — across crashes, snapshots, splits and merges. No violation on any seed:
// acknowledged writes are there (at their revision, or superseded once compacted), replicas of
// a range at the same index hash alike, and the other split checks hold.
import assert from "node:assert/strict";
import { test } from "node:test";
import { splitSweepWithoutViolations } from "./runtime-split-support.js";

const SEEDS = 60;

test(`runtime with splits, merges and auto-compaction: ${SEEDS} seeds without a violation`, async () => {
  const stats = await splitSweepWithoutViolations("all", 93000, SEEDS, { autoCompactionRetentionMs: 150 });
  assert.ok(stats.autoCompactions >= SEEDS, `only ${stats.autoCompactions} auto-compactions`);
  assert.ok(stats.splitsDone >= 20, `only ${stats.splitsDone} splits`);
});
