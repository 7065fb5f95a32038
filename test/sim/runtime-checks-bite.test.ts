// The runtime simulation's checks catch a runtime that acknowledges before its writes are
// durable: with disks whose syncs return before the data is on them, crashes lose writes the
// cluster already counted on, and some seed in the budget reports a violation — while the
// same crash-heavy seeds over honest disks report none.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeRuntimeFailure, sweepRuntime } from "../../src/sim/runtime/runtime-sweep.js";
import { RUNTIME_DURATION_MS, settleMicrotasks } from "./runtime-support.js";

const CRASH_HEAVY = {
  firstSeed: 1,
  seeds: 20,
  profile: "crashes",
  durationMs: RUNTIME_DURATION_MS,
  crashMeanIntervalMs: 100,
  settleMicrotasks,
} as const;

test("acknowledging a sync before the writes are durable is caught", async () => {
  const summary = await sweepRuntime({ ...CRASH_HEAVY, ackBeforeSync: true });
  assert.ok(summary.failures.length > 0, "no seed caught the early acknowledgement");
  assert.ok(summary.stats.crashes > 20, `only ${summary.stats.crashes} crashes`);
});

test("the same crash-heavy seeds over honest disks report nothing", async () => {
  const summary = await sweepRuntime(CRASH_HEAVY);
  const report = summary.failures
    .map((f) => describeRuntimeFailure(f, { durationMs: RUNTIME_DURATION_MS, crashMeanIntervalMs: 100 }))
    .join("\n\n");
  assert.equal(summary.failures.length, 0, report);
});

// The same two checks with the Raft logs in the production write-ahead log (--wal): its
// frames torn by crashes, recovered by its own recovery.
test("the write-ahead log on a disk that acknowledges writes early is caught", async () => {
  const summary = await sweepRuntime({ ...CRASH_HEAVY, walDisks: true, ackBeforeSync: true });
  assert.ok(summary.failures.length > 0, "no seed caught the early acknowledgement");
});

test("the write-ahead log on honest disks, crash-heavy seeds, reports nothing", async () => {
  const summary = await sweepRuntime({ ...CRASH_HEAVY, walDisks: true });
  const report = summary.failures
    .map((f) =>
      describeRuntimeFailure(f, {
        durationMs: RUNTIME_DURATION_MS,
        crashMeanIntervalMs: 100,
        walDisks: true,
      }),
    )
    .join("\n\n");
  assert.equal(summary.failures.length, 0, report);
  assert.ok(summary.stats.lostUnsyncedWrites > 0, "no crash hit a write in flight");
});
