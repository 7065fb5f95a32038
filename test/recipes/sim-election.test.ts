// The election recipe in the deterministic simulator (src/sim/election): 300 seeds of
// candidates campaigning, renewing, resigning, frozen past their lease, cut off, crashed and
// restarted, over a cluster with partitions, crashes and Raft leadership transfers — with no
// oracle violation; and each deliberately broken candidate caught on some seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeElectionFailure, runElectionSimulation, sweepElection } from "../../src/sim/election/run.js";
import type { ElectionBug } from "../../src/sim/election/workload.js";

const SEEDS = 300;
/** Virtual milliseconds of faults per seed: short, for the CI budget (each seed also heals and drains). */
const DURATION_MS = 2_000;

function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

test(`${SEEDS} seeds of the election workload: no violation`, async () => {
  const summary = await sweepElection({
    firstSeed: 1,
    seeds: SEEDS,
    durationMs: DURATION_MS,
    settleMicrotasks,
  });
  const report = summary.failures
    .slice(0, 3)
    .map((f) => describeElectionFailure(f, { durationMs: DURATION_MS }))
    .join("\n\n");
  assert.equal(
    summary.failures.length,
    0,
    `failing seeds ${summary.failures.map((f) => f.seed).join(", ")}:\n${report}`,
  );
  const { stats } = summary;
  // The faults and the paths the oracle judges were all exercised.
  const minimums: Partial<Record<keyof typeof stats, number>> = {
    elections: SEEDS,
    lostSignals: SEEDS / 2,
    resignations: SEEDS / 4,
    fencedCommitted: SEEDS,
    fencedRefused: 1,
    ambiguousRetries: 1,
    freezes: SEEDS / 4,
    isolations: SEEDS / 4,
    clientCrashes: SEEDS / 4,
    crashes: SEEDS / 4,
    partitions: SEEDS / 4,
    transfers: SEEDS / 4,
  };
  for (const [key, min] of Object.entries(minimums) as [keyof typeof stats, number][]) {
    assert.ok(stats[key] >= min, `${key} = ${stats[key]}, expected at least ${min}`);
  }
});

test("a seed replays exactly: the same history, trace and stats", async () => {
  const render = (result: Awaited<ReturnType<typeof runElectionSimulation>>): string =>
    JSON.stringify([result.history, result.trace, result.stats], (_key, value: unknown) =>
      typeof value === "bigint" ? value.toString() : value,
    );
  const first = await runElectionSimulation({ seed: 7, durationMs: DURATION_MS, settleMicrotasks });
  const again = await runElectionSimulation({ seed: 7, durationMs: DURATION_MS, settleMicrotasks });
  assert.ok(first.stats.elections > 0);
  assert.equal(render(again), render(first));
});

test("a holder renewing through a deposed Raft leader loses before its successor wins", async () => {
  const runs = [
    { seed: 172, durationMs: DURATION_MS, checkQuorumOff: true },
    { seed: 68, durationMs: 6_000, pinnedClients: true, checkQuorumOff: true },
    { seed: 168, durationMs: 5_000, pinnedClients: true },
  ];
  const failures: string[] = [];
  for (const run of runs) {
    const result = await runElectionSimulation({ ...run, settleMicrotasks });
    if (result.violations.length > 0) failures.push(`seed ${run.seed}: ${result.violations[0]!.detail}`);
  }
  assert.deepEqual(failures, []);
});

/** The first seed in 1..`seeds` on which the oracle reports `check`, or null. */
async function caughtOn(bug: ElectionBug, check: string, seeds: number): Promise<number | null> {
  for (let seed = 1; seed <= seeds; seed++) {
    const result = await runElectionSimulation({ seed, bug, durationMs: DURATION_MS, settleMicrotasks });
    if (result.violations.some((v) => v.check === check)) return seed;
  }
  return null;
}

test("a ballot reset after resignation (term-reset) breaks term order", async () => {
  assert.notEqual(await caughtOn("term-reset", "term order", 40), null);
});

test("an acquirer ignoring the registered priorities (grab) breaks priority order", async () => {
  assert.notEqual(await caughtOn("grab", "priority order", 10), null);
});

test("a lease judged on a clock at half speed (slow-clock) fires lost after the successor won", async () => {
  assert.notEqual(await caughtOn("slow-clock", "lost before successor", 60), null);
});
