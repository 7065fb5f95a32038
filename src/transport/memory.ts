/**
 * The Transport contract inside one process, for tests and the simulator: `MemoryNetwork`
 * connects `MemoryTransport`s and delivers nothing on its own. `flush()` puts each peer's batch
 * on the network (one item per peer, peers in ascending id order); the owner calls `deliver()`
 * to hand over, in send order, everything in flight at that moment. No timers, no randomness:
 * the same calls produce the same deliveries. Links can be cut one way or both to model
 * partitions. By default every envelope round-trips through the wire codec, so the simulator
 * exercises encoding and no two nodes ever share a message object.
 */
import type { Message, NodeId } from "../raft/types.js";
import { decodeEnvelope, encodeEnvelope } from "./codec.js";
import {
  checkOutgoingEnvelope,
  checkSnapshotMessage,
  newTransportCounters,
  TransportError,
  type Envelope,
  type ReceiveHandler,
  type SnapshotData,
  type Transport,
  type TransportCounters,
  type UnreachableHandler,
} from "./transport.js";

export interface MemoryNetworkOptions {
  /** Encode at send and decode at delivery (default true). */
  readonly roundTripCodec?: boolean;
}

/** An envelope on the network: encoded when the network round-trips through the codec. */
type Payload = Envelope | Uint8Array;

type InFlight =
  | {
      readonly kind: "batch";
      readonly from: MemoryTransport;
      readonly to: NodeId;
      readonly payloads: Payload[];
    }
  | {
      readonly kind: "snapshot";
      readonly from: MemoryTransport;
      readonly to: NodeId;
      readonly payload: Payload;
      readonly settle: (failure: TransportError | null) => void;
    };

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

async function collect(data: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let total = 0;
  for await (const piece of data) {
    pieces.push(piece);
    total += piece.length;
  }
  const whole = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    whole.set(piece, offset);
    offset += piece.length;
  }
  return whole;
}

export class MemoryNetwork {
  private readonly transports = new Map<NodeId, MemoryTransport>();
  private readonly cutLinks = new Set<string>();
  private inFlight: InFlight[] = [];
  private readonly roundTrip: boolean;

  constructor(options: MemoryNetworkOptions = {}) {
    this.roundTrip = options.roundTripCodec ?? true;
  }

  /** A transport for `nodeId`; a closed one may be replaced (a node restart). */
  createTransport(nodeId: NodeId): MemoryTransport {
    if (!Number.isSafeInteger(nodeId) || nodeId <= 0) throw new Error(`invalid node id ${nodeId}`);
    if (this.transports.get(nodeId)?.isClosed === false) {
      throw new Error(`node ${nodeId} already has an open transport on this network`);
    }
    const transport = new MemoryTransport(nodeId, this);
    this.transports.set(nodeId, transport);
    return transport;
  }

  /** Stop carrying anything from `from` to `to` (both at send and at delivery time). */
  cut(from: NodeId, to: NodeId): void {
    this.cutLinks.add(linkKey(from, to));
  }

  heal(from: NodeId, to: NodeId): void {
    this.cutLinks.delete(linkKey(from, to));
  }

  healAll(): void {
    this.cutLinks.clear();
  }

  /** Items (batches and snapshots) put on the network and not yet delivered or dropped. */
  get pendingCount(): number {
    return this.inFlight.length;
  }

  /**
   * Delivers, in order, everything in flight when called; items sent during delivery wait for
   * the next call. Returns how many items were handled (delivered or dropped). If a receive
   * handler throws, the error propagates (the rest of that batch is lost; later items stay in
   * flight).
   */
  deliver(): number {
    const items = this.inFlight;
    this.inFlight = [];
    for (let i = 0; i < items.length; i++) {
      try {
        this.deliverItem(items[i]!);
      } catch (error) {
        this.inFlight = [...items.slice(i + 1), ...this.inFlight];
        throw error;
      }
    }
    return items.length;
  }

  /** The running transport `from` can reach at `to`, or null. */
  reachable(from: NodeId, to: NodeId): MemoryTransport | null {
    if (this.cutLinks.has(linkKey(from, to))) return null;
    const receiver = this.transports.get(to);
    return receiver !== undefined && receiver.isRunning ? receiver : null;
  }

  /** Puts a batch on the network; the sender has checked reachability. */
  carryBatch(from: MemoryTransport, to: NodeId, envelopes: readonly Envelope[]): number {
    const payloads = envelopes.map((e) => this.seal(e));
    this.inFlight.push({ kind: "batch", from, to, payloads });
    return payloads.reduce((sum, p) => sum + this.sizeOf(p), 0);
  }

  carrySnapshot(
    from: MemoryTransport,
    envelope: Envelope,
    settle: (failure: TransportError | null) => void,
  ): number {
    const payload = this.seal(envelope);
    this.inFlight.push({ kind: "snapshot", from, to: envelope.to, payload, settle });
    return this.sizeOf(payload);
  }

  private deliverItem(item: InFlight): void {
    const receiver = this.reachable(item.from.nodeId, item.to);
    if (item.kind === "batch") {
      for (const payload of item.payloads) {
        const envelope = this.open(payload);
        if (receiver === null) item.from.counters.messagesDropped += envelope.messages.length;
        else receiver.receiveFromNetwork(envelope, this.sizeOf(payload));
      }
    } else if (receiver === null) {
      item.settle(new TransportError(`snapshot to node ${item.to} lost: node unreachable`));
    } else {
      try {
        receiver.receiveFromNetwork(this.open(item.payload), this.sizeOf(item.payload));
      } catch (error) {
        item.settle(new TransportError(`node ${item.to} failed to take the snapshot`, { cause: error }));
        throw error;
      }
      receiver.counters.snapshotsReceived++;
      item.settle(null);
    }
  }

