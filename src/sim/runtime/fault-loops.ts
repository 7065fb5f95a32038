/**
 * The partition and crash loops of simulated node-runtime clusters, shared by the runtime run
 * (runtime-run.ts) and the election workload's cluster (../election/cluster.ts), and the
 * runtime run's freeze, clock-jump and disk-full loops. Each loop draws from its own forked random
 * source in a fixed order, so a seed replays exactly.
 */
import type { CrashFaults, MsRange, PartitionFaults } from "../profiles.js";
import type { SeededRandom } from "../random.js";
import type { Scheduler } from "../scheduler.js";
import type { SimNetwork } from "../network.js";
import type { RuntimeNode } from "./runtime-node.js";

/** What a fault loop needs of the cluster it breaks. */
export interface FaultLoopCluster {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  /** False once the faulty phase is over: pending faults then do nothing. */
  faultsActive(): boolean;
  /** The nodes a partition may separate. */
  partitionable(): readonly RuntimeNode[];
  /** The nodes that may crash (a node removed for good may not). */
  crashable(): readonly RuntimeNode[];
  /** How many members the cluster has: at most a minority of them is down at once. */
  size(): number;
  leader(): RuntimeNode | undefined;
  trace(text: string): void;
}

/**
 * Every so often a partition: the leader is put first half the time, then either a one-way
 * cut between the first two nodes or a split after a random minority; healed after a while.
 */
export function startPartitionLoop(
  cluster: FaultLoopCluster,
  partitions: PartitionFaults,
  random: SeededRandom,
  onPartition: () => void,
): void {
  const next = (): void => {
    cluster.scheduler.after(random.exponential(partitions.meanIntervalMs), () => {
      if (!cluster.faultsActive()) return;
      const ids = random.shuffled(cluster.partitionable().map((n) => n.id));
      const leader = cluster.leader();
      if (leader !== undefined && random.chance(0.5)) {
        ids.splice(ids.indexOf(leader.id), 1);
        ids.unshift(leader.id);
      }
      if (random.chance(partitions.oneWayChance)) {
        const [from, to] = ids;
        if (from !== undefined && to !== undefined) cluster.network.cut(from, to);
      } else {
        const size = random.intBetween(1, Math.max(1, Math.floor(ids.length / 2)));
        cluster.network.partition(ids.slice(0, size), ids.slice(size));
      }
      onPartition();
      cluster.trace(`cuts ${cluster.network.describeCuts()}`);
      const [low, high] = partitions.durationMs;
      cluster.scheduler.after(random.intBetween(low, high), () => {
        if (!cluster.faultsActive()) return;
        cluster.network.heal();
        cluster.trace("partition healed");
        next();
      });
    });
  };
  next();
}

/**
 * Every so often a crash of a running node (the leader with the profile's bias) while fewer
 * than a minority are down; `restart` brings it back after its downtime.
 */
export function startCrashLoop(
  cluster: FaultLoopCluster,
  crashes: CrashFaults,
  random: SeededRandom,
  events: { readonly crashed: (lostWrites: number) => void; readonly restart: (node: RuntimeNode) => void },
): void {
  everySoOften(cluster, crashes.meanIntervalMs, random, () => {
    const nodes = cluster.crashable();
    const running = nodes.filter((n) => n.running);
    const maxDown = Math.floor((cluster.size() - 1) / 2);
    if (nodes.length - running.length < maxDown && running.length > 0) {
      const leader = cluster.leader();
      const victim =
        leader !== undefined && random.chance(crashes.leaderBias) ? leader : random.pick(running);
      const lost = victim.crash();
      events.crashed(lost);
      cluster.trace(`n${victim.id} crashed, ${lost} unsynced write(s) lost`);
      const [low, high] = crashes.downtimeMs;
      cluster.scheduler.after(random.intBetween(low, high), () => events.restart(victim));
    }
  });
}

/** Runs `act` after waits drawn from an exponential distribution of mean `meanIntervalMs`, while the faults last. */
function everySoOften(
  cluster: FaultLoopCluster,
  meanIntervalMs: number,
  random: SeededRandom,
  act: () => void,
): void {
  const next = (): void => {
    cluster.scheduler.after(random.exponential(meanIntervalMs), () => {
      if (!cluster.faultsActive()) return;
      act();
      next();
    });
  };
  next();
}

