/**
 * One simulation run, start to finish, as a pure function of its options:
 *
 * 1. derive the cluster's shape and Raft options from the seed, bootstrap the nodes;
 * 2. faulty phase: clients issue operations while the profile's faults fire, invariants are
 *    checked after every event;
 * 3. heal: faults stop, links are restored, crashed nodes restart, the network stops losing;
 * 4. settle: wait until one leader has every member caught up and applied (a liveness check);
 * 5. final checks: log prefixes agree, every acknowledged write is applied on every member,
 *    members' state machines are equal, a linearizable read of every key joins the history;
 * 6. the whole history goes through the linearizability checker.
 */
import { ConfChangeTransition, EMPTY_BYTES, ReadOnlyOption, type InjectedBugs } from "../raft/index.js";
import { HistoryRecorder, SimClient, type AcknowledgedWrite, type ClientCounters } from "./client.js";
import { Cluster } from "./cluster.js";
import { FaultInjector } from "./faults.js";
import type { Violation } from "./invariants.js";
import { checkLinearizability, renderTimeline, type Operation } from "./linearizability/index.js";
import type { NodeSettings } from "./node.js";
import { profileByName, type FaultProfile, type ProfileName } from "./profiles.js";
import { SeededRandom } from "./random.js";
import { TraceBuffer, type TraceLine } from "./trace.js";

export interface SimulationOptions {
  readonly seed: number;
  readonly profile: FaultProfile | ProfileName;
  /** Most events to run in the faulty phase; it also ends after the profile's duration. */
  readonly steps?: number;
  /** Virtual duration of the faulty phase; defaults to the profile's. */
  readonly durationMs?: number;
  /** Deliberate Raft bugs, to prove the checks catch them. */
  readonly bugs?: InjectedBugs;
  /** How many trace lines to keep for the report (default 200). */
  readonly traceCapacity?: number;
  /** Receives every trace line as it happens (for --verbose). */
  readonly onTrace?: (line: TraceLine) => void;
}

/** The Raft options the seed chose. */
export interface RunShape {
  readonly clusterSize: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  /** Small limits split catch-up into many append messages, big ones send it in one. */
  readonly maxSizePerMsg: number;
  /** Leaders defer commit notices; nodes flush them at every tick. */
  readonly deferCommitNotices: boolean;
}

export interface SimStats {
  events: number;
  virtualMs: number;
  leadersElected: number;
  leaderChanges: number;
  elections: number;
  maxTerm: number;
  crashes: number;
  restarts: number;
  unsyncedWritesLost: number;
  partitions: number;
  oneWayPartitions: number;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  messagesReordered: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  snapshotsTaken: number;
  nodesAdded: number;
  nodesRetired: number;
  confChangesProposed: number;
  confChangesRefused: number;
  confChangesApplied: number;
  transfersRequested: number;
  transfersCompleted: number;
  opsAcked: number;
  opsFailed: number;
  opsAmbiguous: number;
  readsServed: number;
  readsTimedOut: number;
  /** 1 when the linearizability search ran out of budget (neither proved nor refuted). */
  linearizabilityUnknown: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly profile: ProfileName;
  readonly shape: RunShape;
  /** The deliberate bugs the run had switched on (empty normally). */
  readonly bugs: InjectedBugs;
  readonly violations: Violation[];
  readonly stats: SimStats;
  readonly history: Operation[];
  /** The last events before the run ended (or before the first violation), oldest first. */
  readonly trace: TraceLine[];
}

const TICK_MS = 10;
const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 2;
/** How long the healed cluster gets to converge before that counts as a liveness failure. */
const SETTLE_LIMIT_MS = 20_000;
const SETTLE_CHECK_EVERY_MS = 20;
const FINAL_READ_ATTEMPTS = 10;

