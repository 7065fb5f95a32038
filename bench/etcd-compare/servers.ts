/**
 * The two 3-member clusters the comparison runs against: `etcd` (the Debian `etcd-server`
 * binary, when on PATH) and `bin/concord start`, both started with the same etcd-style flags
 * on free loopback ports, fsync on (each one's default), data dirs under one temp dir.
 * A cluster is ready when `etcdctl put` through all its endpoints succeeds; it is found out
 * which member leads (`etcdctl endpoint status`) so clients can talk to the leader. A cluster
 * can be paused and resumed as a whole (SIGSTOP, SIGCONT). Stopping sends SIGTERM, then
 * SIGKILL after a bound, and removes the data dirs either way.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { makeTempRoot } from "../cluster.js";
import { signalTrees } from "./cpu.js";
import { isRunning, planMembers, spawnMember, stopMember, type MemberProcess } from "../member-process.js";

const execFileAsync = promisify(execFile);
const CONCORD_BIN = fileURLToPath(new URL("../../bin/concord", import.meta.url));
const MEMBER_NAMES = ["m1", "m2", "m3"] as const;
const READY_LIMIT_MS = 90_000;
const OUTPUT_KEPT_CHARS = 8_000;
const ETCDCTL_TIMEOUT_MS = 10_000;

export type ServerKind = "concord" | "etcd";

/** A running 3-member cluster of one kind. */
export interface ServerCluster {
  readonly kind: ServerKind;
  /** Every member's client endpoint, "127.0.0.1:port". */
  readonly endpoints: readonly string[];
  /** The leader's client endpoint, or the first member's if no member said who leads. */
  readonly leaderEndpoint: string;
  /** Whether `etcdctl endpoint status` named the leader (else leaderEndpoint is just the first). */
  readonly leaderKnown: boolean;
  /** The pid of every member process (each the root of its own process tree). */
  readonly pids: readonly number[];
  /** Freezes every member (SIGSTOP to each process of its tree): a frozen cluster uses no CPU. */
  pause(): void;
  /** Thaws every member (SIGCONT); nothing happens to a cluster that is not paused. */
  resume(): void;
  /** Stops every member (a paused one is thawed first) and removes its data; never throws. */
  close(): Promise<void>;
}

/** The first line `binary <versionArgs>` prints, or undefined if it does not run (not on PATH). */
export async function binaryVersion(
  binary: string,
  versionArgs: readonly string[],
): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(binary, versionArgs, { timeout: ETCDCTL_TIMEOUT_MS });
    return stdout.split("\n")[0]?.trim();
  } catch {
    return undefined;
  }
}

/** Runs etcdctl (API v3) against `endpoints`; its stdout, or an error with its stderr. */
export async function etcdctl(
  endpoints: readonly string[],
  args: readonly string[],
  timeoutMs = ETCDCTL_TIMEOUT_MS,
): Promise<string> {
  const { stdout } = await execFileAsync("etcdctl", [`--endpoints=${endpoints.join(",")}`, ...args], {
    timeout: timeoutMs,
    env: { ...process.env, ETCDCTL_API: "3" },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/**
 * How many ranges a Concord cluster serves now (`concord range list -w json` through its
 * endpoints), or undefined when the listing fails: a load over its split threshold splits the
 * keyspace in the middle of a comparison, which etcd never does, and the report says so.
 */
export async function concordRangeCount(cluster: ServerCluster): Promise<number | undefined> {
  try {
    const { stdout } = await execFileAsync(
      CONCORD_BIN,
      ["range", "list", "-w", "json", `--endpoints=${cluster.endpoints.join(",")}`],
      { timeout: ETCDCTL_TIMEOUT_MS },
    );
    const ranges = (JSON.parse(stdout) as { ranges?: unknown }).ranges;
    return Array.isArray(ranges) ? ranges.length : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The leader's endpoint per `etcdctl endpoint status -w json`: the endpoint whose member id
 * equals the leader id its status reports. Undefined if the answer names no such endpoint.
 * Ids are 64-bit, beyond a JSON number's exact range, so they are compared as digit strings.
 */
export function leaderFromEndpointStatus(json: string): string | undefined {
  const entry = /"Endpoint":"([^"]+)".*?"member_id":(\d+).*?"leader":(\d+)/g;
  for (const [, endpoint, memberId, leader] of json.matchAll(entry))
    if (endpoint !== undefined && memberId === leader) return endpoint;
  return undefined;
}

async function findLeader(endpoints: readonly string[]): Promise<string | undefined> {
  try {
    return leaderFromEndpointStatus(await etcdctl(endpoints, ["endpoint", "status", "-w", "json"]));
  } catch {
    return undefined;
  }
}

/** Starts a 3-member cluster of `kind`; fails (after stopping what it started) if it is not ready in time. */
export async function startServerCluster(kind: ServerKind): Promise<ServerCluster> {
  const root = makeTempRoot();
  const members: MemberProcess[] = [];
  const memberPids = (): number[] =>
    members.flatMap((member) =>
      member.child.pid === undefined || !isRunning(member) ? [] : [member.child.pid],
    );
  const close = async (): Promise<void> => {
    // A stopped process holds SIGTERM until it is continued.
    signalTrees(memberPids(), "SIGCONT");
    await Promise.all(members.map(stopMember));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const plans = await planMembers(root, MEMBER_NAMES, `bench-${kind}`);
    for (const plan of plans) {
      const [command, args] =
        kind === "etcd"
          ? ["etcd", [...plan.flags, "--log-level", "warn"]]
          : [CONCORD_BIN, ["start", ...plan.flags]];
      // Only the tail is kept: enough to say why a member died.
      members.push(spawnMember(command, args, plan.clientEndpoint, OUTPUT_KEPT_CHARS));
    }
    const endpoints = plans.map((plan) => plan.clientEndpoint);
    const deadline = performance.now() + READY_LIMIT_MS;
    let lastError = "";
    for (;;) {
      const died = members.find((member) => !isRunning(member));
      if (died !== undefined) throw new Error(`a ${kind} member exited before it was ready:\n${died.output}`);
      try {
        await etcdctl(endpoints, ["put", "bench/ready", "yes"], 5_000);
        break;
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
      }
      if (performance.now() > deadline)
        throw new Error(`${kind} did not accept a put within ${READY_LIMIT_MS} ms: ${lastError}`);
      await sleep(250);
    }
    const leader = await findLeader(endpoints);
    const leaderEndpoint = leader ?? endpoints[0];
    if (leaderEndpoint === undefined) throw new Error("a cluster without endpoints");
    const pids = members.map((member) => {
      if (member.child.pid === undefined) throw new Error(`a ${kind} member has no pid`);
      return member.child.pid;
    });
    return {
      kind,
      endpoints,
      leaderEndpoint,
      leaderKnown: leader !== undefined,
      pids,
      pause: () => signalTrees(pids, "SIGSTOP"),
      resume: () => signalTrees(pids, "SIGCONT"),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
