/**
 * `openEmbedded` (exposed as `Concord.open`): a Concord member inside the calling process.
 * It assembles the production parts — a WalStorageEngine for the Raft logs (an
 * LmdbStorageEngine in data dirs made before the write-ahead log) and an LmdbOrderedKv for the
 * state machines under `dataDir`, a NodeHost, a TcpTransport when the
 * process is a member of a cluster (`peers`), and optionally a client port serving both the etcd
 * v3 gRPC API and the native protocol (ClientPort) for remote
 * clients — bootstraps range 1 on first open and reopens it from disk afterwards. The handle
 * it returns is a ConcordDb whose requests go straight to the local replicas.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { LmdbOrderedKv } from "../kv/lmdb-engine.js";
import { rangeNamespace } from "../kv/keys.js";
import type { KvCommand, RangeRequest } from "../kv/commands.js";
import type { TimeToLive } from "../kv/lease-clock.js";
import type { LeaseSummary } from "../kv/leases.js";
import type { CommandResult, RangeResult } from "../kv/results.js";
import type { WatchRequest } from "../kv/watch.js";
import { NodeHost } from "../node/host.js";
import type { Replica } from "../node/replica.js";
import { followMemberPeers } from "../node/members.js";
import type { LocalMemberAttributes, ReadConsistency, RequestId } from "../node/types.js";
import { NodeRanges, withLeaseKeys, type RoutedKv } from "../placement/node-ranges.js";
import type { SplitPolicyOptions } from "../placement/split/policy.js";
import { ReadOnlyOption } from "../raft/index.js";
import { EMPTY_CONF_STATE, type NodeId } from "../raft/types.js";
import type { StorageEngine } from "../storage/contracts.js";
import type { StorageLogger } from "../storage/errors.js";
import { LmdbStorageEngine } from "../storage/lmdb/engine.js";
import { WalStorageEngine } from "../storage/wal/engine.js";
import { MemoryNetwork } from "../transport/memory.js";
import { TcpTransport, type PeerAddress } from "../transport/tcp.js";
import { systemRandom, systemTimers } from "../transport/timers.js";
import type { Logger, Transport } from "../transport/transport.js";
import { parseAddress } from "./address.js";
import { LINEARIZABLE_READS, type LinearizableReads } from "./linearizable-reads.js";
import { ConcordDb, type Backend, type RetryPolicy } from "./db.js";
import { ReplicaStoppedError } from "./errors.js";
import { ClientPort } from "./etcd/client-port.js";
import { etcdClusterId } from "./etcd/context.js";
import type { RangeAdmin } from "./etcd/range-service.js";
import { EtcdServer } from "./etcd/server.js";
import { NativeServer, rangeStatus } from "./native/server.js";
import type { RangeStatus } from "./native/protocol.js";
import type { ConcordWatch } from "./watch.js";

/** The range every cluster starts with; it covers the whole keyspace until ranges split. */
export const FIRST_RANGE_ID = 1;

