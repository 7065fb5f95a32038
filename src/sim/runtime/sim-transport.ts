/**
 * The node runtime's `Transport` over the simulator's `SimNetwork`, so every network fault of
 * a profile (delay, reordering, loss, duplication, long tails, partitions, down nodes) applies
 * to a real NodeHost. One hub owns the network and knows each node's live transport; each
 * process incarnation gets its own transport, killed with it on a crash.
 *
 * Raft messages travel one by one through the network (a batch is a send-side notion only);
 * the hub remembers which group each carries. A snapshot travels as one Snap message with its
 * image attached; its promise settles when it is handed to the receiver or dropped. Drops for
 * a cut link or a down peer are reported to the sender as unreachable, as a refused TCP
 * connection would be; silent losses are not.
 */
import type { Message, NodeId } from "../../raft/types.js";
import {
  TransportError,
  checkOutgoingEnvelope,
  checkSnapshotMessage,
  newTransportCounters,
  type Envelope,
  type ReceiveHandler,
  type SnapshotData,
  type Transport,
  type TransportCounters,
  type UnreachableHandler,
} from "../../transport/transport.js";
import { SimNetwork, type DropReason, type NetworkConditions } from "../network.js";
import type { SeededRandom } from "../random.js";
import type { Scheduler } from "../scheduler.js";

interface SnapshotWaiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class SimTransportHub {
  readonly network: SimNetwork;
  private readonly live = new Map<NodeId, SimTransport>();
  private readonly groupOf = new WeakMap<Message, number>();
  private readonly snapshotWaiters = new WeakMap<Message, SnapshotWaiter>();

  constructor(scheduler: Scheduler, random: SeededRandom, conditions: NetworkConditions) {
    this.network = new SimNetwork(scheduler, random, conditions, {
      deliver: (sender, message) => this.deliver(sender, message),
      dropped: (sender, message, reason) => this.dropped(sender, message, reason),
    });
  }

  /** A new transport for node `id`'s current incarnation; the previous one must be dead. */
  createTransport(id: NodeId): SimTransport {
    const previous = this.live.get(id);
    if (previous !== undefined && !previous.dead) {
      throw new Error(`node ${id} already has a live transport`);
    }
    const transport = new SimTransport(id, this);
    this.live.set(id, transport);
    return transport;
  }

  /** Called by a transport: put one message of group `groupId` on the wire. */
  send(sender: NodeId, groupId: number, message: Message, waiter?: SnapshotWaiter): void {
    this.groupOf.set(message, groupId);
    if (waiter !== undefined) this.snapshotWaiters.set(message, waiter);
    this.network.send(sender, message);
  }

  private deliver(sender: NodeId, message: Message): void {
    const receiver = this.live.get(message.to);
    const groupId = this.groupOf.get(message);
    if (groupId === undefined) throw new Error("sim transport: a delivered message has no group");
    if (receiver === undefined || !receiver.receiving) {
      this.dropped(sender, message, "down");
      return;
    }
    receiver.receive({ groupId, from: sender, to: message.to, messages: [message] });
    this.snapshotWaiters.get(message)?.resolve();
    this.snapshotWaiters.delete(message);
  }

  private dropped(sender: NodeId, message: Message, reason: DropReason): void {
    const waiter = this.snapshotWaiters.get(message);
    this.snapshotWaiters.delete(message);
    waiter?.reject(new TransportError(`snapshot to node ${message.to} dropped (${reason})`));
    if (reason !== "loss") this.live.get(sender)?.unreachable(message.to);
  }
}

export class SimTransport implements Transport {
  readonly counters: TransportCounters = newTransportCounters();
  /** How the process takes an input from a peer's connection: at once, or held while it is frozen (SimTimers.deliver). */
  gate: (run: () => void, source: string) => void = (run) => run();
  private queued: Envelope[] = [];
  private receiveHandler: ReceiveHandler | null = null;
  private unreachableHandler: UnreachableHandler | null = null;
  private started = false;
  private closed = false;
  private killed = false;

  constructor(
    readonly nodeId: NodeId,
    private readonly hub: SimTransportHub,
  ) {}

  /** True once closed or killed: nothing goes in or out any more. */
  get dead(): boolean {
    return this.closed || this.killed;
  }

  get receiving(): boolean {
    return this.started && !this.dead;
  }

  send(to: NodeId, envelope: Envelope): void {
    checkOutgoingEnvelope(this.nodeId, to, envelope);
    if (this.dead) {
      this.counters.messagesDropped += envelope.messages.length;
      return;
    }
    this.queued.push(envelope);
  }

  flush(): void {
    const queued = this.queued;
    this.queued = [];
    if (this.dead) return;
    for (const envelope of queued) {
      for (const message of envelope.messages) {
        this.counters.messagesSent++;
        this.hub.send(this.nodeId, envelope.groupId, message);
      }
    }
  }

  async sendSnapshot(to: NodeId, groupId: number, message: Message, data: SnapshotData): Promise<void> {
    checkSnapshotMessage(this.nodeId, to, message);
    const image = await collect(data);
    const snapshot = message.snapshot;
    if (snapshot === null) throw new Error("sim transport: a Snap message lost its snapshot");
    if (this.dead) throw new TransportError(`node ${this.nodeId} is down`);
    this.counters.snapshotsSent++;
    await new Promise<void>((resolve, reject) => {
      const withImage: Message = { ...message, snapshot: { ...snapshot, data: image } };
      this.hub.send(this.nodeId, groupId, withImage, {
        resolve: () => this.gate(resolve, `peer ${to}`),
        reject: (error) => this.gate(() => reject(error), `peer ${to}`),
      });
    });
  }

  onReceive(handler: ReceiveHandler): void {
    this.receiveHandler = handler;
  }

  onUnreachable(handler: UnreachableHandler): void {
    this.unreachableHandler = handler;
  }

  start(): Promise<void> {
    this.started = true;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    this.queued = [];
    return Promise.resolve();
  }

  /**
   * The process died: drop everything and never call back again. Snapshot transfers in flight
   * stay unsettled, as the dead process that awaited them is gone.
   */
  kill(): void {
    this.killed = true;
    this.queued = [];
  }

  /** From the hub: an envelope arrived for this node. */
  receive(envelope: Envelope): void {
    this.gate(() => {
      this.counters.messagesReceived += envelope.messages.length;
      if (envelope.messages.some((m) => m.snapshot !== null)) this.counters.snapshotsReceived++;
      this.receiveHandler?.(envelope);
    }, `peer ${envelope.from}`);
  }

  /** From the hub: a message to `peer` could not be delivered for want of a connection. */
  unreachable(peer: NodeId): void {
    this.gate(() => {
      if (!this.dead) this.unreachableHandler?.(peer);
    }, `peer ${peer}`);
  }
}

async function collect(data: SnapshotData): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of data) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const image = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    image.set(chunk, offset);
    offset += chunk.length;
  }
  return image;
}
