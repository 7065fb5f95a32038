/**
 * One simulated run of the node runtime: NodeHosts on simulated disks, network and clocks,
 * clients doing put/get/cas, the profile's partitions and crashes, and the checks —
 * state-machine safety (the same command and revision at every index on every node),
 * revisions strictly increasing within each incarnation, at most one leader per term, no host
 * stopping on an error, every acknowledged write readable at its revision on every node at the
 * end, every node's final state equal to the leader's, and a linearizable history. With
 * `splits` the keyspace is split under load and faults and the split checks of split-run.ts
 * run too (state-machine safety is then checked per range); with `merges` as well, ranges are
 * merged back meanwhile and the merge checks of merge-run.ts run too.
 *
 * The runtime is promise-driven, so between two scheduler events the caller's
 * `settleMicrotasks` lets every queued promise reaction run; it must resolve only after all
 * of them did (a macrotask of the real event loop, from the entry point), which keeps a run a
 * pure function of its seed.
 */
import { rangeRequest } from "../../kv/commands.js";
import type { ReplicaInit } from "../../node/options.js";
import type { Replica } from "../../node/replica.js";
import { ReadOnlyOption } from "../../raft/index.js";
import { EMPTY_CONF_STATE, StateRole, type ConfState, type NodeId } from "../../raft/types.js";
import type { Logger } from "../../transport/transport.js";
import { checkLinearizability, type Operation } from "../linearizability/index.js";
import { profileByName, type FaultProfile, type MsRange, type ProfileName } from "../profiles.js";
import { SeededRandom } from "../random.js";
import { Scheduler } from "../scheduler.js";
import { TraceBuffer, type TraceLine } from "../trace.js";
import { RuntimeClient, type AcknowledgedPut, type RuntimeClientCounters } from "./runtime-client.js";
import { RuntimeNode, type RuntimeNodeSettings } from "./runtime-node.js";
import { SimTransportHub } from "./sim-transport.js";
import {
  startClockJumpLoop,
  startDiskFullLoop,
  startCrashLoop,
  startFreezeLoop,
  startPartitionLoop,
  type FaultLoopCluster,
} from "./fault-loops.js";
import { LeaderCheck } from "./leader-check.js";
import { ApplyCheck } from "./apply-check.js";
import {
  describeStrayRanges,
  finalMergeChecks,
  mergedReplicasGone,
  startMergeLoop,
  type MergeLoopHandle,
  type MergeStats,
} from "./merge-run.js";
import {
  SPLIT_KEYS,
  SPLIT_NODE_SETTINGS,
  describeSplits,
  driveUntilSettled,
  finalSplitChecks,
  splitsSettled,
  startSplitLoop,
  type SplitCluster,
  type SplitLoopHandle,
  type SplitStats,
} from "./split-run.js";

/**
 * The profiles the runtime simulation covers. Of "membership" it injects the membership
 * changes the runtime offers (addLearner, addVoter, removeNode: simple changes), not transfers.
 */
export const RUNTIME_PROFILES = [
  "calm-with-loss",
  "partitions",
  "crashes",
  "membership",
] as const satisfies readonly ProfileName[];
export type RuntimeProfileName = (typeof RUNTIME_PROFILES)[number];

/** The profiles a split keyspace runs under (membership changes reach range 1 only). */
export const SPLIT_PROFILES = [
  "calm-with-loss",
  "partitions",
  "crashes",
] as const satisfies readonly RuntimeProfileName[];

