// The `concord` command line in-process: help, version, exit codes, etcd-style argv, and the
// start life cycle with a stub node (ready line, close on signal, rollback of a failed start).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLUSTER_FILE } from "../../src/cli/data-dir.js";
import { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from "../../src/cli/errors.js";
import { etcdClusterId } from "../../src/api/etcd/context.js";
import { joinedMemberIdOf } from "../../src/api/etcd/member-ids.js";
import { clusterIdOf, memberIdOf } from "../../src/cli/member-id.js";
import { normalizeArgv, runCli } from "../../src/cli/program.js";
import { concordVersion } from "../../src/cli/version.js";
import { ManualSignals, snapshotTree, StubStarter, withTempDirAsync } from "./helpers.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  argv: string[],
  cwd: string,
  starter = new StubStarter(),
  signals = new ManualSignals("SIGTERM"),
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd,
    startNode: starter.start,
    waitForSignal: signals.waitForSignal,
  });
  return { code, stdout, stderr };
}

const LOOPBACK_ANY = [
  "--listen-client-urls",
  "http://127.0.0.1:0",
  "--listen-peer-urls",
  "http://127.0.0.1:0",
];

test("--help, start --help and help start print usage with examples and exit 0", async () => {
  const top = await run(["--help"], "/");
  assert.equal(top.code, EXIT_OK);
  assert.match(top.stdout, /Usage: concord/);
  assert.match(top.stdout, /Examples:/);
  for (const argv of [
    ["start", "--help"],
    ["help", "start"],
  ]) {
    const start = await run(argv, "/");
    assert.equal(start.code, EXIT_OK, argv.join(" "));
    assert.match(start.stdout, /--initial-cluster-token/);
    assert.match(start.stdout, /\$ concord start --name n2/);
    assert.match(start.stdout, /Exit codes/);
  }
});

test("version and --version print the package version", async () => {
  const version = concordVersion();
  assert.match(version, /^\d+\.\d+\.\d+/);
  const command = await run(["version"], "/");
  assert.equal(command.code, EXIT_OK);
  assert.match(command.stdout, new RegExp(`^concord Version: ${version.replaceAll(".", "\\.")}\n`));
  const flag = await run(["--version"], "/");
  assert.equal(flag.code, EXIT_OK);
  assert.equal(flag.stdout.trim(), version);
});

test("no arguments print usage to stderr and exit 2", async () => {
  const result = await run([], "/");
  assert.equal(result.code, EXIT_USAGE);
  assert.match(result.stderr, /Usage: concord/);
  assert.equal(result.stdout, "");
});

test("unknown flags, commands and stray arguments exit 2 and touch nothing", async () => {
  await withTempDirAsync(async (dir) => {
    const before = snapshotTree(dir);
    const starter = new StubStarter();
    for (const argv of [["start", "--bogus"], ["frobnicate"], ["start", "extra"], ["start", "--name"]]) {
      const result = await run(argv, dir, starter);
      assert.equal(result.code, EXIT_USAGE, argv.join(" "));
      assert.match(result.stderr, /error:/, argv.join(" "));
    }
    assert.equal(starter.launches.length, 0);
    assert.deepEqual(snapshotTree(dir), before);
  });
});

