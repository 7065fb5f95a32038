/**
 * `MemberMetrics`: the Prometheus metrics of one member, served as `GET /metrics` on its client
 * port (http-endpoints.ts), as etcd serves its own. It owns the member's registry (prom-client;
 * never prom-client's global one: a test process runs several members) and the metrics in it.
 *
 * Every value is read when a scrape asks (a metric's `collect`) from what the member keeps
 * anyway — its NodeHost and replicas, the gRPC server's call counts, the write-ahead log's
 * statistics, the data dir's files — so request paths pay nothing for metrics, except the gRPC
 * server's few additions per call (grpc-server.ts), the peer transport's per-peer byte counts
 * (one addition per frame), one observation per write-ahead-log append, per lmdb commit and
 * per local snapshot, and two clock reads per range per turn that applies entries (slow
 * applies, NodeHost).
 *
 * Names are etcd's where the meaning is the same, so etcd's dashboards and alerts partly work;
 * Concord's own start with `concord_`. etcd's `etcd_server_*` metrics describe its one Raft
 * group; a Concord member runs one group per range, so has_leader, is_leader and
 * leader_changes_seen describe the range the etcd API answers for (range 1: the meta range,
 * which every member hosts and which is never merged away), and the proposal figures add up
 * every range the member hosts.
 *
 * The Node process metrics (prom-client's default ones, without prefix, as Node exporters name
 * them) describe the process, not a member: they live in ONE registry per process, made by the
 * first member, whose metrics every member's registry also holds. Making them per member would
 * leave a GC observer and an event-loop-delay monitor running for every member a process ever
 * opened.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from "prom-client";
import type { LmdbOrderedKv } from "../../kv/lmdb-engine.js";
import type { Replica } from "../../node/replica.js";
import { NONE, type NodeId } from "../../raft/types.js";
import type { WalStorageEngine } from "../../storage/wal/engine.js";
import type {
  PeerTrafficCounts,
  SnapshotsInFlight,
  SnapshotTransferListener,
} from "../../transport/transport.js";
import type { EtcdContext } from "./context.js";
import type { GrpcMethodCalls } from "./grpc-server.js";
import type { OpenWatchStreams } from "./watch-service.js";
import { directoryBytes, ETCD_COMPATIBLE_VERSION } from "./maintenance-service.js";

/** gRPC status codes by number, named as grpc-go names them in `grpc_code` (go-grpc-prometheus). */
const GRPC_CODE_NAMES: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** etcd's buckets for WAL fsync, backend commit and snapshot save durations: 1 ms to 8 s, doubling. */
const DISK_DURATION_BUCKETS = exponentialBuckets(0.001, 2, 14);

/**
 * How often the event-loop delay monitor samples, in ms. prom-client's default of 10 ms wakes an
 * idle member 100 times a second and cost 5.4 ms of CPU per second in a bare Node process on the
 * benchmark machine (0.7 ms at 100 ms): about a third of an idle member's CPU. A stall of d ms
 * still shows up in a sample with probability d/100, and always when it is longer.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

let processRegistry: Registry | null = null;

/** The process's default metrics, registered once (see the header). */
function processMetrics(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return processRegistry;
}

export interface MemberMetricsSources {
  /** The member (its NodeHost) and the range whose Raft group etcd's server metrics describe. */
  readonly context: EtcdContext;
  /** The gRPC server's counts of calls, per method served. */
  readonly grpcCalls: () => readonly GrpcMethodCalls[];
  /** The Watch streams open on the member's client port, and their watches. */
  readonly watchStreams: OpenWatchStreams;
  /** The member's data directory: the database size is the bytes of its files. */
  readonly dataDir?: string;
  /** The member's write-ahead log, and the clock (monotonic milliseconds) its appends are timed on. */
  readonly writeAheadLog?: { readonly engine: WalStorageEngine; readonly clock: () => number };
  /** The splits and merges this member coordinated, by cause; null until its placement layer runs. */
  readonly rangeChanges?: () => RangeChangeCounts | null;
  /** The state machines' lmdb engine, whose commits are timed on the clock (monotonic milliseconds). */
  readonly stateMachineCommits?: { readonly engine: LmdbOrderedKv; readonly clock: () => number };
  /** The peer transport (TcpTransport): bytes per peer and open connections; absent on a one-member cluster. */
  readonly peers?: PeerNetwork;
}

