// The client commands against an in-process Concord serving the etcd v3 API on its client
// port: the same scenario as against etcd, then snapshot save of a keyspace split in two →
// snapshot restore → concord start on the restored dir → the data read back with `concord get`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Concord } from "../../../src/api/concord.js";
import type { EmbeddedConcord } from "../../../src/api/embedded.js";
import { startEmbeddedNode, stderrLogger } from "../../../src/cli/node-starter.js";
import { runCli } from "../../../src/cli/program.js";
import { ManualSignals, withTempDirAsync } from "../helpers.js";
import { freePort } from "../../free-port.js";
import { clientCli, runClientScenario, runFailoverScenario } from "./scenario.js";

async function openServing(dataDir: string): Promise<{ db: EmbeddedConcord; endpoint: string }> {
  const endpoint = `127.0.0.1:${await freePort()}`;
  const db = await Concord.open({
    dataDir,
    listenClient: endpoint,
    member: { name: "e2e", peerUrls: ["http://127.0.0.1:2380"], clientUrls: [`http://${endpoint}`] },
  });
  return { db, endpoint };
}

test("the client commands against Concord", async () => {
  await withTempDirAsync(async (dir) => {
    const { db, endpoint } = await openServing(join(dir, "data"));
    try {
      await runClientScenario(endpoint, dir);
      await runFailoverScenario(endpoint, `127.0.0.1:${await freePort()}`, dir);
    } finally {
      await db.close();
    }
  });
});

test("snapshot save, restore, start on the restored dir, and read the data back", async () => {
  await withTempDirAsync(async (dir) => {
    const { db, endpoint } = await openServing(join(dir, "source"));
    const source = clientCli(endpoint, dir);
    let saved;
    let original;
    try {
      for (const [key, value] of [
        ["snap/a", "1"],
        ["snap/b", "2"],
        ["snap/a", "3"],
      ] as const) {
        assert.equal((await source(["put", key, value])).code, 0);
      }
      // The snapshot covers both ranges of a split keyspace.
      await db.ranges!.split(new TextEncoder().encode("snap/b"));
      assert.equal((await source(["put", "snap/b", "4"])).code, 0);
      original = (await source(["get", "snap/", "--prefix", "-w", "json"])).stdout;
      saved = await source(["snapshot", "save", "backup.snap"]);
    } finally {
      await db.close();
    }
    assert.equal(saved.code, 0, saved.stderr);

    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const member = [
      "--name",
      "r1",
      "--initial-cluster",
      `r1=${peerUrl}`,
      "--initial-advertise-peer-urls",
      peerUrl,
    ];
    const restored = await source([
      "snapshot",
      "restore",
      "backup.snap",
      "--data-dir",
      "restored",
      ...member,
    ]);
    assert.equal(restored.code, 0, restored.stderr);

    const signals = new ManualSignals();
    let ready = "";
    let startErrors = "";
    let markReady: () => void = () => {};
    const readyLine = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const started = runCli(
      [
        "start",
        "--data-dir",
        "restored",
        ...member,
        "--listen-peer-urls",
        peerUrl,
        "--listen-client-urls",
        "http://127.0.0.1:0",
      ],
      {
        stdout: (text) => {
          ready += text;
          if (ready.includes("concord ready")) markReady();
        },
        stderr: (text) => {
          startErrors += text;
        },
        cwd: dir,
        startNode: (launch) =>
          startEmbeddedNode(
            launch,
            stderrLogger(() => {}),
          ),
        waitForSignal: signals.waitForSignal,
      },
    );
    await Promise.race([
      readyLine,
      started.then((code) => assert.fail(`start exited ${code}: ${startErrors}`)),
    ]);
    const client = /client=http:\/\/(\S+)/.exec(ready)?.[1];
    assert.ok(client !== undefined, ready);
    try {
      const readBack = await clientCli(client, dir)(["get", "snap/", "--prefix", "-w", "json"]);
      assert.equal(readBack.code, 0, readBack.stderr);
      // The same kvs with the same revisions (the headers differ: another cluster and member).
      const kvs = (text: string) => /"kvs":(\[.*\])/.exec(text)?.[1];
      assert.equal(kvs(readBack.stdout), kvs(original));
      assert.equal((await clientCli(client, dir)(["get", "snap/a"])).stdout, "snap/a\n3\n");
      // The restored cluster is one range (no route catalog came along): every key takes writes.
      assert.equal((await clientCli(client, dir)(["put", "snap/z", "5"])).code, 0);
      assert.equal((await clientCli(client, dir)(["get", "snap/z"])).stdout, "snap/z\n5\n");
    } finally {
      signals.fire("SIGINT");
      assert.equal(await started, 0, startErrors);
    }
  });
});
