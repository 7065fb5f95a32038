// A three-member Concord cluster in this process (Concord.open with static peers on 127.0.0.1),
// each member serving etcd's Cluster and Maintenance services on a gRPC port of its own, and
// `etcd3` clients for them: the harness of the Cluster and Maintenance service tests. The
// services are mounted on a bare GrpcServer on a port of their own here, so the tests exercise
// exactly those two modules; the full etcd server mounts the same modules.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:net";
import { Etcd3 } from "etcd3";
import { Concord, type EmbeddedConcord } from "../../../src/api/index.js";
import { clusterService } from "../../../src/api/etcd/cluster-service.js";
import { EtcdContext, etcdClusterId } from "../../../src/api/etcd/context.js";
import { Cluster, Maintenance } from "../../../src/api/etcd/gen/rpc_pb.js";
import { GrpcServer } from "../../../src/api/etcd/grpc-server.js";
import { grpcServiceDefinition } from "../../../src/api/etcd/grpc-service.js";
import { maintenanceService } from "../../../src/api/etcd/maintenance-service.js";
import { freePort } from "../../free-port.js";
import { waitFor } from "../helpers.js";

export const CLUSTER_ID = "members-test";

export interface RunningMember {
  readonly db: EmbeddedConcord;
  readonly dataDir: string;
  readonly server: { readonly grpc: GrpcServer; readonly listener: Server };
  /** "127.0.0.1:port" of its gRPC server. */
  readonly endpoint: string;
  readonly client: Etcd3;
}

export class MemberServers {
  readonly members = new Map<number, RunningMember>();
  readonly peers = new Map<number, string>();
  private readonly dirs: string[] = [];

  /** Starts members 1, 2 and 3 and waits until every one knows the same leader. */
  async startFounders(): Promise<void> {
    for (const id of [1, 2, 3]) this.peers.set(id, `127.0.0.1:${await freePort()}`);
    await Promise.all([1, 2, 3].map((id) => this.start(id)));
    await this.agreeOnLeader();
  }

  /** Opens member `nodeId` (dialing `peers`, default the founders) and serves its etcd services. */
  async start(
    nodeId: number,
    { joining = false, peers = this.peers }: { joining?: boolean; peers?: ReadonlyMap<number, string> } = {},
  ): Promise<RunningMember> {
    const dataDir = mkdtempSync(join(tmpdir(), `concord-members-${nodeId}-`));
    this.dirs.push(dataDir);
    const port = await freePort();
    const endpoint = `127.0.0.1:${port}`;
    const peerAddress = peers.get(nodeId);
    const db = await Concord.open({
      dataDir,
      nodeId,
      peers,
      join: joining,
      tickMs: 20,
      clusterId: CLUSTER_ID,
      member: {
        name: `n${nodeId}`,
        peerUrls: peerAddress === undefined ? [] : [`http://${peerAddress}`],
        clientUrls: [`http://${endpoint}`],
      },
    });
    const ctx = new EtcdContext({
      host: db.host,
      clusterId: etcdClusterId(CLUSTER_ID),
      ...(db.ranges === null ? {} : { kv: db.ranges }),
    });
    const grpc = new GrpcServer({ maxReceiveMessageBytes: 4 * 1024 * 1024 });
    grpc.addService(grpcServiceDefinition(Cluster), clusterService(ctx));
    grpc.addService(grpcServiceDefinition(Maintenance), maintenanceService(ctx, { dataDir }));
    const listener = createServer((socket) => grpc.injectConnection(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(port, "127.0.0.1", () => resolve());
    });
    const server = { grpc, listener };
    const client = new Etcd3({ hosts: endpoint });
    const member = { db, dataDir, server, endpoint, client };
    this.members.set(nodeId, member);
    return member;
  }

  member(id: number): RunningMember {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`member ${id} is not running`);
    return member;
  }

  /** The leader every running member agrees on. */
  async agreeOnLeader(): Promise<number> {
    let leader = 0;
    await waitFor(() => {
      const leaders = [...this.members.values()].map((m) => m.db.host.replica(1)?.status().leader ?? 0);
      leader = leaders[0] ?? 0;
      return leader !== 0 && leaders.every((l) => l === leader);
    }, "a leader known to every member");
    return leader;
  }

  /** Waits until every running member has applied what the leader had applied when called. */
  async converge(): Promise<void> {
    const leader = await this.agreeOnLeader();
    const target = this.member(leader).db.host.replica(1)!.appliedIndex;
    await waitFor(
      () => [...this.members.values()].every((m) => (m.db.host.replica(1)?.appliedIndex ?? 0) >= target),
      `every member applied ${target}`,
    );
  }

  async stop(id: number): Promise<void> {
    const member = this.member(id);
    this.members.delete(id);
    member.client.close();
    member.server.listener.close();
    member.server.grpc.close();
    await member.db.close();
  }

  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stop(id);
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
