// `concord snapshot restore`: a snapshot image of a running store restored into a new data
// dir that `concord start` opens; the keys, values and revisions come back, the restored
// member accepts new writes above the old revisions, and bad input changes nothing on disk.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Concord } from "../../../src/api/concord.js";
import { snapshotFileHash, snapshotFileTrailer } from "../../../src/api/etcd/snapshot-file.js";
import { memberIdOf } from "../../../src/cli/member-id.js";
import { startEmbeddedNode, stderrLogger } from "../../../src/cli/node-starter.js";
import { runCli, type CliDeps } from "../../../src/cli/program.js";
import { ManualSignals, snapshotTree, withTempDirAsync } from "../helpers.js";
import { freePort } from "../../free-port.js";

const dec = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

function cli(dir: string, signals = new ManualSignals("SIGINT")) {
  let stdout = "";
  let stderr = "";
  const deps: CliDeps = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    cwd: dir,
    startNode: (launch) =>
      startEmbeddedNode(
        launch,
        stderrLogger(() => {}),
      ),
    waitForSignal: signals.waitForSignal,
    client: { env: {}, stderrIsTTY: false },
  };
  return {
    run: async (argv: string[]) => {
      stdout = "";
      stderr = "";
      const code = await runCli(argv, deps);
      return { code, stdout, stderr };
    },
  };
}

/** Writes range 1's snapshot image of a store holding a few keys; returns the file and the revisions. */
async function savedImage(dir: string) {
  const db = await Concord.open({ dataDir: join(dir, "source") });
  try {
    await db.put("a", "1");
    await db.put("b", "2");
    const last = await db.put("a", "3");
    const image = db.host.replica(1)!.snapshotImage();
    const chunks: Uint8Array[] = [];
    for await (const chunk of image) chunks.push(chunk);
    const file = join(dir, "backup.db");
    writeFileSync(file, Buffer.concat(chunks));
    const a = await db.get("a");
    return { file, lastRevision: last.revision, a: a! };
  } finally {
    await db.close();
  }
}

test("a restored data dir starts with the snapshot's keys and revisions and takes new writes above them", async () => {
  await withTempDirAsync(async (dir) => {
    const { lastRevision, a } = await savedImage(dir);
    const peerPort = await freePort();
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const memberFlags = [
      "--name",
      "n1",
      "--initial-cluster",
      `n1=${peerUrl}`,
      "--initial-advertise-peer-urls",
      peerUrl,
    ];
    const restored = await cli(dir).run([
      "snapshot",
      "restore",
      "backup.db",
      "--data-dir",
      "restored",
      ...memberFlags,
    ]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /Snapshot backup\.db restored into .*restored \(member n1\)/);
    assert.ok(existsSync(join(dir, "restored", "cluster.json")));

    // `concord start` accepts the dir (same name, cluster and token), serves, and stops on SIGINT.
    const started = await cli(dir).run([
      "start",
      "--data-dir",
      "restored",
      ...memberFlags,
      "--listen-peer-urls",
      peerUrl,
      "--listen-client-urls",
      "http://127.0.0.1:0",
    ]);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /concord ready: name=n1/);

    const db = await Concord.open({
      dataDir: join(dir, "restored"),
      nodeId: memberIdOf("n1", "concord-cluster"),
      peers: { [memberIdOf("n1", "concord-cluster")]: `127.0.0.1:${peerPort}` },
    });
    try {
      const readBack = await db.get("a");
      assert.equal(dec(readBack?.value), "3");
      assert.equal(readBack?.modRevision, a.modRevision);
      assert.equal(readBack?.createRevision, a.createRevision);
      assert.equal(readBack?.version, 2n);
      assert.equal(dec((await db.get("b"))?.value), "2");
      const next = await db.put("c", "4");
      assert.ok(next.revision > lastRevision, `new revision ${next.revision} above ${lastRevision}`);
    } finally {
      await db.close();
    }
  });
});

test("restore refuses a damaged file, a used data dir and missing --data-dir, and writes nothing", async () => {
  await withTempDirAsync(async (dir) => {
    const { file } = await savedImage(dir);
    const before = snapshotTree(dir);
    const run = cli(dir).run;

    const damaged = join(dir, "damaged.db");
    writeFileSync(damaged, "CONCORD-KV not really");
    const bad = await run(["snapshot", "restore", damaged, "--data-dir", "out"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error: .*not a Concord snapshot or is damaged/);

    // A Maintenance.Snapshot file whose digest does not match its contents.
    const image = readFileSync(file);
    const hash = snapshotFileHash().update(image);
    const wrapped = Buffer.concat([image, snapshotFileTrailer(image.length, hash)]);
    wrapped[3] = wrapped[3]! ^ 0xff;
    const tampered = join(dir, "tampered.db");
    writeFileSync(tampered, wrapped);
    const badDigest = await run(["snapshot", "restore", tampered, "--data-dir", "out"]);
    assert.equal(badDigest.code, 1);
    assert.match(badDigest.stderr, /not a Concord snapshot or is damaged: .*SHA-256 does not match/);

    const missing = await run(["snapshot", "restore", file]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /needs --data-dir/);

    const used = await run(["snapshot", "restore", file, "--data-dir", "source"]);
    assert.equal(used.code, 1);
    assert.match(used.stderr, /not empty|holds a member/);

    const absent = await run(["snapshot", "restore", join(dir, "nope.db"), "--data-dir", "out"]);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /cannot read snapshot/);

    // Nothing was created: the same paths as before (the damaged file aside), no "out".
    const after = [...snapshotTree(dir).keys()].filter(
      (path) => path !== "damaged.db" && path !== "tampered.db",
    );
    assert.deepEqual(after, [...before.keys()]);
    assert.equal(existsSync(join(dir, "out")), false);
  });
});
