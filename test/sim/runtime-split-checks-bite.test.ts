// The split simulation's checks catch a split that loses data, and its runs replay exactly.
// With a split whose copy into the new range forgets one key (every node makes the same
// mistake, so the nodes still agree), the client-visible checks fire: acknowledged writes are
// gone and the history is not linearizable. The same seeds with honest splits report nothing
// (the CI sweeps run them). The same split seed twice gives the same run, event for event.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WriteBatch } from "../../src/kv/engine.js";
import { runRuntimeSimulation } from "../../src/sim/runtime/runtime-run.js";
import { dropOneMovedKey } from "../../src/sim/runtime/split-bug.js";
import { settleMicrotasks } from "./runtime-support.js";
import { SPLIT_SWEEP_SETTINGS, splitSweep } from "./runtime-split-support.js";

test("a split that forgets to copy one key is caught", async () => {
  const summary = await splitSweep("all", 1, 6, { splitLosesKey: true });
  const honest = await splitSweep("all", 1, 6);
  assert.ok(honest.stats.splitsDone >= 3, `only ${honest.stats.splitsDone} splits in the honest runs`);
  assert.equal(honest.failures.length, 0, "the honest runs of the same seeds failed");
  assert.ok(summary.failures.length >= 3, `only ${summary.failures.length} of 6 seeds caught the lost key`);
  const kinds = new Set(summary.failures.flatMap((f) => f.violations.map((v) => v.invariant)));
  assert.ok(kinds.has("acknowledged write lost"), `caught only as ${[...kinds].join(", ")}`);
  assert.ok(kinds.has("linearizability"), `caught only as ${[...kinds].join(", ")}`);
});

test("the lost-key bug drops exactly the copied versions of one user key", () => {
  const namespace = (id: number): number[] => [0, 0, 0, id];
  const dataKey = (ns: number, key: string, version: number): Uint8Array =>
    Uint8Array.from([...namespace(ns), 0x10, ...new TextEncoder().encode(key), 0, 1, version]);
  const splitMeta = Uint8Array.from([...namespace(1), 0x01, 5]);
  const copy = new WriteBatch();
  copy.put(splitMeta, Uint8Array.of(1));
  for (const key of ["k5", "k6"]) {
    for (const version of [1, 2]) copy.put(dataKey(2, key, version), Uint8Array.of(version));
  }
  const kept = dropOneMovedKey(copy).sortedOps();
  assert.deepEqual(
    kept.map((op) => op.key),
    [splitMeta, dataKey(2, "k6", 1), dataKey(2, "k6", 2)],
  );
  const plain = new WriteBatch();
  plain.put(dataKey(1, "k5", 3), Uint8Array.of(3));
  plain.put(Uint8Array.from([...namespace(1), 0x01, 1]), Uint8Array.of(1));
  assert.equal(dropOneMovedKey(plain), plain, "a batch within one namespace is left alone");
});

test("the same split seed twice gives the same run, event for event", async () => {
  const run = () =>
    runRuntimeSimulation({
      seed: 4,
      profile: "crashes",
      ...SPLIT_SWEEP_SETTINGS,
      settleMicrotasks,
      traceCapacity: 5000,
    });
  const first = await run();
  const second = await run();
  assert.ok(first.stats.splitsRequested > 0, "no split was asked for");
  assert.deepEqual(second.history, first.history);
  assert.deepEqual(second.trace, first.trace);
  assert.deepEqual(second.stats, first.stats);
});
