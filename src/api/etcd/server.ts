/**
 * `EtcdServer`: the etcd v3 gRPC API of one Concord member — a GrpcServer with the KV,
 * Watch, Lease, Cluster and Maintenance services and etcd's Election and Lock services, their
 * definitions built from the generated descriptors, and Concord's Ranges admin service when
 * the member has a range admin (range-service.ts) — and the member's metrics (metrics.ts),
 * which the client port serves at `GET /metrics`. It listens on no port of its own: the
 * client port (client-port.ts) hands it the connections that start with the HTTP/2 preface
 * (`injectConnection`).
 */
import type { Duplex } from "node:stream";
import type { NodeHost } from "../../node/host.js";
import type { WalStorageEngine } from "../../storage/wal/engine.js";
import type { Logger } from "../../transport/transport.js";
import { clusterService } from "./cluster-service.js";
import type { RoutedKv } from "../../placement/node-ranges.js";
import { EtcdContext } from "./context.js";
import { electionService } from "./election-service.js";
import { Cluster, KV, Lease, Maintenance } from "./gen/rpc_pb.js";
import { Ranges } from "./gen/concord/ranges_pb.js";
import { Election } from "./gen/v3election_pb.js";
import { Lock } from "./gen/v3lock_pb.js";
import { GrpcServer } from "./grpc-server.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import { kvService } from "./kv-service.js";
import { LeaderForwarder, leaseService } from "./lease-service.js";
import { lockService } from "./lock-service.js";
import { maintenanceService } from "./maintenance-service.js";
import { MemberMetrics, type MemberMetricsSources, type RangeChangeCounts } from "./metrics.js";
import { rangeService, type RangeAdmin } from "./range-service.js";
import { OpenWatchStreams, watchService, watchServiceDefinition } from "./watch-service.js";

/**
 * The largest request message accepted: etcd's default request limit (1.5 MiB) plus its
 * allowance for gRPC overhead (512 KiB). Larger ones fail with RESOURCE_EXHAUSTED before any
 * handler.
 */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024 + 512 * 1024;

export interface EtcdServerOptions {
  readonly host: NodeHost;
  /** The cluster id responses carry (see `etcdClusterId`). */
  readonly clusterId: bigint;
  /** Routes key-value requests, watches and leases over the ranges (default: range 1 alone). */
  readonly kv?: RoutedKv;
  /** The member's data directory (Maintenance.Status and the metrics report its size). */
  readonly dataDir?: string;
  /**
   * The member's write-ahead log, whose appends the metrics time on `clock` (monotonic
   * milliseconds) while the server runs. Without it (an lmdb Raft log) they are not timed.
   */
  readonly writeAheadLog?: { readonly engine: WalStorageEngine; readonly clock: () => number };
  /** Serves concordpb.Ranges (list, split) over it; without one that service is UNIMPLEMENTED. */
  readonly rangeAdmin?: RangeAdmin;
  /** The splits and merges the member coordinated, for its metrics (MemberMetricsSources.rangeChanges). */
  readonly rangeChanges?: () => RangeChangeCounts | null;
  /** The state machines' engine, whose commits the metrics time (MemberMetricsSources.stateMachineCommits). */
  readonly stateMachineCommits?: MemberMetricsSources["stateMachineCommits"];
  /** The peer transport, for the metrics (MemberMetricsSources.peers). */
  readonly peers?: MemberMetricsSources["peers"];
  /** Where a service's failure outside any call goes (a bug: an event listener that threw). */
  readonly logger?: Logger;
}

export class EtcdServer {
  readonly context: EtcdContext;
  readonly metrics: MemberMetrics;
  private readonly grpc: GrpcServer;
  private readonly forwarder: LeaderForwarder;

  constructor(options: EtcdServerOptions) {
    this.context = new EtcdContext({
      host: options.host,
      clusterId: options.clusterId,
      ...(options.kv === undefined ? {} : { kv: options.kv }),
    });
    this.forwarder = new LeaderForwarder(this.context);
    const logger = options.logger;
    this.grpc = new GrpcServer({
      maxReceiveMessageBytes: MAX_REQUEST_BYTES,
      ...(logger === undefined
        ? {}
        : {
            onHandlerError: (error: unknown) =>
              logger.warn({ error: String(error) }, "etcd API handler failed"),
          }),
    });
    const ctx = this.context;
    this.grpc.addService(grpcServiceDefinition(KV), kvService(ctx));
    const watchStreams = new OpenWatchStreams();
    this.grpc.addService(watchServiceDefinition(), watchService(ctx, watchStreams));
    this.grpc.addService(grpcServiceDefinition(Lease), leaseService(ctx, this.forwarder));
    this.grpc.addService(grpcServiceDefinition(Cluster), clusterService(ctx));
    this.grpc.addService(
      grpcServiceDefinition(Maintenance),
      maintenanceService(ctx, options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    );
    this.grpc.addService(grpcServiceDefinition(Election), electionService(ctx));
    this.grpc.addService(grpcServiceDefinition(Lock), lockService(ctx));
    if (options.rangeAdmin !== undefined)
      this.grpc.addService(grpcServiceDefinition(Ranges), rangeService(ctx, options.rangeAdmin));
    this.metrics = new MemberMetrics({
      context: ctx,
      grpcCalls: () => this.grpc.methodCalls(),
      watchStreams,
      ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
      ...(options.writeAheadLog === undefined ? {} : { writeAheadLog: options.writeAheadLog }),
      ...(options.rangeChanges === undefined ? {} : { rangeChanges: options.rangeChanges }),
      ...(options.stateMachineCommits === undefined
        ? {}
        : { stateMachineCommits: options.stateMachineCommits }),
      ...(options.peers === undefined ? {} : { peers: options.peers }),
    });
  }

  /** Serves gRPC on an accepted connection (bytes already read must have been unshifted). */
  injectConnection(connection: Duplex): void {
    this.grpc.injectConnection(connection);
  }

  /**
   * Closes every connection at once (calls in flight end with an error) and the forwarder, and
   * stops timing the write-ahead log and the lmdb commits.
   */
  async close(): Promise<void> {
    this.grpc.close();
    this.metrics.close();
    await this.forwarder.close();
  }
}