export interface RuntimeSimulationOptions {
  readonly seed: number;
  readonly profile: RuntimeProfileName;
  /** Cap on the events of the faulty phase (default: the profile's duration decides). */
  readonly steps?: number;
  /** Virtual duration of the faulty phase (default: the profile's). */
  readonly durationMs?: number;
  /** Deliberate bug: the simulated disks acknowledge syncs before the writes are durable. */
  readonly ackBeforeSync?: boolean;
  /** Raft logs in the production write-ahead log on simulated disks (sim-wal-disk.ts). */
  readonly walDisks?: boolean;
  /** Overrides the profile's mean time between crashes (crash-heavy runs for checks-bite tests). */
  readonly crashMeanIntervalMs?: number;
  /**
   * Freeze nodes (SIGSTOP, then SIGCONT) this often (mean virtual ms), on top of the profile's
   * faults: one node (the leader half the time) or, one time in four, every running node at
   * once, for 20 ms to 3 s (up to 15 election timeouts). Absent: no freezes.
   */
  readonly freezeMeanIntervalMs?: number;
  /**
   * Step one node's wall clock this often (mean virtual ms), on top of the profile's faults,
   * forward or back by up to 10 virtual minutes. Absent: the wall clocks never jump.
   */
  readonly clockJumpMeanIntervalMs?: number;
  /**
   * With `walDisks`: fill one node's write-ahead log disk this often (mean virtual ms), for
   * 100 ms to 2 s; its host stops on the full disk, and restarts once the disk has room.
   * Absent: disks never fill.
   */
  readonly diskFullMeanIntervalMs?: number;
  /**
   * Split the keyspace under load and faults (split-run.ts): every node runs its placement
   * layer, clients go through its router, a random node splits a random key this often (mean
   * virtual ms). Not with the membership profile (membership changes reach range 1 only).
   */
  readonly splitMeanIntervalMs?: number;
  /** Deliberate bug (with splits): a split's copy into the new range loses one key. */
  readonly splitLosesKey?: boolean;
  /** The cluster's size instead of one of the profile's (short sweeps run 3 nodes). */
  readonly clusterSize?: 3 | 5;
  /** Ask for a split while another is in flight (default: one at a time, see split-run.ts). */
  readonly concurrentSplits?: boolean;
  /**
   * With splits: merge ranges back under load and faults (merge-run.ts): a random node asks
   * to merge a random non-first route into its left neighbour this often (mean virtual ms).
   */
  readonly mergeMeanIntervalMs?: number;
  /** Deliberate bug (with merges): a merge's import into the left range drops one version. */
  readonly mergeLosesKey?: boolean;
  /**
   * With splits: every node's placement runs etcd's periodic auto-compaction keeping this
   * many virtual milliseconds of history, so compactions, and the background removal of what
   * they compact away, run under the faults. Absent: no compaction.
   */
  readonly autoCompactionRetentionMs?: number;
  /** Resolves once every queued microtask has run (see the file header). */
  readonly settleMicrotasks: () => Promise<void>;
  readonly traceCapacity?: number;
  readonly onTrace?: (line: TraceLine) => void;
}

export interface RuntimeViolation {
  readonly invariant: string;
  readonly detail: string;
  readonly time: number;
}

export interface RuntimeStats extends RuntimeClientCounters, SplitStats, MergeStats {
  events: number;
  virtualMs: number;
  crashes: number;
  lostUnsyncedWrites: number;
  partitions: number;
  leaderChanges: number;
  appliedCommands: number;
  membershipChanges: number;
  /** Snapshot images restored into a state machine (a lagging or restarted node catching up). */
  snapshotsRestored: number;
  operations: number;
  /** Histories too large for the checker to decide (neither proved nor refuted). */
  linearizabilityUnknown: number;
  /** Compactions the nodes' auto-compaction made (with `autoCompactionRetentionMs`). */
  autoCompactions: number;
  /** Freezes (with `freezeMeanIntervalMs`), a whole-cluster one counted once. */
  freezes: number;
  /** Wall-clock steps (with `clockJumpMeanIntervalMs`). */
  clockJumps: number;
  /** Disks that filled up (with `diskFullMeanIntervalMs`). */
  diskFulls: number;
  /** Hosts that stopped on a full disk, as they must. */
  fullDiskStops: number;
}

export interface RuntimeSimulationResult {
  readonly seed: number;
  readonly profile: RuntimeProfileName;
  readonly clusterSize: number;
  readonly violations: readonly RuntimeViolation[];
  readonly stats: RuntimeStats;
  readonly history: readonly Operation[];
  readonly trace: readonly TraceLine[];
}