export interface OpenOptions {
  /** Directory of this member's data (created when missing). */
  readonly dataDir: string;
  /** This member's id (default 1). */
  readonly nodeId?: number;
  /**
   * The members of a static cluster, id → "host:port" of their peer port; this member may be
   * among them. Without peers the store is a one-node cluster and opens no peer port.
   */
  readonly peers?: ReadonlyMap<number, string> | Readonly<Record<number, string>>;
  /** Where this member listens for peers (default: its own entry in `peers`, else 127.0.0.1:0). */
  readonly listenPeer?: string;
  /** Where to serve native-protocol clients ("host:port"; default: no client port). */
  readonly listenClient?: string;
  /**
   * Where plain HTTP ports serve /metrics, /health and /version besides the client port
   * ("host:port" each; etcd's `--listen-metrics-urls`). Needs `listenClient`.
   */
  readonly listenMetrics?: readonly string[];
  /** Members of other clusters are refused at the peer handshake (default "concord"). */
  readonly clusterId?: string;
  /**
   * On an empty data dir, join a running cluster instead of founding one: wait until its
   * leader adds this member (after MemberAdd) and catches it up. `peers` must list members
   * to dial; the member table replicated to this member adds the rest.
   */
  readonly join?: boolean;
  /** This member's name and URLs, published to the replicated member table once it runs. */
  readonly member?: LocalMemberAttributes;
  /** Milliseconds per Raft tick (default 100). */
  readonly tickMs?: number;
  /** A write without a result after this long fails as ambiguous (the node's default: 10 s). */
  readonly proposalTimeoutMs?: number;
  /**
   * How a range's leader confirms a linearizable read (default "lease"): "lease" serves it at
   * once while a quorum answered a heartbeat within the last election timeout less a margin
   * (judged on the leader's monotonic clock; followers refuse votes meanwhile), as TiKV does;
   * "read-index" waits for a quorum to answer a heartbeat sent after the read arrived, as etcd
   * does, and assumes nothing about clocks. See docs/etcd-compatibility.md.
   */
  readonly linearizableReads?: LinearizableReads;
  /**
   * Longest a follower with nothing waiting on it (no write proposed through it, no client
   * watch) may wait to hear that writes committed (default 20 ms; 0: at once, as etcd).
   * Serializable reads and background watches there may lag the leader by this much.
   */
  readonly commitNoticeDelayMs?: number;
  readonly logger?: Logger;
  readonly retry?: Partial<RetryPolicy>;
  /** Called once if the member stops on an error it cannot recover from (e.g. a failed fsync). */
  readonly onFailure?: (error: Error) => void;
  /**
   * Called once when this member is removed from the cluster (MemberRemove applied here). The
   * member keeps running until closed; `concord start` exits, as an etcd member does.
   */
  readonly onRemoved?: () => void;
  /** Split ranges by load and size on their own (default true); `concord range split` always works. */
  readonly autoSplit?: boolean;
  /** Merge adjacent small, cold ranges on their own (default: as autoSplit); `concord range merge` always works. */
  readonly autoMerge?: boolean;
  /** Thresholds of automatic splits and merges (defaults: src/placement/split/policy.ts). */
  readonly splitPolicy?: SplitPolicyOptions;
  /** How often a range's size is measured for size splits (default 30,000 ms). */
  readonly rangeSizeRefreshMs?: number;
  /**
   * etcd's periodic auto-compaction: keep this many milliseconds of history (the leader of
   * range 1 compacts every range at the revision of that long ago, every min(retention, 1 h)).
   * Absent or 0: off, as in etcd.
   */
  readonly autoCompactionRetentionMs?: number;
}

const READ_ONLY_OPTIONS: Readonly<Record<LinearizableReads, ReadOnlyOption>> = {
  lease: ReadOnlyOption.LeaseBased,
  "read-index": ReadOnlyOption.Safe,
};

const SILENT_LOGGER: Logger = { warn: () => {}, info: () => {} };

function readOnlyOption(reads: LinearizableReads = "lease"): ReadOnlyOption {
  if (!Object.hasOwn(READ_ONLY_OPTIONS, reads)) {
    const known = LINEARIZABLE_READS.map((mode) => JSON.stringify(mode)).join(" or ");
    throw new RangeError(`linearizableReads must be ${known}, got ${JSON.stringify(reads)}`);
  }
  return READ_ONLY_OPTIONS[reads];
}

function peerMap(peers: OpenOptions["peers"]): Map<NodeId, PeerAddress> {
  const entries: [number, string][] =
    peers instanceof Map
      ? [...(peers as ReadonlyMap<number, string>)]
      : Object.entries(peers ?? {}).map(([id, address]: [string, string]): [number, string] => [
          Number(id),
          address,
        ]);
  const map = new Map<NodeId, PeerAddress>();
  for (const [id, address] of entries) {
    if (!Number.isSafeInteger(id) || id <= 0) throw new RangeError(`peer id ${id} is not a positive integer`);
    map.set(id, parseAddress(address));
  }
  return map;
}

/** The value of `run`, or its exception as a rejection. */
function settle<T>(run: () => T): Promise<T> {
  return new Promise((resolve) => resolve(run()));
}