function chooseShape(profile: FaultProfile, random: SeededRandom): RunShape {
  const clusterSize = random.pick(profile.clusterSizes);
  const preVote = random.chance(0.75);
  const checkQuorum = random.chance(0.75);
  const leaseReads = checkQuorum && random.chance(0.25);
  return {
    clusterSize,
    preVote,
    checkQuorum,
    readOnlyOption: leaseReads ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
    maxSizePerMsg: random.pick([128, 1024, 8192]),
    deferCommitNotices: random.chance(0.5),
  };
}

class Run {
  readonly profile: FaultProfile;
  readonly shape: RunShape;
  readonly trace: TraceBuffer;
  readonly cluster: Cluster;
  readonly faults: FaultInjector;
  readonly recorder = new HistoryRecorder();
  readonly clientCounters: ClientCounters = {
    acked: 0,
    failed: 0,
    ambiguous: 0,
    readsServed: 0,
    readsTimedOut: 0,
  };
  readonly acknowledged: AcknowledgedWrite[] = [];
  readonly clients: SimClient[];
  private linearizabilityUnknown = 0;

  constructor(private readonly options: SimulationOptions) {
    this.profile = typeof options.profile === "string" ? profileByName(options.profile) : options.profile;
    const root = new SeededRandom(options.seed);
    this.shape = chooseShape(this.profile, root.fork("shape"));
    this.trace = new TraceBuffer(options.traceCapacity ?? 200, options.onTrace);
    const settings: NodeSettings = {
      tickMs: TICK_MS,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      preVote: this.shape.preVote,
      checkQuorum: this.shape.checkQuorum,
      readOnlyOption: this.shape.readOnlyOption,
      maxSizePerMsg: this.shape.maxSizePerMsg,
      deferCommitNotices: this.shape.deferCommitNotices,
      maxInflightMsgs: 32,
      bugs: options.bugs ?? {},
      diskLatency: this.profile.diskLatencyMs,
      snapshotEvery: this.profile.snapshotEvery,
    };
    this.cluster = new Cluster(
      this.shape.clusterSize,
      settings,
      this.profile.network,
      root.fork("cluster"),
      this.trace,
    );
    this.faults = new FaultInjector(this.cluster, this.profile, root.fork("faults"));
    const directory = {
      pickNode: (random: SeededRandom) => {
        const nodes = this.cluster.nodes();
        return nodes.length === 0 ? undefined : random.pick(nodes);
      },
      trace: (text: string) => this.cluster.trace(text),
    };
    const settingsForClients = this.profile.clients;
    this.clients = Array.from(
      { length: settingsForClients.count },
      (_, i) =>
        new SimClient(
          i + 1,
          settingsForClients,
          root.fork(`client/${i + 1}`),
          this.cluster.scheduler,
          directory,
          this.recorder,
          this.clientCounters,
          this.acknowledged,
        ),
    );
    this.trace.add(
      0,
      `seed ${options.seed} profile ${this.profile.name}: ${this.shape.clusterSize} nodes, ` +
        `preVote ${this.shape.preVote}, checkQuorum ${this.shape.checkQuorum}, reads ${this.shape.readOnlyOption}, ` +
        `maxSizePerMsg ${this.shape.maxSizePerMsg}, deferCommitNotices ${this.shape.deferCommitNotices}`,
    );
  }

  execute(): SimulationResult {
    for (const client of this.clients) client.start();
    this.faults.start();
    this.faultyPhase();
    if (this.ok()) this.heal();
    if (this.ok()) this.settle();
    if (this.ok()) this.finalChecks();
    if (this.ok()) this.finalReads();
    for (const client of this.clients) client.abandon();
    const history = this.recorder.history();
    if (this.ok()) this.checkHistory(history);
    return {
      seed: this.options.seed,
      profile: this.profile.name,
      shape: this.shape,
      bugs: this.options.bugs ?? {},
      violations: this.cluster.violations,
      stats: this.stats(),
      history,
      trace: this.trace.lines(),
    };
  }

  private ok(): boolean {
    return this.cluster.violations.length === 0;
  }