const TICK_MS = 20;
/** How long a freeze lasts: from one tick to 15 election timeouts (10 ticks each). */
const FREEZE_DURATION_MS: MsRange = [TICK_MS, 150 * TICK_MS];
/** How long a disk stays full: 100 ms to 2 s. */
const DISK_FULL_DURATION_MS: MsRange = [5 * TICK_MS, 100 * TICK_MS];
/** The largest wall-clock step, either way: 10 minutes. */
const MAX_CLOCK_JUMP_MS = 10 * 60 * 1000;
const SETTLE_LIMIT_MS = 20_000;
const MAX_VIOLATIONS = 20;

export function isRuntimeProfile(name: string): name is RuntimeProfileName {
  return (RUNTIME_PROFILES as readonly string[]).includes(name);
}

function memberIds(conf: ConfState): Set<NodeId> {
  return new Set([...conf.voters, ...conf.learners, ...conf.votersOutgoing, ...conf.learnersNext]);
}

class RuntimeRun {
  readonly scheduler = new Scheduler();
  readonly random: SeededRandom;
  readonly profile: FaultProfile;
  readonly hub: SimTransportHub;
  readonly nodes: RuntimeNode[] = [];
  readonly clients: RuntimeClient[] = [];
  readonly trace: TraceBuffer;
  readonly violations: RuntimeViolation[] = [];
  readonly history: Operation[] = [];
  readonly acknowledged: AcknowledgedPut[] = [];
  readonly stats: RuntimeStats = {
    events: 0,
    virtualMs: 0,
    crashes: 0,
    lostUnsyncedWrites: 0,
    partitions: 0,
    leaderChanges: 0,
    appliedCommands: 0,
    membershipChanges: 0,
    snapshotsRestored: 0,
    operations: 0,
    linearizabilityUnknown: 0,
    acked: 0,
    failed: 0,
    ambiguous: 0,
    readsServed: 0,
    readsTimedOut: 0,
    splitsRequested: 0,
    splitsDone: 0,
    splitsFailed: 0,
    mergesRequested: 0,
    mergesDone: 0,
    mergesFailed: 0,
    autoCompactions: 0,
    freezes: 0,
    clockJumps: 0,
    diskFulls: 0,
    fullDiskStops: 0,
  };
  private readonly applyCheck = new ApplyCheck({
    violation: (invariant, detail) => this.violation(invariant, detail),
    trace: (text) => this.trace.add(this.scheduler.now, text),
    applied: () => this.stats.appliedCommands++,
    restored: () => this.stats.snapshotsRestored++,
  });
  readonly splits: boolean;
  readonly keys: readonly string[];
  private splitLoop: SplitLoopHandle | null = null;
  private mergeLoop: MergeLoopHandle | null = null;
  private readonly leaderCheck = new LeaderCheck({
    electionSafetyKind: "election safety",
    violation: (kind, detail) => this.violation(kind, detail),
    newLeader: (node, term) => {
      this.stats.leaderChanges++;
      this.trace.add(this.scheduler.now, `n${node.id} leads term ${term}`);
    },
    stoppedOnFullDisk: (node) => {
      this.stats.fullDiskStops++;
      this.trace.add(this.scheduler.now, `n${node.id} stopped: its disk filled up`);
      // With room again already, the operator restarts it now; else the disk-full loop does once there is.
      if (!node.diskFull) this.scheduler.after(TICK_MS, () => this.restart(node));
    },
  });
  private nextOperationId = 0;
  private faultsActive = true;
  readonly clusterSize: number;
  private readonly nodeSettings: Omit<RuntimeNodeSettings, "random">;
  private membershipChangeInFlight = false;

