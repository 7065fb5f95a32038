/**
 * Replica: one range's Raft group member on this node — its RawNode, its Raft storage, its
 * state machine (ReplicaStateMachine over an MvccStore) and the HybridClock that stamps its
 * proposals — with the requests callers make of it and its part of each turn of its NodeHost:
 * take inputs, hand out a Ready, persist it, apply it, advance.
 *
 * Proposals are answered when this node applies the entry carrying their request id (never
 * by log index alone); a leader also remembers the index it appended each one at, so that
 * another entry applied there tells it the proposal was overwritten. Linearizable reads share
 * one ReadIndex request per turn and are served once the state machine reaches the index.
 */
import { boundsEqual, firstKey, type KeySpan, type RangeBounds } from "../kv/bounds.js";
import { DecodeError } from "../kv/bytes.js";
import {
  decodeEnvelope,
  encodeEnvelope,
  fenceRequest,
  mergeFenceRequest,
  mergeRequest,
  rangeRequest,
  revisionFloorRequest,
  splitRequest,
  type KvCommand,
  type RangeCommand,
  type RangeRequest,
} from "../kv/commands.js";
import { KvError, KvErrorCode } from "../kv/errors.js";
import { wallMillisOf, type HybridClock } from "../kv/hlc.js";
import type { TimeToLive } from "../kv/lease-clock.js";
import type { LeaseSummary } from "../kv/leases.js";
import type { AppliedMerge } from "../kv/merge.js";
import type { CommandResult, RangeResult } from "../kv/results.js";
import type { AppliedSplit, RangeState } from "../kv/split.js";
import type { KvHash, MvccSnapshot, StoreImageView } from "../kv/store.js";
import { backupSnapshot } from "../kv/backup.js";
import type { Watch, WatchRequest } from "../kv/watch.js";
import { ProposalDroppedError as RaftProposalDroppedError } from "../raft/raft.js";
import { RawNode } from "../raft/rawnode.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EMPTY_BYTES,
  EMPTY_HARD_STATE,
  EntryType,
  MessageType,
  NONE,
  StateRole,
  hardStateEqual,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RandomSource,
  type Ready,
  type SoftState,
} from "../raft/types.js";
import type { ReplicaStorage } from "../storage/contracts.js";
import type { Logger } from "../transport/transport.js";
import {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaStoppedError,
} from "./errors.js";
import type { NodeHostCounters, ReplicaInit, ResolvedNodeConfig, StateMachineStorage } from "./options.js";
import {
  LeaderTransfers,
  MemberPublisher,
  RemovalWatch,
  checkPromotable,
  joinMembers,
  reconfigurationRefusal,
  type ReconfigurationRefusal,
} from "./members.js";
import { CountingWaiter, PendingReads, PendingRequests, commandKey, type Waiter } from "./requests.js";
import { ReplicaServices } from "./services.js";
import { LEASE_RANGE_ID } from "./split-range.js";
import { ReplicaStateMachine, type AppliedEntry } from "./state-machine.js";
import type {
  ApplyListener,
  LocalMemberAttributes,
  MemberRecord,
  ReadConsistency,
  ReplicaStatus,
  RequestId,
} from "./types.js";

/** What a replica uses of its host. */
export interface ReplicaHost {
  readonly nodeId: NodeId;
  readonly config: ResolvedNodeConfig;
  readonly logger: Logger;
  readonly counters: NodeHostCounters;
  readonly monotonicClock: () => number;
  readonly wallClock: () => number;
  /**
   * The node's one hybrid clock, shared by all its replicas: a stamp taken in any range is
   * above every revision this node applied in any range, so a client of this node sees its
   * writes to different ranges get revisions in the order it made them.
   */
  readonly clock: HybridClock;
  readonly random: RandomSource;
  /** Unique to this run of the host: the client id of node-assigned request ids, and read contexts. */
  readonly incarnation: string;
  nextSequence(): number;
  /** Whether new requests are taken (the host runs). */
  isAccepting(): boolean;
  /** `replica` has work for a turn (a dormant replica is woken for it). */
  requestTurn(replica: Replica): void;
  /** Whether no turn runs now: no core has a Ready out, so a core may be told something directly. */
  betweenTurns(): boolean;
  /**
   * Range `rangeId` applied a split into `rhsRangeId` (or held one after a restart) and its
   * state machine is synced: host the right-hand range if it is not hosted yet.
   */
  splitApplied(rangeId: number, rhsRangeId: number, confState: ConfState): void;
  /** `replica`'s store has versions no read sees (compacted, moved by a split): run its removalStep until done. */
  removalPending(replica: Replica): void;
  /**
   * Whether this node heard from `peer` (any Raft or liveness message) within an election
   * timeout: a window that slides, unlike a Raft progress's recentActive flag, which the leader
   * clears every election timeout and sets again only as answers come in.
   */
  peerRecentlyHeard(peer: NodeId): boolean;
}

/** What writing one Ready left to do once it is durable (see Replica.write). */
export interface ReadyWrite {
  readonly beforeSync: readonly Message[];
  readonly afterSync: readonly Message[];
  readonly changesTermOrVote: boolean;
  /** Index and term of the Ready's last entry, or null without entries. */
  readonly last: readonly [number, number] | null;
}

type QueuedProposal =
  | {
      readonly kind: "command";
      readonly request: RequestId;
      readonly command: KvCommand;
      readonly waiter: Waiter<CommandResult>;
    }
  | { readonly kind: "confChange"; readonly change: ConfChange; readonly waiter: Waiter<ConfState> };

const encoder = new TextEncoder();
/** A linearizable read of nothing: its ReadIndex round confirms the leadership. */
const LEADERSHIP_CONFIRMATION = rangeRequest({ key: Uint8Array.of(0), countOnly: true });
const decoder = new TextDecoder();

function isFresh(storage: ReplicaStorage): boolean {
  const conf = storage.confState();
  return (
    storage.lastIndex() === 0 &&
    storage.snapshot().metadata.index === 0 &&
    hardStateEqual(storage.hardState(), EMPTY_HARD_STATE) &&
    conf.voters.length + conf.learners.length + conf.votersOutgoing.length + conf.learnersNext.length === 0
  );
}

/** How far ahead of the leader's wall clock a forwarded stamp may be and still be observed. */
const MAX_FORWARDED_LEAD_MS = 1_000;

