/**
 * The simulated cluster an election workload runs against: real NodeHosts (RuntimeNode) on
 * the simulator's virtual time, network and disks, and the cluster-side faults — partitions
 * (symmetric and one-way, the Raft leader isolated half the time), crashes and restarts (the
 * leader with some probability, never more than a minority down) and Raft leadership
 * transfers — with the same shapes as the runtime simulation's (src/sim/runtime/runtime-run.ts),
 * drawn from one seeded stream each.
 *
 * It also records the committed order: every applied command, once, at the virtual time a
 * node first applied its index, and checks on the way that every node applied the same
 * command with the same outcome at each index (state-machine safety).
 */
import type { Replica } from "../../node/replica.js";
import type { AppliedCommand } from "../../node/types.js";
import { EMPTY_CONF_STATE, type NodeId } from "../../raft/types.js";
import type { Logger } from "../../transport/transport.js";
import type { NetworkConditions } from "../network.js";
import type { CrashFaults, MsRange, PartitionFaults, TransferFaults } from "../profiles.js";
import type { SeededRandom } from "../random.js";
import { Scheduler } from "../scheduler.js";
import type { SimEndpoint } from "../runtime/runtime-backend.js";
import { RuntimeNode } from "../runtime/runtime-node.js";
import { SimTransportHub } from "../runtime/sim-transport.js";
import { startCrashLoop, startPartitionLoop, type FaultLoopCluster } from "../runtime/fault-loops.js";
import { LeaderCheck } from "../runtime/leader-check.js";

export interface ClusterShape {
  readonly size: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly network: NetworkConditions;
  readonly diskLatencyMs: MsRange;
  readonly snapshotEvery: number;
}

export interface ClusterFaults {
  readonly partitions: PartitionFaults | null;
  readonly crashes: CrashFaults | null;
  readonly transfers: TransferFaults | null;
}

export interface ClusterCounters {
  crashes: number;
  partitions: number;
  transfers: number;
  leaderChanges: number;
}

/** An applied command as first applied, with its position in the run's total order. */
export interface FirstApply {
  readonly applied: AppliedCommand;
  readonly time: number;
}

const TICK_MS = 20;

export class ElectionCluster {
  readonly scheduler: Scheduler;
  readonly hub: SimTransportHub;
  readonly nodes: RuntimeNode[] = [];
  readonly counters: ClusterCounters = { crashes: 0, partitions: 0, transfers: 0, leaderChanges: 0 };
  private readonly fingerprints = new Map<number, { readonly nodeId: NodeId; readonly text: string }>();
  private readonly leaderCheck = new LeaderCheck({
    electionSafetyKind: "raft election safety",
    violation: (kind, detail) => this.violation(kind, detail),
    newLeader: (node, term) => {
      this.counters.leaderChanges++;
      this.trace(`n${node.id} leads raft term ${term}`);
    },
  });
  private faultsActive = false;

  /**
   * @param onFirstApply called once per log index, when a node applies it first
   * @param violation called with what broke a cluster-level invariant
   * @param trace a line for the run's trace
   */
  constructor(
    scheduler: Scheduler,
    private readonly random: SeededRandom,
    readonly shape: ClusterShape,
    private readonly onFirstApply: (first: FirstApply) => void,
    private readonly violation: (invariant: string, detail: string) => void,
    private readonly trace: (text: string) => void,
  ) {
    this.scheduler = scheduler;
    this.hub = new SimTransportHub(scheduler, random.fork("network"), shape.network);
    const founders = Array.from({ length: shape.size }, (_, i) => i + 1);
    const logger: Logger = { warn: () => undefined, info: () => undefined };
    for (const id of founders) {
      const node = new RuntimeNode(
        id,
        {
          scheduler,
          hub: this.hub,
          random: random.fork(`node ${id}`),
          diskLatencyMs: shape.diskLatencyMs,
          ackBeforeSync: false,
          logger,
          tickMs: TICK_MS,
          snapshotEntries: shape.snapshotEvery,
          proposalTimeoutMs: 1_500,
          readTimeoutMs: 1_000,
          preVote: shape.preVote,
          checkQuorum: shape.checkQuorum,
          onReplica: (_node, replica) => this.listen(id, replica),
        },
        { bootstrap: { ...EMPTY_CONF_STATE, voters: founders } },
      );
      this.nodes.push(node);
    }
  }

  start(): void {
    for (const node of this.nodes) node.start();
  }

  /** The nodes as clients reach them. */
  endpoints(): SimEndpoint[] {
    return this.nodes.map((node) => ({ id: node.id, replica: () => node.replica() }));
  }

