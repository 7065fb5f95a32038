/**
 * The contract between a node runtime and its peer network: the `Transport` interface, the
 * envelope it carries (one Raft group's messages between two nodes), the injected logger, the
 * counters every implementation keeps, and the error a failed snapshot transfer rejects with.
 * Implementations: `TcpTransport` (tcp.ts) and `MemoryTransport` (memory.ts).
 */
import { MessageType, type Message, type NodeId } from "../raft/types.js";

/** Messages of one Raft group travelling from node `from` to node `to`. */
export interface Envelope {
  /** The Raft group (range) the messages belong to; any non-negative safe integer. */
  readonly groupId: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly messages: readonly Message[];
}

/** A snapshot's state-machine image, whole or as a stream of pieces of any size. */
export type SnapshotData = AsyncIterable<Uint8Array> | Uint8Array;

export type ReceiveHandler = (envelope: Envelope) => void;
export type UnreachableHandler = (peer: NodeId) => void;

/** Structured logging as pino does it: fields first, then the message. */
export interface Logger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug?(fields: object, message: string): void;
}

/** Monotonic counts, kept as a plain object for export (e.g. to Prometheus). */
export interface TransportCounters {
  framesSent: number;
  framesReceived: number;
  /** Frame bytes, headers included. */
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  /** Raft messages given up on: queue overflow while a peer is down, unknown peer, too large, closed. */
  messagesDropped: number;
  dialAttempts: number;
  dialFailures: number;
  /** Dials scheduled after a failed dial or a lost connection. */
  reconnects: number;
  connectionsAccepted: number;
  connectionsLost: number;
  handshakeFailures: number;
  /** Frames or payloads from a peer that failed validation; each one closes its connection. */
  decodeErrors: number;
  snapshotsSent: number;
  snapshotsSendFailed: number;
  snapshotsReceived: number;
  /** Incoming snapshot transfers discarded: bad checksum, cancelled by the sender, too large, lost. */
  snapshotsDiscarded: number;
}

export function newTransportCounters(): TransportCounters {
  return {
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    dialAttempts: 0,
    dialFailures: 0,
    reconnects: 0,
    connectionsAccepted: 0,
    connectionsLost: 0,
    handshakeFailures: 0,
    decodeErrors: 0,
    snapshotsSent: 0,
    snapshotsSendFailed: 0,
    snapshotsReceived: 0,
    snapshotsDiscarded: 0,
  };
}

/** Frame bytes exchanged with one peer, headers included. */
export interface PeerTrafficCounts {
  /** Frame bytes, headers included. */
  readonly sent: number;
  readonly received: number;
  /** Raft messages for the peer given up on (TransportCounters.messagesDropped, per peer). */
  readonly messagesDropped: number;
}

/** PeerTrafficCounts as PeerTraffic keeps them, growing. */
type RunningPeerCounts = { -readonly [K in keyof PeerTrafficCounts]: number };

/**
 * Traffic per peer (etcd's `etcd_network_peer_*_bytes_total` and `_sent_failures_total`): frame
 * bytes, counted once a connection knows its peer (dialed, or past the handshake), and the
 * messages for it that were dropped; the totals in TransportCounters count all.
 */
export class PeerTraffic {
  private readonly byPeer = new Map<NodeId, RunningPeerCounts>();

  sent(peer: NodeId, bytes: number): void {
    this.of(peer).sent += bytes;
  }

  received(peer: NodeId, bytes: number): void {
    this.of(peer).received += bytes;
  }

  dropped(peer: NodeId, messages: number): void {
    if (messages > 0) this.of(peer).messagesDropped += messages;
  }

  /** Every peer traffic went to or came from since the transport started, in ascending id order. */
  snapshot(): ReadonlyMap<NodeId, PeerTrafficCounts> {
    const ids = [...this.byPeer.keys()].sort((a, b) => a - b);
    return new Map(ids.map((id) => [id, { ...this.byPeer.get(id)! }]));
  }

  private of(peer: NodeId): RunningPeerCounts {
    let counts = this.byPeer.get(peer);
    if (counts === undefined) {
      counts = { sent: 0, received: 0, messagesDropped: 0 };
      this.byPeer.set(peer, counts);
    }
    return counts;
  }
}

/** A snapshot transfer that ended, to or from one peer (etcd's `etcd_network_snapshot_*`). */
export interface SnapshotTransferOutcome {
  readonly peer: NodeId;
  readonly direction: "send" | "receive";
  /** Sent: the peer accepted it. Received: it arrived whole and the receive handler took it. */
  readonly succeeded: boolean;
  /** From the transfer's start to its outcome, on the observer's clock. */
  readonly milliseconds: number;
}

/** Snapshot transfers under way, per peer (etcd's `etcd_network_snapshot_*_inflights_total`). */
export interface SnapshotsInFlight {
  readonly sending: ReadonlyMap<NodeId, number>;
  readonly receiving: ReadonlyMap<NodeId, number>;
}

/** Told of every snapshot transfer that ends (TcpTransport.observeSnapshots). */
export type SnapshotTransferListener = (outcome: SnapshotTransferOutcome) => void;

/** A send that did not complete, e.g. a snapshot the peer never acknowledged. */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransportError";
  }
}

export interface Transport {
  readonly nodeId: NodeId;
  readonly counters: TransportCounters;
  /**
   * Queues `envelope` for peer `to` (which must equal `envelope.to`; `envelope.from` must be this
   * node). Nothing leaves before `flush()`. Delivery is best effort: Raft tolerates loss.
   */
  send(to: NodeId, envelope: Envelope): void;
  /** Sends everything queued, one batch frame per peer. Call once per tick/turn. */
  flush(): void;
  /**
   * Streams a snapshot to `to`. `message` is a Snap message whose snapshot metadata travels in
   * the transfer's header; `data` replaces its snapshot's data. Resolves once the peer has
   * verified the whole snapshot and handed it to its receive handler; rejects with a
   * `TransportError` otherwise, so the caller can report the snapshot as failed and retry.
   */
  sendSnapshot(to: NodeId, groupId: number, message: Message, data: SnapshotData): Promise<void>;
  /** The one handler for incoming envelopes (snapshots arrive as a Snap message with its data). */
  onReceive(handler: ReceiveHandler): void;
  /** Called with a peer id whenever messages for it could not be sent or its connection broke. */
  onUnreachable(handler: UnreachableHandler): void;
  start(): Promise<void>;
  /** Stops everything; pending snapshot transfers reject, queued messages are dropped. */
  close(): Promise<void>;
}

/** Throws unless `envelope` may be sent by `self` to `to`: a caller bug, never a peer's fault. */
export function checkOutgoingEnvelope(self: NodeId, to: NodeId, envelope: Envelope): void {
  if (envelope.to !== to) throw new Error(`envelope for node ${envelope.to} sent to node ${to}`);
  if (envelope.from !== self) throw new Error(`envelope from node ${envelope.from} sent by node ${self}`);
  if (to === self) throw new Error(`node ${self} cannot send to itself`);
}

/** Throws unless `message` can open a snapshot transfer from `self` to `to`. */
export function checkSnapshotMessage(self: NodeId, to: NodeId, message: Message): void {
  if (message.type !== MessageType.Snap || message.snapshot === null) {
    throw new Error("sendSnapshot needs a Snap message carrying snapshot metadata");
  }
  if (message.to !== to || message.from !== self) {
    throw new Error(`snapshot message ${message.from}→${message.to} sent as ${self}→${to}`);
  }
}
