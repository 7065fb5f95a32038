// A seed is a complete description of a run: the same seed gives the same run, event for event,
// and nothing in the simulated code reads a real clock or an unseeded random source.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { runSimulation } from "../../src/sim/run.js";
import { PROFILE_NAMES } from "../../src/sim/profiles.js";

test("the same seed twice gives identical stats, history and trace, for every profile", () => {
  for (const [i, profile] of PROFILE_NAMES.entries()) {
    const seed = 1000 + i;
    const first = runSimulation({ seed, profile });
    const second = runSimulation({ seed, profile });
    assert.deepEqual(second.stats, first.stats, `${profile} seed ${seed}: stats differ`);
    assert.deepEqual(second.history, first.history, `${profile} seed ${seed}: histories differ`);
    assert.deepEqual(second.trace, first.trace, `${profile} seed ${seed}: traces differ`);
    assert.deepEqual(second.shape, first.shape);
    assert.ok(
      first.history.length > 50,
      `${profile} seed ${seed} recorded only ${first.history.length} operations`,
    );
  }
});

test("different seeds give different runs", () => {
  const a = runSimulation({ seed: 1, profile: "chaos" });
  const b = runSimulation({ seed: 2, profile: "chaos" });
  assert.notDeepEqual(a.history, b.history);
  assert.notDeepEqual(a.stats, b.stats);
});

test("steps bound the faulty phase, and the run still heals, settles and checks", () => {
  const short = runSimulation({ seed: 7, profile: "crashes", steps: 500 });
  const full = runSimulation({ seed: 7, profile: "crashes" });
  assert.deepEqual(short.violations, []);
  assert.ok(short.stats.events < full.stats.events, `${short.stats.events} vs ${full.stats.events} events`);
  const finalReads = short.history.filter(
    (op) => op.clientId === 0 && op.kind === "get" && op.output !== undefined,
  );
  assert.equal(finalReads.length, 3, "one final read per key joins the history");
});

test("the trace keeps the most recent lines, oldest first", () => {
  const result = runSimulation({ seed: 3, profile: "calm-with-loss", traceCapacity: 50 });
  assert.equal(result.trace.length, 50);
  for (let i = 1; i < result.trace.length; i++) {
    assert.ok(result.trace[i - 1]!.time <= result.trace[i]!.time, "trace lines out of time order");
  }
  assert.ok(result.trace.at(-1)!.time <= result.stats.virtualMs);
  assert.ok(
    result.trace.some((line) => line.text.startsWith("settled:")),
    "the end of the run (settling, final reads) is in the kept lines",
  );
});

test("the simulated parts of src/sim read no clock, start no timer and draw no unseeded randomness", () => {
  // A call of the global timer is forbidden; a method *defining* `setTimeout(callback: ...)` or
  // a call of one on a virtual clock (`timers.setTimeout(...)`) is not.
  const forbidden =
    /\b(Math\.random|Date\.now|new Date|performance\.now|setInterval|setImmediate|process\.)|(?<![.\w])setTimeout\s*\((?!\s*\w+\s*:)/;
  const files = readdirSync("src/sim", { recursive: true, encoding: "utf8" })
    // The entry points (the sim CLIs and the `npm start` demo) own argv, stdout and the exit code.
    .filter((f) => f.endsWith(".ts") && basename(f) !== "cli.ts" && f !== "demo.ts")
    .map((f) => join("src/sim", f));
  assert.ok(files.length > 10, `found only ${files.length} files`);
  const offending = files.flatMap((path) =>
    readFileSync(path, "utf8")
      .split("\n")
      .flatMap((line, i) => (forbidden.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(offending, []);
});
