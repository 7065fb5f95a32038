/**
 * One simulated process of the node runtime: a real `NodeHost` over a simulated disk (a
 * MemoryStorageEngine whose syncs take virtual time and whose unsynced writes a crash may
 * lose), a state-machine store that forgets unsynced writes on a crash, virtual timers and
 * clocks, and a SimTransport. A crash drops the host with everything volatile; a restart
 * builds a new host over the same disk and reopens the stored range.
 *
 * `ackBeforeSync` is a deliberate bug for checks-bite tests: the disk acknowledges a sync at
 * once and makes the writes durable only later, as a disk with a lying write cache would, so
 * a crash can lose writes the cluster already acknowledged.
 *
 * With `ranged` settings the process runs as a real node of a split keyspace: every range's
 * store lives in the one state-machine engine under `rangeNamespace(rangeId)`, the host
 * reopens every stored range on a restart, and a `NodeRanges` (catalog, route watcher,
 * router, split and merge coordinators and loop, reconciliation) runs over the host on
 * virtual time; the disk drops the Raft storage of a range merged away when the host asks.
 *
 * `freeze(ms)` stops the running incarnation as SIGSTOP would (see SimTimers): its timers,
 * network deliveries, disk completions and clients' requests wait for the thaw.
 * `jumpWallClock(ms)` steps the machine's wall clock (as NTP or an operator would), for this
 * and every later incarnation; the monotonic clock never jumps.
 */
import { EMPTY } from "../../kv/bytes.js";
import { WriteBatch, type OrderedKv, type ReadView } from "../../kv/engine.js";
import { rangeNamespace } from "../../kv/keys.js";
import { MemoryOrderedKv } from "../../kv/memory-engine.js";
import { NodeHost } from "../../node/host.js";
import type { Replica } from "../../node/replica.js";
import { NodeRanges } from "../../placement/node-ranges.js";
import { RangeRouter } from "../../placement/router/router.js";
import type { ReplicaInit } from "../../node/options.js";
import type { ReadOnlyOption } from "../../raft/index.js";
import type { NodeId } from "../../raft/types.js";
import type { ReplicaStorage, StorageEngine } from "../../storage/contracts.js";
import { MemoryStorageEngine } from "../../storage/memory.js";
import type { Logger } from "../../transport/transport.js";
import type { MsRange } from "../profiles.js";
import type { SeededRandom } from "../random.js";
import type { Scheduler } from "../scheduler.js";
import { SimTimers, simMonotonicClock, simWallClock } from "./sim-timers.js";
import { SimWalDisk } from "./sim-wal-disk.js";
import type { SimTransport, SimTransportHub } from "./sim-transport.js";
import { dropOneImportedVersion } from "./merge-bug.js";
import { dropOneMovedKey } from "./split-bug.js";

/** How much longer than an honest sync a lying write cache takes to reach the disk. */
const LAZY_WRITE_BACK_FACTOR = 10;

/** The one range every simulated process hosts. */
export const SIM_RANGE_ID = 1;

/**
 * An OrderedKv whose writes are visible at once and durable after `sync()`; `crash()` reverts
 * it to what was durable, as an engine without a synced write-ahead log would.
 */
export class CrashableKv implements OrderedKv {
  private visible = new MemoryOrderedKv();
  private readonly durable = new MemoryOrderedKv();
  private unsynced: WriteBatch[] = [];

  /**
   * `splitLosesKey`: the deliberate bug of split-bug.ts (a split forgets one key);
   * `mergeLosesKey`: the one of merge-bug.ts (a merge's import drops one version).
   */
  constructor(
    private readonly splitLosesKey = false,
    private readonly mergeLosesKey = false,
  ) {}

  view(): ReadView {
    return this.visible.view();
  }

  write(written: WriteBatch): void {
    const split = this.splitLosesKey ? dropOneMovedKey(written) : written;
    const batch = this.mergeLosesKey ? this.withoutOneImportedVersion(split) : split;
    this.visible.write(batch);
    this.unsynced.push(batch);
  }

