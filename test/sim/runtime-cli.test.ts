// `npm run sim -- --runtime`: the node runtime simulation from the command line — progress and
// stats on success; on a violation the replay command (with every setting it needs), the
// trace and exit code 1; profiles it does not simulate are refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

function sim(...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/sim/cli.ts", "--runtime", ...args], {
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout };
}

test("a clean runtime run prints progress and the summed stats, and exits 0", () => {
  const { status, stdout } = sim("--seeds", "2", "--seed", "1", "--duration", "300");
  assert.equal(status, 0, stdout);
  assert.match(stdout, /\[1\/2\] seed 1 partitions: ok/);
  assert.match(stdout, /\[2\/2\] seed 2 crashes: ok/);
  assert.match(stdout, /acked\s+\d+/);
  assert.match(stdout, /0 failing seed\(s\)/);
});

test("a runtime violation prints the exact replay command and the trace, and exits 1", () => {
  const args = ["--seed", "1", "--profile", "crashes", "--duration", "600", "--crash-interval", "100"];
  const { status, stdout } = sim(...args, "--ack-before-sync");
  assert.equal(status, 1, stdout);
  assert.match(stdout, /seed 1 \(crashes, \d nodes\) failed/);
  assert.match(
    stdout,
    /replay: npm run sim -- --runtime --seed 1 --profile crashes --duration 600 --crash-interval 100 --ack-before-sync/,
  );
  assert.match(stdout, /VIOLATION /);
});

test("profiles the runtime simulation does not cover are refused", () => {
  assert.equal(sim("--profile", "chaos").status, 2);
});
