/**
 * etcd's Lease service. Grants and revocations are commands of the range's Raft group (any
 * member proposes them). Keep-alive and time-to-live are answered by the range leader's lease
 * clock only: a member that does not lead forwards them to the leader over the native
 * protocol (`LeaderForwarder`), which the leader serves on the same client port. Answers
 * follow etcd: a keep-alive of an unknown or expired lease gets TTL 0, a time-to-live of one
 * gets TTL -1.
 */
import { create } from "@bufbuild/protobuf";
import type { GrpcCall, ServiceHandlers } from "./grpc-server.js";
import { leaseGrantRequest, leaseRevokeRequest } from "../../kv/commands.js";
import type { TimeToLive } from "../../kv/lease-clock.js";
import { KvError } from "../../kv/errors.js";
import { NotLeaderError } from "../../node/errors.js";
import { withLeaseKeys } from "../../placement/node-ranges.js";
import { connectRemote } from "../client.js";
import type { ConcordDb } from "../db.js";
import { ETCD_ERRORS, EtcdRpcError, toServiceError, unary, type EtcdContext } from "./context.js";
import { commandResponse } from "./convert.js";
import {
  LeaseGrantResponseSchema,
  LeaseKeepAliveResponseSchema,
  LeaseLeasesResponseSchema,
  LeaseRevokeResponseSchema,
  LeaseStatusSchema,
  LeaseTimeToLiveResponseSchema,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveRequest,
  type LeaseLeasesResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
} from "./gen/rpc_pb.js";

/** "host:port" of a client URL ("http://host:port"). */
function endpointOf(url: string): string | null {
  try {
    const { host } = new URL(url);
    return host === "" ? null : host;
  } catch {
    return null;
  }
}

/**
 * A native-protocol client of the other members, for the requests only the range leader
 * answers. Its endpoints are the other members' first client URLs, the believed leader
 * first; the client's own failover moves on until it finds the leader. It is replaced when
 * the member list's URLs change.
 */
export class LeaderForwarder {
  private client: ConcordDb | null = null;
  private endpointsKey = "";
  private closed = false;

  constructor(private readonly ctx: EtcdContext) {}

  keepAlive(id: bigint): Promise<number | null> {
    return this.forward((client) => client.leaseKeepAlive(id));
  }

  timeToLive(id: bigint): Promise<TimeToLive | null> {
    return this.forward((client) => client.leaseTimeToLive(id));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = null;
    await client?.close();
  }

  /**
   * Runs `request` against the leader. A failure to reach it becomes etcd's "request timed
   * out", which is what etcd answers when its own forwarding to the leader fails.
   */
  private async forward<T>(request: (client: ConcordDb) => Promise<T>): Promise<T> {
    const client = this.current();
    try {
      return await request(client);
    } catch (error) {
      if (error instanceof KvError || error instanceof EtcdRpcError) throw error;
      throw new EtcdRpcError(ETCD_ERRORS.timeout);
    }
  }

  private current(): ConcordDb {
    if (this.closed) throw new EtcdRpcError(ETCD_ERRORS.stopped);
    const leader = this.ctx.leaderId();
    const others = this.ctx
      .members()
      .filter((member) => member.id !== this.ctx.memberId)
      .sort((a, b) => Number(b.id === leader) - Number(a.id === leader));
    const endpoints = others.flatMap((member) => {
      const endpoint = member.clientUrls[0] === undefined ? null : endpointOf(member.clientUrls[0]);
      return endpoint === null ? [] : [endpoint];
    });
    if (endpoints.length === 0) throw new EtcdRpcError(ETCD_ERRORS.noLeader);
    const key = endpoints.join(",");
    if (this.client === null || key !== this.endpointsKey) {
      void this.client?.close();
      this.client = connectRemote({ endpoints, retry: { maxAttempts: 10, maxBackoffMs: 250 } });
      this.endpointsKey = key;
    }
    return this.client;
  }
}

function toTtlSeconds(ttl: bigint): number {
  // Anything above etcd's maximum is refused by the store with etcd's error; clamping keeps it above.
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  return Number(ttl > max ? max : ttl);
}

export function leaseService(ctx: EtcdContext, forwarder: LeaderForwarder): ServiceHandlers {
  const keepAlive = async (id: bigint): Promise<number | null> => {
    try {
      return await ctx.replica().leaseKeepAlive(id);
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      return forwarder.keepAlive(id);
    }
  };
  const timeToLive = async (id: bigint, withKeys: boolean): Promise<TimeToLive | null> => {
    let onLeader: TimeToLive | null;
    try {
      onLeader = ctx.replica().leaseTimeToLive(id);
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      onLeader = await forwarder.timeToLive(id);
    }
    return withLeaseKeys(onLeader, withKeys, ctx.kv());
  };

  return {
    LeaseGrant: unary(async (request: LeaseGrantRequest): Promise<LeaseGrantResponse> => {
      if (request.ID < 0n) throw new EtcdRpcError(ETCD_ERRORS.leaseNotFound);
      const result = await ctx.kv().propose(leaseGrantRequest(toTtlSeconds(request.TTL), request.ID));
      const granted = commandResponse(result, "leaseGrant");
      return create(LeaseGrantResponseSchema, {
        header: ctx.header(result.revision),
        ID: granted.id,
        TTL: BigInt(granted.ttlSeconds),
      });
    }),

    LeaseRevoke: unary(async (request: LeaseRevokeRequest): Promise<LeaseRevokeResponse> => {
      if (request.ID <= 0n) throw new EtcdRpcError(ETCD_ERRORS.leaseNotFound);
      const result = await ctx.kv().propose(leaseRevokeRequest(request.ID));
      commandResponse(result, "leaseRevoke");
      return create(LeaseRevokeResponseSchema, { header: ctx.header(result.revision) });
    }),

    LeaseKeepAlive: (call: GrpcCall) => {
      // Answered one at a time, in order: a keep-alive stream is a sequence of renewals.
      let chain = Promise.resolve();
      let ended = false;
      call.on("data", (request: LeaseKeepAliveRequest) => {
        chain = chain.then(async () => {
          if (ended) return;
          try {
            const ttl = request.ID > 0n ? await keepAlive(request.ID) : null;
            if (ended) return;
            call.write(
              create(LeaseKeepAliveResponseSchema, {
                header: ctx.header(),
                ID: request.ID,
                TTL: BigInt(ttl ?? 0),
              }),
            );
          } catch (error) {
            if (ended) return;
            ended = true;
            call.fail(toServiceError(error));
          }
        });
      });
      call.on("end", () => {
        void chain.then(() => {
          if (ended) return;
          ended = true;
          call.end();
        });
      });
      call.on("close", () => (ended = true));
    },

    LeaseTimeToLive: unary(async (request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> => {
      const ttl = request.ID > 0n ? await timeToLive(request.ID, request.keys) : null;
      if (ttl === null) {
        return create(LeaseTimeToLiveResponseSchema, { header: ctx.header(), ID: request.ID, TTL: -1n });
      }
      return create(LeaseTimeToLiveResponseSchema, {
        header: ctx.header(),
        ID: request.ID,
        TTL: BigInt(ttl.remainingTtlSeconds),
        grantedTTL: BigInt(ttl.grantedTtlSeconds),
        keys: [...ttl.keys],
      });
    }),

    LeaseLeases: unary((): LeaseLeasesResponse =>
      create(LeaseLeasesResponseSchema, {
        header: ctx.header(),
        leases: ctx
          .replica()
          .leases()
          .map((lease) => create(LeaseStatusSchema, { ID: lease.id })),
      }),
    ),
  };
}