/** The running parts of an embedded member; closing the handle closes them in order. */
class EmbeddedBackend implements Backend {
  /** The placement layer, once range 1 exists on this node (null before, and on a joining node until then). */
  ranges: NodeRanges | null = null;

  /** Requests of the client port and of this handle: routed once `ranges` exists, else range 1's replica. */
  readonly kv: RoutedKv = {
    propose: (command, request) => this.routed().propose(command, request),
    range: (request, consistency) => this.routed().range(request, consistency),
    watch: (request) => this.routed().watch(request),
    leaseKeys: (id) => this.routed().leaseKeys(id),
    hashKv: (revision) => this.routed().hashKv(revision),
    backupImage: () => this.routed().backupImage(),
    compactedPhysically: () => this.routed().compactedPhysically(),
  };

  /** `concord range list|split` over the placement layer. */
  readonly rangeAdmin: RangeAdmin = {
    list: () => settle(() => this.placement().list()),
    split: (key) => settle(() => this.placement()).then((ranges) => ranges.split(key)),
    merge: (routeId) => settle(() => this.placement()).then((ranges) => ranges.merge(routeId)),
  };

  constructor(
    readonly host: NodeHost,
    private readonly transport: Transport,
    private readonly raftEngine: RaftLogEngine,
    private readonly stateMachineKv: LmdbOrderedKv,
  ) {}

  server: ClientPort | null = null;

  async write(_rangeId: number, command: KvCommand, request: RequestId): Promise<CommandResult> {
    return this.kv.propose(command, request);
  }

  async read(_rangeId: number, request: RangeRequest, consistency: ReadConsistency): Promise<RangeResult> {
    return this.kv.range(request, consistency);
  }

  status(rangeId: number): Promise<RangeStatus> {
    return settle(() => rangeStatus(this.replica(rangeId)));
  }

  watch(_rangeId: number, request: WatchRequest): Promise<ConcordWatch> {
    return settle(() => this.kv.watch(request));
  }

  leaseKeepAlive(rangeId: number, id: bigint): Promise<number | null> {
    return settle(() => this.replica(rangeId)).then((replica) => replica.leaseKeepAlive(id));
  }

  async leaseTimeToLive(rangeId: number, id: bigint, withKeys: boolean): Promise<TimeToLive | null> {
    const timeToLive = await settle(() => this.replica(rangeId).leaseTimeToLive(id));
    return withLeaseKeys(timeToLive, withKeys, this.kv);
  }

  leases(rangeId: number): Promise<readonly LeaseSummary[]> {
    return settle(() => this.replica(rangeId).leases());
  }

  async close(): Promise<void> {
    await this.server?.close();
    await this.ranges?.stop();
    await this.host.stop();
    await this.transport.close();
    await this.raftEngine.close();
    await this.stateMachineKv.close();
  }

  private routed(): RoutedKv {
    return this.ranges ?? this.replica(FIRST_RANGE_ID);
  }

  private placement(): NodeRanges {
    if (this.ranges === null) throw new ReplicaStoppedError(FIRST_RANGE_ID);
    return this.ranges;
  }

  private replica(rangeId: number): Replica {
    const replica = this.host.replica(rangeId);
    if (replica === undefined) throw new ReplicaStoppedError(rangeId);
    return replica;
  }
}

/** A Concord member running in this process, and a client handle on it. */
export class EmbeddedConcord extends ConcordDb {
  readonly nodeId: NodeId;
  readonly host: NodeHost;

  constructor(
    private readonly parts: EmbeddedBackend,
    retry: Partial<RetryPolicy> | undefined,
    private readonly peerTransport: TcpTransport | null,
  ) {
    super(parts, retry);
    this.host = parts.host;
    this.nodeId = parts.host.nodeId;
  }

  /** Where the client port (etcd gRPC and native protocol) listens, or null without `listenClient`. */
  clientAddress(): PeerAddress | null {
    return this.parts.server?.address() ?? null;
  }

  /** Where the metrics ports (`listenMetrics`) listen, in the order given; empty without them. */
  metricsAddresses(): PeerAddress[] {
    return this.parts.server?.metricsAddresses() ?? [];
  }

