// The checks are not vacuous: with each deliberate Raft bug switched on, some seed within the
// budget reports a safety violation (an invariant of the simulator, not a crash of the core).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { InjectedBugs } from "../../src/raft/index.js";
import type { InvariantName, Violation } from "../../src/sim/invariants.js";
import type { SimulationResult } from "../../src/sim/run.js";
import { sweep } from "../../src/sim/sweep.js";

const SEED_BUDGET = 80;
const SAFETY: readonly InvariantName[] = [
  "election-safety",
  "log-matching",
  "leader-completeness",
  "commit-rule",
  "state-machine-safety",
  "commit-monotonic",
  "durable-commit-monotonic",
  "acknowledged-write-lost",
  "linearizability",
];

const BUGS: readonly (keyof InjectedBugs)[] = [
  "countStaleVotes",
  "commitPreviousTermByCounting",
  "grantVoteIgnoringLog",
];

for (const bug of BUGS) {
  test(`with the injected bug ${bug}, a seed within ${SEED_BUDGET} reports a safety violation`, (t) => {
    const safetyViolation = (result: SimulationResult): Violation | undefined =>
      result.violations.find((v) => SAFETY.includes(v.invariant));
    const summary = sweep({
      firstSeed: 1,
      seeds: SEED_BUDGET,
      profile: "chaos",
      bugs: { [bug]: true },
      until: (result) => safetyViolation(result) !== undefined,
    });
    const failing = summary.failures.find((r) => safetyViolation(r) !== undefined);
    assert.ok(failing !== undefined, `no seed in 1..${SEED_BUDGET} caught ${bug}`);
    const violation = safetyViolation(failing)!;
    t.diagnostic(
      `${bug}: caught by ${violation.invariant} on chaos seed ${failing.seed}: ${violation.message}`,
    );
  });
}

test("without injected bugs those seeds stay clean of the same invariants", () => {
  const summary = sweep({ firstSeed: 1, seeds: 10, profile: "chaos" });
  const safety = summary.failures.flatMap((r) => r.violations).filter((v) => SAFETY.includes(v.invariant));
  assert.deepEqual(safety, []);
});