/** What the metrics read of the peer transport. */
export interface PeerNetwork {
  /** Frame bytes exchanged with each peer (TcpTransport.traffic). */
  traffic(): ReadonlyMap<NodeId, PeerTrafficCounts>;
  /** Peers with an open connection now. */
  connected(): readonly NodeId[];
  /** Tells `listener` of every snapshot transfer that ends from now on; returns its removal. */
  observeSnapshots(listener: SnapshotTransferListener): () => void;
  /** Snapshot transfers under way now, per peer. */
  snapshotsInFlight(): SnapshotsInFlight;
}

/** etcd's buckets for snapshot transfers: 0.1 s doubling to 51.2 s. */
const SNAPSHOT_DURATION_BUCKETS = exponentialBuckets(0.1, 2, 10);

/**
 * etcd's `etcd_network_snapshot_{send,receive}_{success,failures,total_duration_seconds}`, per
 * peer, fed by each transfer as it ends (the listener returned), and
 * `etcd_network_snapshot_{send,receive}_inflights_total`, read from `inFlight` when scraped (a
 * peer with none under way has no series).
 */
export function snapshotTransferMetrics(
  registers: Registry[],
  inFlight: () => SnapshotsInFlight,
): SnapshotTransferListener {
  const byDirection = (direction: "send" | "receive") => {
    const label = direction === "send" ? "To" : "From";
    const labelsOf = (peer: NodeId) => ({ [label]: memberIdLabel(peer) });
    new Gauge({
      name: `etcd_network_snapshot_${direction}_inflights_total`,
      help: `Total number of inflight snapshot ${direction}s. (Concord: per peer with one under way now; no series for the others.)`,
      labelNames: [label],
      registers,
      collect() {
        this.reset();
        const now = inFlight();
        for (const [peer, count] of direction === "send" ? now.sending : now.receiving)
          this.set(labelsOf(peer), count);
      },
    });
    return {
      labelsOf,
      success: new Counter({
        name: `etcd_network_snapshot_${direction}_success`,
        help: `Total number of successful snapshot ${direction}s. (Concord: ${
          direction === "send"
            ? "the peer verified and took the image"
            : "the image arrived whole and was taken"
        }.)`,
        labelNames: [label],
        registers,
      }),
      failures: new Counter({
        name: `etcd_network_snapshot_${direction}_failures`,
        help: `Total number of snapshot ${direction} failures.`,
        labelNames: [label],
        registers,
      }),
      seconds: new Histogram({
        name: `etcd_network_snapshot_${direction}_total_duration_seconds`,
        help: `Total latency distributions of v3 snapshot ${direction}s. (Concord: from the first chunk to the outcome, failures included.)`,
        labelNames: [label],
        buckets: SNAPSHOT_DURATION_BUCKETS,
        registers,
      }),
    };
  };
  const sends = byDirection("send");
  const receives = byDirection("receive");
  return ({ peer, direction, succeeded, milliseconds }) => {
    const metrics = direction === "send" ? sends : receives;
    const labels = metrics.labelsOf(peer);
    (succeeded ? metrics.success : metrics.failures).inc(labels);
    metrics.seconds.observe(labels, milliseconds / 1000);
  };
}

/** A member id as etcd writes it in metric labels and logs: hexadecimal, no leading zeros. */
function memberIdLabel(id: NodeId): string {
  return id.toString(16);
}

/** Splits and merges by cause (SplitCoordinator's and MergeCoordinator's counters). */
export interface RangeChangeCounts {
  readonly splits: Readonly<Record<string, number>>;
  readonly merges: Readonly<Record<string, number>>;
}

/** A counter set to a count kept elsewhere (a prom-client counter otherwise only goes up by `inc`). */
function setCounter(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}

