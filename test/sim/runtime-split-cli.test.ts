// `npm run sim -- --runtime --splits`: split runs from the command line — a clean run shows the
// split counters; a failing run (the deliberate lost-key split) prints a replay command that
// carries every split setting and reproduces the failure; bad combinations are refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

function sim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/sim/cli.ts", "--runtime", ...args], {
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("a clean split run prints the split counters and exits 0", () => {
  // Three seeds: one short seed may see its only split time out under a partition.
  const { status, stdout } = sim("--splits", "--seeds", "3", "--nodes", "3", "--duration", "300");
  assert.equal(status, 0, stdout);
  assert.match(stdout, /splitting the keyspace/);
  assert.match(stdout, /splitsDone\s+[1-9]/);
  assert.match(stdout, /0 failing seed\(s\)/);
});

test("a failing split run prints a replay command that reproduces it", () => {
  const args = ["--seed", "2", "--nodes", "3", "--duration", "300", "--splits", "--split-loses-key"];
  const first = sim(...args);
  assert.equal(first.status, 1, first.stdout);
  const replay = /replay: npm run sim -- (.*)/.exec(first.stdout)?.[1];
  assert.equal(
    replay,
    "--runtime --seed 2 --profile crashes --duration 300 --nodes 3 --splits --split-interval 40 --split-loses-key",
  );
  const again = sim(...replay.split(" ").slice(1));
  assert.equal(again.status, 1, again.stdout);
  const violations = (out: string) => out.split("\n").filter((line) => line.startsWith("  ["));
  assert.deepEqual(violations(again.stdout), violations(first.stdout));
});

test("split flags the run cannot honour are refused", () => {
  assert.equal(sim("--splits", "--profile", "membership").status, 2);
  assert.equal(sim("--split-loses-key").status, 2);
  assert.equal(sim("--concurrent-splits").status, 2);
  assert.equal(sim("--splits", "--nodes", "4").status, 1);
});