  private seal(envelope: Envelope): Payload {
    return this.roundTrip ? encodeEnvelope(envelope) : envelope;
  }

  private open(payload: Payload): Envelope {
    return payload instanceof Uint8Array ? decodeEnvelope(payload) : payload;
  }

  /** Bytes counted for a payload: its encoded size, or 0 when the codec is bypassed. */
  private sizeOf(payload: Payload): number {
    return payload instanceof Uint8Array ? payload.byteLength : 0;
  }
}

type State = "new" | "running" | "closed";

export class MemoryTransport implements Transport {
  readonly counters: TransportCounters = newTransportCounters();
  private state: State = "new";
  private readonly queues = new Map<NodeId, Envelope[]>();
  private readonly pendingSnapshots = new Set<(failure: TransportError | null) => void>();
  private receiveHandler: ReceiveHandler | null = null;
  private unreachableHandler: UnreachableHandler | null = null;

  /** Made by `MemoryNetwork.createTransport`. */
  constructor(
    readonly nodeId: NodeId,
    private readonly network: MemoryNetwork,
  ) {}

  get isRunning(): boolean {
    return this.state === "running";
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  onReceive(handler: ReceiveHandler): void {
    if (this.receiveHandler !== null) throw new Error("onReceive may be called once");
    this.receiveHandler = handler;
  }

  onUnreachable(handler: UnreachableHandler): void {
    if (this.unreachableHandler !== null) throw new Error("onUnreachable may be called once");
    this.unreachableHandler = handler;
  }

  start(): Promise<void> {
    if (this.state !== "new")
      return Promise.reject(new Error(`start() on a transport that is ${this.state}`));
    if (this.receiveHandler === null)
      return Promise.reject(new Error("onReceive must be called before start()"));
    this.state = "running";
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    this.state = "closed";
    for (const queue of this.queues.values()) {
      for (const envelope of queue) this.counters.messagesDropped += envelope.messages.length;
    }
    this.queues.clear();
    for (const settle of [...this.pendingSnapshots]) settle(new TransportError("transport closed"));
    return Promise.resolve();
  }

  send(to: NodeId, envelope: Envelope): void {
    checkOutgoingEnvelope(this.nodeId, to, envelope);
    if (this.state === "closed") {
      this.counters.messagesDropped += envelope.messages.length;
      return;
    }
    const queue = this.queues.get(to);
    if (queue === undefined) this.queues.set(to, [envelope]);
    else queue.push(envelope);
  }

  flush(): void {
    if (this.state !== "running") return;
    const peers = [...this.queues.keys()].sort((a, b) => a - b);
    for (const peer of peers) {
      const envelopes = this.queues.get(peer)!;
      this.queues.delete(peer);
      const messages = envelopes.reduce((sum, e) => sum + e.messages.length, 0);
      if (this.network.reachable(this.nodeId, peer) === null) {
        this.counters.messagesDropped += messages;
        this.reportUnreachable(peer);
        continue;
      }
      this.counters.bytesSent += this.network.carryBatch(this, peer, envelopes);
      this.counters.framesSent++;
      this.counters.messagesSent += messages;
    }
  }

  sendSnapshot(to: NodeId, groupId: number, message: Message, data: SnapshotData): Promise<void> {
    checkSnapshotMessage(this.nodeId, to, message);
    const snapshot = message.snapshot!;
    const transmit = (bytes: Uint8Array): Promise<void> =>
      this.transmitSnapshot({
        groupId,
        from: this.nodeId,
        to,
        messages: [{ ...message, snapshot: { ...snapshot, data: bytes } }],
      });
    // A whole snapshot goes on the network synchronously, so simulations stay deterministic.
    if (data instanceof Uint8Array) return transmit(data);
    return collect(data).then(transmit, (error: unknown) => {
      this.counters.snapshotsSendFailed++;
      throw new TransportError(`snapshot data for node ${to} failed: ${(error as Error).message}`, {
        cause: error,
      });
    });
  }

  /**
   * MemoryNetwork's delivery entry point. A throwing receive handler is not caught: in tests and
   * simulations it is a bug to surface, and `deliver()` rethrows it.
   */
  receiveFromNetwork(envelope: Envelope, bytes: number): void {
    this.counters.framesReceived++;
    this.counters.bytesReceived += bytes;
    this.counters.messagesReceived += envelope.messages.length;
    this.receiveHandler?.(envelope);
  }

  private transmitSnapshot(envelope: Envelope): Promise<void> {
    if (this.state !== "running" || this.network.reachable(this.nodeId, envelope.to) === null) {
      this.counters.snapshotsSendFailed++;
      this.reportUnreachable(envelope.to);
      return Promise.reject(new TransportError(`cannot send a snapshot to node ${envelope.to}: unreachable`));
    }
    return new Promise((resolve, reject) => {
      const settle = (failure: TransportError | null): void => {
        if (!this.pendingSnapshots.delete(settle)) return;
        if (failure === null) {
          this.counters.snapshotsSent++;
          resolve();
        } else {
          this.counters.snapshotsSendFailed++;
          reject(failure);
        }
      };
      this.pendingSnapshots.add(settle);
      this.counters.bytesSent += this.network.carrySnapshot(this, envelope, settle);
      this.counters.framesSent++;
    });
  }

  private reportUnreachable(peer: NodeId): void {
    if (this.state === "running") this.unreachableHandler?.(peer);
  }
}
