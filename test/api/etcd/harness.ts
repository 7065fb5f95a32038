// Concord members in this process serving the etcd v3 API on their client port
// (Concord.open with listenClient), and `etcd3` clients for them: the harness of the etcd
// server tests. One member alone, or three with static peers on 127.0.0.1.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { credentials, makeGenericClientConstructor, type Client } from "@grpc/grpc-js";
import { Etcd3 } from "etcd3";
import { grpcServiceDefinition } from "../../../src/api/etcd/grpc-service.js";
import { Concord, type EmbeddedConcord } from "../../../src/api/index.js";
import { freePort } from "../../free-port.js";
import { waitFor } from "../helpers.js";

/** A plain grpc-js client of `service` at `endpoint`, for calls etcd3 cannot make or checks of raw answers. */
export function rawClient(service: DescService, endpoint: string): Client {
  const Constructor = makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  return new Constructor(endpoint, credentials.createInsecure());
}

/** `promise`, or a rejection naming `what` if it has not settled within 10 s (waits stay bounded). */
export async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), 10_000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class EtcdCluster {
  readonly members = new Map<number, EmbeddedConcord>();
  private readonly dirs: string[] = [];
  private readonly clients: Etcd3[] = [];

  /** Opens `size` members (1: a one-node store) and waits until they agree on a leader. */
  static async start(size: number): Promise<EtcdCluster> {
    const cluster = new EtcdCluster();
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const peers = new Map<number, string>();
    if (size > 1) for (const id of ids) peers.set(id, `127.0.0.1:${await freePort()}`);
    const opened = await Promise.all(
      ids.map((nodeId) => {
        const dataDir = mkdtempSync(join(tmpdir(), `concord-etcd-${nodeId}-`));
        cluster.dirs.push(dataDir);
        return Concord.open({
          dataDir,
          nodeId,
          ...(size > 1 ? { peers } : {}),
          listenClient: "127.0.0.1:0",
          tickMs: 20,
          clusterId: "etcd-test",
        });
      }),
    );
    for (const member of opened) cluster.members.set(member.nodeId, member);
    await cluster.agreeOnLeader();
    return cluster;
  }

  async agreeOnLeader(): Promise<number> {
    let leader = 0;
    await waitFor(async () => {
      const statuses = await Promise.all([...this.members.values()].map((m) => m.status()));
      leader = statuses[0]?.leader ?? 0;
      return leader !== 0 && statuses.every((s) => s.leader === leader);
    }, "the members to agree on a leader");
    return leader;
  }

  member(id: number): EmbeddedConcord {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  /** "127.0.0.1:port" of a member's client port. */
  endpoint(id: number): string {
    const address = this.member(id).clientAddress();
    if (address === null) throw new Error(`member ${id} serves no clients`);
    return `${address.host}:${address.port}`;
  }

  /** An etcd3 client of member `id` only. */
  client(id: number): Etcd3 {
    const client = new Etcd3({ hosts: `http://${this.endpoint(id)}`, dialTimeout: 5_000 });
    this.clients.push(client);
    return client;
  }

  async leaderId(): Promise<number> {
    return this.agreeOnLeader();
  }

  async followerId(): Promise<number> {
    const leader = await this.leaderId();
    const follower = [...this.members.keys()].find((id) => id !== leader);
    if (follower === undefined) throw new Error("no follower");
    return follower;
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.close();
    await Promise.all([...this.members.values()].map((member) => member.close()));
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