  constructor(readonly options: RuntimeSimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.profile = profileByName(options.profile);
    this.splits = options.splitMeanIntervalMs !== undefined;
    if (this.splits && this.profile.membership !== null) {
      throw new Error(
        `splits do not run with the ${options.profile} profile (membership changes reach range 1 only)`,
      );
    }
    if (options.diskFullMeanIntervalMs !== undefined && options.walDisks !== true) {
      throw new Error("full disks are simulated on the write-ahead log's disks only (walDisks)");
    }
    if (!this.splits && options.autoCompactionRetentionMs !== undefined) {
      throw new Error("auto-compaction runs on a split keyspace only (set splitMeanIntervalMs too)");
    }
    if (!this.splits && options.mergeMeanIntervalMs !== undefined) {
      throw new Error("merges run on a split keyspace only (set splitMeanIntervalMs too)");
    }
    this.keys = this.splits ? SPLIT_KEYS : this.profile.clients.keys;
    this.trace = new TraceBuffer(options.traceCapacity ?? 200, options.onTrace);
    this.hub = new SimTransportHub(this.scheduler, this.random.fork("network"), this.profile.network);
    const shape = this.random.fork("shape");
    const sizes = options.clusterSize === undefined ? this.profile.clusterSizes : [options.clusterSize];
    this.clusterSize = shape.pick(sizes);
    const preVote = shape.chance(0.5);
    const checkQuorum = shape.chance(0.5);
    const readOnlyOption = checkQuorum && shape.chance(0.5) ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe;
    const commitNoticeDelayMs = shape.pick([0, 5, 20]);
    const logger: Logger = { warn: () => undefined, info: () => undefined };
    this.nodeSettings = {
      scheduler: this.scheduler,
      hub: this.hub,
      diskLatencyMs: this.profile.diskLatencyMs,
      ackBeforeSync: options.ackBeforeSync ?? false,
      walDisks: options.walDisks ?? false,
      logger,
      tickMs: TICK_MS,
      snapshotEntries: this.profile.snapshotEvery,
      proposalTimeoutMs: 1_500,
      readTimeoutMs: 1_000,
      preVote,
      checkQuorum,
      readOnlyOption,
      commitNoticeDelayMs,
      onReplica: (node, replica) => this.applyCheck.watch(node, replica),
      ...(this.splits
        ? {
            ranged: {
              ...SPLIT_NODE_SETTINGS,
              splitLosesKey: options.splitLosesKey ?? false,
              mergeLosesKey: options.mergeLosesKey ?? false,
              autoCompactionRetentionMs: options.autoCompactionRetentionMs ?? 0,
            },
          }
        : {}),
    };
    const founders = Array.from({ length: this.clusterSize }, (_, i) => i + 1);
    for (const id of founders) this.addNode(id, { bootstrap: { ...EMPTY_CONF_STATE, voters: founders } });
    this.trace.add(
      0,
      `${this.clusterSize} nodes, preVote ${preVote}, checkQuorum ${checkQuorum}, reads ${readOnlyOption}, ` +
        `commit notices after ${commitNoticeDelayMs} ms`,
    );
    const clientRandom = this.random.fork("clients");
    for (let id = 1; id <= this.profile.clients.count; id++) {
      this.clients.push(new RuntimeClient(id, clientRandom.fork(`client ${id}`), this.clientContext()));
    }
  }

  private addNode(id: NodeId, init: ReplicaInit): RuntimeNode {
    const node = new RuntimeNode(id, { ...this.nodeSettings, random: this.random.fork(`node ${id}`) }, init);
    this.nodes.push(node);
    return node;
  }

  /** Nodes not retired, running or not. */
  live(): RuntimeNode[] {
    return this.nodes.filter((n) => !n.retired);
  }

  violation(invariant: string, detail: string): void {
    if (this.violations.length >= MAX_VIOLATIONS) return;
    this.violations.push({ invariant, detail, time: this.scheduler.now });
    this.trace.add(this.scheduler.now, `VIOLATION ${invariant}: ${detail}`);
  }

  private clientContext(): ConstructorParameters<typeof RuntimeClient>[2] {
    return {
      scheduler: this.scheduler,
      settings: { ...this.profile.clients, keys: this.keys, timeoutMs: 2_000 },
      pickReplica: (random) => {
        const node = random.pick(this.live());
        return { id: node.id, replica: node.clientKv() };
      },
      record: (operation) => {
        this.history.push(operation);
        this.stats.operations++;
      },
      allocateId: () => this.nextOperationId++,
      acknowledged: (write) => this.acknowledged.push(write),
      counters: this.stats,
      trace: (text) => this.trace.add(this.scheduler.now, text),
      fail: (text) => this.violation("client", text),
    };
  }

