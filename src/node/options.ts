/**
 * What a NodeHost is built from: the injected storage, network, time, randomness and logger,
 * the per-range state-machine storage, and the tunables with their defaults. Also the shape
 * of the counters a host keeps for metrics.
 */
import type { MvccStoreOptions } from "../kv/store.js";
import type { OrderedKv } from "../kv/engine.js";
import type { RaftConfig } from "../raft/config.js";
import type { ConfState, NodeId, RandomSource } from "../raft/types.js";
import type { StorageEngine } from "../storage/contracts.js";
import type { Timers } from "../transport/timers.js";
import type { Logger, Transport } from "../transport/transport.js";

/**
 * Where one range's state machine (its MvccStore) keeps its data. Writes are visible at once
 * and durable after a later `sync()`; the node calls `sync()` before it lets the Raft storage
 * forget log entries the state machine has applied (log compaction) or record an applied
 * index, so a crash can never leave the state machine behind the Raft storage's applied index.
 */
export interface StateMachineStorage {
  readonly kv: OrderedKv;
  /** Resolves once every write made before the call is durable (at once for memory, or engines durable on write). */
  sync(): Promise<void>;
  /** Namespace and dedup bound of the store over `kv`. */
  readonly storeOptions?: MvccStoreOptions;
}

export type StateMachineFactory = (rangeId: number) => StateMachineStorage;

/**
 * How a replica starts when its Raft storage is empty: as a founding member of the group with
 * the given membership (every founder passes the same one), or as a joiner that waits to be
 * added by the group's leader. Over storage that already holds the group, either just reopens it.
 */
/**
 * How a replica starts over storage that holds no range yet: founding it, or waiting to be
 * added. `newSplitRange`: the storage was just initialised for a split's new range here, so
 * the replica resumes nothing (see RaftConfig.restarted).
 */
export type ReplicaInit =
  { readonly bootstrap: ConfState } | { readonly join: true; readonly newSplitRange?: boolean };

/** Raft settings a host passes through to every replica's core. */
export type RaftTuning = Omit<
  RaftConfig,
  "id" | "storage" | "random" | "applied" | "electionTick" | "heartbeatTick" | "bugs" | "deferCommitNotices"
>;

export interface NodeHostOptions {
  readonly nodeId: NodeId;
  /** Raft logs and hard states of every replica; one `sync()` per turn covers them all. */
  readonly engine: StorageEngine;
  /** Started and closed by the owner; the host registers its handlers when constructed. */
  readonly transport: Transport;
  readonly timers: Timers;
  /** Milliseconds from a clock that never goes backwards: request deadlines. */
  readonly monotonicClock: () => number;
  /** Milliseconds since the epoch: the physical part of HLC revisions. */
  readonly wallClock: () => number;
  /** Election timeouts and this incarnation's request ids. */
  readonly random: RandomSource;
  readonly logger: Logger;
  /** Called once if the host stops on an error it cannot recover from (e.g. a failed fsync). */
  readonly onFailure?: (error: Error) => void;
  readonly stateMachine: StateMachineFactory;
  /** Milliseconds per Raft tick (default 100). */
  readonly tickMs?: number;
  /** Ticks without a leader before an election (default 10). */
  readonly electionTicks?: number;
  /** Ticks between leader heartbeats (default 1). */
  readonly heartbeatTicks?: number;
  /**
   * Longest a follower that holds every entry may wait to hear that they committed, when no
   * other message to it carries the news (default 20 ms). Under load the next append carries
   * it, which saves every follower a message and a wake-up per write. A follower with
   * something waiting on it (a write proposed through it, a watch that is not `background`)
   * is told at once, and its linearizable reads do not wait (the ReadIndex answer carries the
   * commit index): only its serializable reads and background watches may lag the leader by
   * up to this much. 0: every commit is told at once (as etcd does).
   */
  readonly commitNoticeDelayMs?: number;
  /** Applied entries between two snapshots of a replica, each of which compacts its log (default 10,000). */
  readonly snapshotEntries?: number;
  /**
   * Applied entry bytes that also call for a snapshot, before `snapshotEntries` entries have
   * (default 64 MiB): the Raft log engine holds a replica's log in memory until it is compacted.
   */
  readonly snapshotBytes?: number;
  /** A proposal without a result after this long fails with AmbiguousResultError (default 10,000 ms). */
  readonly proposalTimeoutMs?: number;
  /** A linearizable read without a read index after this long fails with ReadTimeoutError (default 5,000 ms). */
  readonly readTimeoutMs?: number;
  /** How often watches that asked for progress notifications get one (default 600,000 ms, as etcd). */
  readonly watchProgressIntervalMs?: number;
  /**
   * Idle ranges quiesce: a range's leader with nothing in flight stops heartbeating and its
   * followers stop their election timers, until anything happens to the range (default true).
   * See the node README, "Quiescence".
   */
  readonly quiesce?: boolean;
  readonly raft?: RaftTuning;
  /**
   * Defers a requested turn (default: a microtask, so requests made in one synchronous stretch
   * share it). Production passes `setImmediate`: Node's HTTP/2 layer on a native socket calls
   * JS once per stream event, with a microtask checkpoint after each call, so with a microtask
   * every gRPC request of one socket read would get a turn (and a ReadIndex round) of its own.
   */
  readonly deferTurn?: (run: () => void) => void;
}

