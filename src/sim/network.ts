/**
 * The simulated network between nodes: every message gets a random delay from the current
 * conditions (so messages on one link overtake each other: reordering falls out of it), may
 * be lost or duplicated, and is dropped at delivery time when its link is cut (symmetric or
 * one-way partitions) or its receiver is down. Counts everything it does.
 *
 * Links are physical: a message travels from the node that sent it (`sender`), which is not
 * always its `from` field (a forwarded proposal keeps its originator there).
 */
import { MessageType, type Message, type NodeId } from "../raft/types.js";
import type { Scheduler } from "./scheduler.js";
import type { SeededRandom } from "./random.js";

export interface NetworkConditions {
  /** Inclusive range of one-way delivery delays, in virtual milliseconds. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** Probability that a message is silently lost. */
  readonly lossRate: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  readonly duplicateRate: number;
  /**
   * Probability that a message is held up far longer than usual (a long tail: a congested
   * queue, a retransmission), by up to `slowMaxDelay`. Makes stale messages from earlier terms
   * arrive in later ones.
   */
  readonly slowRate: number;
  readonly slowMaxDelay: number;
}

export type DropReason = "loss" | "partition" | "down";

export interface NetworkCounters {
  sent: number;
  delivered: number;
  droppedLoss: number;
  droppedPartition: number;
  droppedDown: number;
  duplicated: number;
  /** Deliveries of a message sent before one already delivered on the same link. */
  reordered: number;
  /** Messages given a long-tail delay. */
  slowed: number;
  snapshotsSent: number;
}

/** What the network calls back into: the cluster routes deliveries and drop notices. */
export interface NetworkEndpoints {
  deliver(sender: NodeId, message: Message): void;
  dropped(sender: NodeId, message: Message, reason: DropReason): void;
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

export class SimNetwork {
  readonly counters: NetworkCounters = {
    sent: 0,
    delivered: 0,
    droppedLoss: 0,
    droppedPartition: 0,
    droppedDown: 0,
    duplicated: 0,
    reordered: 0,
    slowed: 0,
    snapshotsSent: 0,
  };
  private readonly cutLinks = new Set<string>();
  private readonly downNodes = new Set<NodeId>();
  /** Per link: the next send sequence number, and the highest one delivered so far. */
  private readonly sendSeq = new Map<string, number>();
  private readonly deliveredSeq = new Map<string, number>();
  private conditions: NetworkConditions;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: SeededRandom,
    conditions: NetworkConditions,
    private readonly endpoints: NetworkEndpoints,
  ) {
    this.conditions = SimNetwork.validated(conditions);
  }

  setConditions(conditions: NetworkConditions): void {
    this.conditions = SimNetwork.validated(conditions);
  }

  /** Send `message` from node `sender` to node `message.to`. */
  send(sender: NodeId, message: Message): void {
    if (sender === message.to) {
      throw new Error(`network: node ${sender} sent a message to itself: ${MessageType[message.type]}`);
    }
    this.counters.sent++;
    if (message.type === MessageType.Snap) this.counters.snapshotsSent++;
    const key = linkKey(sender, message.to);
    const seq = this.sendSeq.get(key) ?? 0;
    this.sendSeq.set(key, seq + 1);
    if (this.random.chance(this.conditions.lossRate)) {
      this.counters.droppedLoss++;
      this.scheduler.after(this.randomDelay(), () => this.endpoints.dropped(sender, message, "loss"));
      return;
    }
    this.scheduleDelivery(sender, message, key, seq);
    if (this.random.chance(this.conditions.duplicateRate)) {
      this.counters.duplicated++;
      this.scheduleDelivery(sender, message, key, seq);
    }
  }

  isUp(id: NodeId): boolean {
    return !this.downNodes.has(id);
  }

  setUp(id: NodeId, up: boolean): void {
    if (up) this.downNodes.delete(id);
    else this.downNodes.add(id);
  }

  /** Stop traffic from `from` to `to` (one direction only). */
  cut(from: NodeId, to: NodeId): void {
    this.cutLinks.add(linkKey(from, to));
  }

  /** Cut every link between the two groups, in both directions. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.cut(a, b);
        this.cut(b, a);
      }
    }
  }

  /** Restore every link (nodes that are down stay down). */
  heal(): void {
    this.cutLinks.clear();
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.cutLinks.has(linkKey(from, to));
  }

  /** Readable list of the links currently cut, for traces. */
  describeCuts(): string {
    return [...this.cutLinks].sort().join(" ");
  }

  private scheduleDelivery(sender: NodeId, message: Message, key: string, seq: number): void {
    this.scheduler.after(this.randomDelay(), () => this.arrive(sender, message, key, seq));
  }

  private arrive(sender: NodeId, message: Message, key: string, seq: number): void {
    if (this.downNodes.has(message.to)) {
      this.counters.droppedDown++;
      this.endpoints.dropped(sender, message, "down");
      return;
    }
    if (this.cutLinks.has(key)) {
      this.counters.droppedPartition++;
      this.endpoints.dropped(sender, message, "partition");
      return;
    }
    const highest = this.deliveredSeq.get(key) ?? -1;
    if (seq < highest) this.counters.reordered++;
    else this.deliveredSeq.set(key, seq);
    this.counters.delivered++;
    this.endpoints.deliver(sender, message);
  }

  private randomDelay(): number {
    const c = this.conditions;
    const delay = this.random.intBetween(c.minDelay, c.maxDelay);
    if (c.slowRate > 0 && this.random.chance(c.slowRate)) {
      this.counters.slowed++;
      return delay + this.random.intBetween(0, c.slowMaxDelay);
    }
    return delay;
  }

  private static validated(c: NetworkConditions): NetworkConditions {
    const probability = (p: number): boolean => p >= 0 && p <= 1;
    if (!(
      c.minDelay >= 0 &&
      c.maxDelay >= c.minDelay &&
      Number.isInteger(c.minDelay) &&
      Number.isInteger(c.maxDelay)
    )) {
      throw new Error(`network: invalid delay range [${c.minDelay}, ${c.maxDelay}]`);
    }
    if (!probability(c.lossRate) || !probability(c.duplicateRate) || !probability(c.slowRate)) {
      throw new Error(
        `network: loss ${c.lossRate}, duplicate ${c.duplicateRate} and slow ${c.slowRate} rates must be in [0, 1]`,
      );
    }
    if (!(Number.isInteger(c.slowMaxDelay) && c.slowMaxDelay >= 0)) {
      throw new Error(`network: invalid slow delay ${c.slowMaxDelay}`);
    }
    return c;
  }
}