  private withoutOneImportedVersion(batch: WriteBatch): WriteBatch {
    const view = this.visible.view();
    try {
      return dropOneImportedVersion(batch, view);
    } finally {
      view.release();
    }
  }

  sync(): void {
    for (const batch of this.unsynced) this.durable.write(batch);
    this.unsynced = [];
  }

  crash(): void {
    this.unsynced = [];
    const copy = new WriteBatch();
    const view = this.durable.view();
    for (const pair of view.scan(EMPTY, null)) copy.put(pair.key, pair.value);
    view.release();
    this.visible = new MemoryOrderedKv();
    this.visible.write(copy);
  }
}

/** The Raft storage engine on a simulated disk: syncs take a random virtual latency. */
export class SimDisk implements StorageEngine {
  readonly engine = new MemoryStorageEngine();
  /** How the process learns of a completed sync: at once, or held while it is frozen (SimTimers.deliver). */
  gate: (run: () => void, source: string) => void = (run) => run();
  /** Bumped by every crash: a sync issued by a dead incarnation never completes. */
  private generation = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: SeededRandom,
    private readonly latencyMs: MsRange,
    private readonly ackBeforeSync: boolean,
  ) {}

  replica(groupId: number): ReplicaStorage {
    return this.engine.replica(groupId);
  }

  groups(): number[] {
    return this.engine.groups();
  }

  dropGroup(groupId: number): void {
    this.engine.dropGroup(groupId);
  }

  sync(): Promise<void> {
    return this.afterLatency(() => this.engine.syncNow());
  }

  /** Every sync takes the disk's latency: only a disk with nothing to write is durable now. */
  syncNow(): boolean {
    return this.engine.pendingWriteCount() === 0;
  }

  /** Runs `persist` after a disk latency unless the process crashes first; resolves after it. */
  afterLatency(persist: () => void): Promise<void> {
    const generation = this.generation;
    const [low, high] = this.latencyMs;
    const delay = this.random.intBetween(low, high);
    if (this.ackBeforeSync) {
      this.scheduler.after(delay * LAZY_WRITE_BACK_FACTOR, () => {
        if (generation === this.generation) persist();
      });
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.scheduler.after(delay, () => {
        if (generation !== this.generation) return;
        persist();
        this.gate(resolve, "disk");
      });
    });
  }

  /** Power loss: a random prefix of the unsynced writes reaches the disk, the rest is lost. */
  crash(): number {
    this.generation++;
    const pending = this.engine.pendingWriteCount();
    const kept = this.random.intBetween(0, pending);
    this.engine.crash(kept);
    return pending - kept;
  }
}

export interface RuntimeNodeSettings {
  readonly scheduler: Scheduler;
  readonly hub: SimTransportHub;
  /** The node's own random stream: disk latencies, crash losses, host randomness. */
  readonly random: SeededRandom;
  readonly diskLatencyMs: MsRange;
  readonly ackBeforeSync: boolean;
  /** The Raft logs go to the production write-ahead log on a simulated disk (SimWalDisk). */
  readonly walDisks?: boolean;
  readonly logger: Logger;
  readonly tickMs: number;
  readonly snapshotEntries: number;
  readonly proposalTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Lease reads only with checkQuorum (the core refuses otherwise); absent: ReadIndex rounds. */
  readonly readOnlyOption?: ReadOnlyOption;
  /** NodeHostOptions.commitNoticeDelayMs; absent: the default. */
  readonly commitNoticeDelayMs?: number;
  /** Called with every new incarnation's replica, before it handles anything. */
  readonly onReplica: (node: RuntimeNode, replica: Replica) => void;
  /** Run as a node of a split keyspace (see the file header); absent: one range, no placement. */
  readonly ranged?: RangedNodeSettings;
}

