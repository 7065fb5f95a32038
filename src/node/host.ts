/**
 * NodeHost: one per process. It hosts any number of replicas (one per range), ticks them,
 * routes peer messages to them, and runs the Ready loop in turns.
 *
 * A turn gathers the Ready of every replica that has one, writes all their snapshots, entries
 * and hard states, sends a leader's appends and heartbeats at once, starts ONE `engine.sync()`
 * (group commit: many ranges, one fsync) without waiting for it, applies committed entries,
 * answers proposals and reads, and advances each core. When the sync resolves, the messages
 * that promise durability (votes, acknowledgements) leave and the cores learn their entries
 * are durable (a leader's own log counts toward the quorum from then on); later turns run
 * meanwhile. Ticks come from a timer; the cores' lease clocks also catch up with the
 * monotonic clock (see `leaseCatchUp`), so a stalled event loop cannot leave a leader's lease
 * judged on a clock that stood still. Inputs that arrive while a turn runs (ticks, messages,
 * requests, durability reports) are queued and fed to the cores at the start of the next
 * turn, so a core is never touched between its `ready()` and `advance()`; a durability report
 * that arrives with no turn running goes to its core at once, and asks for a turn only if
 * that gives the core work (Replica.durable). Turns run back to back while work remains,
 * never two at once; requests made together (in one synchronous stretch — with `deferTurn`
 * set to setImmediate, as Concord.open does, in one event-loop pass) share the next turn.
 *
 * Quiescence: only awake replicas are fed and asked for a Ready; a replica whose Raft group
 * quiesced with nothing pending goes dormant until a message, a request or a report arrives
 * for it, or the liveness rule (quiesce.ts) wakes it because its leader's node went silent.
 */
import type { Message, NodeId, Ready } from "../raft/types.js";
import { MessageType, NONE } from "../raft/types.js";
import type { TimerHandle } from "../transport/timers.js";
import type { Envelope } from "../transport/transport.js";
import {
  newNodeHostCounters,
  resolveNodeConfig,
  SLOW_APPLY_MS,
  type NodeHostCounters,
  type NodeHostOptions,
  type ReplicaInit,
  type ResolvedNodeConfig,
} from "./options.js";
import { HybridClock } from "../kv/hlc.js";
import { storedAppliedIndex } from "../kv/store.js";
import type { ConfState } from "../raft/types.js";
import { LIVENESS_GROUP, PeerLiveness, livenessIntervalTicks, livenessMessage } from "./quiesce.js";
import { FIRST_RANGE_ID, deleteStoreNamespace } from "./destroy-range.js";
import { Replica, type ReadyWrite, type ReplicaHost } from "./replica.js";
import { initialiseSplitRange } from "./split-range.js";

type HostState = "new" | "running" | "stopping" | "stopped" | "failed";

/**
 * Versions one removal step of a replica reads (Replica.removalStep): a few milliseconds
 * of main thread, after which requests get their turn again.
 */
export const REMOVAL_STEP_VERSIONS = 1_000;

/** Told how long a local snapshot took, in milliseconds (NodeHost.observeCheckpoints). */
export type CheckpointListener = (milliseconds: number) => void;

export class NodeHost {
  readonly nodeId: NodeId;
  readonly counters: NodeHostCounters = newNodeHostCounters();
  private readonly config: ResolvedNodeConfig;
  private readonly replicas = new Map<number, Replica>();
  /** Replicas fed at every turn; the others are dormant. */
  private readonly awake = new Set<Replica>();
  private readonly dormant = new Set<Replica>();
  private readonly liveness: PeerLiveness<Replica>;
  private tickCount = 0;
  private readonly replicaHost: ReplicaHost;
  private state: HostState = "new";
  private failureCause: Error | null = null;
  private readonly checkpointListeners = new Set<CheckpointListener>();
  private pendingTicks = 0;
  /** Monotonic time of start(): the origin of the ticks of real time (leaseCatchUp). */
  private ticksOrigin = 0;
  /** Ticks the cores' lease clocks were moved by so far: by the timer, and to catch up. */
  private leaseTicksFed = 0;
  private tickTimer: TimerHandle | null = null;
  /** Fires when commit notices deferred by the cores are due (commitNoticeDelayMs). */
  private commitNoticeTimer: TimerHandle | null = null;
  /** The next turn flushes every awake replica's deferred commit notices. */
  private commitNoticesDue = false;
  /** Replicas with versions to remove (Replica.removalStep), and the timer of their next steps. */
  private readonly removing = new Set<Replica>();
  private removalTimer: TimerHandle | null = null;
  private turnRequested = false;
  private loop: Promise<void> | null = null;
  /** The turn running now, if any: a replica taken out of the maps may still be in it. */
  private turnInFlight: Promise<void> | null = null;
  /** Ranges whose replica destroyReplica is taking apart: not hosted, not to be created again meanwhile. */
  private readonly destroying = new Set<number>();
  /** Syncs started by turns whose messages and durability reports still wait for them. */
  private readonly syncsInFlight = new Set<Promise<void>>();
  /** The last sync started: when it resolves, every write made before it is durable. */
  private lastSync: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  private sequence = 0;

