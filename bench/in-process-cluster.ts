/**
 * Three `Concord.open` members in this process, peers on 127.0.0.1, fsync on (the default).
 * Client handles are ConcordDb handles on the leader member: the same code path as the
 * member's own embedded handle (client id, sequence, retries, then the local replica), but
 * one per simulated client, because a handle sends one write at a time.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  Concord,
  ConcordDb,
  ReplicaStoppedError,
  type Backend,
  type EmbeddedConcord,
  type RangeStatus,
} from "../src/api/index.js";
import type { KvCommand, RangeRequest } from "../src/kv/commands.js";
import type { WatchRequest } from "../src/kv/watch.js";
import type { Replica } from "../src/node/replica.js";
import type { ReadConsistency, RequestId } from "../src/node/types.js";
import { freePort, makeTempRoot, waitFor, type BenchCluster } from "./cluster.js";

const MEMBER_IDS = [1, 2, 3] as const;

/** Requests straight to one member's local replicas; closing it leaves the member running. */
class MemberBackend implements Backend {
  constructor(private readonly member: EmbeddedConcord) {}

  write(rangeId: number, command: KvCommand, request: RequestId) {
    return this.replica(rangeId).propose(command, request);
  }

  read(rangeId: number, request: RangeRequest, consistency: ReadConsistency) {
    return this.replica(rangeId).range(request, consistency);
  }

  status(rangeId: number): Promise<RangeStatus> {
    return this.member.status(rangeId);
  }

  watch(rangeId: number, request: WatchRequest) {
    return Promise.resolve(this.replica(rangeId).watch(request));
  }

  leaseKeepAlive(rangeId: number, id: bigint) {
    return this.replica(rangeId).leaseKeepAlive(id);
  }

  leaseTimeToLive(rangeId: number, id: bigint, withKeys: boolean) {
    return Promise.resolve(this.replica(rangeId).leaseTimeToLive(id, withKeys));
  }

  leases(rangeId: number) {
    return Promise.resolve(this.replica(rangeId).leases());
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private replica(rangeId: number): Replica {
    const replica = this.member.host.replica(rangeId);
    if (replica === undefined) throw new ReplicaStoppedError(rangeId);
    return replica;
  }
}

export async function startInProcessCluster(): Promise<BenchCluster> {
  const root = makeTempRoot();
  const members: EmbeddedConcord[] = [];
  const cleanUp = async (): Promise<void> => {
    for (const member of members) await member.close();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const peers = new Map<number, string>();
    for (const id of MEMBER_IDS) peers.set(id, `127.0.0.1:${await freePort()}`);
    for (const nodeId of MEMBER_IDS) {
      members.push(
        await Concord.open({ dataDir: join(root, `member-${nodeId}`), nodeId, peers, clusterId: "bench" }),
      );
    }
    const leaderOf = async (): Promise<EmbeddedConcord | undefined> => {
      const statuses = await Promise.all(members.map((member) => member.status()));
      const leaderId = statuses[0]?.leader;
      // Every member must know the same leader, so the rows do not start mid-election.
      if (statuses.some((status) => status.leader !== leaderId)) return undefined;
      return members.find((member) => member.nodeId === leaderId);
    };
    await waitFor(async () => (await leaderOf()) !== undefined, "a leader known to every member");
    const leaderMember = await leaderOf();
    if (leaderMember === undefined) throw new Error("the leader every member knew is gone already");
    return {
      setup: "1 process",
      handles: (count) => Array.from({ length: count }, () => new ConcordDb(new MemberBackend(leaderMember))),
      close: cleanUp,
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
