// Shared by the runtime simulation tests: the microtask pause the runtime driver needs, and a
// seed sweep that fails with the replay command and trace of every failing seed.
import assert from "node:assert/strict";
import type { RuntimeProfileName, RuntimeStats } from "../../src/sim/runtime/runtime-run.js";
import {
  describeRuntimeFailure,
  sweepRuntime,
  type RuntimeReplaySettings,
} from "../../src/sim/runtime/runtime-sweep.js";

/** Seeds per profile in CI; three profiles make 300 seeds in all. */
export const RUNTIME_SEEDS_PER_PROFILE = 100;
/** Virtual milliseconds of faults per seed after the first election: kept short for the CI budget. */
export const RUNTIME_DURATION_MS = 500;

export function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function runtimeSweepWithoutViolations(
  profile: RuntimeProfileName | "all",
  firstSeed = 1,
  seeds = RUNTIME_SEEDS_PER_PROFILE,
  settings: RuntimeReplaySettings = {},
): Promise<RuntimeStats> {
  const replay: RuntimeReplaySettings = { durationMs: RUNTIME_DURATION_MS, ...settings };
  const summary = await sweepRuntime({ firstSeed, seeds, profile, ...replay, settleMicrotasks });
  assert.equal(summary.runs, seeds);
  const report = summary.failures.map((f) => describeRuntimeFailure(f, replay)).join("\n\n");
  assert.equal(summary.failures.length, 0, `${summary.failures.length} failing seed(s):\n${report}`);
  assert.equal(summary.stats.linearizabilityUnknown, 0, "some history was too large to check");
  return summary.stats;
}

/** Each named counter reached at least `min` over the sweep. */
export function assertExercised(
  stats: RuntimeStats,
  minimums: Partial<Record<keyof RuntimeStats, number>>,
): void {
  for (const [key, min] of Object.entries(minimums) as [keyof RuntimeStats, number][]) {
    assert.ok(stats[key] >= min, `${key} = ${stats[key]}, expected at least ${min}`);
  }
}