  /** After every event: no host failed, at most one leader per term. */
  checkAfterEvent(): void {
    this.leaderCheck.afterEvent(this.nodes);
    // Ranges made by a split or by reconciliation are checked from their first event on.
    if (this.splits)
      for (const node of this.nodes)
        for (const replica of node.replicasIfNew()) this.applyCheck.watch(node, replica);
  }

  leader(): RuntimeNode | undefined {
    let best: { node: RuntimeNode; term: number } | undefined;
    for (const node of this.nodes) {
      const status = node.replica()?.status();
      if (status?.role === StateRole.Leader && (best === undefined || status.term > best.term)) {
        best = { node, term: status.term };
      }
    }
    return best?.node;
  }

  startFaults(): void {
    const { partitions, crashes, membership } = this.profile;
    if (membership !== null) this.startMembershipChanges(membership.meanIntervalMs);
    const cluster: FaultLoopCluster = {
      scheduler: this.scheduler,
      network: this.hub.network,
      faultsActive: () => this.faultsActive,
      partitionable: () => this.nodes,
      crashable: () => this.live(),
      size: () => this.clusterSize,
      leader: () => this.leader(),
      trace: (text) => this.trace.add(this.scheduler.now, text),
    };
    const splitMeanIntervalMs = this.options.splitMeanIntervalMs;
    if (splitMeanIntervalMs !== undefined) {
      this.splitLoop = startSplitLoop(
        this.splitCluster(),
        { meanIntervalMs: splitMeanIntervalMs, concurrent: this.options.concurrentSplits ?? false },
        this.random.fork("faults/splits"),
        this.keys,
      );
    }
    const mergeMeanIntervalMs = this.options.mergeMeanIntervalMs;
    if (mergeMeanIntervalMs !== undefined) {
      this.mergeLoop = startMergeLoop(
        { ...this.splitCluster(), stats: this.stats },
        { meanIntervalMs: mergeMeanIntervalMs },
        this.random.fork("faults/merges"),
      );
    }
    if (partitions !== null) {
      startPartitionLoop(cluster, partitions, this.random.fork("faults/partitions"), () => {
        this.stats.partitions++;
      });
    }
    const freezeMeanIntervalMs = this.options.freezeMeanIntervalMs;
    if (freezeMeanIntervalMs !== undefined) {
      startFreezeLoop(
        cluster,
        { meanIntervalMs: freezeMeanIntervalMs, durationMs: FREEZE_DURATION_MS, wholeClusterChance: 0.25 },
        this.random.fork("faults/freezes"),
        () => this.stats.freezes++,
      );
    }
    const clockJumpMeanIntervalMs = this.options.clockJumpMeanIntervalMs;
    if (clockJumpMeanIntervalMs !== undefined) {
      startClockJumpLoop(
        cluster,
        { meanIntervalMs: clockJumpMeanIntervalMs, maxJumpMs: MAX_CLOCK_JUMP_MS },
        this.random.fork("faults/clock-jumps"),
        () => this.stats.clockJumps++,
      );
    }
    const diskFullMeanIntervalMs = this.options.diskFullMeanIntervalMs;
    if (diskFullMeanIntervalMs !== undefined) {
      startDiskFullLoop(
        cluster,
        { meanIntervalMs: diskFullMeanIntervalMs, durationMs: DISK_FULL_DURATION_MS },
        this.random.fork("faults/disk-full"),
        { filled: () => this.stats.diskFulls++, restart: (node) => this.restart(node) },
      );
    }
    if (crashes !== null) {
      const meanIntervalMs = this.options.crashMeanIntervalMs ?? crashes.meanIntervalMs;
      startCrashLoop(cluster, { ...crashes, meanIntervalMs }, this.random.fork("faults/crashes"), {
        crashed: (lost) => {
          this.stats.crashes++;
          this.stats.lostUnsyncedWrites += lost;
        },
        restart: (node) => this.restart(node),
      });
    }
  }