  /** This member's placement layer (routes, splits), or null while it has no range 1 yet. */
  get ranges(): NodeRanges | null {
    return this.parts.ranges;
  }

  /** Where the peer transport listens, or null for a one-node store. */
  peerAddress(): PeerAddress | null {
    return this.peerTransport?.address() ?? null;
  }
}

/** Where a member keeps its state machines' store, under its data dir. */
export const STATE_MACHINE_DIR = "state";
/** The Raft logs' directory in a data dir: a write-ahead log (WalStorageEngine). */
export const RAFT_LOG_DIR = "raft-log";
/** Where data dirs made before the write-ahead log keep their Raft logs: an lmdb environment. */
const LMDB_RAFT_LOG_DIR = "raft";

type RaftLogEngine = StorageEngine & { close(): Promise<void> };

/**
 * The data dir's Raft log engine: the write-ahead log, or, in a data dir an earlier version
 * made, the lmdb environment it already holds (kept as it is, so upgrading needs no migration).
 */
function openRaftLog(dataDir: string, logger: StorageLogger): Promise<RaftLogEngine> {
  const lmdbPath = join(dataDir, LMDB_RAFT_LOG_DIR);
  return existsSync(lmdbPath)
    ? LmdbStorageEngine.open({ path: lmdbPath, logger })
    : WalStorageEngine.open({ path: join(dataDir, RAFT_LOG_DIR), logger });
}