/** Retries of a requested campaign while no leader is known, and the ticks between them. */
const CAMPAIGN_RETRIES = 3;
const CAMPAIGN_RETRY_TICKS = 2;

export class Replica {
  private readonly raw: RawNode;
  private readonly stateMachine: ReplicaStateMachine;
  private readonly services: ReplicaServices;
  private readonly clock: HybridClock;
  private softState: SoftState = { lead: NONE, role: StateRole.Follower };
  private inbox: Message[] = [];
  /** Last index and term of each written Ready whose sync resolved, for the core at the next turn. */
  private persistedReports: (readonly [number, number])[] = [];
  /** Written Readies that change the term or the vote and are not durable yet. */
  private termOrVoteSyncsPending = 0;
  /** The newest snapshot received and not yet installed; older ones are superseded. */
  private incomingSnapshot: Message | null = null;
  private snapshotReports: [NodeId, boolean][] = [];
  private readonly unreachablePeers = new Set<NodeId>();
  private queuedProposals: QueuedProposal[] = [];
  private readonly commands = new PendingRequests<CommandResult>();
  private readonly confChanges = new PendingRequests<ConfState>();
  private readonly reads = new PendingReads();
  private readonly transfers = new LeaderTransfers();
  private readonly publisher: MemberPublisher;
  private readonly removal: RemovalWatch;
  private readSequence = 0;
  /** Callers of compactedPhysically waiting for the removal to finish. */
  private removalWaiters: (() => void)[] = [];
  private confChangeSequence = 0;
  /** Times this replica saw a leader take over (none → a leader, or one leader → another). */
  private leaderChanges = 0;
  private closed = false;
  /** The host's liveness rule asked this quiesced replica to resume ticking (see requestWake). */
  private wakeRequested = false;
  /** `campaign()` was called: the core starts an election at the next turn. */
  private campaignRequested = false;
  /** Further elections `campaign()` starts, every CAMPAIGN_RETRY_TICKS, while no leader is known. */
  private campaignRetries = 0;
  private ticksToCampaignRetry = 0;

  constructor(
    readonly rangeId: number,
    init: ReplicaInit,
    private readonly storage: ReplicaStorage,
    stateMachineStorage: StateMachineStorage,
    private readonly host: ReplicaHost,
  ) {
    const restarted = !isFresh(storage) && !("join" in init && init.newSplitRange === true);
    if (isFresh(storage) && "bootstrap" in init) {
      const { voters, learners } = init.bootstrap;
      if (!voters.includes(host.nodeId) && !learners.includes(host.nodeId)) {
        throw new RangeError(`node ${host.nodeId} bootstraps range ${rangeId} without being a member`);
      }
      storage.setConfState(init.bootstrap);
    }
    this.clock = host.clock;
    this.publisher = new MemberPublisher(host.nodeId);
    this.removal = new RemovalWatch(host.nodeId, storage.confState());
    // Leases are enforced on every replica of every range alike: a put naming a lease that
    // is not live fails in the apply, the same way everywhere.
    const leaseEnforcingStorage: StateMachineStorage = {
      kv: stateMachineStorage.kv,
      sync: () => stateMachineStorage.sync(),
      storeOptions: { ...stateMachineStorage.storeOptions, enforceLeases: true },
    };
    this.stateMachine = new ReplicaStateMachine(
      rangeId,
      storage,
      leaseEnforcingStorage,
      this.clock,
      host.counters,
      host.logger,
    );
    // A restart forgets how far the removal had gone: it starts again.
    if (this.stateMachine.removalPending) host.removalPending(this);
    this.services = new ReplicaServices(
      rangeId,
      this.stateMachine.serviceSource,
      host.monotonicClock,
      host.logger,
      { progressIntervalMs: host.config.watchProgressIntervalMs, expiresLeases: rangeId === LEASE_RANGE_ID },
    );
    this.stateMachine.addListener(this.services.listener);
    this.raw = new RawNode({
      ...host.config.raft,
      id: host.nodeId,
      electionTick: host.config.electionTicks,
      heartbeatTick: host.config.heartbeatTicks,
      storage,
      random: host.random,
      applied: storage.appliedIndex(),
      restarted,
      deferCommitNotices: host.config.commitNoticeDelayMs > 0,
    });
  }

  get nodeId(): NodeId {
    return this.host.nodeId;
  }

  /** Index of the last entry the state machine applied. */
  get appliedIndex(): number {
    return this.stateMachine.appliedIndex;
  }

  /** Index of the last entry the Raft core knows to be committed. */
  get commitIndex(): number {
    return this.raw.hardState().commit;
  }

  /** Proposals and membership changes not answered yet: queued, or in the core awaiting apply. */
  get pendingProposals(): number {
    return this.queuedProposals.length + this.commands.size + this.confChanges.size;
  }

  /**
   * How many times this replica saw a leader take over since it was created, as etcd counts
   * them: a known leader after none, or another leader than the last one.
   */
  get leaderChangesSeen(): number {
    return this.leaderChanges;
  }

  get revision(): bigint {
    return this.stateMachine.revision;
  }

  /** The keys this range holds, as applied here. */
  get bounds(): RangeBounds {
    return this.stateMachine.bounds;
  }

  /**
   * "write-fenced" while a planned split commits (writes answer RangeFenced), "merge-fenced"
   * once the range is being merged into its left neighbour (every state change answers
   * RangeFenced), else "active".
   */
  get rangeState(): RangeState["kind"] {
    return this.stateMachine.rangeState.kind;
  }

  /** The split the range is fenced for, or null when it is active. */
  get plannedSplit(): { readonly splitKey: Uint8Array; readonly rhsRangeId: number } | null {
    const state = this.stateMachine.rangeState;
    return state.kind === "write-fenced" ? { splitKey: state.splitKey, rhsRangeId: state.rhsRangeId } : null;
  }

  /**
   * The last split this range applied (plan and revision), or null: what a split coordinator
   * needs to finish a split that applied before its catalog save did.
   */
  get lastSplit(): AppliedSplit | null {
    return this.stateMachine.lastSplit;
  }

  /**
   * Fences the range's writes for a split at `splitKey` into range `rhsRangeId`; resolves with
   * the range's revision once applied here. Rejects with KvError: RangeFenced (fenced for
   * another plan), KeyOutsideRange (the key is not strictly inside the bounds).
   */
  fence(splitKey: Uint8Array, rhsRangeId: number, request?: RequestId): Promise<bigint> {
    return this.proposeRangeCommand(fenceRequest(splitKey, rhsRangeId), request);
  }

