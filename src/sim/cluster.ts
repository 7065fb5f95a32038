/**
 * The simulated cluster: nodes, the network between them, the invariant monitor, the trace
 * and the counters, wired together on one scheduler. It routes messages (and the transport's
 * snapshot/unreachable reports), starts, crashes, restarts, adds and retires nodes, and after
 * every event observes each node the event touched, so invariants are checked step by step.
 */
import {
  MessageType,
  ProposalDroppedError,
  StateRole,
  type ConfChange,
  type ConfState,
  type Message,
  type NodeId,
} from "../raft/index.js";
import { MemoryStorageEngine } from "../storage/memory.js";
import type { FaultTarget } from "./faults.js";
import { InvariantMonitor, type Violation } from "./invariants.js";
import { SimNetwork, type DropReason, type NetworkConditions } from "./network.js";
import { SimNode, type NodeEnvironment, type NodeSettings } from "./node.js";
import type { SeededRandom } from "./random.js";
import { Scheduler } from "./scheduler.js";
import { describeMessage, type TraceBuffer } from "./trace.js";

export interface ClusterCounters {
  crashes: number;
  restarts: number;
  unsyncedWritesLost: number;
  nodesAdded: number;
  nodesRetired: number;
  snapshotsInstalled: number;
  snapshotsTaken: number;
  confChangesProposed: number;
  confChangesRefused: number;
  confChangesApplied: number;
  transfersRequested: number;
  transfersCompleted: number;
  /** Restarts whose durable commit index had to be raised to the durable snapshot's. */
}

function membersOf(cs: ConfState): Set<NodeId> {
  return new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
}

const CHANGE_NAMES = ["voter", "learner", "remove"] as const;

function describeChanges(change: ConfChange): string {
  const text = change.changes.map((c) => `${CHANGE_NAMES[c.type]}:n${c.nodeId}`).join(" ");
  return text === "" ? "leave-joint" : text;
}

export class Cluster implements FaultTarget, NodeEnvironment {
  readonly scheduler = new Scheduler();
  readonly network: SimNetwork;
  readonly monitor: InvariantMonitor;
  readonly violations: Violation[] = [];
  readonly counters: ClusterCounters = {
    crashes: 0,
    restarts: 0,
    unsyncedWritesLost: 0,
    nodesAdded: 0,
    nodesRetired: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    confChangesProposed: 0,
    confChangesRefused: 0,
    confChangesApplied: 0,
    transfersRequested: 0,
    transfersCompleted: 0,
  };
  private readonly allNodes = new Map<NodeId, SimNode>();
  private readonly touchedNodes = new Set<SimNode>();
  private nextNodeId: NodeId;
  /** Index of the newest conf change applied anywhere, and which nodes were ever members. */
  private newestConfIndex = 0;
  private readonly everMember = new Set<NodeId>();
  private readonly leaving = new Set<NodeId>();
  private pendingTransfer: { readonly transferee: NodeId; readonly term: number } | null = null;
  private readonly crashRandom: SeededRandom;