  /** Registers the host's handlers with the transport, which its owner starts and closes. */
  constructor(private readonly options: NodeHostOptions) {
    this.config = resolveNodeConfig(options);
    this.nodeId = options.nodeId;
    const incarnation = `node-${options.nodeId}.${options.wallClock()}.${options.random.nextInt(2 ** 31)}`;
    this.replicaHost = {
      nodeId: options.nodeId,
      config: this.config,
      logger: options.logger,
      counters: this.counters,
      monotonicClock: options.monotonicClock,
      wallClock: options.wallClock,
      clock: new HybridClock(options.wallClock),
      random: options.random,
      incarnation,
      nextSequence: () => ++this.sequence,
      isAccepting: () => this.state === "new" || this.state === "running",
      requestTurn: (replica) => this.wake(replica),
      betweenTurns: () => this.loop === null,
      splitApplied: (rangeId, rhsRangeId, confState) => this.hostSplitRange(rangeId, rhsRangeId, confState),
      removalPending: (replica) => this.scheduleRemoval(replica),
      peerRecentlyHeard: (peer) => this.liveness.recentlyHeard(peer, this.tickCount),
    };
    this.liveness = new PeerLiveness<Replica>(this.config.electionTicks);
    options.transport.onReceive((envelope) => this.receive(envelope));
    options.transport.onUnreachable((peer) => this.peerUnreachable(peer));
  }

  /** Starts ticking and running turns. */
  start(): void {
    if (this.state !== "new") throw new Error(`cannot start a node host that is ${this.state}`);
    this.state = "running";
    this.ticksOrigin = this.options.monotonicClock();
    this.scheduleTick();
    this.requestTurn();
    this.armRemoval();
  }

  /**
   * Hosts range `rangeId` on this node. Over Raft storage that already holds the range (a
   * restart) `init` is ignored; otherwise the replica bootstraps with the given membership or
   * waits to be added by the range's leader.
   */
  createReplica(rangeId: number, init: ReplicaInit): Replica {
    if (this.state !== "new" && this.state !== "running") {
      throw new Error(`cannot create a replica on a node host that is ${this.state}`);
    }
    if (this.replicas.has(rangeId)) throw new Error(`range ${rangeId} already has a replica on this node`);
    if (this.destroying.has(rangeId)) throw new Error(`range ${rangeId} is being destroyed on this node`);
    const replica = new Replica(
      rangeId,
      init,
      this.options.engine.replica(rangeId),
      this.options.stateMachine(rangeId),
      this.replicaHost,
    );
    this.replicas.set(rangeId, replica);
    this.awake.add(replica);
    this.requestTurn();
    return replica;
  }

  /** Reopens every range the storage engine holds that has no replica here yet (after a restart). */
  openStoredReplicas(): Replica[] {
    return this.options.engine
      .groups()
      .filter((rangeId) => !this.replicas.has(rangeId))
      .map((rangeId) => this.createReplica(rangeId, { join: true }));
  }

