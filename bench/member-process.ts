/**
 * Member processes of a benchmarked cluster, shared by every workload that starts real
 * servers (`bin/concord start` or `etcd`): the etcd-style flags of a 3-member loopback
 * cluster on free ports, spawning a member with its output kept, and stopping it (SIGTERM,
 * then SIGKILL after a bound).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./cluster.js";

const EXIT_LIMIT_MS = 10_000;

/** One member to start: its name, its client endpoint ("127.0.0.1:port") and its flags. */
export interface MemberPlan {
  readonly name: string;
  readonly clientEndpoint: string;
  readonly flags: readonly string[];
}

/**
 * The flags of a new cluster of `names` on free loopback ports, data dirs under `root`, in
 * etcd's spelling (which `concord start` takes as well). Ports come from `port` (tests pass
 * test/free-port.ts's, which no parallel test file is handed too).
 */
export async function planMembers(
  root: string,
  names: readonly string[],
  token: string,
  port: () => Promise<number> = freePort,
): Promise<MemberPlan[]> {
  const ports: { name: string; client: number; peer: number }[] = [];
  for (const name of names) ports.push({ name, client: await port(), peer: await port() });
  const initialCluster = ports.map((p) => `${p.name}=http://127.0.0.1:${p.peer}`).join(",");
  return ports.map((p) => ({
    name: p.name,
    clientEndpoint: `127.0.0.1:${p.client}`,
    flags: [
      "--name",
      p.name,
      "--data-dir",
      join(root, p.name),
      "--listen-client-urls",
      `http://127.0.0.1:${p.client}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${p.client}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${p.peer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${p.peer}`,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-state",
      "new",
      "--initial-cluster-token",
      token,
    ],
  }));
}

export interface MemberProcess {
  readonly child: ChildProcess;
  readonly clientEndpoint: string;
  readonly exited: Promise<void>;
  /** What the member printed (stdout and stderr), or its last `outputLimit` characters. */
  output: string;
}

/** Starts `command args`; keeps its output, all of it or the last `outputLimit` characters. */
export function spawnMember(
  command: string,
  args: readonly string[],
  clientEndpoint: string,
  outputLimit = Infinity,
): MemberProcess {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const member: MemberProcess = {
    child,
    clientEndpoint,
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
    output: "",
  };
  const keep = (chunk: Buffer): void => {
    const output = member.output + chunk.toString();
    member.output = output.length > outputLimit ? output.slice(-outputLimit) : output;
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return member;
}

export function isRunning(member: MemberProcess): boolean {
  return member.child.exitCode === null && member.child.signalCode === null;
}

/** SIGTERM, then SIGKILL if the member has not exited within a bound. */
export async function stopMember(member: MemberProcess): Promise<void> {
  if (!isRunning(member)) return;
  member.child.kill("SIGTERM");
  const exitedInTime = await Promise.race([member.exited.then(() => true), sleep(EXIT_LIMIT_MS, false)]);
  if (!exitedInTime) {
    member.child.kill("SIGKILL");
    await member.exited;
  }
}