  /**
   * Splits the range at `splitKey`: keys from it on move to the new range `rhsRangeId`, which
   * every node that applies the split starts hosting (same members). Resolves with the split's
   * revision once applied here (the right-hand replica then exists on this node). Rejects
   * with KvError as fence() does.
   */
  split(splitKey: Uint8Array, rhsRangeId: number, request?: RequestId): Promise<bigint> {
    return this.proposeRangeCommand(splitRequest(splitKey, rhsRangeId), request);
  }

  /**
   * Fences the range for a merge into its left neighbour: it refuses every state change from
   * then on. Resolves with the range's (frozen) revision once applied here; idempotent. Rejects
   * with KvError: KeyOutsideRange (the first range), RangeFenced (fenced for a split).
   */
  mergeFence(request?: RequestId): Promise<bigint> {
    return this.proposeRangeCommand(mergeFenceRequest(), request);
  }

  /**
   * Merges the right-hand neighbour `rhsRangeId` into this range from its `image`
   * (mergeImage() of a replica of it); resolves with the merge's revision once applied here.
   * Rejects with KvError: RangeFenced (this range is fenced), MergeImageInvalid,
   * KeyOutsideRange (this range does not end where the image starts, or its bounds revision
   * is no longer `lhsBoundsRevision`: see lastMerge).
   */
  merge(
    rhsRangeId: number,
    image: Uint8Array,
    lhsBoundsRevision: bigint,
    request?: RequestId,
  ): Promise<bigint> {
    return this.proposeRangeCommand(mergeRequest(rhsRangeId, image, lhsBoundsRevision), request);
  }

  /**
   * The range's whole store as applied HERE, for a merge into the left neighbour: callers
   * barrier first (a linearizable read) so the merge fence has applied. Throws unless it has.
   */
  mergeImage(): Uint8Array {
    return this.stateMachine.mergeImage();
  }

  /** The last merge this range applied (the range it took in, the merge's revision), or null. */
  get lastMerge(): AppliedMerge | null {
    return this.stateMachine.lastMerge;
  }

  /** The revision of this range's last split or merge (MvccStore.boundsRevision) as applied here. */
  get boundsRevision(): bigint {
    return this.stateMachine.boundsRevision;
  }

  /**
   * Raises the range's revision to at least `revision`, so every later write of it is above;
   * resolves with the range's revision once applied here.
   */
  floorRevision(revision: bigint, request?: RequestId): Promise<bigint> {
    return this.proposeRangeCommand(revisionFloorRequest(revision), request);
  }

  // ------------------------------------------------------------------ requests

  /**
   * Proposes a write; resolves with its result once this node has applied it. Without
   * `request` the node assigns one (its own client id, the next sequence). A request that
   * was already applied is answered from the store's dedup table, not applied again.
   */
  propose(command: KvCommand, request?: RequestId): Promise<CommandResult> {
    const id = request ?? { clientId: this.host.incarnation, sequence: this.host.nextSequence() };
    if (id.clientId === "") {
      return Promise.reject(new RangeError("a proposal needs a client id: results are matched by it"));
    }
    return this.enqueue<CommandResult>(commandKey(id.clientId, id.sequence), (waiter) => ({
      kind: "command",
      request: id,
      command,
      waiter,
    }));
  }

  private async proposeRangeCommand(command: RangeCommand, request?: RequestId): Promise<bigint> {
    const result = await this.propose(command, request);
    if (result.response.kind === "error") throw new KvError(result.response.code);
    return result.revision;
  }

  /** Adds `nodeId` as a voter; resolves with the new membership once applied here. */
  addVoter(nodeId: NodeId): Promise<ConfState> {
    return this.changeMembership(ConfChangeType.AddVoter, nodeId);
  }

  addLearner(nodeId: NodeId): Promise<ConfState> {
    return this.changeMembership(ConfChangeType.AddLearner, nodeId);
  }

  removeNode(nodeId: NodeId): Promise<ConfState> {
    return this.changeMembership(ConfChangeType.RemoveNode, nodeId);
  }

  /**
   * Promotes learner `nodeId` to voter. On the leader only (NotLeaderError elsewhere), and only
   * a learner whose log is nearly caught up (MemberNotLearnerError, LearnerNotReadyError).
   */
  promote(nodeId: NodeId): Promise<ConfState> {
    return new Promise<void>((resolve) => {
      if (!this.accepting()) throw new ReplicaStoppedError(this.rangeId);
      const status = this.raw.status();
      if (status.softState.role !== StateRole.Leader) throw new NotLeaderError(this.rangeId);
      checkPromotable(this.rangeId, this.host.nodeId, status.confState, status.progress, nodeId);
      resolve();
    }).then(() => this.addVoter(nodeId));
  }

  /**
   * Hands leadership to voter `to`; resolves once this replica sees `to` lead. On the leader
   * only (NotLeaderError elsewhere); fails with LeaderTransferError when `to` is not a voter,
   * another node takes over, or `to` has not taken over within two election timeouts.
   */
  transferLeader(to: NodeId): Promise<void> {
    if (!this.accepting()) return Promise.reject(new ReplicaStoppedError(this.rangeId));
    const { electionTicks, tickMs } = this.host.config;
    const deadline = this.host.monotonicClock() + 2 * electionTicks * tickMs;
    const transfer = this.transfers.start(this.rangeId, this.host.nodeId, this.raw.status(), to, deadline);
    this.host.requestTurn(this);
    return transfer;
  }

  /** Bytes of this replica's applied data and its size-median key (MvccStore.sizeEstimate). */
  sizeEstimate(): ReturnType<ReplicaStateMachine["sizeEstimate"]> {
    return this.stateMachine.sizeEstimate();
  }

  /** The same in steps of at most `versionsPerStep` stored versions (MvccStore.sizeEstimateSteps). */
  sizeEstimateSteps(versionsPerStep: number): ReturnType<ReplicaStateMachine["sizeEstimateSteps"]> {
    return this.stateMachine.sizeEstimateSteps(versionsPerStep);
  }

  /** How much this replica's stored data changed since it opened (MvccStore.changedOps). */
  changedOps(): number {
    return this.stateMachine.changedOps();
  }

