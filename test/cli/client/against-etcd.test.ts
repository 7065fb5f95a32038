// The client commands against a real etcd (skipped when no `etcd` binary is on PATH): the
// same scenario Concord runs, proving the commands speak the etcd v3 API as etcd serves it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { withTempDirAsync } from "../helpers.js";
import { freePort } from "../../free-port.js";
import { clientCli, runClientScenario, runFailoverScenario } from "./scenario.js";

const etcdPresent = spawnSync("etcd", ["--version"], { stdio: "ignore" }).status === 0;

async function startEtcd(dir: string): Promise<{ endpoint: string; process: ChildProcess }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    "etcd",
    [
      "--name",
      "e2e",
      "--data-dir",
      join(dir, "etcd"),
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `e2e=${peer}`,
    ],
    { stdio: "ignore" },
  );
  const endpoint = `127.0.0.1:${clientPort}`;
  const health = clientCli(endpoint, dir);
  // Bounded wait for the member to serve: up to 60 tries of a 1 s dial.
  for (let attempt = 0; attempt < 60; attempt++) {
    if ((await health(["endpoint", "health", "--dial-timeout", "1s"])).code === 0)
      return { endpoint, process: child };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  child.kill("SIGKILL");
  throw new Error("etcd did not become healthy");
}

test("the client commands against etcd", { skip: etcdPresent ? false : "no etcd on PATH" }, async () => {
  await withTempDirAsync(async (dir) => {
    const etcd = await startEtcd(dir);
    try {
      await runClientScenario(etcd.endpoint, dir);
      await runFailoverScenario(etcd.endpoint, `127.0.0.1:${await freePort()}`, dir);
    } finally {
      const exited = new Promise((resolve) => etcd.process.once("exit", resolve));
      etcd.process.kill("SIGKILL");
      await exited;
    }
  });
});
