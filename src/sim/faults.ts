/**
 * Fault injection during the faulty phase of a run: partitions (symmetric splits and one-way
 * cuts) that heal, crashes and restarts, membership changes (learners added and promoted,
 * voters demoted and removed, simple and joint changes with every transition kind) and
 * leadership transfers. Each fault kind draws from its own random sub-stream, so enabling one
 * does not change the timing of another.
 */
import {
  ConfChangeTransition,
  ConfChangeType,
  EMPTY_BYTES,
  type ConfChange,
  type ConfChangeSingle,
  type ConfState,
  type NodeId,
} from "../raft/types.js";
import type { SimNetwork } from "./network.js";
import type { SimNode } from "./node.js";
import type {
  CrashFaults,
  FaultProfile,
  MembershipFaults,
  PartitionFaults,
  TransferFaults,
} from "./profiles.js";
import type { SeededRandom } from "./random.js";
import type { ScheduledEvent, Scheduler } from "./scheduler.js";

/** What the injector may do to the cluster. */
export interface FaultTarget {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly clusterSize: number;
  /** Every node not retired, running or not. */
  nodes(): SimNode[];
  leader(): SimNode | undefined;
  crash(id: NodeId): void;
  restart(id: NodeId): void;
  /** A running node that was never a member (started fresh if there is none). */
  spareNode(): SimNode;
  /** Propose a membership change on the leader; false if there is none or it refused. */
  proposeConfChange(change: ConfChange): boolean;
  requestTransfer(leader: SimNode, transferee: NodeId): void;
  trace(text: string): void;
}

export interface FaultCounters {
  partitions: number;
  oneWayPartitions: number;
  crashes: number;
  restarts: number;
}

/** Voter counts stay in [MIN_VOTERS, clusterSize + 1] so a majority is usually available. */
const MIN_VOTERS = 3;

function members(cs: ConfState): Set<NodeId> {
  return new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
}

function change(type: ConfChangeType, nodeId: NodeId): ConfChangeSingle {
  return { type, nodeId };
}

export class FaultInjector {
  readonly counters: FaultCounters = { partitions: 0, oneWayPartitions: 0, crashes: 0, restarts: 0 };
  private readonly timers = new Set<ScheduledEvent>();
  private active = false;

  constructor(
    private readonly target: FaultTarget,
    private readonly profile: FaultProfile,
    private readonly random: SeededRandom,
  ) {}

  start(): void {
    this.active = true;
    const { partitions, crashes, membership, transfers } = this.profile;
    if (partitions !== null) this.schedulePartition(partitions, this.random.fork("partitions"));
    if (crashes !== null) this.scheduleCrash(crashes, this.random.fork("crashes"));
    if (membership !== null) this.scheduleMembership(membership, this.random.fork("membership"));
    if (transfers !== null) this.scheduleTransfer(transfers, this.random.fork("transfers"));
  }

  /** End of the faulty phase: no new faults, every link restored, every crashed node restarted. */
  healAll(): void {
    this.active = false;
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    this.target.network.heal();
    for (const node of this.target.nodes()) {
      if (!node.running) this.restart(node.id);
    }
    this.target.trace("faults healed");
  }

  private later(delay: number, run: () => void): void {
    const timer = this.target.scheduler.after(delay, () => {
      this.timers.delete(timer);
      if (this.active) run();
    });
    this.timers.add(timer);
  }

  // ------------------------------------------------------------------ partitions

  private schedulePartition(faults: PartitionFaults, random: SeededRandom): void {
    this.later(random.exponential(faults.meanIntervalMs), () => {
      const ids = this.target.nodes().map((n) => n.id);
      if (random.chance(faults.oneWayChance)) this.cutOneWay(ids, random);
      else this.splitSymmetric(ids, random);
      this.counters.partitions++;
      const [low, high] = faults.durationMs;
      this.later(random.intBetween(low, high), () => {
        this.target.network.heal();
        this.target.trace("partition healed");
        this.schedulePartition(faults, random);
      });
    });
  }

  private splitSymmetric(ids: readonly NodeId[], random: SeededRandom): void {
    const shuffled = random.shuffled(ids);
    const leader = this.target.leader();
    // Isolating the leader half of the time makes the interesting case (a deposed leader) common.
    if (leader !== undefined && random.chance(0.5)) {
      shuffled.splice(shuffled.indexOf(leader.id), 1);
      shuffled.unshift(leader.id);
    }
    const minority = shuffled.slice(0, random.intBetween(1, Math.max(1, Math.floor(ids.length / 2))));
    const rest = shuffled.slice(minority.length);
    this.target.network.partition(minority, rest);
    this.target.trace(`partition {${minority.join(",")}} | {${rest.join(",")}}`);
  }