export interface ResolvedNodeConfig {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly commitNoticeDelayMs: number;
  readonly snapshotEntries: number;
  readonly snapshotBytes: number;
  readonly proposalTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly watchProgressIntervalMs: number;
  readonly quiesce: boolean;
  readonly raft: RaftTuning;
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** NodeHostOptions.commitNoticeDelayMs when not given. */
export const DEFAULT_COMMIT_NOTICE_DELAY_MS = 20;

function nonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

export function resolveNodeConfig(options: NodeHostOptions): ResolvedNodeConfig {
  positive("nodeId", options.nodeId);
  const config: ResolvedNodeConfig = {
    tickMs: positive("tickMs", options.tickMs ?? 100),
    electionTicks: positive("electionTicks", options.electionTicks ?? 10),
    heartbeatTicks: positive("heartbeatTicks", options.heartbeatTicks ?? 1),
    commitNoticeDelayMs: nonNegative(
      "commitNoticeDelayMs",
      options.commitNoticeDelayMs ?? DEFAULT_COMMIT_NOTICE_DELAY_MS,
    ),
    snapshotEntries: positive("snapshotEntries", options.snapshotEntries ?? 10_000),
    snapshotBytes: positive("snapshotBytes", options.snapshotBytes ?? 64 * 2 ** 20),
    proposalTimeoutMs: positive("proposalTimeoutMs", options.proposalTimeoutMs ?? 10_000),
    readTimeoutMs: positive("readTimeoutMs", options.readTimeoutMs ?? 5_000),
    watchProgressIntervalMs: positive("watchProgressIntervalMs", options.watchProgressIntervalMs ?? 600_000),
    quiesce: options.quiesce ?? true,
    raft: options.raft ?? {},
  };
  if (typeof config.quiesce !== "boolean") {
    throw new RangeError(`quiesce must be true or false, got ${String(options.quiesce)}`);
  }
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new RangeError("heartbeatTicks must be less than electionTicks");
  }
  return config;
}

/** Why an incoming Raft message was not stepped into any replica. */
export type DropReason = "unknownRange" | "misaddressed" | "notRunning" | "malformedProposal";

/** Monotonic counts for metrics export, kept as a plain object. */
export interface NodeHostCounters {
  /** Ready loop iterations that found work. */
  turns: number;
  /** `engine.sync()` calls: at most one per turn, covering every replica's writes. */
  syncs: number;
  ticks: number;
  messagesSent: number;
  messagesReceived: number;
  dropped: Record<DropReason, number>;
  snapshotsSent: number;
  snapshotsSendFailed: number;
  /** Snapshot images restored into a state machine. */
  snapshotsRestored: number;
  /** Snapshot images that failed to decode or restore (the leader retries). */
  snapshotsRejected: number;
  /** Local snapshots taken (each compacts the log). */
  checkpoints: number;
  /** ReadIndex requests made: one per replica per turn covers every read queued meanwhile. */
  readIndexRequests: number;
  /** ReadIndex requests sent again, unanswered for half an election timeout. */
  readIndexResends: number;
  proposalsTimedOut: number;
  /**
   * Proposals a replica took that ended in an error instead of a result: no leader, refused or
   * overwritten (ProposalDroppedError), timed out or ambiguous, the replica stopped or its range
   * went away, a command that could not be encoded. The timed-out ones are in proposalsTimedOut too.
   */
  proposalsFailed: number;
  readsTimedOut: number;
  /** Errors thrown by apply listeners (logged, never allowed to stop the apply). */
  listenerErrors: number;
  /** Replicas that went dormant: quiesced, nothing pending, no longer fed every tick. */
  quiesces: number;
  /** Dormant replicas woken: by a message, a request, a report, or a silent leader node. */
  wakeUps: number;
  /** Of those, woken because their leader's node was silent for an election timeout. */
  livenessWakeUps: number;
  /** Node-level liveness heartbeats sent (one per peer per tick while quiescence is on). */
  livenessSent: number;
  /** Replicas destroyed (their range merged away): Raft storage and store deleted. */
  replicasDestroyed: number;
  /** Applies of a replica's committed entries of one turn that took SLOW_APPLY_MS or more. */
  slowApplies: number;
}

/** An apply this long counts as slow (etcd's warning threshold for an apply, 100 ms). */
export const SLOW_APPLY_MS = 100;

export function newNodeHostCounters(): NodeHostCounters {
  return {
    turns: 0,
    syncs: 0,
    ticks: 0,
    messagesSent: 0,
    messagesReceived: 0,
    dropped: { unknownRange: 0, misaddressed: 0, notRunning: 0, malformedProposal: 0 },
    snapshotsSent: 0,
    snapshotsSendFailed: 0,
    snapshotsRestored: 0,
    snapshotsRejected: 0,
    checkpoints: 0,
    readIndexRequests: 0,
    readIndexResends: 0,
    proposalsTimedOut: 0,
    proposalsFailed: 0,
    readsTimedOut: 0,
    listenerErrors: 0,
    quiesces: 0,
    wakeUps: 0,
    livenessWakeUps: 0,
    livenessSent: 0,
    replicasDestroyed: 0,
    slowApplies: 0,
  };
}
