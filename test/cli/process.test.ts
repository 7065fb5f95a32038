// The real `bin/concord` executable: start a durable node on free loopback ports, wait for its
// ready line, write through its client port, stop it with SIGTERM (exit 0), start it again on
// the same data dir and read the write back, and check that a start with another cluster token
// fails with exit 1 and changes nothing on disk. Also a three-member cluster started with an
// etcd-style command line (`-flag`, no command), written on one member and read on another.
// Every wait is bounded (to fail rather than hang); nothing asserts on how long anything took.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { Concord } from "../../src/api/concord.js";
import { freePort } from "../free-port.js";
import { snapshotTree, withTempDirAsync } from "./helpers.js";

const BIN = fileURLToPath(new URL("../../bin/concord", import.meta.url));
const WAIT_MS = 60_000;

interface Concord {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

function startConcord(args: readonly string[]): Concord {
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const concord: Concord = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => resolve(code));
    }),
  };
  child.stdout?.on("data", (chunk: Buffer) => (concord.stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (concord.stderr += chunk.toString()));
  return concord;
}

/** Resolves with the bounded wait's outcome: the value, or an error naming what was awaited. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), WAIT_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function readyLine(concord: Concord): Promise<string> {
  const ready = new Promise<string>((resolve, reject) => {
    const check = () => {
      const line = concord.stdout.split("\n").find((l) => l.startsWith("concord ready: "));
      if (line !== undefined) resolve(line);
    };
    concord.child.stdout?.on("data", check);
    check();
    void concord.exited.then((code) =>
      reject(new Error(`concord exited with ${code} before it was ready:\n${concord.stderr}`)),
    );
  });
  return within(ready, "the ready line");
}

async function canConnect(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", reject);
  });
}

function stop(concord: Concord): void {
  if (concord.child.exitCode === null && concord.child.signalCode === null) concord.child.kill("SIGKILL");
}

/** Reads `key` through the member at `clientPort`, writing `write` first when given. */
async function throughClient(clientPort: number, key: string, write?: string): Promise<string | null> {
  const db = Concord.connect({ endpoints: [`127.0.0.1:${clientPort}`] });
  try {
    if (write !== undefined) await within(db.put(key, write), `put ${key}`);
    const kv = await within(db.get(key), `get ${key}`);
    return kv === null ? null : Buffer.from(kv.value).toString();
  } finally {
    await db.close();
  }
}

async function runUntilReadyThenStop(
  dataDir: string,
  during: (clientPort: number) => Promise<void>,
): Promise<void> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const concord = startConcord([
    "start",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    `http://127.0.0.1:${clientPort}`,
    "--listen-peer-urls",
    `http://127.0.0.1:${peerPort}`,
  ]);
  try {
    const line = await readyLine(concord);
    assert.match(
      line,
      new RegExp(`client=http://127\\.0\\.0\\.1:${clientPort} peer=http://127\\.0\\.0\\.1:${peerPort} `),
    );
    assert.match(line, new RegExp(`data-dir=${dataDir}$`));
    await canConnect(clientPort);
    await during(clientPort);
    concord.child.kill("SIGTERM");
    assert.equal(await within(concord.exited, "exit after SIGTERM"), 0, concord.stderr);
  } finally {
    stop(concord);
  }
}

test("bin/concord start runs a durable node, stops on SIGTERM, restarts, and refuses another cluster", async () => {
  await withTempDirAsync(async (root) => {
    const dataDir = `${root}/member`;
    await runUntilReadyThenStop(dataDir, async (clientPort) => {
      assert.equal(await throughClient(clientPort, "greeting", "hello"), "hello");
    });
    await runUntilReadyThenStop(dataDir, async (clientPort) => {
      assert.equal(await throughClient(clientPort, "greeting"), "hello", "the write survived the restart");
    });

    const before = snapshotTree(root);
    const refused = startConcord(["start", "--data-dir", dataDir, "--initial-cluster-token", "another"]);
    try {
      assert.equal(await within(refused.exited, "the refused start's exit"), 1);
    } finally {
      stop(refused);
    }
    assert.match(refused.stderr, /data dir .* belongs to another cluster/);
    assert.equal(refused.stdout, "");
    assert.deepEqual(snapshotTree(root), before);
  });
});

test("bin/concord start --listen-metrics-urls serves /metrics and /health on that port too, and says where", async () => {
  await withTempDirAsync(async (root) => {
    const [clientPort, peerPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const concord = startConcord([
      "start",
      "--data-dir",
      `${root}/member`,
      "--listen-client-urls",
      `http://127.0.0.1:${clientPort}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${peerPort}`,
      "--listen-metrics-urls",
      `http://127.0.0.1:${metricsPort}`,
    ]);
    try {
      const line = await readyLine(concord);
      assert.match(line, new RegExp(` metrics=http://127\\.0\\.0\\.1:${metricsPort} data-dir=`));
      // /health is true once a linearizable read goes through (the member has elected itself).
      let health: unknown = null;
      for (let tries = 0; tries < 100; tries++) {
        health = await (await fetch(`http://127.0.0.1:${metricsPort}/health`)).json();
        if ((health as { health?: string }).health === "true") break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(health, { health: "true", reason: "" });
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^etcd_server_has_leader 1$/m);
      concord.child.kill("SIGTERM");
      assert.equal(await within(concord.exited, "exit after SIGTERM"), 0, concord.stderr);
    } finally {
      stop(concord);
    }
  });
});

test("bin/concord with a bad flag exits 2", async () => {
  const concord = startConcord(["start", "--listen-client-urls", "http://127.0.0.1"]);
  assert.equal(await within(concord.exited, "exit"), 2);
  assert.match(concord.stderr, /--listen-client-urls: "http:\/\/127\.0\.0\.1" has no port/);
});

test("three bin/concord members started with an etcd command line form one cluster", async () => {
  await withTempDirAsync(async (root) => {
    const names = ["n1", "n2", "n3"];
    const ports = [];
    for (const name of names) ports.push({ name, client: await freePort(), peer: await freePort() });
    const initialCluster = ports.map((p) => `${p.name}=http://127.0.0.1:${p.peer}`).join(",");
    const members = ports.map((p) =>
      startConcord([
        "-name",
        p.name,
        "-data-dir",
        `${root}/${p.name}`,
        `-listen-client-urls=http://127.0.0.1:${p.client}`,
        "-advertise-client-urls",
        `http://127.0.0.1:${p.client}`,
        "-listen-peer-urls",
        `http://127.0.0.1:${p.peer}`,
        "-initial-advertise-peer-urls",
        `http://127.0.0.1:${p.peer}`,
        "-initial-cluster",
        initialCluster,
        "-initial-cluster-token",
        "cli-test",
        "-initial-cluster-state",
        "new",
      ]),
    );
    try {
      const lines = await Promise.all(members.map(readyLine));
      assert.equal(
        new Set(lines.map((line) => /cluster-id=(\w+)/.exec(line)?.[1])).size,
        1,
        lines.join("\n"),
      );
      const [first, , last] = ports;
      assert.ok(first !== undefined && last !== undefined);
      assert.equal(await throughClient(first.client, "shared", "written on n1"), "written on n1");
      assert.equal(await throughClient(last.client, "shared"), "written on n1", "n3 reads what n1 wrote");
      for (const member of members) member.child.kill("SIGTERM");
      for (const member of members) {
        assert.equal(await within(member.exited, "exit after SIGTERM"), 0, member.stderr);
      }
    } finally {
      members.forEach(stop);
    }
  });
});