  /**
   * A split of `rangeId` into `rhsRangeId` applied here (or was held already after a restart), its state
   * machine synced. Hosts the right-hand range unless it is hosted already (a replica made by
   * `createReplica(id, { join: true })`, caught up by a snapshot, is left alone). Without Raft
   * storage for it, the storage starts as of the split (split-range.ts) — but only when the
   * state machine holds the range's store: a refused split, or one this node knows only from
   * a snapshot past it, leaves nothing to host.
   */
  private hostSplitRange(rangeId: number, rhsRangeId: number, confState: ConfState): void {
    if (this.state !== "new" && this.state !== "running") return;
    // Hosted already; or being destroyed — merged away, and this split re-applied by a replay.
    if (this.replicas.has(rhsRangeId) || this.destroying.has(rhsRangeId)) return;
    let initialised = false;
    if (!this.options.engine.groups().includes(rhsRangeId)) {
      const storage = this.options.stateMachine(rhsRangeId);
      if (storedAppliedIndex(storage.kv, storage.storeOptions?.namespace) === 0) return;
      initialiseSplitRange(this.options.engine.replica(rhsRangeId), confState);
      initialised = true;
    }
    const rhs = this.createReplica(rhsRangeId, { join: true, newSplitRange: initialised });
    // The left-hand leader's node starts the new group's first election at once: requests
    // for the moved keys would otherwise find no leader for an election timeout.
    if (this.replicas.get(rangeId)?.termLeaderRevision().leader === this.nodeId) rhs.campaign();
  }

  replica(rangeId: number): Replica | undefined {
    return this.replicas.get(rangeId);
  }

  /**
   * Destroys this node's replica of `rangeId` (a range merged into its neighbour: its keys,
   * leases and dedup records live on there). The replica stops being hosted at once (messages
   * for the group are dropped as for any unknown group, counted), and once no turn uses it:
   * 1. it closes: pending requests reject with KvError(KeyOutsideRange), watches end with a
   *    KeyOutsideRange response (Replica.closeRemoved);
   * 2. its Raft storage is dropped and synced (StorageEngine.dropGroup);
   * 3. its store's namespace is deleted from the state-machine engine and synced.
   * Each step is one durable write, in this order: a crash between 2 and 3 leaves an orphan
   * namespace that nothing reopens (a restart hosts the ranges the Raft storage holds), never
   * a range with Raft storage but no store. Refused, changing nothing: range 1 (it holds the
   * catalog and is never merged away), a range without a replica here, a host that stopped.
   */
  async destroyReplica(rangeId: number): Promise<void> {
    if (this.state !== "new" && this.state !== "running") {
      throw new Error(`cannot destroy a replica on a node host that is ${this.state}`);
    }
    if (rangeId === FIRST_RANGE_ID) {
      throw new Error(`range ${FIRST_RANGE_ID} holds the catalog and is never destroyed`);
    }
    const replica = this.replicas.get(rangeId);
    if (replica === undefined) throw new Error(`range ${rangeId} has no replica on this node`);
    this.destroying.add(rangeId);
    try {
      this.replicas.delete(rangeId);
      this.awake.delete(replica);
      this.dormant.delete(replica);
      this.liveness.forget(replica);
      this.removing.delete(replica);
      // The running turn took its replicas before; later turns no longer see this one.
      await this.turnInFlight?.catch(() => undefined);
      replica.closeRemoved();
      this.options.engine.dropGroup(rangeId);
      await this.options.engine.sync();
      await deleteStoreNamespace(this.options.stateMachine(rangeId));
      this.counters.replicasDestroyed++;
    } finally {
      this.destroying.delete(rangeId);
    }
  }

  rangeIds(): number[] {
    return [...this.replicas.keys()].sort((a, b) => a - b);
  }

  /** Replicas not fed every tick: quiesced, with nothing pending. */
  get dormantReplicas(): number {
    return this.dormant.size;
  }

  /**
   * Tells `listener` how long each local snapshot taken from now on took, in milliseconds of
   * the host's monotonic clock: the state machine synced to disk and the snapshot recorded
   * (which lets the log before it be compacted). The function returned removes the listener;
   * a listener that throws is ignored.
   */
  observeCheckpoints(listener: CheckpointListener): () => void {
    this.checkpointListeners.add(listener);
    return () => this.checkpointListeners.delete(listener);
  }

  /** The error that stopped the host, if one did (a storage failure, a broken invariant). */
  get failure(): Error | null {
    return this.failureCause;
  }