  /** etcd's HashKV of this replica's applied state, continued from `seed` (MvccStore.hashKv; throws KvError). */
  hashKv(revision = 0n, seed = 0): KvHash {
    return this.stateMachine.hashKv(revision, seed);
  }

  /** The group's voters and learners with their member-table records, as applied here. */
  members(): MemberRecord[] {
    return joinMembers(this.raw.status().confState, this.stateMachine.members());
  }

  /** etcd's strict reconfiguration check of `change` as this member sees the group (see reconfigurationRefusal). */
  reconfigurationRefusal(change: {
    readonly kind: "addVoter" | "addLearner" | "remove";
    readonly id: NodeId;
  }): ReconfigurationRefusal | null {
    const { confState, softState } = this.raw.status();
    const reachable =
      softState.role === StateRole.Leader
        ? (id: NodeId) => id === this.host.nodeId || this.host.peerRecentlyHeard(id)
        : null;
    return reconfigurationRefusal(change, confState, this.stateMachine.members(), reachable);
  }

  /**
   * Publishes this member's name and URLs to the replicated member table (when its record
   * differs), retried on ticks until applied; once this member is in the group's configuration.
   */
  publishMember(attributes: LocalMemberAttributes): void {
    this.publisher.set(attributes);
  }

  /** Reads at request.revision (0: current). Rejects with KvError as MvccStore.range does. */
  range(request: RangeRequest, consistency: ReadConsistency = "linearizable"): Promise<RangeResult> {
    if (!this.accepting()) return Promise.reject(new ReplicaStoppedError(this.rangeId));
    if (consistency === "serializable") {
      // Served now; a KvError thrown by the read rejects the promise.
      return new Promise((resolve) => resolve(this.stateMachine.range(request)));
    }
    return new Promise((resolve, reject) => this.queueRead(request, resolve, reject));
  }

  /**
   * The keys attached to lease `id` in this range, in key order (none when the range holds no
   * copy of the lease), read linearizably on any replica. With `span`, the range must hold
   * exactly that span when the read is served, or the read fails with KvError
   * KeyOutsideRange: a router's routes are stale, and a split or merge since may have moved
   * attached keys to another range.
   */
  leaseKeys(id: bigint, span?: KeySpan): Promise<readonly Uint8Array[]> {
    if (!this.accepting()) return Promise.reject(new ReplicaStoppedError(this.rangeId));
    // Any key of the range makes the read a barrier; the keys are read when it is served.
    const barrier = rangeRequest({ key: firstKey(this.bounds), countOnly: true });
    return new Promise((resolve, reject) => {
      const serve = (): void => {
        if (span !== undefined && !boundsEqual(span, this.bounds)) {
          reject(new KvError(KvErrorCode.KeyOutsideRange));
        } else {
          resolve(this.services.attachedKeys(id));
        }
      };
      this.queueRead(barrier, serve, reject);
    });
  }

  /** Queues a linearizable read: served once this replica has applied its read index. */
  private queueRead(
    request: RangeRequest,
    resolve: (result: RangeResult) => void,
    reject: (error: Error) => void,
  ): void {
    const deadline = this.host.monotonicClock() + this.host.config.readTimeoutMs;
    this.reads.add({ request, deadline, resolve, reject });
    this.host.requestTurn(this);
  }

  /**
   * Watches this replica's applied state (any replica: a follower's watch sees every revision
   * as it applies it). Throws KvError(EmptyKey) or RangeError for a bad request.
   */
  watch(request: WatchRequest): Watch {
    if (!this.accepting()) throw new ReplicaStoppedError(this.rangeId);
    return this.services.watch(request);
  }

  /**
   * etcd's LeaseKeepAlive on the leader (NotLeaderError elsewhere): the granted TTL, or null
   * when the lease does not exist or has already expired (LeaseClock.keepAlive). The leader
   * first confirms with a quorum that it still leads (a ReadIndex round, as etcd does since
   * 3.5.8), and renews from the time it started asking: a leader cut off from its majority
   * fails the request (ReadTimeoutError) instead of renewing a lease its successor may
   * already have let expire (simulator: sim --election seeds 168 and 172).
   */
  async leaseKeepAlive(id: bigint): Promise<number | null> {
    this.requireLeaseClock();
    const asOf = this.host.monotonicClock();
    await this.range(LEADERSHIP_CONFIRMATION);
    this.requireLeaseClock();
    return this.services.keepAlive(id, asOf);
  }

  /** etcd's LeaseTimeToLive on the leader (NotLeaderError elsewhere); null for no such lease. */
  leaseTimeToLive(id: bigint, withKeys = false): TimeToLive | null {
    this.requireLeaseClock();
    return this.services.timeToLive(id, withKeys);
  }

  /** Every live lease in this replica's applied state (etcd's LeaseLeases), on any replica. */
  leases(): readonly LeaseSummary[] {
    return this.services.leases();
  }

  /** Registers a listener; returns the function that removes it. */
  addApplyListener(listener: ApplyListener): () => void {
    return this.stateMachine.addListener(listener);
  }

  /**
   * The current term, the known leader (NONE: none) and the applied revision: what every API
   * response needs, without `status()`'s progress list and snapshot read.
   */
  termLeaderRevision(): { readonly term: number; readonly leader: NodeId; readonly revision: bigint } {
    return {
      term: this.raw.hardState().term,
      leader: this.raw.softState().lead,
      revision: this.stateMachine.revision,
    };
  }

  status(): ReplicaStatus {
    const raft = this.raw.status();
    return {
      rangeId: this.rangeId,
      nodeId: this.host.nodeId,
      role: raft.softState.role,
      term: raft.hardState.term,
      leader: raft.softState.lead,
      commit: raft.hardState.commit,
      applied: this.stateMachine.appliedIndex,
      revision: this.stateMachine.revision,
      firstIndex: this.storage.firstIndex(),
      lastIndex: raft.lastIndex,
      snapshotIndex: this.storage.snapshot().metadata.index,
      confState: raft.confState,
      progress: [...raft.progress].map(([nodeId, p]) => ({ nodeId, ...p })),
      pendingProposals: this.pendingProposals,
      pendingReads: this.reads.size,
    };
  }

  private changeMembership(type: ConfChangeType, nodeId: NodeId): Promise<ConfState> {
    const key = `${this.host.incarnation}/cc${++this.confChangeSequence}`;
    const change: ConfChange = {
      transition: ConfChangeTransition.Auto,
      changes: [{ type, nodeId }],
      context: encoder.encode(key),
    };
    return this.enqueue<ConfState>(key, (waiter) => ({ kind: "confChange", change, waiter }));
  }