  private faultyPhase(): void {
    const end = this.options.durationMs ?? this.profile.durationMs;
    const maxSteps = this.options.steps ?? Number.POSITIVE_INFINITY;
    const scheduler = this.cluster.scheduler;
    for (let steps = 0; steps < maxSteps; steps++) {
      const next = scheduler.peekTime();
      if (next === undefined || next > end) break;
      if (!this.cluster.step()) return;
    }
  }

  private heal(): void {
    for (const client of this.clients) client.stop();
    this.faults.healAll();
    this.cluster.network.setConditions({ ...this.profile.network, lossRate: 0, duplicateRate: 0 });
  }

  /** Run until `done()` (checked every few virtual ms) or until `limitMs` passed; false on timeout. */
  private runUntil(limitMs: number, done: () => boolean): boolean {
    const scheduler = this.cluster.scheduler;
    const deadline = scheduler.now + limitMs;
    let nextCheck = scheduler.now;
    for (;;) {
      if (scheduler.now >= nextCheck) {
        if (done()) return true;
        nextCheck = scheduler.now + SETTLE_CHECK_EVERY_MS;
      }
      const next = scheduler.peekTime();
      if (next === undefined || next > deadline) return done();
      if (!this.cluster.step()) return false;
    }
  }

  private settle(): void {
    let lastProblem = "";
    const settled = this.runUntil(SETTLE_LIMIT_MS, () => {
      lastProblem = this.unsettled() ?? "";
      return lastProblem === "" && this.clients.every((c) => !c.busy);
    });
    if (!settled && this.ok()) {
      this.cluster.reportViolation({
        invariant: "liveness",
        time: this.cluster.scheduler.now,
        message: `cluster did not settle within ${SETTLE_LIMIT_MS}ms after healing: ${lastProblem || "clients busy"}`,
      });
    }
  }

  /** Why the cluster is not yet quiescent and caught up, or null when it is. */
  private unsettled(): string | null {
    const leader = this.cluster.leader();
    if (leader === undefined) return "no leader";
    const status = leader.status();
    const cs = status.confState;
    if (cs.votersOutgoing.length > 0) {
      if (!cs.autoLeave)
        this.cluster.proposeConfChange({
          transition: ConfChangeTransition.Auto,
          changes: [],
          context: EMPTY_BYTES,
        });
      return `n${leader.id} is in a joint configuration`;
    }
    const commit = status.hardState.commit;
    if (commit !== status.lastIndex) return `leader n${leader.id} committed ${commit} of ${status.lastIndex}`;
    for (const id of [...cs.voters, ...cs.learners]) {
      const node = this.cluster.node(id);
      if (node === undefined || !node.running) return `member n${id} is not running`;
      const s = node.status();
      if (s.lastIndex !== status.lastIndex || s.hardState.commit !== commit || node.applied !== commit) {
        return `n${id} at last ${s.lastIndex} commit ${s.hardState.commit} applied ${node.applied}, leader at ${commit}`;
      }
      if (node.hasPendingWork()) return `n${id} has pending work`;
    }
    return null;
  }

  private finalChecks(): void {
    const leader = this.cluster.leader();
    if (leader === undefined) throw new Error("final checks need a leader (settle guarantees one)");
    const cs = leader.status().confState;
    const members = [...cs.voters, ...cs.learners].map((id) => this.cluster.node(id)!);
    this.cluster.checkLogsAgree();
    const digest = leader.kvDigest();
    const now = this.cluster.scheduler.now;
    for (const node of members) {
      if (node.kvDigest() !== digest) {
        this.cluster.reportViolation({
          invariant: "state-machine-safety",
          time: now,
          message: `n${node.id} state machine differs from leader n${leader.id} at applied ${node.applied}`,
        });
        return;
      }
      for (const ack of this.acknowledged) {
        if (node.applied < ack.index || node.lastAppliedRequest(ack.request.client) < ack.request.seq) {
          this.cluster.reportViolation({
            invariant: "acknowledged-write-lost",
            time: now,
            message:
              `write c${ack.request.client}#${ack.request.seq} acknowledged at index ${ack.index} ` +
              `is not applied on n${node.id} (applied ${node.applied})`,
          });
          return;
        }
      }
    }
    this.cluster.trace(`settled: ${members.length} members agree at applied ${leader.applied}`);
  }

