// Write-ahead log disks that fill up under the runtime simulation (--wal --disk-full-interval):
// a node whose log refuses writes stops, as it must, and restarts once there is room again;
// no acknowledged write is lost and every history stays linearizable, leader or follower,
// with and without splits and merges of the keyspace.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { assertExercised, runtimeSweepWithoutViolations } from "./runtime-support.js";
import { splitSweepWithoutViolations } from "./runtime-split-support.js";

const FILLING_DISKS = { walDisks: true, diskFullMeanIntervalMs: 200 } as const;

test("disks filling up under every runtime profile: 60 seeds without a violation", async () => {
  const stats = await runtimeSweepWithoutViolations("all", 1, 60, FILLING_DISKS);
  assertExercised(stats, { diskFulls: 60, fullDiskStops: 40, acked: 500 });
});

test("disks filling up while the keyspace splits and merges: 30 seeds without a violation", async () => {
  const stats = await splitSweepWithoutViolations("all", 1, 30, FILLING_DISKS);
  assertExercised(stats, { diskFulls: 20, fullDiskStops: 10, splitsDone: 10 });
});

test("full disks are simulated under the write-ahead log only", () => {
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", "src/sim/cli.ts", "--runtime", "--seed", "1", "--disk-full-interval", "200"],
    { encoding: "utf8" },
  );
  assert.equal(result.status, 2, result.stdout);
  assert.match(result.stderr, /--disk-full-interval needs --wal/);
});