  private enqueue<T>(key: string, queued: (waiter: Waiter<T>) => QueuedProposal): Promise<T> {
    if (!this.accepting()) return Promise.reject(new ReplicaStoppedError(this.rangeId));
    return new Promise<T>((resolve, reject) => {
      const deadline = this.host.monotonicClock() + this.host.config.proposalTimeoutMs;
      this.queuedProposals.push(
        queued(new CountingWaiter(key, deadline, resolve, reject, this.host.counters)),
      );
      this.host.requestTurn(this);
    });
  }

  private accepting(): boolean {
    return !this.closed && this.host.isAccepting();
  }

  private requireLeaseClock(): void {
    if (!this.accepting()) throw new ReplicaStoppedError(this.rangeId);
    if (!this.services.leading) throw new NotLeaderError(this.rangeId);
  }

  // ------------------------------------------------------------------ inputs from the host

  /** Messages from a peer, stepped at the next turn. */
  receive(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.type !== MessageType.Snap) this.inbox.push(m);
      else if (
        this.incomingSnapshot === null ||
        m.snapshot!.metadata.index >= this.incomingSnapshot.snapshot!.metadata.index
      ) {
        this.incomingSnapshot = m;
      }
    }
  }

  /** The transport finished (or failed) streaming a snapshot to `peer`. */
  snapshotSent(peer: NodeId, ok: boolean): void {
    this.snapshotReports.push([peer, ok]);
  }

  peerUnreachable(peer: NodeId): void {
    this.unreachablePeers.add(peer);
  }

  /** Anything for a turn to do. */
  hasWork(): boolean {
    return (
      this.inbox.length > 0 ||
      this.persistedReports.length > 0 ||
      this.incomingSnapshot !== null ||
      this.snapshotReports.length > 0 ||
      this.unreachablePeers.size > 0 ||
      this.queuedProposals.length > 0 ||
      this.transfers.hasTargets ||
      this.reads.hasQueued ||
      this.wakeRequested ||
      this.raw.hasReady()
    );
  }

  /**
   * Something here waits for what the range commits: a write or membership change proposed
   * through this node (answered once applied here) or a watch that is not `background`. A
   * follower's leader then tells it of each commit at once instead of within
   * commitNoticeDelayMs.
   */
  private waitsForCommits(): boolean {
    return this.commands.size > 0 || this.confChanges.size > 0 || this.services.foregroundWatchCount > 0;
  }

  /** Leader: a follower is still owed a commit notice (NodeHost flushes them in time). */
  get commitNoticesPending(): boolean {
    return this.raw.hasCommitNoticesPending();
  }

  /** Sends the commit notices still owed; between feed() and takeReady(), as any input. */
  flushCommitNotices(): void {
    this.raw.flushCommitNotices();
  }

  // ------------------------------------------------------------------ quiescence

  /**
   * True when the host may stop feeding this replica until something arrives for it: its core
   * is quiesced and nothing waits here (no input, no request awaiting an answer or a deadline).
   */
  get dormant(): boolean {
    return (
      this.raw.quiesced &&
      this.commands.size === 0 &&
      this.confChanges.size === 0 &&
      this.reads.size === 0 &&
      !this.hasWork()
    );
  }

  /** The leader whose quiesce heartbeat quiesced this follower; NONE unless it is one. */
  quiescedUnder(): NodeId {
    if (!this.raw.quiesced) return NONE;
    const { lead, role } = this.raw.softState();
    return role === StateRole.Follower && lead !== this.host.nodeId ? lead : NONE;
  }

  /** The core resumes ticking at the next turn (its leader's node went silent). */
  requestWake(): void {
    this.wakeRequested = true;
  }

  /**
   * The replica-level work a tick does besides the core's: lease revocations on the leader,
   * watch progress notifications, leadership-transfer deadlines, member publishing. The host
   * calls it on every tick for replicas it feeds, and now and then for dormant ones.
   */
  serviceTick(now: number): void {
    this.services.revokeExpired((command) => this.propose(command));
    this.services.notifyProgress(now);
    const softState = this.raw.softState();
    this.transfers.observe(this.rangeId, this.host.nodeId, softState.lead, now);
    this.publisher.tick(
      softState.lead,
      this.raw.confState(),
      () => this.stateMachine.members(),
      (command) => this.propose(command),
    );
  }

  /**
   * A leader with nothing pending here asks its core to quiesce (the core checks the rest).
   * Not while it holds leases: a ticking leader revokes expired ones on time, and steps down
   * (check-quorum) when it is cut off from its majority instead of leading on, unaware.
   */
  private maybeQuiesce(): void {
    if (!this.host.config.quiesce || this.raw.softState().role !== StateRole.Leader) return;
    if (this.commands.size > 0 || this.confChanges.size > 0 || this.reads.size > 0) return;
    if (this.queuedProposals.length > 0 || this.transfers.hasTargets) return;
    if (this.services.holdsExpiringLeases) return;
    this.raw.quiesce();
  }

  // ------------------------------------------------------------------ the turn

  /**
   * Restores the state machine from a received snapshot image before the core sees the
   * snapshot, so that the core can never count as applied a state the state machine does not
   * have. Only an image past the core's commit index is restored (an older one brings nothing
   * the log does not); the core gets the metadata either way, to answer as it sees fit.
   */
  async installIncomingSnapshot(): Promise<void> {
    const m = this.incomingSnapshot;
    if (m === null) return;
    this.incomingSnapshot = null;
    const snapshot = m.snapshot!;
    if (snapshot.metadata.index > this.raw.status().hardState.commit) {
      await this.stateMachine.restoreImage(snapshot, m.from);
      if (this.stateMachine.removalPending) this.host.removalPending(this);
      // A bad image: the core must not install what the state machine lacks.
      if (this.stateMachine.appliedIndex < snapshot.metadata.index) return;
    }
    // The core keeps only the metadata: the image lives in the state machine now.
    this.inbox.push({ ...m, snapshot: { ...snapshot, data: EMPTY_BYTES } });
  }

  /** Feeds the core what arrived since the last turn: ticks, messages, reports, requests. */
  feed(ticks: number, now: number, leaseTicks = 0): void {
    for (const [index, term] of this.persistedReports.splice(0)) this.raw.persisted(index, term);
    if (this.wakeRequested) {
      this.wakeRequested = false;
      this.raw.unquiesce();
    }
    // A quiesced core ignores ticks: skip the calls.
    if (!this.raw.quiesced) for (let i = 0; i < ticks; i++) this.raw.tick();
    // Before any read is judged: the lease clock keeps up with real time (NodeHost.leaseCatchUp).
    if (leaseTicks > 0) this.raw.advanceLeaseClock(leaseTicks);
    for (const [peer, ok] of this.snapshotReports.splice(0)) this.raw.reportSnapshot(peer, ok);
    for (const peer of this.unreachablePeers) this.raw.reportUnreachable(peer);
    this.unreachablePeers.clear();
    // Before the acknowledgements this feeding makes, which carry it to the leader.
    if (this.host.config.commitNoticeDelayMs > 0) this.raw.setWantsCommitNotices(this.waitsForCommits());
    for (const m of this.inbox.splice(0)) this.stepIncoming(m);
    if (ticks > 0 && this.campaignRetries > 0) this.retryCampaign(ticks);
    if (this.campaignRequested) {
      this.campaignRequested = false;
      this.raw.campaign();
    }
    for (const to of this.transfers.takeTargets()) this.raw.transferLeader(to);
    if (ticks > 0) this.serviceTick(now);
    this.proposeQueued();
    this.requestReadIndex();
    this.serveReads();
    if (ticks > 0) {
      this.expireRequests(now);
      this.resendReadIndex(now);
      this.maybeQuiesce();
    }
  }

  /**
   * Starts an election at the next turn instead of an election timeout later: the host asks
   * this of a split's new right-hand range on the node whose left-hand replica leads, so the
   * new range has a leader as soon as it exists.
   */
  campaign(): void {
    this.campaignRequested = true;
    this.campaignRetries = CAMPAIGN_RETRIES;
    this.ticksToCampaignRetry = CAMPAIGN_RETRY_TICKS;
    this.host.requestTurn(this);
  }

  /**
   * The first election of a split's new range may find the other members without the range
   * yet (they apply the split a moment later and drop its votes meanwhile): while no leader
   * is known, it is tried again every few ticks, a few times, before election timeouts take over.
   */
  private retryCampaign(ticks: number): void {
    if (this.raw.softState().lead !== NONE) {
      this.campaignRetries = 0;
      return;
    }
    this.ticksToCampaignRetry -= ticks;
    if (this.ticksToCampaignRetry > 0) return;
    this.campaignRetries -= 1;
    this.ticksToCampaignRetry = CAMPAIGN_RETRY_TICKS;
    this.campaignRequested = true;
  }

  /**
   * Calls `listener` once when this node is removed from the group (an applied membership no
   * longer holds it). The replica keeps running: what to do (etcd's members exit) is the
   * owner's choice. Returns a function that unregisters the listener.
   */
  onRemoved(listener: () => void): () => void {
    return this.removal.onRemoved(listener);
  }

  takeReady(): Ready | null {
    return this.raw.hasReady() ? this.raw.ready() : null;
  }

  /**
   * Writes the Ready's snapshot metadata, entries and hard state (made durable by a later
   * engine sync) and splits its messages by when they may leave: `beforeSync` at once,
   * `afterSync` once a sync that started after this write resolved. A leader's appends and
   * heartbeats promise nothing about this node's disk — a follower acknowledges only what it
   * made durable itself, and the core counts the leader's own log toward a quorum only once
   * `durable()` reports it — so the leader writes its log while the followers write theirs
   * (Raft thesis 10.2.1). They carry the leader's term, so they wait too while a Ready that
   * changes the term or the vote is not durable yet (nobody may hear of those before), and
   * with a snapshot.
   */
  write(rd: Ready): ReadyWrite {
    const stored = this.storage.hardState();
    const changesTermOrVote =
      rd.hardState !== null && (rd.hardState.term !== stored.term || rd.hardState.vote !== stored.vote);
    const beforeSync: Message[] = [];
    const afterSync: Message[] = [];
    const early = !changesTermOrVote && this.termOrVoteSyncsPending === 0 && rd.snapshot === null;
    for (const m of rd.messages) {
      const leaderTraffic = m.type === MessageType.App || m.type === MessageType.Heartbeat;
      (early && leaderTraffic ? beforeSync : afterSync).push(m);
    }
    if (changesTermOrVote) this.termOrVoteSyncsPending++;
    if (rd.snapshot !== null) this.storage.saveSnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
    const last = rd.entries[rd.entries.length - 1];
    return {
      beforeSync,
      afterSync,
      changesTermOrVote,
      last: last === undefined ? null : [last.index, last.term],
    };
  }

  /**
   * A sync that started after `write` resolved: its entries count toward a quorum. Between
   * turns (no Ready out) the core learns it at once, and a turn is asked for only when that
   * gives the core work (a leader's own log completing a quorum): a follower's acknowledgements
   * left with the sync, so at a few writes a second a turn per sync, and the event-loop pass
   * that runs it, would be for nothing on most syncs. During a turn the report waits for the
   * next one, as any input.
   */
  durable(write: ReadyWrite): void {
    if (this.closed) return;
    if (write.changesTermOrVote) this.termOrVoteSyncsPending--;
    if (write.last === null) return;
    if (this.persistedReports.length === 0 && this.host.betweenTurns()) {
      this.raw.persisted(write.last[0], write.last[1]);
      if (this.raw.hasReady()) this.host.requestTurn(this);
      return;
    }
    this.persistedReports.push(write.last);
    this.host.requestTurn(this);
  }

  /**
   * Applies committed entries, answers proposals and reads. Need not wait for this node's sync:
   * committed entries are durable on a quorum, and the core counts this node's log only once durable.
   */
  async apply(rd: Ready): Promise<void> {
    if (rd.softState !== null) this.observeSoftState(rd.softState);
    if (rd.snapshot !== null) {
      const { metadata } = rd.snapshot;
      this.stateMachine.snapshotInstalled(metadata);
      const unknown = () => new AmbiguousResultError(this.rangeId, "its entry was replaced by a snapshot");
      this.commands.passed(metadata.index, unknown);
      this.confChanges.passed(metadata.index, unknown);
    }
    for (const rs of rd.readStates) this.reads.indexKnown(decoder.decode(rs.context), rs.index);
    const applied = await this.stateMachine.apply(
      rd.committedEntries,
      (change) => this.raw.applyConfChange(change),
      (rhsRangeId, confState) => this.host.splitApplied(this.rangeId, rhsRangeId, confState),
    );
    rd.committedEntries.forEach((entry, i) => this.answer(entry, applied[i]!));
    if (this.stateMachine.removalPending) this.host.removalPending(this);
    let membership = rd.snapshot?.metadata.confState ?? null;
    for (const entry of applied) if (entry.kind === "confChange") membership = entry.confState;
    if (membership !== null) this.removal.observe(membership);
    this.serveReads();
  }

  /** Ends the Ready; without `durable`, its entries count once `durable()` reports them. */
  advance(rd: Ready, durable: boolean): void {
    this.raw.advance(rd, durable);
  }

  get snapshotDue(): boolean {
    const { snapshotEntries, snapshotBytes } = this.host.config;
    return this.stateMachine.snapshotDue(snapshotEntries, snapshotBytes);
  }

  /**
   * Removes up to `maxVersions` versions' worth of what compaction and splits left behind (the host runs
   * these steps between turns); whether work remains. A closed replica has none.
   */
  removalStep(maxVersions: number): boolean {
    if (this.closed) return false;
    const more = this.stateMachine.removalStep(maxVersions);
    if (!more) for (const resolve of this.removalWaiters.splice(0)) resolve();
    return more;
  }

  /**
   * Resolves once this replica's store holds none of the versions its compactions removed
   * (etcd's "physical" compaction); at once when it holds none, or is closed.
   */
  compactedPhysically(): Promise<void> {
    if (this.closed || !this.stateMachine.removalPending) return Promise.resolve();
    return new Promise((resolve) => this.removalWaiters.push(resolve));
  }

  /**
   * Records a local snapshot at the core's applied index, compacting the log up to it; whether
   * one was taken (none when the last one is at that index already).
   */
  takeSnapshot(): Promise<boolean> {
    return this.stateMachine.takeSnapshot(this.raw.status().applied);
  }

  /** The state machine's image for a follower, read from one consistent view. */
  snapshotImage(): MvccSnapshot {
    return this.stateMachine.image();
  }

  /** A read view of the applied state, for a backup image of several ranges (src/kv/backup.ts). */
  imageView(): StoreImageView {
    return this.stateMachine.imageView();
  }

  /** A backup image of this replica's applied state as the whole keyspace's (backupSnapshot). */
  backupImage(): Promise<MvccSnapshot> {
    return new Promise((resolve) => resolve(backupSnapshot([this.imageView()], null)));
  }

  /**
   * Ends the replica: queued requests fail as not taken; proposals already handed to the core
   * may still apply elsewhere, so they end ambiguous.
   */
  close(cause?: Error): void {
    const options = cause === undefined ? undefined : { cause };
    const stopped = () => new ReplicaStoppedError(this.rangeId, options);
    this.end(
      stopped,
      () => new AmbiguousResultError(this.rangeId, "the node stopped before it applied", options),
    );
  }

  /**
   * Ends the replica because its range is gone from this node (merged into its neighbour, so
   * the node destroys it): every request, queued or already in the core, rejects with
   * KvError(KeyOutsideRange), and every watch ends with a KeyOutsideRange response, so routers
   * retry on the range that holds the keys now. Safe for proposals already in the log: the
   * range was fenced before it merged, so whatever any of them changed is in the merged image,
   * and a retry with the same request id is answered by the dedup records that came with it.
   */
  closeRemoved(): void {
    if (this.closed) return;
    const outside = () => new KvError(KvErrorCode.KeyOutsideRange);
    this.end(outside, outside);
    this.services.rangeRemoved();
  }

  private end(notTaken: () => Error, inCore: () => Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queuedProposals.splice(0)) p.waiter.reject(notTaken());
    this.commands.failAll(inCore);
    this.confChanges.failAll(inCore);
    this.reads.failAll(notTaken);
    this.transfers.failAll(notTaken);
    this.inbox = [];
    this.persistedReports = [];
    this.incomingSnapshot = null;
    for (const resolve of this.removalWaiters.splice(0)) resolve();
    this.services.leadershipChanged(false);
  }

  // ------------------------------------------------------------------ internals

  private stepIncoming(m: Message): void {
    if (m.type === MessageType.Prop && this.raw.status().softState.role === StateRole.Leader) {
      const restamped = this.restamp(m);
      if (restamped !== null) this.raw.step(restamped);
      return;
    }
    this.raw.step(m);
  }

  /**
   * The leader stamps every command with its own clock, including those a follower forwarded
   * (the core forwards proposals as they are), after observing the follower's stamp: the
   * command then gets a revision above everything the forwarding node had applied (in any
   * range) when its client asked. A stamp more than MAX_FORWARDED_LEAD_MS ahead of this
   * node's wall clock is not observed, so one node's runaway clock cannot drag the others.
   * Null when the proposal does not decode.
   */
  private restamp(m: Message): Message | null {
    try {
      const entries = m.entries.map((e): Entry => {
        if (e.type !== EntryType.Normal || e.data.length === 0) return e;
        const envelope = decodeEnvelope(e.data);
        if (wallMillisOf(envelope.timestamp) <= this.host.wallClock() + MAX_FORWARDED_LEAD_MS) {
          this.clock.observe(envelope.timestamp);
        }
        return { ...e, data: encodeEnvelope({ ...envelope, timestamp: this.clock.now() }) };
      });
      return { ...m, entries };
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.host.counters.dropped.malformedProposal++;
      this.host.logger.warn(
        { rangeId: this.rangeId, from: m.from, error: error.message },
        "malformed proposal",
      );
      return null;
    }
  }

  /**
   * Hands the queued requests to the core. Consecutive commands go in ONE proposal: the core
   * then sends each follower one append for all of them instead of one per command.
   */
  private proposeQueued(): void {
    if (this.queuedProposals.length === 0) return;
    const { role, lead } = this.raw.softState();
    const leading = role === StateRole.Leader;
    let lastIndex = this.raw.lastIndex();
    let batch: { readonly proposal: QueuedProposal; readonly data: Uint8Array }[] = [];
    // The proposals the core took, in log order: a leader appends them as its next entries.
    const accept = (proposal: QueuedProposal): void => {
      if (leading) proposal.waiter.expectedIndex = ++lastIndex;
      if (proposal.kind === "command") this.commands.add(proposal.waiter);
      else this.confChanges.add(proposal.waiter);
    };
    const proposeBatch = (): void => {
      const proposals = batch;
      batch = [];
      if (proposals.length > 1) {
        try {
          this.raw.proposeAll(proposals.map(({ data }) => data));
          for (const { proposal } of proposals) accept(proposal);
          return;
        } catch (error) {
          if (!(error instanceof RaftProposalDroppedError)) throw error;
          // Refused as a whole: one at a time below, so that a size limit takes what fits.
        }
      }
      for (const { proposal, data } of proposals) {
        if (this.tryPropose(proposal, () => this.raw.proposeAll([data]))) accept(proposal);
      }
    };
    for (const p of this.queuedProposals.splice(0)) {
      if (lead === NONE) {
        p.waiter.reject(new NotLeaderError(this.rangeId));
        continue;
      }
      if (p.kind === "confChange") {
        proposeBatch();
        if (this.tryPropose(p, () => this.raw.proposeConfChange(p.change))) accept(p);
        continue;
      }
      const { clientId, sequence } = p.request;
      try {
        const data = encodeEnvelope({ clientId, sequence, timestamp: this.clock.now(), command: p.command });
        batch.push({ proposal: p, data });
      } catch (error) {
        // The command cannot be encoded: the caller's mistake, reported as it is.
        if (!(error instanceof RangeError)) throw error;
        p.waiter.reject(error);
      }
    }
    proposeBatch();
    const after = this.raw.lastIndex();
    if (leading && after !== lastIndex) {
      throw new Error(
        `range ${this.rangeId}: leader log ends at ${after} after proposing, expected ${lastIndex}`,
      );
    }
  }

  /** Runs `propose`; false, with the proposal rejected, when the core refused it. */
  private tryPropose(proposal: QueuedProposal, propose: () => void): boolean {
    try {
      propose();
      return true;
    } catch (error) {
      if (error instanceof RaftProposalDroppedError) {
        proposal.waiter.reject(new ProposalDroppedError(this.rangeId, error.message));
      } else if (error instanceof RangeError) {
        // The request cannot be encoded: the caller's mistake, reported as it is.
        proposal.waiter.reject(error);
      } else {
        throw error;
      }
      return false;
    }
  }

  /** One ReadIndex request per turn covers every read queued since the last one. */
  private requestReadIndex(): void {
    if (!this.reads.hasQueued) return;
    const reads = this.reads.takeQueued();
    const refuse = (): void => {
      for (const read of reads) read.reject(new NotLeaderError(this.rangeId));
    };
    if (this.raw.status().softState.lead === NONE) return refuse();
    const key = `${this.host.incarnation}/r${++this.readSequence}`;
    try {
      this.raw.readIndex(encoder.encode(key));
    } catch (error) {
      if (!(error instanceof RaftProposalDroppedError)) throw error;
      return refuse();
    }
    this.host.counters.readIndexRequests++;
    this.reads.awaitIndex(key, reads, this.host.monotonicClock());
  }

  /**
   * Sends again every ReadIndex request unanswered for half an election timeout: by then a
   * live leader would have answered, so the request or its answer was lost (dropped by a
   * leader that stepped down, or by a follower that knew no leader). Same context, so
   * whichever answer comes first serves the reads.
   */
  private resendReadIndex(now: number): void {
    const retryMs = (this.host.config.electionTicks * this.host.config.tickMs) / 2;
    for (const key of this.reads.resendDue(now, retryMs)) {
      if (this.raw.status().softState.lead === NONE) continue;
      try {
        this.raw.readIndex(encoder.encode(key));
      } catch (error) {
        if (!(error instanceof RaftProposalDroppedError)) throw error;
        continue;
      }
      this.host.counters.readIndexResends++;
    }
  }

  private serveReads(): void {
    for (const read of this.reads.takeServable(this.stateMachine.appliedIndex)) {
      try {
        // A merge-fenced range is frozen while its keys move to its left neighbour, where
        // newer writes to them may already have gone: a linearizable read here could miss
        // them. It is refused (retryable) once the read index is reached, so the refusal
        // still marks a barrier passed.
        if (this.stateMachine.rangeState.kind === "merge-fenced") throw new KvError(KvErrorCode.RangeFenced);
        read.resolve(this.stateMachine.range(read.request));
      } catch (error) {
        read.reject(error as Error);
      }
    }
  }

  private expireRequests(now: number): void {
    const timedOut = () => new AmbiguousResultError(this.rangeId, "timed out before it applied here");
    this.host.counters.proposalsTimedOut +=
      this.commands.expire(now, timedOut) + this.confChanges.expire(now, timedOut);
    this.host.counters.readsTimedOut += this.reads.expire(now, () => new ReadTimeoutError(this.rangeId));
  }

  private observeSoftState(soft: SoftState): void {
    const wasLeading = this.softState.role === StateRole.Leader;
    if (soft.lead !== NONE && soft.lead !== this.softState.lead) this.leaderChanges++;
    this.softState = soft;
    const leading = soft.role === StateRole.Leader;
    if (leading && !wasLeading) {
      // Stamps must not fall below revisions already applied (the predecessor's included).
      this.clock.observe(this.stateMachine.revision);
      this.host.logger.info({ rangeId: this.rangeId, nodeId: this.host.nodeId }, "became leader");
    }
    this.services.leadershipChanged(leading);
    this.transfers.observe(this.rangeId, this.host.nodeId, soft.lead, this.host.monotonicClock());
  }

  /** Settles the requests waiting on `entry`, which has been applied. */
  private answer(entry: Entry, applied: AppliedEntry): void {
    if (applied.kind === "command" && applied.key !== null) {
      if (applied.result !== null) this.commands.resolve(applied.key, applied.result);
      else {
        const unknown = () =>
          new AmbiguousResultError(this.rangeId, "it reached this node in a snapshot image");
        this.commands.reject(applied.key, unknown);
      }
    } else if (applied.kind === "confChange" && applied.key !== null) {
      this.confChanges.resolve(applied.key, applied.confState);
    }
    const overwritten = () =>
      new ProposalDroppedError(this.rangeId, `log index ${entry.index} was taken by another leader's entry`);
    this.commands.indexTaken(entry.index, overwritten);
    this.confChanges.indexTaken(entry.index, overwritten);
  }
}