  /** Without splits, true; with them, whether a meta leader's split loop ran (the catalog exists). */
  catalogReady(): boolean {
    return !this.splits || this.nodes.some((n) => (n.ranges()?.loop.counters.cycles ?? 0) > 0);
  }

  private splitCluster(runUntil?: (done: () => boolean, limitMs: number) => Promise<boolean>): SplitCluster {
    return {
      scheduler: this.scheduler,
      faultsActive: () => this.faultsActive,
      // A frozen process asks for nothing: splits and merges start on running ones only.
      live: () => this.live().filter((node) => !node.frozen),
      stats: this.stats,
      trace: (text) => this.trace.add(this.scheduler.now, text),
      violation: (invariant, detail) => this.violation(invariant, detail),
      drive: (pending) => {
        if (runUntil === undefined) throw new Error("the simulation is not driven here");
        return driveUntilSettled(pending, runUntil, SETTLE_LIMIT_MS);
      },
    };
  }

  private startMembershipChanges(meanIntervalMs: number): void {
    const random = this.random.fork("faults/membership");
    const next = (): void => {
      this.scheduler.after(random.exponential(meanIntervalMs), () => {
        if (!this.faultsActive) return;
        if (!this.membershipChangeInFlight) this.changeMembership(random);
        next();
      });
    };
    next();
  }

  /**
   * One change through the leader, as an operator would make it: add a fresh node as a
   * learner, promote a learner, remove a voter (never below three) or a learner. A removed
   * node is stopped for good once its removal is applied.
   */
  private changeMembership(random: SeededRandom): void {
    const leaderNode = this.leader();
    // The operator's request waits while the leader's process is frozen: skip this turn.
    const leader = leaderNode?.frozen === true ? undefined : leaderNode?.replica();
    if (leader === undefined) return;
    const conf = leader.status().confState;
    if (conf.votersOutgoing.length > 0) return;
    const changes: (() => { what: string; removed: NodeId | null; change: Promise<ConfState> })[] = [];
    if (conf.voters.length + conf.learners.length < this.clusterSize + 2) {
      changes.push(() => {
        const joiner = this.addNode(this.nodes.length + 1, { join: true });
        joiner.start();
        return { what: `add learner n${joiner.id}`, removed: null, change: leader.addLearner(joiner.id) };
      });
    }
    if (conf.learners.length > 0) {
      const learner = random.pick(conf.learners);
      if (conf.voters.length <= this.clusterSize) {
        changes.push(() => ({
          what: `promote n${learner}`,
          removed: null,
          change: leader.addVoter(learner),
        }));
      }
      changes.push(() => ({
        what: `remove learner n${learner}`,
        removed: learner,
        change: leader.removeNode(learner),
      }));
    }
    if (conf.voters.length > 3) {
      const voter = random.pick(conf.voters);
      changes.push(() => ({
        what: `remove voter n${voter}`,
        removed: voter,
        change: leader.removeNode(voter),
      }));
    }
    if (changes.length === 0) return;
    const { what, removed, change } = random.pick(changes)();
    this.membershipChangeInFlight = true;
    this.trace.add(this.scheduler.now, `proposing: ${what}`);
    change
      .then(
        (applied) => {
          this.stats.membershipChanges++;
          this.trace.add(
            this.scheduler.now,
            `applied: ${what}; voters [${applied.voters.join(",")}] learners [${applied.learners.join(",")}]`,
          );
          const gone = removed === null ? undefined : this.nodes.find((n) => n.id === removed);
          if (gone !== undefined && !memberIds(applied).has(gone.id)) this.retire(gone);
        },
        (error: unknown) => this.trace.add(this.scheduler.now, `${what} failed: ${String(error)}`),
      )
      .finally(() => {
        this.membershipChangeInFlight = false;
      });
  }

  private retire(node: RuntimeNode): void {
    if (node.running) node.crash();
    node.retired = true;
    this.trace.add(this.scheduler.now, `n${node.id} retired`);
  }