export async function openEmbedded(options: OpenOptions): Promise<EmbeddedConcord> {
  const nodeId = options.nodeId ?? 1;
  if (!Number.isSafeInteger(nodeId) || nodeId <= 0)
    throw new RangeError(`nodeId ${nodeId} is not a positive integer`);
  const logger = options.logger ?? SILENT_LOGGER;
  const peers = peerMap(options.peers);
  const reads = readOnlyOption(options.linearizableReads);
  const clustered = peers.size > 0;
  const peerListen = options.listenPeer === undefined ? peers.get(nodeId) : parseAddress(options.listenPeer);
  const clientListen = options.listenClient === undefined ? null : parseAddress(options.listenClient);
  const metricsListen = (options.listenMetrics ?? []).map(parseAddress);
  if (metricsListen.length > 0 && clientListen === null) {
    throw new RangeError(
      "listenMetrics needs listenClient: the metrics ports serve the client port's metrics",
    );
  }
  // Only once every option is known to be good: bad input changes nothing on disk.
  mkdirSync(options.dataDir, { recursive: true });
  const raftEngine = await openRaftLog(options.dataDir, {
    warn: (message) => logger.warn({ dataDir: options.dataDir }, message),
  });
  let stateMachineKv: LmdbOrderedKv;
  try {
    stateMachineKv = LmdbOrderedKv.open({
      path: join(options.dataDir, STATE_MACHINE_DIR),
      commitTimer: (commit, delayMs) => systemTimers.setTimeout(commit, delayMs),
    });
  } catch (error) {
    await raftEngine.close();
    throw error;
  }
  let tcp: TcpTransport | null = null;
  let transport: Transport;
  if (clustered) {
    tcp = new TcpTransport({
      clusterId: options.clusterId ?? "concord",
      nodeId,
      listen: peerListen ?? { host: "127.0.0.1", port: 0 },
      peers: [...peers].filter(([id]) => id !== nodeId),
      logger,
    });
    transport = tcp;
  } else {
    // A one-node cluster sends no messages; an unconnected in-memory transport stands in.
    transport = new MemoryNetwork().createTransport(nodeId);
  }
  const host = new NodeHost({
    nodeId,
    engine: raftEngine,
    transport,
    timers: systemTimers,
    // One turn for all the requests read in one event-loop pass (see NodeHostOptions.deferTurn).
    deferTurn: (run) => setImmediate(run),
    monotonicClock: () => performance.now(),
    wallClock: () => Date.now(),
    random: systemRandom,
    logger,
    stateMachine: (rangeId) => ({
      kv: stateMachineKv,
      sync: () => stateMachineKv.sync(),
      storeOptions: { namespace: rangeNamespace(rangeId) },
    }),
    ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
    ...(options.proposalTimeoutMs === undefined ? {} : { proposalTimeoutMs: options.proposalTimeoutMs }),
    ...(options.commitNoticeDelayMs === undefined
      ? {}
      : { commitNoticeDelayMs: options.commitNoticeDelayMs }),
    raft: { readOnlyOption: reads },
    ...(options.onFailure === undefined ? {} : { onFailure: options.onFailure }),
  });
  const parts = new EmbeddedBackend(host, transport, raftEngine, stateMachineKv);
  const server =
    clientListen === null
      ? null
      : new ClientPort({
          listen: clientListen,
          etcd: new EtcdServer({
            host,
            clusterId: etcdClusterId(options.clusterId ?? "concord"),
            dataDir: options.dataDir,
            ...(raftEngine instanceof WalStorageEngine
              ? { writeAheadLog: { engine: raftEngine, clock: () => performance.now() } }
              : {}),
            stateMachineCommits: { engine: stateMachineKv, clock: () => performance.now() },
            ...(tcp === null
              ? {}
              : {
                  peers: {
                    traffic: () => tcp.traffic.snapshot(),
                    connected: () => tcp.connectedPeers(),
                    observeSnapshots: (listener) => tcp.observeSnapshots(() => performance.now(), listener),
                    snapshotsInFlight: () => tcp.snapshotsInFlight(),
                  },
                }),
            kv: parts.kv,
            rangeAdmin: parts.rangeAdmin,
            rangeChanges: () =>
              parts.ranges === null
                ? null
                : {
                    splits: parts.ranges.coordinator.counters.splits,
                    merges: parts.ranges.merges.counters.merges,
                  },
            logger,
          }),
          native: new NativeServer({ host, kv: parts.kv, logger }),
          metricsListen,
          logger,
        });
  parts.server = server;
  try {
    await transport.start();
    if (raftEngine.groups().length === 0 && options.join === true) {
      host.createReplica(FIRST_RANGE_ID, { join: true });
    } else if (raftEngine.groups().length === 0) {
      const voters = [...new Set([nodeId, ...peers.keys()])].sort((a, b) => a - b);
      host.createReplica(FIRST_RANGE_ID, { bootstrap: { ...EMPTY_CONF_STATE, voters } });
    } else {
      host.openStoredReplicas();
    }
    const first = host.replica(FIRST_RANGE_ID);
    if (first !== undefined && tcp !== null) followMemberPeers(first, tcp);
    if (first !== undefined && options.onRemoved !== undefined) first.onRemoved(options.onRemoved);
    if (first !== undefined && options.member !== undefined) first.publishMember(options.member);
    host.start();
    if (first !== undefined) {
      parts.ranges = new NodeRanges({
        host,
        timers: systemTimers,
        monotonicClock: () => performance.now(),
        random: systemRandom,
        logger,
        ...(options.autoSplit === undefined ? {} : { autoSplit: options.autoSplit }),
        ...(options.autoMerge === undefined ? {} : { autoMerge: options.autoMerge }),
        ...(options.splitPolicy === undefined ? {} : { splitPolicy: options.splitPolicy }),
        ...(options.rangeSizeRefreshMs === undefined ? {} : { sizeRefreshMs: options.rangeSizeRefreshMs }),
        ...(options.autoCompactionRetentionMs === undefined
          ? {}
          : { autoCompactionRetentionMs: options.autoCompactionRetentionMs }),
        wallClock: () => Date.now(),
      });
      parts.ranges.start();
    }
    await server?.start();
    if (first !== undefined && options.member === undefined && server !== null) {
      // Without attributes of its own, a member still publishes where clients reach it, so
      // the others can forward leader-only requests (lease keep-alive) to it.
      const client = server.address();
      const peer = tcp?.address();
      first.publishMember({
        name: `concord-${nodeId}`,
        peerUrls: peer === undefined ? [] : [`http://${peer.host}:${peer.port}`],
        clientUrls: [`http://${client.host}:${client.port}`],
      });
    }
  } catch (error) {
    await parts.close();
    throw error;
  }
  return new EmbeddedConcord(parts, options.retry, tcp);
}
