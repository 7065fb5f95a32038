// `npm run sim -- --runtime --splits --merges`: merge runs from the command line — a clean run
// shows the merge counters; a failing run (the deliberate lost-version merge) prints a replay
// command that carries every merge setting; merge flags without what they need are refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

function sim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/sim/cli.ts", "--runtime", ...args], {
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const SHORT = ["--nodes", "3", "--duration", "400", "--splits"] as const;

test("a clean merge run prints the merge counters and exits 0", () => {
  const { status, stdout } = sim(...SHORT, "--merges", "--seeds", "3");
  assert.equal(status, 0, stdout);
  assert.match(stdout, /splitting the keyspace and merging it back/);
  assert.match(stdout, /mergesRequested\s+[1-9]/);
  assert.match(stdout, /0 failing seed\(s\)/);
});

test("a failing merge run prints a replay command with every merge setting", () => {
  const { status, stdout } = sim(...SHORT, "--seeds", "6", "--merge-interval", "60", "--merge-loses-key");
  assert.equal(status, 1, stdout);
  const replay = /replay: npm run sim -- (.*)/.exec(stdout)?.[1];
  assert.match(
    replay ?? "",
    /^--runtime --seed \d+ --profile [a-z-]+ --duration 400 --nodes 3 --splits --split-interval 40 --merges --merge-interval 60 --merge-loses-key$/,
  );
});

test("merge flags the run cannot honour are refused", () => {
  assert.equal(sim("--merges").status, 2);
  assert.equal(sim("--merge-interval", "50").status, 2);
  assert.equal(sim("--splits", "--merge-loses-key").status, 2);
  assert.equal(sim("--splits", "--merge-interval", "0").status, 1);
});