export interface RangedNodeSettings {
  /** Milliseconds between split-loop cycles (recovery of interrupted splits) on the meta leader. */
  readonly splitIntervalMs: number;
  readonly routePollIntervalMs: number;
  readonly reconcileIntervalMs: number;
  /** Attempts the client-facing router makes on a moved route before giving up. */
  readonly routerAttempts: number;
  /** Deliberate bug for checks-bite tests: a split's copy into the new range loses one key. */
  readonly splitLosesKey: boolean;
  /** Deliberate bug for checks-bite tests: a merge's import into the left range drops one version. */
  readonly mergeLosesKey: boolean;
  /** History kept by the placement's auto-compaction, in virtual ms; 0: off. */
  readonly autoCompactionRetentionMs: number;
}

/** What clients use of a node: the request surface of a Replica (a replica, or a router). */
export type ClientKv = Pick<Replica, "propose" | "range">;

export class RuntimeNode {
  /** The simulated disk: the state machine's syncs take its latency; the Raft logs, unless walDisks. */
  readonly disk: SimDisk;
  /** Where the Raft logs live: `disk`, or the write-ahead log on its own simulated disk. */
  readonly raftLog: StorageEngine & { crash(): number };
  /** The write-ahead log's simulated disk (`walDisks`), else null. */
  private readonly walDisk: SimWalDisk | null;
  /** Requests made to a frozen incarnation: each is its own connection's input at the thaw. */
  private frozenRequests = 0;
  /** How far this machine's wall clock is from virtual time (jumpWallClock). */
  private wallOffsetMs = 0;
  private readonly wallClock = (): number => simWallClock(this.settings.scheduler)() + this.wallOffsetMs;
  readonly kv: CrashableKv;
  private host: NodeHost | null = null;
  private placement: NodeRanges | null = null;
  /** Compactions the auto-compaction of earlier incarnations made. */
  private earlierAutoCompactions = 0;
  /** Set once the faults heal: no incarnation compacts from then on (stopAutoCompaction). */
  private autoCompactionStopped = false;
  private router: RangeRouter | null = null;
  private timers: SimTimers | null = null;
  private transport: SimTransport | null = null;
  private incarnationCount = 0;
  /** The host asked for a range's state machine: a replica may have been created since. */
  private replicaMayBeNew = false;

  /** Removed from the group and stopped for good: never restarted, no longer checked. */
  retired = false;
  private diskFilledThisIncarnation = false;

  /** `init`: a founding member's membership, or a joiner that waits to be added. */
  constructor(
    readonly id: NodeId,
    private readonly settings: RuntimeNodeSettings,
    private readonly init: ReplicaInit,
  ) {
    this.kv = new CrashableKv(
      settings.ranged?.splitLosesKey ?? false,
      settings.ranged?.mergeLosesKey ?? false,
    );
    this.disk = new SimDisk(
      settings.scheduler,
      settings.random,
      settings.diskLatencyMs,
      settings.ackBeforeSync,
    );
    this.walDisk =
      settings.walDisks === true
        ? new SimWalDisk(
            `node-${id}`,
            settings.scheduler,
            settings.random,
            settings.diskLatencyMs,
            settings.ackBeforeSync ? LAZY_WRITE_BACK_FACTOR : null,
          )
        : null;
    this.raftLog = this.walDisk ?? this.disk;
  }

  /** Whether the running incarnation is frozen (SIGSTOP). */
  get frozen(): boolean {
    return this.timers?.frozen ?? false;
  }

  /** SIGSTOP of the running incarnation for `ms` of virtual time (see SimTimers.freeze). */
  freeze(ms: number): void {
    this.timers?.freeze(ms);
  }

  /** SIGCONT of the running incarnation now, if it is frozen. */
  thaw(): void {
    this.timers?.thaw();
  }

  /** Steps this machine's wall clock by `ms` (negative: back), from now on. */
  jumpWallClock(ms: number): void {
    this.wallOffsetMs += ms;
  }

  get running(): boolean {
    return this.host !== null;
  }

  /** How many times this node was started. */
  get incarnation(): number {
    return this.incarnationCount;
  }

  /** The range's replica of the running incarnation, if any. */
  replica(): Replica | undefined {
    return this.host?.replica(SIM_RANGE_ID);
  }