  /** True when no turn runs and none is due. */
  isIdle(): boolean {
    return (
      this.loop === null && this.syncsInFlight.size === 0 && (this.state !== "running" || !this.hasWork())
    );
  }

  /** Resolves once the host is idle. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops ticking, lets the current turn finish, and ends every replica (their pending
   * requests fail). Closes nothing it does not own: the engine, transport and state-machine
   * storage stay open for their owner.
   */
  async stop(): Promise<void> {
    if (this.state === "stopped" || this.state === "failed") return;
    this.state = "stopping";
    this.stopTimers();
    await this.loop;
    while (this.syncsInFlight.size > 0) await Promise.all(this.syncsInFlight);
    if (this.state !== "stopping") return;
    for (const replica of this.replicas.values()) replica.close();
    this.state = "stopped";
    this.notifyIdle();
  }

  // ------------------------------------------------------------------ background removal

  private scheduleRemoval(replica: Replica): void {
    this.removing.add(replica);
    if (this.state === "running") this.armRemoval();
  }

  /** Steps run on their own timer, one per pending replica at a time, so turns run in between. */
  private armRemoval(): void {
    if (this.removalTimer !== null || this.removing.size === 0) return;
    this.removalTimer = this.options.timers.setTimeout(() => {
      this.removalTimer = null;
      if (this.state !== "running") return;
      try {
        for (const replica of [...this.removing]) {
          if (!replica.removalStep(REMOVAL_STEP_VERSIONS)) this.removing.delete(replica);
        }
      } catch (error) {
        this.fail(error);
        return;
      }
      this.armRemoval();
    }, 0);
  }

  private stopTimers(): void {
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.commitNoticeTimer?.cancel();
    this.commitNoticeTimer = null;
    this.stopRemoval();
  }

  private stopRemoval(): void {
    this.removalTimer?.cancel();
    this.removalTimer = null;
    this.removing.clear();
  }

  // ------------------------------------------------------------------ inputs

  private scheduleTick(): void {
    this.tickTimer = this.options.timers.setTimeout(() => {
      this.tickTimer = null;
      if (this.state !== "running") return;
      this.pendingTicks++;
      this.counters.ticks++;
      this.scheduleTick();
      this.requestTurn();
    }, this.config.tickMs);
  }

  /**
   * How many ticks the cores' lease clocks must move on, beyond this turn's `timerTicks`, to
   * keep up with the monotonic clock. A timer fires once however late it is, so after an
   * event-loop stall the timer's ticks fall behind real time, while the followers' election
   * timers, in other processes, kept running: a leader judging its lease on them would serve
   * reads after a new leader may have been elected. Elections keep the timer's ticks (a stall
   * of a process that hosts a whole test cluster must not time out every follower at once),
   * which only makes followers slower to vote: the safe side for a lease. At most an election
   * timeout's worth is returned, which already expires every lease.
   */
  private leaseCatchUp(now: number, timerTicks: number): number {
    const realTicks = Math.floor((now - this.ticksOrigin) / this.config.tickMs);
    this.leaseTicksFed += timerTicks;
    const behind = realTicks - this.leaseTicksFed;
    if (behind <= 0) return 0;
    this.leaseTicksFed = realTicks;
    return Math.min(behind, this.config.electionTicks);
  }

  private receive(envelope: Envelope): void {
    const count = envelope.messages.length;
    if (this.state !== "new" && this.state !== "running") {
      this.counters.dropped.notRunning += count;
      return;
    }
    this.liveness.heard(envelope.from, this.tickCount);
    if (envelope.groupId === LIVENESS_GROUP) return;
    const replica = this.replicas.get(envelope.groupId);
    if (replica === undefined) {
      this.counters.dropped.unknownRange += count;
      return;
    }
    const messages = envelope.messages.filter((m) => m.to === this.nodeId);
    this.counters.dropped.misaddressed += count - messages.length;
    this.counters.messagesReceived += messages.length;
    replica.receive(messages);
    this.wake(replica);
  }