  restart(node: RuntimeNode): void {
    if (node.running || node.retired) return;
    try {
      node.start();
      this.trace.add(this.scheduler.now, `n${node.id} restarted`);
    } catch (error) {
      this.violation("restart", `n${node.id} could not reopen its storage: ${String(error)}`);
    }
  }

  heal(): void {
    this.faultsActive = false;
    for (const client of this.clients) client.stop();
    this.hub.network.heal();
    this.hub.network.setConditions({ ...this.profile.network, lossRate: 0, duplicateRate: 0, slowRate: 0 });
    for (const node of this.nodes) {
      node.thaw();
      if (node.diskFull) node.setDiskFull(false);
      // Compactions end with the faults, as the split and merge loops do: the final checks
      // compare replicas with their leaders, which a compaction still committing would race.
      node.stopAutoCompaction();
      this.restart(node);
    }
    this.trace.add(this.scheduler.now, "faults healed");
  }

  /** The nodes in the leader's configuration (voters and learners), or none without a leader. */
  members(): RuntimeNode[] {
    const conf = this.leader()?.replica()?.status().confState;
    if (conf === undefined) return [];
    const ids = memberIds(conf);
    return this.nodes.filter((n) => ids.has(n.id));
  }

  /** Each live node's role, term, leader, commit and applied index, for liveness reports. */
  describeNodes(): string {
    return this.live()
      .map((n) => {
        const status = n.replica()?.status();
        if (status === undefined) return `n${n.id} down`;
        return (
          `n${n.id} ${status.role} term ${status.term} leader ${status.leader} ` +
          `commit ${status.commit} applied ${status.applied} voters [${status.confState.voters.join(",")}]`
        );
      })
      .join("; ")
      .concat(
        this.splits
          ? ` | ranges: ${describeSplits(this.members())} | stray ranges: ${describeStrayRanges(this.members())}`
          : "",
      );
  }

  /**
   * One leader whose whole log is committed, every member applied up to its commit index, no
   * client operation or change in flight. A leader just elected may still show the commit
   * index it knew before (a restarted one: its last synced one), below entries of the log it
   * holds, until the first entry of its term commits: every member past THAT index is not
   * settled (seed 46 of the crashes profile with freezes compared the final states there).
   */
  settled(): boolean {
    const leader = this.leader()?.replica()?.status();
    if (leader === undefined || this.membershipChangeInFlight || this.clients.some((c) => c.busy))
      return false;
    if (leader.commit < leader.lastIndex || leader.confState.votersOutgoing.length > 0) return false;
    const members = this.members();
    const metaSettled = members.every((n) => {
      const status = n.replica()?.status();
      return status !== undefined && status.leader === leader.nodeId && status.applied >= leader.commit;
    });
    if (!metaSettled || !this.splits) return metaSettled;
    const loopsIdle = this.splitLoop?.busy() !== true && this.mergeLoop?.busy() !== true;
    return loopsIdle && splitsSettled(members) && mergedReplicasGone(members);
  }

  async finalChecks(runUntil: (done: () => boolean, limitMs: number) => Promise<boolean>): Promise<void> {
    const leaderNode = this.leader();
    const leader = leaderNode?.replica();
    if (leaderNode === undefined || leader === undefined) throw new Error("final checks without a leader");
    const reader = leaderNode.clientKv() ?? leader;
    // One read per client at a time: rounds of as many keys as there are clients.
    for (let first = 0; first < this.keys.length; first += this.clients.length) {
      const round = this.keys.slice(first, first + this.clients.length);
      round.forEach((key, i) => this.clients[i]!.readThrough(leaderNode.id, reader, key));
      if (!(await runUntil(() => this.clients.every((c) => !c.busy), SETTLE_LIMIT_MS))) {
        this.violation("liveness", "the final reads did not complete");
        break;
      }
    }
    if (this.splits) {
      const members = this.members();
      const routes = await finalSplitChecks(
        this.splitCluster(runUntil),
        members,
        this.acknowledged,
        this.keys,
      );
      if (routes !== null) finalMergeChecks(this, members, routes);
    } else await this.finalStateChecks(leaderNode, leader);
    const result = checkLinearizability(this.history);
    if (result.outcome === "violation") this.violation("linearizability", result.explanation);
    if (result.outcome === "unknown") this.stats.linearizabilityUnknown++;
  }