  constructor(
    readonly clusterSize: number,
    private readonly settings: NodeSettings,
    network: NetworkConditions,
    private readonly random: SeededRandom,
    private readonly traceBuffer: TraceBuffer,
  ) {
    this.monitor = new InvariantMonitor(
      () => this.scheduler.now,
      (v) => this.reportViolation(v),
    );
    this.network = new SimNetwork(this.scheduler, random.fork("network"), network, {
      deliver: (sender, m) => this.deliver(sender, m),
      dropped: (sender, m, reason) => this.dropped(sender, m, reason),
    });
    this.crashRandom = random.fork("crash-writes");
    const voters = Array.from({ length: clusterSize }, (_, i) => i + 1);
    this.nextNodeId = clusterSize + 1;
    for (const id of voters) {
      const node = this.createNode(id);
      node.bootstrap({ voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
      this.everMember.add(id);
    }
    for (const id of voters) this.allNodes.get(id)!.start();
  }

  // ------------------------------------------------------------------ queries

  /** Every node not retired, running or not, by id. */
  nodes(): SimNode[] {
    return [...this.allNodes.values()].filter((n) => !n.isRetired);
  }

  node(id: NodeId): SimNode | undefined {
    return this.allNodes.get(id);
  }

  /** The running node that believes it leads the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.allNodes.values()) {
      if (!node.running) continue;
      const status = node.status();
      if (status.softState.role === StateRole.Leader && status.hardState.term > bestTerm) {
        best = node;
        bestTerm = status.hardState.term;
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ stepping

  /**
   * Run one event, then observe the nodes it touched. Returns false when the run must stop
   * (nothing left to do, or a violation was found). A thrown error is a violation too.
   */
  step(): boolean {
    try {
      if (!this.scheduler.step()) return false;
      this.observeTouched();
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      const where = (error.stack ?? "").split("\n").slice(1, 4).join(" | ");
      this.reportViolation({
        invariant: "internal-error",
        time: this.scheduler.now,
        message: `${error.name}: ${error.message} ${where}`.trim(),
      });
    }
    return this.violations.length === 0;
  }

  private observeTouched(): void {
    for (const node of this.touchedNodes) {
      if (!node.running) continue;
      const status = node.status();
      const leader = this.monitor.observe(
        node.id,
        status.hardState.term,
        status.softState.role,
        status.hardState.commit,
        status.confState,
      );
      if (leader !== null) this.onNewLeader(leader.id, leader.term);
    }
    this.touchedNodes.clear();
  }

  private onNewLeader(id: NodeId, term: number): void {
    this.trace(`n${id} became leader of term ${term}`);
    const transfer = this.pendingTransfer;
    if (transfer !== null) {
      if (transfer.transferee === id) {
        this.counters.transfersCompleted++;
        this.trace(`transfer to n${id} completed`);
      }
      if (transfer.transferee === id || term > transfer.term + 1) this.pendingTransfer = null;
    }
    this.checkLogsAgree();
  }

  /** The log prefix property across every running node. */
  checkLogsAgree(): void {
    const logs = this.nodes()
      .filter((n) => n.running)
      .map((n) => [n.id, n.log] as const);
    this.monitor.checkLogsAgree(logs);
  }

  reportViolation(violation: Violation): void {
    this.violations.push(violation);
    this.trace(`VIOLATION ${violation.invariant}: ${violation.message}`);
  }

  // ------------------------------------------------------------------ NodeEnvironment

  send(sender: SimNode, message: Message): void {
    if (message.type === MessageType.VoteResp && !message.reject) {
      this.monitor.onVoteGranted(sender.id, message.to, message.term);
    }
    this.network.send(sender.id, message);
  }

  touched(node: SimNode): void {
    this.touchedNodes.add(node);
  }

  trace(text: string | (() => string)): void {
    this.traceBuffer.add(this.scheduler.now, text);
  }

  confChangeApplied(node: SimNode, index: number, change: ConfChange, confState: ConfState): void {
    if (index <= this.newestConfIndex) return;
    this.newestConfIndex = index;
    this.counters.confChangesApplied++;
    this.trace(
      `n${node.id} applied conf change ${index} [${describeChanges(change)}] -> voters ${confState.voters.join(",")}` +
        (confState.votersOutgoing.length > 0 ? ` & ${confState.votersOutgoing.join(",")}` : "") +
        (confState.learners.length > 0 ? ` learners ${confState.learners.join(",")}` : ""),
    );
    const members = membersOf(confState);
    for (const id of members) this.everMember.add(id);
    for (const id of this.everMember) {
      if (!members.has(id) && !this.leaving.has(id)) this.scheduleRetirement(id);
    }
  }

  snapshotInstalled(): void {
    this.counters.snapshotsInstalled++;
  }

  snapshotTaken(): void {
    this.counters.snapshotsTaken++;
  }

  // ------------------------------------------------------------------ FaultTarget

  crash(id: NodeId): void {
    const node = this.requireNode(id);
    const { kept, pending } = node.crash(this.crashRandom);
    this.network.setUp(id, false);
    this.counters.crashes++;
    this.counters.unsyncedWritesLost += pending - kept;
  }

  restart(id: NodeId): void {
    const node = this.requireNode(id);
    this.network.setUp(id, true);
    node.start();
    this.counters.restarts++;
  }

  spareNode(): SimNode {
    const idle = this.nodes().find((n) => n.running && !this.everMember.has(n.id));
    if (idle !== undefined) return idle;
    const node = this.createNode(this.nextNodeId++);
    node.start();
    this.counters.nodesAdded++;
    return node;
  }

  proposeConfChange(change: ConfChange): boolean {
    const leader = this.leader();
    if (leader === undefined) return false;
    const changes = describeChanges(change);
    try {
      leader.proposeConfChange(change);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.counters.confChangesRefused++;
      this.trace(`n${leader.id} refused conf change [${changes}]: ${e.message}`);
      return false;
    }
    this.counters.confChangesProposed++;
    this.trace(`n${leader.id} proposed conf change [${changes}] transition ${change.transition}`);
    return true;
  }

  requestTransfer(leader: SimNode, transferee: NodeId): void {
    this.counters.transfersRequested++;
    this.pendingTransfer = { transferee, term: leader.status().hardState.term };
    this.trace(`n${leader.id} asked to transfer leadership to n${transferee}`);
    leader.transferLeader(transferee);
  }

  // ------------------------------------------------------------------ internals

  private createNode(id: NodeId): SimNode {
    if (this.allNodes.has(id)) throw new Error(`cluster: node ${id} exists already`);
    const node = new SimNode(
      id,
      this.settings,
      this,
      this.random.fork(`node/${id}`),
      new MemoryStorageEngine(),
    );
    this.allNodes.set(id, node);
    this.network.setUp(id, true);
    return node;
  }

  private requireNode(id: NodeId): SimNode {
    const node = this.allNodes.get(id);
    if (node === undefined || node.isRetired) throw new Error(`cluster: no live node ${id}`);
    return node;
  }

  /**
   * A node removed from the configuration is stopped for good a little later (long enough for
   * the leader's last messages to reach it), like an operator decommissioning it.
   */
  private scheduleRetirement(id: NodeId): void {
    this.leaving.add(id);
    const delay = 2 * this.settings.electionTick * this.settings.tickMs;
    this.scheduler.after(delay, () => {
      const node = this.allNodes.get(id);
      if (node === undefined || node.isRetired) return;
      node.retire();
      this.network.setUp(id, false);
      this.counters.nodesRetired++;
    });
  }

  private deliver(senderId: NodeId, m: Message): void {
    const node = this.allNodes.get(m.to);
    if (node === undefined) throw new Error(`cluster: message for unknown node ${m.to}`);
    this.trace(() => describeMessage(senderId, m));
    node.receive(m);
    // The transport tells the sender its snapshot got through (the receiver's answer follows).
    if (m.type === MessageType.Snap) this.allNodes.get(senderId)?.reportSnapshot(m.to, true);
  }

  private dropped(senderId: NodeId, m: Message, reason: DropReason): void {
    this.trace(() => `dropped (${reason}) ${describeMessage(senderId, m)}`);
    const sender = this.allNodes.get(senderId);
    if (sender === undefined) return;
    if (m.type === MessageType.Snap) sender.reportSnapshot(m.to, false);
    // Silent loss goes unnoticed; a refused connection (partition, peer down) is reported.
    if (reason !== "loss") sender.reportUnreachable(m.to);
  }
}