  /** Every replica of the running incarnation, by range id. */
  replicas(): Replica[] {
    const host = this.host;
    if (host === null) return [];
    return host.rangeIds().flatMap((id) => host.replica(id) ?? []);
  }

  /**
   * Every replica of the running incarnation if the host may have created one since the last
   * call (it asks for the range's state machine right before), else none: cheap per event.
   */
  replicasIfNew(): Replica[] {
    if (!this.replicaMayBeNew) return [];
    this.replicaMayBeNew = false;
    return this.replicas();
  }

  /** The running incarnation's replica of range `rangeId`, if it hosts one. */
  replicaOf(rangeId: number): Replica | undefined {
    return this.host?.replica(rangeId);
  }

  /** Compactions this node's auto-compaction made, over all its incarnations. */
  get autoCompactions(): number {
    return this.earlierAutoCompactions + (this.placement?.autoCompactor?.counters.compacted ?? 0);
  }

  /**
   * Stops this node's auto-compaction, now and in later incarnations. The final checks compare
   * each replica with its leader at one moment: a compaction still committing (a revision
   * floor, then the compaction) leaves followers a message behind the leader while they read.
   */
  stopAutoCompaction(): void {
    this.autoCompactionStopped = true;
    this.placement?.autoCompactor?.stop();
  }

  /** The placement layer of the running incarnation (ranged nodes only). */
  ranges(): NodeRanges | undefined {
    return this.placement ?? undefined;
  }

  /**
   * What a client talking to this node reaches: the router over every range on a ranged
   * node, the range's replica otherwise; undefined while the node is down.
   */
  clientKv(): ClientKv | undefined {
    const kv = this.router ?? this.replica();
    const timers = this.timers;
    if (kv === undefined || timers === null || !timers.frozen) return kv;
    // A request to a frozen process waits in its socket until the thaw.
    const source = `client request ${++this.frozenRequests}`;
    return {
      propose: (...args) => timers.within(() => kv.propose(...args), source),
      range: (...args) => timers.within(() => kv.range(...args), source),
    };
  }

  /** The error that stopped the running host, if one did. */
  failure(): Error | null {
    return this.host?.failure ?? null;
  }

  /** Starts the node: over an empty disk as its `init` says, otherwise reopening the stored range. */
  start(): void {
    if (this.host !== null) throw new Error(`node ${this.id} is already running`);
    const { scheduler, hub, random } = this.settings;
    this.incarnationCount++;
    this.diskFilledThisIncarnation = this.diskFull;
    const timers = new SimTimers(scheduler, random.fork(`thaws ${this.incarnationCount}`));
    const transport = hub.createTransport(this.id);
    const gate = (run: () => void, source: string): void => timers.deliver(run, source);
    transport.gate = gate;
    this.disk.gate = gate;
    if (this.walDisk !== null) this.walDisk.gate = gate;
    const host = new NodeHost({
      nodeId: this.id,
      engine: this.raftLog,
      transport,
      timers,
      monotonicClock: simMonotonicClock(scheduler),
      wallClock: this.wallClock,
      random: random.fork(`incarnation ${this.incarnationCount}`),
      logger: this.settings.logger,
      stateMachine: (rangeId) => {
        this.replicaMayBeNew = true;
        const sync = (): Promise<void> => this.disk.afterLatency(() => this.kv.sync());
        if (this.settings.ranged === undefined) return { kv: this.kv, sync };
        return { kv: this.kv, sync, storeOptions: { namespace: rangeNamespace(rangeId) } };
      },
      tickMs: this.settings.tickMs,
      snapshotEntries: this.settings.snapshotEntries,
      proposalTimeoutMs: this.settings.proposalTimeoutMs,
      readTimeoutMs: this.settings.readTimeoutMs,
      ...(this.settings.commitNoticeDelayMs === undefined
        ? {}
        : { commitNoticeDelayMs: this.settings.commitNoticeDelayMs }),
      raft: {
        preVote: this.settings.preVote,
        checkQuorum: this.settings.checkQuorum,
        ...(this.settings.readOnlyOption === undefined
          ? {}
          : { readOnlyOption: this.settings.readOnlyOption }),
      },
    });
    void transport.start();
    host.start();
    try {
      const stored = this.raftLog.groups().includes(SIM_RANGE_ID);
      const opened = stored ? host.openStoredReplicas() : [host.createReplica(SIM_RANGE_ID, this.init)];
      if (host.replica(SIM_RANGE_ID) === undefined) {
        throw new Error(`node ${this.id}: the stored range did not reopen`);
      }
      for (const replica of opened) this.settings.onReplica(this, replica);
      if (this.settings.ranged !== undefined) this.startPlacement(host, timers, this.settings.ranged);
    } catch (error) {
      // The process exits on a storage it refuses to open: it stays down.
      timers.kill();
      transport.kill();
      throw error;
    }
    hub.network.setUp(this.id, true);
    this.host = host;
    this.timers = timers;
    this.transport = transport;
  }