  /** One range: every member's state equals the leader's, every acknowledged write is there. */
  private async finalStateChecks(leaderNode: RuntimeNode, leader: Replica): Promise<void> {
    const all = rangeRequest({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
    const expected = await leader.range(all, "serializable");
    const render = (kvs: typeof expected.kvs): string =>
      JSON.stringify(kvs.map((kv) => [kv.key, kv.value, String(kv.modRevision)].map(String)));
    for (const node of this.members()) {
      const replica = node.replica();
      if (replica === undefined) continue;
      const state = await replica.range(all, "serializable");
      if (render(state.kvs) !== render(expected.kvs) || state.revision !== expected.revision) {
        this.violation("final state", `n${node.id} differs from the leader n${leaderNode.id}`);
      }
      for (const write of this.acknowledged) {
        const read = await replica.range(
          rangeRequest({ key: new TextEncoder().encode(write.key), revision: write.revision }),
          "serializable",
        );
        const kv = read.kvs[0];
        if (
          kv === undefined ||
          new TextDecoder().decode(kv.value) !== write.value ||
          kv.modRevision !== write.revision
        ) {
          this.violation(
            "acknowledged write lost",
            `n${node.id}: ${write.key}=${write.value} acknowledged at revision ${write.revision} is not there`,
          );
        }
      }
    }
  }
}

export async function runRuntimeSimulation(
  options: RuntimeSimulationOptions,
): Promise<RuntimeSimulationResult> {
  const run = new RuntimeRun(options);
  const { scheduler } = run;
  const step = async (): Promise<boolean> => {
    if (!scheduler.step()) return false;
    run.stats.events++;
    await options.settleMicrotasks();
    run.checkAfterEvent();
    return true;
  };
  const runUntil = async (done: () => boolean, limitMs: number): Promise<boolean> => {
    const deadline = scheduler.now + limitMs;
    while (!done()) {
      if ((scheduler.peekTime() ?? Infinity) > deadline || !(await step())) return done();
    }
    return true;
  };
  for (const node of run.nodes) node.start();
  // Clients and faults start once the first leader is up (on a split keyspace: once the meta
  // leader initialized the route catalog), so short runs are not all election.
  if (!(await runUntil(() => run.leader() !== undefined && run.catalogReady(), SETTLE_LIMIT_MS))) {
    const what = run.splits ? "leader with an initialized route catalog" : "leader elected";
    run.violation("liveness", `no ${what} within ${SETTLE_LIMIT_MS} virtual ms of the start`);
  }
  for (const client of run.clients) client.start();
  run.startFaults();
  const faultyUntil = scheduler.now + (options.durationMs ?? run.profile.durationMs);
  const maxSteps = options.steps ?? Infinity;
  let faultySteps = 0;
  while (faultySteps < maxSteps && (scheduler.peekTime() ?? Infinity) <= faultyUntil && (await step())) {
    faultySteps++;
  }
  run.heal();
  // A run that already failed stops here: its trace shows the failure, not 20 s of fallout.
  const failedOrSettled = (): boolean => run.violations.length > 0 || run.settled();
  if (!(await runUntil(failedOrSettled, SETTLE_LIMIT_MS))) {
    run.violation(
      "liveness",
      `no settled leader within ${SETTLE_LIMIT_MS} virtual ms after healing: ${run.describeNodes()}`,
    );
  } else if (run.violations.length === 0) {
    run.trace.add(scheduler.now, `settled: n${run.leader()?.id} leads`);
    await run.finalChecks(runUntil);
  }
  run.stats.virtualMs = scheduler.now;
  for (const node of run.nodes) run.stats.autoCompactions += node.autoCompactions;
  return {
    seed: options.seed,
    profile: options.profile,
    clusterSize: run.clusterSize,
    violations: run.violations,
    stats: run.stats,
    history: [...run.history].sort((a, b) => a.id - b.id),
    trace: run.trace.lines(),
  };
}