test("invalid flag values exit 2 with the reason, and touch nothing", async () => {
  await withTempDirAsync(async (dir) => {
    const before = snapshotTree(dir);
    const result = await run(["start", "--name", "n1", "--initial-cluster", "n2=http://127.0.0.1:1"], dir);
    assert.equal(result.code, EXIT_USAGE);
    assert.match(result.stderr, /concord start: --initial-cluster: this member's --name "n1" is not in it/);
    assert.deepEqual(snapshotTree(dir), before);
  });
});

test("etcd-style argv: -flag and -flag=value, and flags without a command mean start", () => {
  assert.deepEqual(normalizeArgv(["-name", "n1", "-data-dir=x"]), ["start", "--name", "n1", "--data-dir=x"]);
  assert.deepEqual(normalizeArgv(["--name", "n1"]), ["start", "--name", "n1"]);
  assert.deepEqual(normalizeArgv(["start", "-name", "n1"]), ["start", "--name", "n1"]);
  assert.deepEqual(normalizeArgv(["--help"]), ["--help"]);
  assert.deepEqual(normalizeArgv(["start", "-bogus"]), ["start", "-bogus"]);
});

test("start founds the data dir, prints the ready line, closes on a signal and exits 0", async () => {
  await withTempDirAsync(async (dir) => {
    const starter = new StubStarter();
    const signals = new ManualSignals();
    const running = run(["start", "--name", "n1", "--data-dir", "d", ...LOOPBACK_ANY], dir, starter, signals);
    await starter.started;
    assert.equal(starter.launches.length, 1);
    assert.equal(starter.closes, 0, "the node runs until a signal arrives");
    signals.fire("SIGINT");
    const result = await running;
    assert.equal(result.code, EXIT_OK);
    assert.equal(starter.closes, 1);
    assert.equal(signals.disposed, 1);
    const id = memberIdOf("n1", "concord-cluster").toString(16);
    assert.match(
      result.stdout,
      new RegExp(
        `^concord ready: name=n1 member-id=${id} cluster-id=[0-9a-f]{16} client=http://127\\.0\\.0\\.1:41000 peer=http://127\\.0\\.0\\.1:42000 data-dir=${join(dir, "d")}\n$`,
      ),
    );
    assert.match(result.stderr, /SIGINT received/);
    const launch = starter.launches[0];
    assert.ok(launch !== undefined);
    assert.equal(launch.dataDir, join(dir, "d"));
    assert.equal(launch.memberId, memberIdOf("n1", "concord-cluster"));
    assert.deepEqual([...launch.peers], [[launch.memberId, { host: "localhost", port: 2380 }]]);
    assert.deepEqual(launch.listenClient, { host: "127.0.0.1", port: 0 });
    assert.ok(existsSync(join(dir, "d", CLUSTER_FILE)));
  });
});

test("a signal that arrives during start-up stops the node once it is up", async () => {
  await withTempDirAsync(async (dir) => {
    const starter = new StubStarter();
    const result = await run(["start", "--data-dir", "d"], dir, starter, new ManualSignals("SIGTERM"));
    assert.equal(result.code, EXIT_OK);
    assert.equal(starter.closes, 1);
  });
});

test("a second start on the same dir reuses it; another token is refused with exit 1", async () => {
  await withTempDirAsync(async (dir) => {
    assert.equal((await run(["start", "--data-dir", "d"], dir)).code, EXIT_OK);
    const stored = readFileSync(join(dir, "d", CLUSTER_FILE), "utf8");
    assert.equal((await run(["start", "--data-dir", "d"], dir)).code, EXIT_OK);
    assert.equal(readFileSync(join(dir, "d", CLUSTER_FILE), "utf8"), stored);
    const before = snapshotTree(dir);
    const starter = new StubStarter();
    const refused = await run(["start", "--data-dir", "d", "--initial-cluster-token", "x"], dir, starter);
    assert.equal(refused.code, EXIT_RUNTIME);
    assert.match(refused.stderr, /belongs to another cluster/);
    assert.equal(starter.launches.length, 0);
    assert.deepEqual(snapshotTree(dir), before);
  });
});

test("a node that fails to start exits 1 and its first start leaves no data dir", async () => {
  await withTempDirAsync(async (dir) => {
    const starter = new StubStarter();
    starter.duringStart = (launch) => {
      assert.ok(existsSync(join(launch.dataDir, CLUSTER_FILE)), "identity is written before the node opens");
    };
    starter.failWith = new Error("listen EADDRINUSE 127.0.0.1:2379");
    const result = await run(["start", "--data-dir", "d"], dir, starter);
    assert.equal(result.code, EXIT_RUNTIME);
    assert.match(result.stderr, /cannot start member "default": listen EADDRINUSE/);
    assert.equal(result.stdout, "");
    assert.deepEqual([...snapshotTree(dir).keys()], ["."]);
  });
});

test("a node that fails to restart leaves its existing data dir alone", async () => {
  await withTempDirAsync(async (dir) => {
    assert.equal((await run(["start", "--data-dir", "d"], dir)).code, EXIT_OK);
    const before = snapshotTree(dir);
    const starter = new StubStarter();
    starter.failWith = new Error("boom");
    assert.equal((await run(["start", "--data-dir", "d"], dir, starter)).code, EXIT_RUNTIME);
    assert.deepEqual(snapshotTree(dir), before);
  });
});

test("--initial-cluster-state existing on a fresh dir joins with the peer-URL id, and restarts as a joiner", async () => {
  await withTempDirAsync(async (dir) => {
    const cluster = "n1=http://127.0.0.1:1001,n4=http://127.0.0.1:1004";
    const argv = [
      "start",
      "--name",
      "n4",
      "--data-dir",
      "d",
      "--initial-cluster",
      cluster,
      "--initial-advertise-peer-urls",
      "http://127.0.0.1:1004",
      "--advertise-client-urls",
      "http://127.0.0.1:2004",
      "--initial-cluster-state",
      "existing",
    ];
    const starter = new StubStarter();
    const joined = await run(argv, dir, starter);
    assert.equal(joined.code, EXIT_OK, joined.stderr);
    const id = joinedMemberIdOf(etcdClusterId(clusterIdOf("concord-cluster")), ["http://127.0.0.1:1004"]);
    const [launch] = starter.launches;
    assert.equal(launch?.join, true);
    assert.equal(launch?.memberId, id);
    assert.deepEqual(launch?.advertisePeerUrls, ["http://127.0.0.1:1004"]);
    assert.deepEqual(launch?.advertiseClientUrls, ["http://127.0.0.1:2004"]);
    assert.deepEqual([...(launch?.peers.keys() ?? [])], [memberIdOf("n1", "concord-cluster"), id]);
    const record = JSON.parse(readFileSync(join(dir, "d", CLUSTER_FILE), "utf8")) as Record<string, unknown>;
    assert.equal(record["joined"], true);
    assert.equal(record["memberId"], id);

    // A restart with `new` keeps the stored identity and still never bootstraps.
    const again = new StubStarter();
    const newState = argv.map((arg) => (arg === "existing" ? "new" : arg));
    assert.equal((await run(newState, dir, again)).code, EXIT_OK);
    assert.equal(again.launches[0]?.join, true);
    assert.equal(again.launches[0]?.memberId, id);
  });
});

test("a founding member restarted with --initial-cluster-state existing keeps its id and founds nothing", async () => {
  await withTempDirAsync(async (dir) => {
    assert.equal((await run(["start", "--data-dir", "d"], dir)).code, EXIT_OK);
    const starter = new StubStarter();
    const restart = await run(
      ["start", "--data-dir", "d", "--initial-cluster-state", "existing"],
      dir,
      starter,
    );
    assert.equal(restart.code, EXIT_OK, restart.stderr);
    assert.equal(starter.launches[0]?.join, false);
    assert.equal(starter.launches[0]?.memberId, memberIdOf("default", "concord-cluster"));
  });
});

test("a node that fails to close exits 1", async () => {
  await withTempDirAsync(async (dir) => {
    const starter = new StubStarter();
    starter.closeFailure = new Error("stuck");
    const result = await run(["start", "--data-dir", "d"], dir, starter);
    assert.equal(result.code, EXIT_RUNTIME);
    assert.equal(starter.closes, 1);
    assert.match(result.stderr, /closing member "default" failed: stuck/);
  });
});

test("a member that stops on an unrecoverable error (a failed fsync) exits 1 with the reason", async () => {
  await withTempDirAsync(async (dir) => {
    const starter = new StubStarter();
    const running = run(["start", "--data-dir", "d"], dir, starter, new ManualSignals());
    await starter.started;
    starter.failRunningNode(new Error("fsync failed: EIO"));
    const result = await running;
    assert.equal(result.code, EXIT_RUNTIME);
    assert.equal(starter.closes, 1, "its ports and files are released");
    assert.match(result.stderr, /member "default" stopped: fsync failed: EIO/);
  });
});

test("a member removed from the cluster closes and exits 0, as an etcd member does", async () => {
  await withTempDirAsync(async (dir) => {
    const starter = new StubStarter();
    const running = run(["start", "--data-dir", "d"], dir, starter, new ManualSignals());
    await starter.started;
    starter.removeRunningNode();
    const result = await running;
    assert.equal(result.code, 0);
    assert.equal(starter.closes, 1);
    assert.match(result.stderr, /member "default" was removed from the cluster; closing/);
  });
});
