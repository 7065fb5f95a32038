// The `npm run sim` command end to end: progress and summary on success, and on a violation
// the replay command, the trace and exit code 1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

function sim(...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/sim/cli.ts", ...args], {
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout };
}

test("a clean run prints progress and the summed stats, and exits 0", () => {
  const { status, stdout } = sim("--seeds", "2", "--seed", "3", "--profile", "all", "--steps", "1500");
  assert.equal(status, 0, stdout);
  assert.match(stdout, /\[1\/2\] seed 3 membership: ok/);
  assert.match(stdout, /\[2\/2\] seed 4 chaos: ok/);
  assert.match(stdout, /stats summed over 2 run\(s\):/);
  assert.match(stdout, /opsAcked\s+\d+/);
  assert.match(stdout, /0 violation\(s\) in 0 failing seed\(s\)/);
});

test("a violation prints the replay command and the trace, and exits 1", () => {
  const { status, stdout } = sim("--seed", "7", "--profile", "chaos", "--bug", "countStaleVotes");
  assert.equal(status, 1, stdout);
  assert.match(stdout, /seed 7 \(chaos\) failed/);
  assert.match(stdout, /\[election-safety\]/);
  assert.match(stdout, /replay: npm run sim -- --seed 7 --profile chaos --bug countStaleVotes/);
  assert.match(stdout, /last \d+ trace lines:/);
  assert.match(stdout, /VIOLATION election-safety/);
});

test("bad arguments are refused", () => {
  assert.notEqual(sim("--profile", "nope").status, 0);
  assert.notEqual(sim("--seeds", "0").status, 0);
  assert.notEqual(sim("--bug", "noSuchBug").status, 0);
});