/** How often processes are frozen (SIGSTOP), and for how long. */
export interface FreezeFaults {
  readonly meanIntervalMs: number;
  /** A freeze lasts a random time in this range. */
  readonly durationMs: MsRange;
  /** The chance that a freeze stops every running node at once (a VM pause of the whole host). */
  readonly wholeClusterChance: number;
}

/**
 * Every so often a freeze: every running node at once (`wholeClusterChance`), else one (the
 * leader half the time), for a random duration. Frozen processes keep their state and their
 * clocks run on; they thaw by themselves (SimTimers.freeze), and at the heal.
 */
export function startFreezeLoop(
  cluster: FaultLoopCluster,
  freezes: FreezeFaults,
  random: SeededRandom,
  onFreeze: () => void,
): void {
  everySoOften(cluster, freezes.meanIntervalMs, random, () => {
    const running = cluster.crashable().filter((n) => n.running);
    const [low, high] = freezes.durationMs;
    const durationMs = random.intBetween(low, high);
    let victims: readonly RuntimeNode[] = [];
    if (running.length > 0) {
      const leader = cluster.leader();
      if (random.chance(freezes.wholeClusterChance)) victims = running;
      else victims = [leader !== undefined && random.chance(0.5) ? leader : random.pick(running)];
    }
    for (const node of victims) node.freeze(durationMs);
    if (victims.length > 0) {
      onFreeze();
      cluster.trace(`${victims.map((n) => `n${n.id}`).join(", ")} frozen for ${durationMs} ms`);
    }
  });
}

/**
 * Every so often one running node's wall clock steps, forward or back, by up to `maxJumpMs`
 * (an NTP step, an operator's `date -s`). Revisions are hybrid-logical timestamps read from
 * the wall clock: they must still only grow, and nothing else may depend on it.
 */
export function startClockJumpLoop(
  cluster: FaultLoopCluster,
  jumps: { readonly meanIntervalMs: number; readonly maxJumpMs: number },
  random: SeededRandom,
  onJump: () => void,
): void {
  everySoOften(cluster, jumps.meanIntervalMs, random, () => {
    const running = cluster.crashable().filter((n) => n.running);
    if (running.length === 0) return;
    const node = random.pick(running);
    const jumpMs = random.intBetween(-jumps.maxJumpMs, jumps.maxJumpMs);
    node.jumpWallClock(jumpMs);
    onJump();
    cluster.trace(`n${node.id}'s wall clock jumped ${jumpMs} ms`);
  });
}

/**
 * Every so often one running node's write-ahead log disk fills up (the leader half the time)
 * for `durationMs`: its next sync fails with DiskFullError and its host stops, as a real node
 * does; once the disk has room again (an operator freed space) the node is restarted. At most a
 * minority of the members is down or full at once.
 */
export function startDiskFullLoop(
  cluster: FaultLoopCluster,
  faults: { readonly meanIntervalMs: number; readonly durationMs: MsRange },
  random: SeededRandom,
  events: { readonly filled: () => void; readonly restart: (node: RuntimeNode) => void },
): void {
  everySoOften(cluster, faults.meanIntervalMs, random, () => {
    const nodes = cluster.crashable();
    const available = nodes.filter((n) => n.running && !n.diskFull);
    const maxDown = Math.floor((cluster.size() - 1) / 2);
    if (nodes.length - available.length >= maxDown || available.length === 0) return;
    const leader = cluster.leader();
    const victim =
      leader !== undefined && !leader.diskFull && random.chance(0.5) ? leader : random.pick(available);
    victim.setDiskFull(true);
    events.filled();
    cluster.trace(`n${victim.id}: disk full`);
    const [low, high] = faults.durationMs;
    cluster.scheduler.after(random.intBetween(low, high), () => {
      victim.setDiskFull(false);
      cluster.trace(`n${victim.id}: disk has room again`);
      events.restart(victim);
    });
  });
}