  /** The node leading the highest term, if any (read cheaply: this runs after every event). */
  leader(): RuntimeNode | undefined {
    let best: { node: RuntimeNode; term: number } | undefined;
    for (const node of this.nodes) {
      const view = node.replica()?.termLeaderRevision();
      if (view?.leader === node.id && (best === undefined || view.term > best.term)) {
        best = { node, term: view.term };
      }
    }
    return best?.node;
  }

  /** After every event: no host failed, at most one Raft leader per term. */
  checkAfterEvent(): void {
    this.leaderCheck.afterEvent(this.nodes);
  }

  startFaults(faults: ClusterFaults): void {
    this.faultsActive = true;
    const cluster: FaultLoopCluster = {
      scheduler: this.scheduler,
      network: this.hub.network,
      faultsActive: () => this.faultsActive,
      partitionable: () => this.nodes,
      crashable: () => this.nodes,
      size: () => this.nodes.length,
      leader: () => this.leader(),
      trace: (text) => this.trace(text),
    };
    if (faults.partitions !== null) {
      startPartitionLoop(cluster, faults.partitions, this.random.fork("faults/partitions"), () => {
        this.counters.partitions++;
      });
    }
    if (faults.crashes !== null) {
      startCrashLoop(cluster, faults.crashes, this.random.fork("faults/crashes"), {
        crashed: () => {
          this.counters.crashes++;
        },
        restart: (node) => {
          if (this.faultsActive) this.restart(node);
        },
      });
    }
    if (faults.transfers !== null) this.transferLoop(faults.transfers, this.random.fork("faults/transfers"));
  }

  /** Faults stop, every link heals, message loss stops, every node runs again. */
  heal(): void {
    this.faultsActive = false;
    this.hub.network.heal();
    this.hub.network.setConditions({ ...this.shape.network, lossRate: 0, duplicateRate: 0, slowRate: 0 });
    for (const node of this.nodes) this.restart(node);
    this.trace("cluster faults healed");
  }

  private restart(node: RuntimeNode): void {
    if (node.running) return;
    try {
      node.start();
      this.trace(`n${node.id} restarted`);
    } catch (error) {
      this.violation("restart", `n${node.id} could not reopen its storage: ${String(error)}`);
    }
  }

  private transferLoop(transfers: TransferFaults, random: SeededRandom): void {
    this.scheduler.after(random.exponential(transfers.meanIntervalMs), () => {
      if (!this.faultsActive) return;
      const leader = this.leader();
      const replica = leader?.replica();
      if (leader !== undefined && replica !== undefined) {
        const others = replica.status().confState.voters.filter((id) => id !== leader.id);
        if (others.length > 0) {
          const to = random.pick(others);
          this.counters.transfers++;
          this.trace(`raft leadership transfer n${leader.id} -> n${to}`);
          replica
            .transferLeader(to)
            .catch((error: unknown) => this.trace(`transfer failed: ${String(error)}`));
        }
      }
      this.transferLoop(transfers, random);
    });
  }

  /** Records each index once, at its first apply; checks every other apply against it. */
  private listen(nodeId: NodeId, replica: Replica): void {
    replica.addApplyListener({
      onCommand: (applied) => {
        const { index, envelope, outcome } = applied;
        const text =
          `${envelope.clientId}#${envelope.sequence} ${envelope.command.kind} ` +
          `rev ${outcome.result.revision} dup ${outcome.duplicate} ${outcome.result.response.kind}`;
        const first = this.fingerprints.get(index);
        if (first === undefined) {
          this.fingerprints.set(index, { nodeId, text });
          this.onFirstApply({ applied, time: this.scheduler.now });
        } else if (first.text !== text) {
          this.violation(
            "state-machine safety",
            `index ${index}: n${first.nodeId} [${first.text}], n${nodeId} [${text}]`,
          );
        }
      },
    });
  }
}

/**
 * Runs scheduler events, letting every promise reaction run after each (`settleMicrotasks`:
 * see src/sim/runtime/README.md) and calling `afterEvent`, until `done()` holds, the queue is
 * empty, or the next event lies beyond `limitMs` from now. Returns `done()`.
 */
export async function runUntil(
  scheduler: Scheduler,
  settleMicrotasks: () => Promise<void>,
  afterEvent: () => void,
  done: () => boolean,
  limitMs: number,
): Promise<boolean> {
  const deadline = scheduler.now + limitMs;
  await settleMicrotasks();
  while (!done()) {
    if ((scheduler.peekTime() ?? Infinity) > deadline || !scheduler.step()) return done();
    await settleMicrotasks();
    afterEvent();
  }
  return true;
}