  /**
   * Power loss: the host, its timers and its transport vanish mid-flight (nothing of them
   * runs again), the disk keeps a random prefix of its unsynced writes and the state machine
   * store reverts to its last sync. Returns how many unsynced Raft writes were lost.
   */
  /** Whether the node's write-ahead log disk is full (only with `walDisks`). */
  get diskFull(): boolean {
    return this.walDisk?.full ?? false;
  }

  /**
   * Whether the disk was full at some time since the running incarnation started: its log may
   * have refused writes (DiskFullError), which lasts until a restart even once there is room.
   */
  get diskFilledWhileUp(): boolean {
    return this.diskFilledThisIncarnation;
  }

  /** Fills or frees the node's write-ahead log disk; without `walDisks` there is none to fill. */
  setDiskFull(full: boolean): void {
    if (this.walDisk === null) throw new Error(`node ${this.id} has no write-ahead log disk to fill`);
    this.walDisk.full = full;
    if (full && this.host !== null) this.diskFilledThisIncarnation = true;
  }

  crash(): number {
    if (this.host === null) throw new Error(`node ${this.id} is not running`);
    this.timers?.kill();
    this.transport?.kill();
    this.host = null;
    this.earlierAutoCompactions += this.placement?.autoCompactor?.counters.compacted ?? 0;
    this.placement = null;
    this.router = null;
    this.timers = null;
    this.transport = null;
    this.settings.hub.network.setUp(this.id, false);
    this.kv.crash();
    const lost = this.disk.crash();
    return this.raftLog === this.disk ? lost : lost + this.raftLog.crash();
  }

  /**
   * The node's placement layer on virtual time. Clients go through a RangeRouter over the
   * layer's own route table and watcher whose retry backoff sleeps on the simulated timers
   * (NodeRanges' router sleeps on the real event loop, which a seeded run cannot replay).
   */
  private startPlacement(host: NodeHost, timers: SimTimers, ranged: RangedNodeSettings): void {
    const { scheduler, random } = this.settings;
    const placement = new NodeRanges({
      host,
      timers,
      monotonicClock: simMonotonicClock(scheduler),
      random: random.fork(`placement ${this.incarnationCount}`),
      logger: this.settings.logger,
      autoSplit: false,
      // Merges come from the simulation's merge loop; recovery still rolls broken ones forward.
      autoMerge: false,
      splitIntervalMs: ranged.splitIntervalMs,
      routePollIntervalMs: ranged.routePollIntervalMs,
      reconcileIntervalMs: ranged.reconcileIntervalMs,
      autoCompactionRetentionMs: this.autoCompactionStopped ? 0 : ranged.autoCompactionRetentionMs,
      wallClock: this.wallClock,
    });
    placement.start();
    this.placement = placement;
    this.router = new RangeRouter({
      table: placement.table,
      replicas: host,
      reload: () => placement.watcher.refresh(),
      retry: { attempts: ranged.routerAttempts },
      sleep: (ms) => new Promise((resolve) => timers.setTimeout(resolve, ms)),
    });
  }
}
