/**
 * Three `bin/concord start` processes on loopback ports, fsync on (the default), and client
 * handles made with `Concord.connect`, pointed at the leader's client port first (the other
 * members follow as failover endpoints). Stopping sends SIGTERM and, if a member has not
 * exited within a bound, SIGKILL; the data dirs are removed either way.
 */
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Concord, type ConcordDb } from "../src/api/index.js";
import { makeTempRoot, waitFor, type BenchCluster } from "./cluster.js";
import { isRunning, planMembers, spawnMember, stopMember, type MemberProcess } from "./member-process.js";

const BIN = fileURLToPath(new URL("../bin/concord", import.meta.url));
const MEMBER_NAMES = ["n1", "n2", "n3"] as const;
const READY_LIMIT_MS = 60_000;

/** The member id in the member's ready line, once it has printed one. */
function readyMemberId(member: MemberProcess): number | null {
  const line = member.output.split("\n").find((l) => l.startsWith("concord ready: "));
  const hex = line === undefined ? undefined : /member-id=([0-9a-f]+)/.exec(line)?.[1];
  return hex === undefined ? null : parseInt(hex, 16);
}

export async function startProcessCluster(): Promise<BenchCluster> {
  const root = makeTempRoot();
  const members: MemberProcess[] = [];
  const cleanUp = async (): Promise<void> => {
    await Promise.all(members.map(stopMember));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const plan of await planMembers(root, MEMBER_NAMES, "bench"))
      members.push(spawnMember(BIN, ["start", ...plan.flags], plan.clientEndpoint));
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