  /**
   * Awake replicas are told; dormant ones are not woken for it (transports repeat it on every
   * flush while a peer is down): a quiesced leader has nothing in flight to the peer, and a
   * quiesced follower whose leader's node is gone is woken by the liveness rule.
   */
  private peerUnreachable(peer: NodeId): void {
    for (const replica of this.awake) replica.peerUnreachable(peer);
    this.requestTurn();
  }

  /** `replica` has work: feed it again from the next turn on (unless it is no longer hosted). */
  private wake(replica: Replica): void {
    if (this.replicas.get(replica.rangeId) !== replica) return;
    if (this.dormant.delete(replica)) this.counters.wakeUps++;
    this.awake.add(replica);
    this.requestTurn();
  }

  /**
   * Once per turn that has ticks: the liveness rule and, when their interval comes round, the
   * liveness messages and (every election timeout's worth of ticks) the dormant replicas'
   * replica-level tick work.
   */
  private onTicks(ticks: number, now: number): void {
    const before = this.tickCount;
    this.tickCount += ticks;
    const crossed = (every: number): boolean =>
      Math.floor(this.tickCount / every) !== Math.floor(before / every);
    if (this.config.quiesce && crossed(livenessIntervalTicks(this.config.electionTicks))) this.sendLiveness();
    for (const replica of this.liveness.silentLeaderFollowers(this.tickCount)) {
      replica.requestWake();
      this.counters.livenessWakeUps++;
      this.wake(replica);
    }
    if (crossed(this.config.electionTicks)) {
      for (const replica of [...this.dormant]) replica.serviceTick(now);
    }
  }

  /** Only a node whose leaders quiesce owes its peers liveness messages. */
  private sendLiveness(): void {
    const owed = this.liveness.owedLiveness();
    if (owed.length === 0) return;
    for (const peer of owed) {
      this.options.transport.send(peer, {
        groupId: LIVENESS_GROUP,
        from: this.nodeId,
        to: peer,
        messages: [livenessMessage(this.nodeId, peer)],
      });
      this.counters.livenessSent++;
    }
    this.options.transport.flush();
  }

  /**
   * After a turn: every quiesced follower waits on its leader's node (dormant or not: one
   * with a request pending still ignores ticks), and replicas that quiesced with nothing
   * pending stop being fed. This runs whatever `quiesce` says here: it only decides whether
   * this node's leaders quiesce, and another node's leader may quiesce our followers.
   */
  private settle(replicas: readonly Replica[]): void {
    for (const replica of replicas) {
      // Destroyed while the turn ran: it must not come back as dormant or as a follower.
      if (this.replicas.get(replica.rangeId) !== replica) continue;
      const leader = replica.quiescedUnder();
      if (leader === NONE) this.liveness.forget(replica);
      else this.liveness.follows(replica, leader);
      if (!replica.dormant) continue;
      this.awake.delete(replica);
      this.dormant.add(replica);
      this.counters.quiesces++;
    }
  }

  // ------------------------------------------------------------------ turns

  private hasWork(): boolean {
    if (this.pendingTicks > 0 || this.commitNoticesDue) return true;
    for (const replica of this.awake) if (replica.hasWork()) return true;
    return false;
  }

  private requestTurn(): void {
    this.turnRequested = true;
    if (this.loop !== null || this.state !== "running") return;
    // Deferred, so that requests made in the same synchronous stretch (or, with setImmediate,
    // the same event-loop pass) share the turn.
    const defer = this.options.deferTurn;
    const deferred =
      defer === undefined ? Promise.resolve() : new Promise<void>((resolve) => defer(() => resolve()));
    this.loop = deferred.then(() => this.runTurns());
  }

