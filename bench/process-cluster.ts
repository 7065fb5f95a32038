/**
 * Three `bin/concord start` processes on loopback ports, fsync on (the default), and client
 * handles made with `Concord.connect`, pointed at the leader's client port first (the other
 * members follow as failover endpoints). Stopping sends SIGTERM and, if a member has not
 * exited within a bound, SIGKILL; the data dirs are removed either way.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Concord, type ConcordDb } from "../src/api/index.js";
import { freePort, makeTempRoot, waitFor, type BenchCluster } from "./cluster.js";

const BIN = fileURLToPath(new URL("../bin/concord", import.meta.url));
const MEMBER_NAMES = ["n1", "n2", "n3"] as const;
const READY_LIMIT_MS = 60_000;
const EXIT_LIMIT_MS = 10_000;

interface MemberProcess {
  readonly child: ChildProcess;
  readonly clientEndpoint: string;
  readonly exited: Promise<void>;
  output: string;
}

function spawnMember(args: readonly string[], clientEndpoint: string): MemberProcess {
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const member: MemberProcess = {
    child,
    clientEndpoint,
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
    output: "",
  };
  child.stdout?.on("data", (chunk: Buffer) => (member.output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (member.output += chunk.toString()));
  return member;
}

/** The member id in the member's ready line, once it has printed one. */
function readyMemberId(member: MemberProcess): number | null {
  const line = member.output.split("\n").find((l) => l.startsWith("concord ready: "));
  const hex = line === undefined ? undefined : /member-id=([0-9a-f]+)/.exec(line)?.[1];
  return hex === undefined ? null : parseInt(hex, 16);
}

function isRunning(member: MemberProcess): boolean {
  return member.child.exitCode === null && member.child.signalCode === null;
}

async function stopMember(member: MemberProcess): Promise<void> {
  if (!isRunning(member)) return;
  member.child.kill("SIGTERM");
  const exitedInTime = await Promise.race([member.exited.then(() => true), sleep(EXIT_LIMIT_MS, false)]);
  if (!exitedInTime) {
    member.child.kill("SIGKILL");
    await member.exited;
  }
}

export async function startProcessCluster(): Promise<BenchCluster> {
  const root = makeTempRoot();
  const members: MemberProcess[] = [];
  const cleanUp = async (): Promise<void> => {
    await Promise.all(members.map(stopMember));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const ports: { name: string; client: number; peer: number }[] = [];
    for (const name of MEMBER_NAMES) ports.push({ name, client: await freePort(), peer: await freePort() });
    const initialCluster = ports.map((p) => `${p.name}=http://127.0.0.1:${p.peer}`).join(",");
    for (const p of ports) {
      const args = [
        "start",
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
        "--initial-cluster-token",
        "bench",
      ];
      members.push(spawnMember(args, `127.0.0.1:${p.client}`));
    }
    await waitFor(
      () => {
        const died = members.find((member) => !isRunning(member));
        if (died !== undefined)
          throw new Error(`a concord member exited before it was ready:\n${died.output}`);
        return Promise.resolve(members.every((member) => readyMemberId(member) !== null));
      },
      "every member's ready line",
      READY_LIMIT_MS,
    );
    const endpoints = members.map((member) => member.clientEndpoint);
    const probe = Concord.connect({ endpoints });
    let leaderEndpoint: string | undefined;
    try {
      await waitFor(async () => {
        const leaderId = (await probe.status()).leader;
        leaderEndpoint = members.find((member) => readyMemberId(member) === leaderId)?.clientEndpoint;
        return leaderEndpoint !== undefined;
      }, "an elected leader");
    } finally {
      await probe.close();
    }
    if (leaderEndpoint === undefined) throw new Error("a leader was seen but its endpoint was lost");
    const ordered = [leaderEndpoint, ...endpoints.filter((endpoint) => endpoint !== leaderEndpoint)];
    return {
      setup: "3 processes",
      handles: (count): ConcordDb[] =>
        Array.from({ length: count }, () => Concord.connect({ endpoints: ordered })),
      close: cleanUp,
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
