// Shared by the split-keyspace runtime simulation tests: the settings of the CI sweep (short
// runs on three nodes, so 300 seeds fit the test budget; ranges are split and merged back)
// and a sweep that fails with the replay command and trace of every failing seed.
import assert from "node:assert/strict";
import type { RuntimeProfileName, RuntimeStats } from "../../src/sim/runtime/runtime-run.js";
import {
  describeRuntimeFailure,
  sweepRuntime,
  type RuntimeReplaySettings,
  type RuntimeSweepOptions,
} from "../../src/sim/runtime/runtime-sweep.js";
import { settleMicrotasks } from "./runtime-support.js";

/** Seeds per profile in CI; three profiles make 300 seeds in all. */
export const SPLIT_SEEDS_PER_PROFILE = 100;

/**
 * What every CI split run uses besides its seed and profile (and what its replay needs): the
 * crash interval applies to the crashes profile only (the others do not crash). Merges run
 * too: the same seeds cover splits, merges and their interleavings within the same budget.
 */
export const SPLIT_SWEEP_SETTINGS = {
  durationMs: 400,
  clusterSize: 3,
  splitMeanIntervalMs: 40,
  mergeMeanIntervalMs: 30,
  crashMeanIntervalMs: 150,
} as const satisfies RuntimeReplaySettings;

export function splitSweep(
  profile: RuntimeProfileName | "all",
  firstSeed: number,
  seeds: number,
  extra: Partial<RuntimeSweepOptions> = {},
): ReturnType<typeof sweepRuntime> {
  return sweepRuntime({ firstSeed, seeds, profile, ...SPLIT_SWEEP_SETTINGS, settleMicrotasks, ...extra });
}

export async function splitSweepWithoutViolations(
  profile: RuntimeProfileName | "all",
  firstSeed = 1,
  seeds = SPLIT_SEEDS_PER_PROFILE,
  extra: Partial<RuntimeSweepOptions> & RuntimeReplaySettings = {},
): Promise<RuntimeStats> {
  const summary = await splitSweep(profile, firstSeed, seeds, extra);
  assert.equal(summary.runs, seeds);
  const replay = { ...SPLIT_SWEEP_SETTINGS, ...extra };
  const report = summary.failures.map((f) => describeRuntimeFailure(f, replay)).join("\n\n");
  assert.equal(summary.failures.length, 0, `${summary.failures.length} failing seed(s):\n${report}`);
  assert.equal(summary.stats.linearizabilityUnknown, 0, "some history was too large to check");
  return summary.stats;
}