  private async runTurns(): Promise<void> {
    try {
      while (this.turnRequested && this.state === "running") {
        this.turnRequested = false;
        this.turnInFlight = this.turn();
        await this.turnInFlight;
        if (this.hasWork()) this.turnRequested = true;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.turnInFlight = null;
      this.loop = null;
      this.notifyIdle();
    }
  }

  private async turn(): Promise<void> {
    const ticks = this.pendingTicks;
    this.pendingTicks = 0;
    const noticesDue = this.commitNoticesDue;
    this.commitNoticesDue = false;
    const now = this.options.monotonicClock();
    const leaseTicks = this.state === "running" ? this.leaseCatchUp(now, ticks) : 0;
    if (ticks > 0) this.onTicks(ticks, now);
    const replicas = [...this.awake];
    for (const replica of replicas) await replica.installIncomingSnapshot();
    for (const replica of replicas) replica.feed(ticks, now, leaseTicks);
    // After feeding: appends that this turn's proposals produced carried the news already.
    if (noticesDue) for (const replica of replicas) replica.flushCommitNotices();
    const work = replicas.flatMap((replica) => {
      const rd = replica.takeReady();
      return rd === null ? [] : [{ replica, rd }];
    });
    if (work.length > 0) await this.runReadies(work);
    for (const replica of replicas) if (replica.snapshotDue) await this.checkpoint(replica);
    this.settle(replicas);
    this.scheduleCommitNotices(replicas);
  }

  /**
   * Arms the commit-notice timer while a replica owes a follower a commit notice, and disarms
   * it when none does (the next appends carried them): at one request at a time, the next
   * request's appends carry the last one's commit, and the timer never fires.
   */
  private scheduleCommitNotices(replicas: readonly Replica[]): void {
    if (this.config.commitNoticeDelayMs === 0 || this.state !== "running") return;
    if (!replicas.some((replica) => replica.commitNoticesPending)) {
      this.commitNoticeTimer?.cancel();
      this.commitNoticeTimer = null;
      return;
    }
    if (this.commitNoticeTimer !== null || this.commitNoticesDue) return;
    this.commitNoticeTimer = this.options.timers.setTimeout(() => {
      this.commitNoticeTimer = null;
      if (this.state !== "running") return;
      this.commitNoticesDue = true;
      this.requestTurn();
    }, this.config.commitNoticeDelayMs);
  }

  /**
   * Writes every Ready, sends what may leave before the sync, applies committed entries and
   * advances the cores without waiting for the disk: the sync runs while later turns go on
   * (new proposals, acknowledgements, commits), and what waits for it — votes, append
   * acknowledgements, this node's own log counting toward a quorum — follows when it resolves.
   * A turn with a snapshot keeps every step in order instead (its image is restored state).
   */
  private async runReadies(work: readonly { replica: Replica; rd: Ready }[]): Promise<void> {
    this.counters.turns++;
    const writes = work.map(({ replica, rd }) => replica.write(rd));
    // A leader's appends and heartbeats leave now: followers write while this node does.
    let sentEarly = false;
    work.forEach(({ replica }, i) => {
      const { beforeSync } = writes[i]!;
      if (beforeSync.length === 0) return;
      this.send(replica, beforeSync);
      sentEarly = true;
    });
    if (sentEarly) this.options.transport.flush();
    // One sync covers every write so far, earlier turns' included (group commit). A turn that
    // wrote nothing to sync still sends its messages only after the last sync started: they
    // may promise what that sync makes durable (an acknowledgement names the last index).
    let synced = this.lastSync ?? Promise.resolve();
    // Durable before this returns when the write-ahead log could write at once, and no earlier
    // sync's messages wait: then this turn's follow at once, before the applies below (a
    // follower acknowledges without waiting for its apply).
    let durableNow = false;
    if (work.some(({ rd }) => rd.mustSync)) {
      durableNow = this.syncsInFlight.size === 0 && this.options.engine.syncNow();
      if (!durableNow) synced = this.options.engine.sync();
      this.lastSync = durableNow ? null : synced;
      this.counters.syncs++;
    }
    if (work.some(({ rd }) => rd.snapshot !== null)) {
      await synced;
      this.afterSync(work, writes);
      for (const { replica, rd } of work) await this.apply(replica, rd);
      for (const { replica, rd } of work) replica.advance(rd, true);
      return;
    }
    const waiting = writes.some((w) => w.afterSync.length > 0 || w.last !== null || w.changesTermOrVote);
    if (waiting && durableNow) this.afterSync(work, writes);
    else if (waiting) this.trackSync(synced, () => this.afterSync(work, writes));
    // Committed entries are durable on a quorum already (the core counts this node's own log
    // only once durable): apply them, and answer their requests, while the disk syncs.
    for (const { replica, rd } of work) await this.apply(replica, rd);
    for (const { replica, rd } of work) replica.advance(rd, false);
  }

  /** Takes `replica`'s local snapshot; one that was taken is counted and timed. */
  private async checkpoint(replica: Replica): Promise<void> {
    const startedAt = this.options.monotonicClock();
    if (!(await replica.takeSnapshot())) return;
    this.counters.checkpoints++;
    const milliseconds = this.options.monotonicClock() - startedAt;
    for (const listener of this.checkpointListeners) {
      try {
        listener(milliseconds);
      } catch {
        // Metrics only: the snapshot was taken all the same.
      }
    }
  }

  /** Applies a Ready's committed entries, counting an apply that took SLOW_APPLY_MS or more. */
  private async apply(replica: Replica, rd: Ready): Promise<void> {
    if (rd.committedEntries.length === 0) {
      await replica.apply(rd);
      return;
    }
    const startedAt = this.options.monotonicClock();
    await replica.apply(rd);
    if (this.options.monotonicClock() - startedAt >= SLOW_APPLY_MS) this.counters.slowApplies++;
  }

  /** The messages that waited for the sync leave; the replicas learn their writes are durable. */
  private afterSync(work: readonly { replica: Replica }[], writes: readonly ReadyWrite[]): void {
    // A replica destroyed meanwhile (merged away) neither speaks nor learns anything more.
    const hosted = work.map(({ replica }) => this.replicas.get(replica.rangeId) === replica);
    work.forEach(({ replica }, i) => {
      if (hosted[i]) this.send(replica, writes[i]!.afterSync);
    });
    if (writes.some((w, i) => hosted[i] && w.afterSync.length > 0)) this.options.transport.flush();
    work.forEach(({ replica }, i) => {
      if (hosted[i]) replica.durable(writes[i]!);
    });
  }

  /**
   * Runs `then` when `sync` resolves, if the host still runs; a failed sync fails the host.
   * The host is not idle, and does not finish stopping, while a sync is outstanding.
   */
  private trackSync(sync: Promise<void>, then: () => void): void {
    const tracked: Promise<void> = sync.then(
      () => {
        this.syncsInFlight.delete(tracked);
        if (this.state === "running") then();
        this.notifyIdle();
      },
      (error: unknown) => {
        this.syncsInFlight.delete(tracked);
        if (this.state === "running" || this.state === "stopping") this.fail(error);
        this.notifyIdle();
      },
    );
    this.syncsInFlight.add(tracked);
  }

  private send(replica: Replica, messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) this.liveness.addPeer(m.to);
    for (const m of messages) {
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(replica, m);
        continue;
      }
      const batch = byPeer.get(m.to);
      if (batch === undefined) byPeer.set(m.to, [m]);
      else batch.push(m);
    }
    for (const [peer, batch] of byPeer) {
      this.liveness.spokeTo(peer);
      this.options.transport.send(peer, {
        groupId: replica.rangeId,
        from: this.nodeId,
        to: peer,
        messages: batch,
      });
      this.counters.messagesSent += batch.length;
    }
  }

  /** Streams the state machine's current image with the core's snapshot metadata; reports the outcome. */
  private sendSnapshot(replica: Replica, m: Message): void {
    const image = replica.snapshotImage();
    this.counters.snapshotsSent++;
    const settle = (ok: boolean): void => {
      image.release();
      replica.snapshotSent(m.to, ok);
      this.wake(replica);
    };
    void this.options.transport.sendSnapshot(m.to, replica.rangeId, m, image).then(
      () => settle(true),
      (error: unknown) => {
        this.counters.snapshotsSendFailed++;
        this.options.logger.warn(
          { rangeId: replica.rangeId, to: m.to, error: String(error) },
          "snapshot transfer failed",
        );
        settle(false);
      },
    );
  }

  private fail(error: unknown): void {
    if (this.state === "failed") return;
    const cause = error instanceof Error ? error : new Error(String(error));
    this.failureCause = cause;
    this.state = "failed";
    this.stopTimers();
    this.options.logger.warn({ nodeId: this.nodeId, error: cause.message }, "node host failed and stopped");
    for (const replica of this.replicas.values()) replica.close(cause);
    this.options.onFailure?.(cause);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