function callLabels(calls: GrpcMethodCalls): Record<string, string> {
  return { grpc_type: calls.type, grpc_service: calls.service, grpc_method: calls.method };
}

export class MemberMetrics {
  /** The member's registry: its own metrics and the process's. */
  readonly registry: Registry;
  /** Stops timing the write-ahead log's appends, the state machines' commits and the local snapshots. */
  private readonly stopTiming: () => void;

  constructor(sources: MemberMetricsSources) {
    const registers = [new Registry()];
    const { host } = sources.context;
    const etcdRange = () => host.replica(sources.context.rangeId);
    const hosted = () => host.rangeIds().flatMap((rangeId) => host.replica(rangeId) ?? []);
    const sum = (value: (replica: Replica) => number) =>
      hosted().reduce((total, replica) => total + value(replica), 0);

    // Who answers: constant series with the value in a label, as etcd exposes them.
    const identity: [string, string, string, string][] = [
      [
        "etcd_server_version",
        "Which version is running. 1 for 'server_version' label with current version.",
        "server_version",
        ETCD_COMPATIBLE_VERSION,
      ],
      [
        "etcd_cluster_version",
        "Which version is running. 1 for 'cluster_version' label with current cluster version",
        "cluster_version",
        ETCD_COMPATIBLE_VERSION.split(".").slice(0, 2).join("."),
      ],
      [
        "etcd_server_id",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        "server_id",
        memberIdLabel(host.nodeId),
      ],
    ];
    for (const [name, help, label, value] of identity) {
      new Gauge({ name, help, labelNames: [label], registers }).set({ [label]: value }, 1);
    }
    new Gauge({
      name: "etcd_server_is_learner",
      help: "Whether or not this member is a learner. 1 if is, 0 otherwise. (Concord: in range 1, the meta range.)",
      registers,
      collect() {
        const learners = etcdRange()?.status().confState.learners ?? [];
        this.set(learners.includes(host.nodeId) ? 1 : 0);
      },
    });
    new Gauge({
      name: "etcd_server_has_leader",
      help: "Whether or not a leader exists. 1 is existence, 0 is not. (Concord: of range 1, the meta range.)",
      registers,
      collect() {
        const leader = etcdRange()?.termLeaderRevision().leader ?? NONE;
        this.set(leader === NONE ? 0 : 1);
      },
    });
    new Gauge({
      name: "etcd_server_is_leader",
      help: "Whether or not this member is a leader. 1 if is, 0 otherwise. (Concord: of range 1, the meta range.)",
      registers,
      collect() {
        this.set(etcdRange()?.termLeaderRevision().leader === host.nodeId ? 1 : 0);
      },
    });
    new Counter({
      name: "etcd_server_leader_changes_seen_total",
      help: "The number of leader changes seen. (Concord: by this member's replica of range 1, since it started.)",
      registers,
      collect() {
        setCounter(this, etcdRange()?.leaderChangesSeen ?? 0);
      },
    });
    new Gauge({
      name: "etcd_server_proposals_committed_total",
      help: "The total number of consensus proposals committed. (Concord: the commit indexes of the ranges this member hosts, added up.)",
      registers,
      collect() {
        this.set(sum((replica) => replica.commitIndex));
      },
    });
    new Gauge({
      name: "etcd_server_proposals_applied_total",
      help: "The total number of consensus proposals applied. (Concord: the applied indexes of the ranges this member hosts, added up.)",
      registers,
      collect() {
        this.set(sum((replica) => replica.appliedIndex));
      },
    });
    new Gauge({
      name: "etcd_server_proposals_pending",
      help: "The current number of pending proposals to commit. (Concord: on every range this member hosts.)",
      registers,
      collect() {
        this.set(sum((replica) => replica.pendingProposals));
      },
    });
    new Counter({
      name: "etcd_server_proposals_failed_total",
      help: "The total number of failed proposals seen. (Concord: proposals this member took that ended in an error.)",
      registers,
      collect() {
        setCounter(this, host.counters.proposalsFailed);
      },
    });
    new Gauge({
      name: "concord_ranges",
      help: "Ranges this member hosts a replica of.",
      registers,
      collect() {
        this.set(host.rangeIds().length);
      },
    });
    new Gauge({
      name: "concord_ranges_led",
      help: "Ranges whose leader is this member.",
      registers,
      collect() {
        this.set(sum((replica) => (replica.termLeaderRevision().leader === host.nodeId ? 1 : 0)));
      },
    });
    new Counter({
      name: "grpc_server_started_total",
      help: "Total number of RPCs started on the server.",
      labelNames: ["grpc_type", "grpc_service", "grpc_method"],
      registers,
      collect() {
        this.reset();
        for (const calls of sources.grpcCalls()) this.inc(callLabels(calls), calls.started);
      },
    });
    new Counter({
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
      registers,
      collect() {
        this.reset();
        for (const calls of sources.grpcCalls()) {
          calls.handled.forEach((count, code) => {
            if (count > 0) this.inc({ ...callLabels(calls), grpc_code: GRPC_CODE_NAMES[code]! }, count);
          });
        }
      },
    });
    const grpcBytes = (direction: "receivedBytes" | "sentBytes") =>
      sources.grpcCalls().reduce((total, calls) => total + calls[direction], 0);
    new Counter({
      name: "etcd_network_client_grpc_received_bytes_total",
      help: "The total number of bytes received from grpc clients. (Concord: request messages, without gRPC framing.)",
      registers,
      collect() {
        setCounter(this, grpcBytes("receivedBytes"));
      },
    });
    new Counter({
      name: "etcd_network_client_grpc_sent_bytes_total",
      help: "The total number of bytes sent to grpc clients. (Concord: response messages, without gRPC framing.)",
      registers,
      collect() {
        setCounter(this, grpcBytes("sentBytes"));
      },
    });
    const { watchStreams } = sources;
    new Gauge({
      name: "etcd_debugging_mvcc_watch_stream_total",
      help: "Total number of watch streams. (Concord: Watch gRPC streams open on this member.)",
      registers,
      collect() {
        this.set(watchStreams.streamCount);
      },
    });
    new Gauge({
      name: "etcd_debugging_mvcc_watcher_total",
      help: "Total number of watchers. (Concord: watches open on this member's Watch streams.)",
      registers,
      collect() {
        this.set(watchStreams.watchCount);
      },
    });
    new Counter({
      name: "etcd_server_slow_apply_total",
      help: "The total number of slow apply requests (likely overloaded from slow disk). (Concord: one range's committed entries of one turn that took 100 ms or more to apply.)",
      registers,
      collect() {
        setCounter(this, host.counters.slowApplies);
      },
    });
    const { dataDir, writeAheadLog, rangeChanges, stateMachineCommits, peers } = sources;
    if (peers !== undefined) {
      new Gauge({
        name: "etcd_network_active_peers",
        help: "The current number of active peer connections. (Concord: 1 per peer connected now.)",
        labelNames: ["Local", "Remote"],
        registers,
        collect() {
          this.reset();
          const local = memberIdLabel(host.nodeId);
          for (const peer of peers.connected()) this.set({ Local: local, Remote: memberIdLabel(peer) }, 1);
        },
      });
      new Counter({
        name: "etcd_network_peer_sent_bytes_total",
        help: "The total number of bytes sent to peers. (Concord: peer transport frames, headers included.)",
        labelNames: ["To"],
        registers,
        collect() {
          this.reset();
          for (const [peer, bytes] of peers.traffic()) this.inc({ To: memberIdLabel(peer) }, bytes.sent);
        },
      });
      new Counter({
        name: "etcd_network_peer_sent_failures_total",
        help: "The total number of send failures from peers. (Concord: Raft messages for the peer dropped: its send queue full while it is slow or down, an unknown peer, an envelope too large for a frame, the transport closed.)",
        labelNames: ["To"],
        registers,
        collect() {
          this.reset();
          for (const [peer, counts] of peers.traffic())
            if (counts.messagesDropped > 0) this.inc({ To: memberIdLabel(peer) }, counts.messagesDropped);
        },
      });
      new Counter({
        name: "etcd_network_peer_received_bytes_total",
        help: "The total number of bytes received from peers. (Concord: peer transport frames, headers included.)",
        labelNames: ["From"],
        registers,
        collect() {
          this.reset();
          for (const [peer, bytes] of peers.traffic())
            this.inc({ From: memberIdLabel(peer) }, bytes.received);
        },
      });
    }
    const stops: (() => void)[] = [];
    if (peers !== undefined) {
      const ended = snapshotTransferMetrics(registers, () => peers.snapshotsInFlight());
      stops.push(peers.observeSnapshots(ended));
    }
    if (rangeChanges !== undefined) {
      const byCause = (counter: Counter, counts: Readonly<Record<string, number>> | undefined) => {
        counter.reset();
        for (const [cause, count] of Object.entries(counts ?? {})) counter.inc({ cause }, count);
      };
      new Counter({
        name: "concord_range_splits_total",
        help: "Range splits this member coordinated (the meta leader's automatic ones, and those asked of it), by cause: load, size, manual, recovered (finished for a coordinator that stopped).",
        labelNames: ["cause"],
        registers,
        collect() {
          byCause(this, rangeChanges()?.splits);
        },
      });
      new Counter({
        name: "concord_range_merges_total",
        help: "Range merges this member coordinated, by cause: cold, manual, recovered.",
        labelNames: ["cause"],
        registers,
        collect() {
          byCause(this, rangeChanges()?.merges);
        },
      });
    }
    if (dataDir !== undefined) {
      new Gauge({
        name: "etcd_mvcc_db_total_size_in_bytes",
        help: "Total size of the underlying database physically allocated in bytes. (Concord: the files under the data dir, as Maintenance.Status's dbSize.)",
        registers,
        collect() {
          this.set(directoryBytes(dataDir));
        },
      });
    }
    if (stateMachineCommits !== undefined) {
      const commits = new Histogram({
        name: "etcd_disk_backend_commit_duration_seconds",
        help: "The latency distributions of commit called by backend. (Concord: each commit of the state machines' lmdb environment, fsync included.)",
        buckets: DISK_DURATION_BUCKETS,
        registers,
      });
      stops.push(
        stateMachineCommits.engine.observeCommits(stateMachineCommits.clock, (_operations, milliseconds) =>
          commits.observe(milliseconds / 1000),
        ),
      );
    }
    if (writeAheadLog !== undefined) {
      const { engine, clock } = writeAheadLog;
      const fsyncs = new Histogram({
        name: "etcd_disk_wal_fsync_duration_seconds",
        help: "The latency distributions of fsync called by WAL. (Concord: each write-ahead-log append, one O_DSYNC write.)",
        buckets: DISK_DURATION_BUCKETS,
        registers,
      });
      stops.push(engine.observeAppends(clock, (_bytes, milliseconds) => fsyncs.observe(milliseconds / 1000)));
      new Counter({
        name: "concord_wal_bytes_total",
        help: "Bytes of the frames appended to the write-ahead log since it opened.",
        registers,
        collect() {
          setCounter(this, engine.stats().bytesCommitted);
        },
      });
    }
    const checkpoints = new Histogram({
      name: "etcd_debugging_snap_save_total_duration_seconds",
      help: "The total latency distributions of save called by snapshot. (Concord: each local snapshot of a range's replica: its state machine synced to disk and the snapshot recorded, after which the Raft log before it can be compacted.)",
      buckets: DISK_DURATION_BUCKETS,
      registers,
    });
    stops.push(host.observeCheckpoints((milliseconds) => checkpoints.observe(milliseconds / 1000)));
    this.stopTiming = () => stops.forEach((stop) => stop());
    this.registry = Registry.merge([processMetrics(), ...registers]);
  }

  /** The text format's content type (`text/plain; version=0.0.4; charset=utf-8`). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus's text format, as of now. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops timing the write-ahead log's appends, the lmdb commits and the local snapshots (the member is closing). */
  close(): void {
    this.stopTiming();
  }
}
