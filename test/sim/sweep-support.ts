// Shared by the per-profile sweep tests: run a seed range, fail with the replay command and
// trace of every failing seed, and hand back the summed stats for coverage assertions.
import assert from "node:assert/strict";
import type { ProfileName } from "../../src/sim/profiles.js";
import type { SimStats } from "../../src/sim/run.js";
import { describeFailure, sweep } from "../../src/sim/sweep.js";

/** Seeds per profile in CI; five profiles make 350 seeds in all. */
export const SEEDS_PER_PROFILE = 70;

export function sweepWithoutViolations(
  profile: ProfileName,
  firstSeed = 1,
  seeds = SEEDS_PER_PROFILE,
): SimStats {
  const summary = sweep({ firstSeed, seeds, profile });
  assert.equal(summary.runs, seeds);
  const report = summary.failures.map((f) => describeFailure(f)).join("\n\n");
  assert.equal(summary.failures.length, 0, `${summary.failures.length} failing seed(s):\n${report}`);
  assert.equal(summary.stats.linearizabilityUnknown, 0, "some history was too large to check");
  return summary.stats;
}

/** Each named counter reached at least `min` over the sweep. */
export function assertExercised(stats: SimStats, minimums: Partial<Record<keyof SimStats, number>>): void {
  for (const [key, min] of Object.entries(minimums) as [keyof SimStats, number][]) {
    assert.ok(stats[key] >= min, `${key} = ${stats[key]}, expected at least ${min}`);
  }
}