  private cutOneWay(ids: readonly NodeId[], random: SeededRandom): void {
    const leader = this.target.leader();
    if (leader !== undefined && random.chance(0.5)) {
      // The leader hears nobody (its heartbeats still go out), or nobody hears the leader.
      const inbound = random.chance(0.5);
      for (const id of ids) {
        if (id === leader.id) continue;
        if (inbound) this.target.network.cut(id, leader.id);
        else this.target.network.cut(leader.id, id);
      }
    } else {
      const cuts = random.intBetween(1, ids.length);
      for (let i = 0; i < cuts; i++) {
        const [from, to] = random.shuffled(ids);
        if (from !== undefined && to !== undefined) this.target.network.cut(from, to);
      }
    }
    this.counters.oneWayPartitions++;
    this.target.trace(`one-way cuts ${this.target.network.describeCuts()}`);
  }

  // ------------------------------------------------------------------ crashes

  private scheduleCrash(faults: CrashFaults, random: SeededRandom): void {
    this.later(random.exponential(faults.meanIntervalMs), () => {
      const nodes = this.target.nodes();
      const down = nodes.filter((n) => !n.running).length;
      const maxDown = Math.floor((this.target.clusterSize - 1) / 2);
      const running = nodes.filter((n) => n.running);
      if (down < maxDown && running.length > 0) {
        const leader = this.target.leader();
        const victim =
          leader !== undefined && random.chance(faults.leaderBias) ? leader : random.pick(running);
        this.target.crash(victim.id);
        this.counters.crashes++;
        const [low, high] = faults.downtimeMs;
        this.later(random.intBetween(low, high), () => this.restart(victim.id));
      }
      this.scheduleCrash(faults, random);
    });
  }

  private restart(id: NodeId): void {
    const node = this.target.nodes().find((n) => n.id === id);
    if (node === undefined || node.running) return;
    this.target.restart(id);
    this.counters.restarts++;
  }

  // ------------------------------------------------------------------ membership

  private scheduleMembership(faults: MembershipFaults, random: SeededRandom): void {
    this.later(random.exponential(faults.meanIntervalMs), () => {
      this.changeMembership(random);
      this.scheduleMembership(faults, random);
    });
  }

  private changeMembership(random: SeededRandom): void {
    const leader = this.target.leader();
    if (leader === undefined) return;
    const status = leader.status();
    const cs = status.confState;
    if (cs.votersOutgoing.length > 0) {
      // In a joint configuration: leave it explicitly unless the core does so by itself.
      if (!cs.autoLeave)
        this.target.proposeConfChange({
          transition: ConfChangeTransition.Auto,
          changes: [],
          context: EMPTY_BYTES,
        });
      return;
    }
    const inConfig = members(cs);
    const maxVoters = this.target.clusterSize + 1;
    const caughtUp = (id: NodeId): boolean => (status.progress.get(id)?.match ?? 0) >= status.lastIndex - 5;
    const options: (() => ConfChange)[] = [];
    if (inConfig.size < this.target.clusterSize + 2) {
      options.push(() => {
        return this.simple(change(ConfChangeType.AddLearner, this.target.spareNode().id));
      });
    }
    const readyLearners = cs.learners.filter(caughtUp);
    if (readyLearners.length > 0) {
      const learner = random.pick(readyLearners);
      if (cs.voters.length < maxVoters) {
        options.push(() => this.anyTransition(random, [change(ConfChangeType.AddVoter, learner)]));
      }
      // Replace a voter by the learner: two changes at once always go through a joint config.
      options.push(() =>
        this.anyTransition(random, [
          change(ConfChangeType.AddVoter, learner),
          change(ConfChangeType.RemoveNode, random.pick(cs.voters)),
        ]),
      );
    }
    if (cs.voters.length > MIN_VOTERS) {
      const voter = random.pick(cs.voters);
      options.push(() => this.anyTransition(random, [change(ConfChangeType.AddLearner, voter)]));
      options.push(() => this.anyTransition(random, [change(ConfChangeType.RemoveNode, voter)]));
    }
    if (cs.learners.length > 0) {
      options.push(() => this.simple(change(ConfChangeType.RemoveNode, random.pick(cs.learners))));
    }
    if (options.length === 0) return;
    this.target.proposeConfChange(random.pick(options)());
  }

  private simple(single: ConfChangeSingle): ConfChange {
    return { transition: ConfChangeTransition.Auto, changes: [single], context: EMPTY_BYTES };
  }

  /** Changes with a random transition: Auto applies one voter change directly, else goes joint. */
  private anyTransition(random: SeededRandom, changes: ConfChangeSingle[]): ConfChange {
    const transition = random.pick([
      ConfChangeTransition.Auto,
      ConfChangeTransition.Implicit,
      ConfChangeTransition.Explicit,
    ]);
    return { transition, changes, context: EMPTY_BYTES };
  }

  // ------------------------------------------------------------------ transfers

  private scheduleTransfer(faults: TransferFaults, random: SeededRandom): void {
    this.later(random.exponential(faults.meanIntervalMs), () => {
      const leader = this.target.leader();
      if (leader !== undefined) {
        const voters = leader.status().confState.voters.filter((id) => id !== leader.id);
        if (voters.length > 0) this.target.requestTransfer(leader, random.pick(voters));
      }
      this.scheduleTransfer(faults, random);
    });
  }
}
