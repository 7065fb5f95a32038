// `concord start`'s split flags through the command line in-process (a stub node): listed in
// `start --help`, passed to the node as given (`--flag=value`, `--flag value`, etcd's
// `-flag`), and bad values exit 2 with the reason before anything touches the disk.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EXIT_OK, EXIT_USAGE } from "../../src/cli/errors.js";
import { runCli } from "../../src/cli/program.js";
import { ManualSignals, snapshotTree, StubStarter, withTempDirAsync } from "./helpers.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  starter: StubStarter;
}

async function run(argv: string[], cwd: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const starter = new StubStarter();
  const code = await runCli(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd,
    startNode: starter.start,
    waitForSignal: new ManualSignals("SIGTERM").waitForSignal,
  });
  return { code, stdout, stderr, starter };
}

const LOOPBACK_ANY = [
  "--listen-client-urls",
  "http://127.0.0.1:0",
  "--listen-peer-urls",
  "http://127.0.0.1:0",
];

test("start --help lists every split flag", async () => {
  const help = await run(["start", "--help"], "/");
  assert.equal(help.code, EXIT_OK);
  for (const flag of [
    "--auto-split [bool]",
    "--split-load-ops <n>",
    "--split-load-windows <n>",
    "--split-max-range-bytes <n>",
    "--split-cooldown <ms>",
    "--auto-merge [bool]",
    "--merge-max-bytes <n>",
    "--merge-max-ops <n>",
    "--merge-windows <n>",
    "--merge-delay-after-split <ms>",
  ])
    assert.ok(help.stdout.includes(flag), `help names ${flag}:\n${help.stdout}`);
});

test("the split flags reach the node in every spelling etcd's parser takes", async () => {
  await withTempDirAsync(async (dir) => {
    const result = await run(
      [
        "start",
        "--data-dir",
        "d",
        ...LOOPBACK_ANY,
        "--auto-split=true",
        "--split-load-ops",
        "100",
        "-split-load-windows=3",
        "-split-max-range-bytes",
        "4096",
        "--split-cooldown=2000",
        "-auto-merge=true",
        "--merge-windows=5",
      ],
      dir,
    );
    assert.equal(result.code, EXIT_OK, result.stderr);
    assert.deepEqual(result.starter.launches[0]?.split, {
      autoSplit: true,
      autoMerge: true,
      policy: {
        loadSplitOpsPerSecond: 100,
        loadSplitWindows: 3,
        maxRangeBytes: 4096,
        cooldownMs: 2000,
        mergeWindows: 5,
      },
    });
  });
});

test("--auto-split=false turns automatic splits (and, unless given, merges) off; a bare --auto-split leaves them on", async () => {
  await withTempDirAsync(async (dir) => {
    const off = await run(["start", "--data-dir", "off", ...LOOPBACK_ANY, "--auto-split=false"], dir);
    assert.equal(off.code, EXIT_OK, off.stderr);
    assert.deepEqual(off.starter.launches[0]?.split, { autoSplit: false, autoMerge: false, policy: {} });
    const bare = await run(["start", "--data-dir", "on", "--auto-split", ...LOOPBACK_ANY], dir);
    assert.equal(bare.code, EXIT_OK, bare.stderr);
    assert.deepEqual(bare.starter.launches[0]?.split, { autoSplit: true, autoMerge: true, policy: {} });
  });
});

test("bad split values exit 2 with the reason and touch nothing", async () => {
  await withTempDirAsync(async (dir) => {
    const before = snapshotTree(dir);
    const cases: [string[], RegExp][] = [
      [["--auto-split=maybe"], /concord start: --auto-split: expected true or false, got "maybe"/],
      [["--split-load-ops", "0"], /concord start: --split-load-ops: expected a number >= 1, got "0"/],
      [["--split-load-windows=1.5"], /--split-load-windows: expected a whole number >= 1/],
      [["--split-max-range-bytes=lots"], /--split-max-range-bytes: expected a whole number >= 1/],
      [["--split-cooldown=-1"], /--split-cooldown: expected a whole number >= 0/],
      [["--auto-split=false", "--split-cooldown=5"], /have no effect with --auto-split=false/],
      [["--merge-max-ops=0"], /--merge-max-ops: expected a number >= 1, got "0"/],
      [["--auto-merge=false", "--merge-max-bytes=10"], /have no effect with --auto-merge=false/],
    ];
    for (const [flags, message] of cases) {
      const result = await run(["start", "--data-dir", "d", ...LOOPBACK_ANY, ...flags], dir);
      assert.equal(result.code, EXIT_USAGE, `${flags.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.starter.launches.length, 0);
    }
    const missing = await run(["start", "--data-dir", "d", "--split-load-ops"], dir);
    assert.equal(missing.code, EXIT_USAGE);
    assert.match(missing.stderr, /--split-load-ops <n>' argument missing/);
    assert.deepEqual(snapshotTree(dir), before);
  });
});