  /** A linearizable read of every key, after everything healed, recorded into the history. */
  private finalReads(): void {
    const reader = new SimClient(
      0,
      this.profile.clients,
      new SeededRandom(this.options.seed).fork("final-reads"),
      this.cluster.scheduler,
      { pickNode: () => undefined, trace: (text) => this.cluster.trace(text) },
      this.recorder,
      this.clientCounters,
      this.acknowledged,
    );
    for (const key of this.profile.clients.keys) {
      const servedBefore = this.clientCounters.readsServed;
      for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS; attempt++) {
        const leader = this.cluster.leader();
        if (leader !== undefined) reader.readThrough(leader, key);
        this.runUntil(2 * this.profile.clients.timeoutMs, () => !reader.busy);
        if (!this.ok() || this.clientCounters.readsServed > servedBefore) break;
      }
      if (this.ok() && this.clientCounters.readsServed === servedBefore) {
        this.cluster.reportViolation({
          invariant: "liveness",
          time: this.cluster.scheduler.now,
          message: `final read of ${key} was not served in ${FINAL_READ_ATTEMPTS} attempts`,
        });
      }
      if (!this.ok()) return;
    }
  }

  private checkHistory(history: Operation[]): void {
    const result = checkLinearizability(history);
    if (result.outcome === "ok") return;
    if (result.outcome === "unknown") {
      this.linearizabilityUnknown = 1;
      this.cluster.trace(`linearizability unknown on ${result.key}: ${result.reason}`);
      return;
    }
    this.cluster.reportViolation({
      invariant: "linearizability",
      time: this.cluster.scheduler.now,
      message: `key ${result.key}: ${result.explanation}\n${renderTimeline(result.operations)}`,
    });
  }

  private stats(): SimStats {
    const net = this.cluster.network.counters;
    const cc = this.cluster.counters;
    const mc = this.cluster.monitor.counters;
    const fc = this.faults.counters;
    const client = this.clientCounters;
    return {
      events: this.cluster.scheduler.eventsRun,
      virtualMs: this.cluster.scheduler.now,
      leadersElected: mc.leadersElected,
      leaderChanges: mc.leaderChanges,
      elections: mc.campaigns,
      maxTerm: mc.maxTerm,
      crashes: cc.crashes,
      restarts: cc.restarts,
      unsyncedWritesLost: cc.unsyncedWritesLost,
      partitions: fc.partitions,
      oneWayPartitions: fc.oneWayPartitions,
      messagesSent: net.sent,
      messagesDropped: net.droppedLoss + net.droppedPartition + net.droppedDown,
      messagesDuplicated: net.duplicated,
      messagesReordered: net.reordered,
      snapshotsSent: net.snapshotsSent,
      snapshotsInstalled: cc.snapshotsInstalled,
      snapshotsTaken: cc.snapshotsTaken,
      nodesAdded: cc.nodesAdded,
      nodesRetired: cc.nodesRetired,
      confChangesProposed: cc.confChangesProposed,
      confChangesRefused: cc.confChangesRefused,
      confChangesApplied: cc.confChangesApplied,
      transfersRequested: cc.transfersRequested,
      transfersCompleted: cc.transfersCompleted,
      opsAcked: client.acked,
      opsFailed: client.failed,
      opsAmbiguous: client.ambiguous,
      readsServed: client.readsServed,
      readsTimedOut: client.readsTimedOut,
      linearizabilityUnknown: this.linearizabilityUnknown,
    };
  }
}

/** Run one seeded simulation; the same options always give the same result. */
export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Run(options).execute();
}
