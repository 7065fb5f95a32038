/**
 * `TcpTransport`: the production Transport over node:net.
 *
 * Owns the listening socket, one connection per peer pair (the lower node id dials, the higher
 * accepts; a newer accepted connection from a peer replaces an older one, so a dialer that
 * restarted is never locked out by its stale predecessor), the handshake rules, reconnects with
 * capped, jittered exponential backoff, the bounded per-peer send queues, and the routing of
 * frames to snapshot transfers (snapshot-sender.ts, snapshot-receiver.ts). Timers and randomness
 * are injected; see timers.ts.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import type { Message, NodeId, RandomSource } from "../raft/types.js";
import { BATCH_ENTRY_OVERHEAD_BYTES, decodeRaftBatch, encodeEnvelope, encodeRaftBatch } from "./codec.js";
import { FramedConnection, ProtocolError, type ConnectionOptions } from "./connection.js";
import {
  decodeGoodbye,
  decodeHandshake,
  decodeSnapshotChunk,
  decodeSnapshotStatus,
  encodeHandshake,
  SnapshotOutcome,
  type Handshake,
  type SnapshotStatus,
} from "./control-codec.js";
import { DEFAULT_MAX_FRAME_BYTES, FrameKind, PROTOCOL_VERSION, type Frame } from "./frame.js";
import { SendQueue } from "./send-queue.js";
import { SnapshotReceiver } from "./snapshot-receiver.js";
import { DEFAULT_SNAPSHOT_CHUNK_BYTES } from "./snapshot-stream.js";
import { OutgoingSnapshot, streamSnapshot } from "./snapshot-sender.js";
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  systemRandom,
  systemTimers,
  type BackoffPolicy,
  type TimerHandle,
  type Timers,
} from "./timers.js";
import {
  checkOutgoingEnvelope,
  checkSnapshotMessage,
  newTransportCounters,
  PeerTraffic,
  TransportError,
  type Envelope,
  type Logger,
  type ReceiveHandler,
  type SnapshotData,
  type SnapshotTransferListener,
  type SnapshotTransferOutcome,
  type SnapshotsInFlight,
  type Transport,
  type TransportCounters,
  type UnreachableHandler,
} from "./transport.js";

/** Frame space kept free next to a snapshot chunk's data for the chunk's other fields and header. */
const SNAPSHOT_HEADER_ROOM_BYTES = 64 * 1024;

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface TcpTransportOptions {
  /** Nodes of other clusters are refused at the handshake. */
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** Where to listen; port 0 picks a free port (see `address()`). */
  readonly listen: PeerAddress;
  /** Initial peers; more via `addPeer`. Addresses of lower-id peers are kept but never dialed. */
  readonly peers?: Iterable<readonly [NodeId, PeerAddress]>;
  readonly logger: Logger;
  readonly timers?: Timers;
  readonly random?: RandomSource;
  readonly backoff?: BackoffPolicy;
  /** Largest frame payload sent or accepted (default 64 MiB). */
  readonly maxFrameBytes?: number;
  /** Per-peer send queue bounds (defaults 10 000 messages, 64 MiB). */
  readonly maxQueuedMessages?: number;
  readonly maxQueuedBytes?: number;
  /** Raft batches wait in the send queue while this much is buffered in the socket (default 16 MiB). */
  readonly socketBufferLimitBytes?: number;
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot accepted from a peer (default 1 GiB). */
  readonly maxSnapshotBytes?: number;
  readonly handshakeTimeoutMs?: number;
  readonly keepaliveIntervalMs?: number;
  readonly idleTimeoutMs?: number;
  readonly lingerMs?: number;
}

interface PeerState {
  readonly id: NodeId;
  address: PeerAddress;
  readonly queue: SendQueue;
  /** The connection in use, once its handshake succeeded. */
  connection: FramedConnection | null;
  /** An outbound connection whose handshake is in progress. */
  dialing: FramedConnection | null;
  redialTimer: TimerHandle | null;
  /** Consecutive failed dials, for the backoff. */
  failures: number;
  /** Whether queue overflow was logged since the peer was last connected. */
  dropLogged: boolean;
}

type LifeCycle = "new" | "starting" | "running" | "closed";

export class TcpTransport implements Transport {
  readonly nodeId: NodeId;
  readonly counters: TransportCounters = newTransportCounters();
  /** Frame bytes per peer (see PeerTraffic). */
  readonly traffic = new PeerTraffic();
  private readonly options: TcpTransportOptions;
  private readonly logger: Logger;
  private readonly timers: Timers;
  private readonly random: RandomSource;
  private readonly maxFrameBytes: number;
  private readonly connectionOptions: ConnectionOptions;
  private readonly peers = new Map<NodeId, PeerState>();
  /** Every socket not yet released, including closed ones still flushing a Goodbye. */
  private readonly connections = new Set<FramedConnection>();
  private readonly receiver: SnapshotReceiver;
  private readonly outgoing = new Map<number, OutgoingSnapshot>();
  private nextTransferId = 1;
  private server: Server | null = null;
  private lifecycle: LifeCycle = "new";
  private receiveHandler: ReceiveHandler | null = null;
  private unreachableHandler: UnreachableHandler | null = null;
  private snapshotObserver: {
    readonly clock: () => number;
    readonly listener: SnapshotTransferListener;
  } | null = null;

  constructor(options: TcpTransportOptions) {
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) {
      throw new Error(`node id must be a positive safe integer, got ${options.nodeId}`);
    }
    if (options.clusterId === "") throw new Error("cluster id must not be empty");
    this.options = options;
    this.nodeId = options.nodeId;
    this.logger = options.logger;
    this.timers = options.timers ?? systemTimers;
    this.random = options.random ?? systemRandom;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const chunkBytes = options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    if (chunkBytes + SNAPSHOT_HEADER_ROOM_BYTES > this.maxFrameBytes) {
      throw new Error(`snapshot chunks of ${chunkBytes} bytes leave no room for their header in a frame`);
    }
    this.connectionOptions = {
      maxFrameBytes: this.maxFrameBytes,
      timers: this.timers,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5_000,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 1_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      lingerMs: options.lingerMs ?? 1_000,
      counters: this.counters,
      traffic: this.traffic,
      logger: this.logger,
    };
    this.receiver = new SnapshotReceiver({
      maxSnapshotBytes: options.maxSnapshotBytes ?? 1024 * 1024 * 1024,
      counters: this.counters,
      logger: this.logger,
      checkRoute: (connection, header) => this.checkEnvelopeRoute(connection, header),
      deliver: (envelope) => this.deliver(envelope),
      now: () => this.snapshotObserver?.clock() ?? 0,
      ended: (peer, succeeded, startedAt) => {
        if (peer !== null) this.tellSnapshotEnded(peer, "receive", succeeded, startedAt);
      },
    });
    for (const [id, address] of options.peers ?? []) this.addPeer(id, address);
  }

  onReceive(handler: ReceiveHandler): void {
    if (this.receiveHandler !== null) throw new Error("onReceive may be called once");
    this.receiveHandler = handler;
  }

  onUnreachable(handler: UnreachableHandler): void {
    if (this.unreachableHandler !== null) throw new Error("onUnreachable may be called once");
    this.unreachableHandler = handler;
  }

  async start(): Promise<void> {
    if (this.lifecycle !== "new") throw new Error(`start() on a transport that is ${this.lifecycle}`);
    if (this.receiveHandler === null) throw new Error("onReceive must be called before start()");
    this.lifecycle = "starting";
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.options.listen.port, this.options.listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      // A transport that could not bind is finished; the caller builds a new one to retry.
      this.lifecycle = "closed";
      this.server = null;
      throw error;
    }
    server.on("error", (error) => this.logger.warn({ error }, "listening socket error"));
    if (this.lifecycle !== "starting") return;
    this.lifecycle = "running";
    this.logger.info({ node: this.nodeId, address: this.address() }, "transport listening");
    for (const peer of this.peers.values()) if (this.dialsTo(peer.id)) this.dial(peer);
  }

  /** The address actually bound (the port is known only after `start()` when 0 was asked for). */
  address(): PeerAddress {
    const bound = this.server?.address();
    if (bound === null || bound === undefined || typeof bound === "string") {
      throw new Error("the transport is not listening");
    }
    return { host: bound.address, port: bound.port };
  }

  /** Adds a peer, or changes its address (used from the next dial on). */
  addPeer(id: NodeId, address: PeerAddress): void {
    if (!Number.isSafeInteger(id) || id <= 0 || id === this.nodeId) throw new Error(`invalid peer id ${id}`);
    const existing = this.peers.get(id);
    if (existing !== undefined) {
      existing.address = address;
      return;
    }
    const peer: PeerState = {
      id,
      address,
      queue: new SendQueue({
        maxMessages: this.options.maxQueuedMessages ?? 10_000,
        maxBytes: this.options.maxQueuedBytes ?? 64 * 1024 * 1024,
      }),
      connection: null,
      dialing: null,
      redialTimer: null,
      failures: 0,
      dropLogged: false,
    };
    this.peers.set(id, peer);
    if (this.lifecycle === "running" && this.dialsTo(id)) this.dial(peer);
  }

  /** Forgets a peer: its connections close, its queued messages are dropped (and counted). */
  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    this.peers.delete(id);
    peer.redialTimer?.cancel();
    this.countDropped(peer.id, peer.queue.clear());
    peer.dialing?.close("peer removed from this node's configuration", true);
    peer.connection?.close("peer removed from this node's configuration", true);
  }

  /** Peers with an established connection, ascending. */
  connectedPeers(): NodeId[] {
    return [...this.peers.values()]
      .filter((p) => p.connection !== null)
      .map((p) => p.id)
      .sort((a, b) => a - b);
  }

  /** Snapshot transfers under way now, per peer: being sent to it, being received from it. */
  snapshotsInFlight(): SnapshotsInFlight {
    const sending = new Map<NodeId, number>();
    for (const transfer of this.outgoing.values())
      sending.set(transfer.peer, (sending.get(transfer.peer) ?? 0) + 1);
    return { sending, receiving: this.receiver.inFlight() };
  }

  send(to: NodeId, envelope: Envelope): void {
    checkOutgoingEnvelope(this.nodeId, to, envelope);
    const count = envelope.messages.length;
    const peer = this.peers.get(to);
    if (this.lifecycle === "closed") {
      this.countDropped(to, count);
      return;
    }
    if (peer === undefined) {
      this.countDropped(to, count);
      this.logger.debug?.({ peer: to }, "dropping messages for a peer that is not configured");
      this.reportUnreachable(to);
      return;
    }
    const encoded = encodeEnvelope(envelope);
    if (encoded.byteLength + BATCH_ENTRY_OVERHEAD_BYTES > this.maxFrameBytes) {
      this.countDropped(to, count);
      this.logger.warn({ peer: to, bytes: encoded.byteLength }, "dropping an envelope too large for a frame");
      return;
    }
    const dropped = peer.queue.push({ encoded, messageCount: count });
    if (dropped > 0) {
      this.countDropped(to, dropped);
      if (!peer.dropLogged) {
        peer.dropLogged = true;
        this.logger.warn({ peer: to, dropped }, "send queue full: dropping the oldest messages");
      }
    }
  }

  private countDropped(to: NodeId, messages: number): void {
    this.counters.messagesDropped += messages;
    this.traffic.dropped(to, messages);
  }

  flush(): void {
    for (const peer of this.peers.values()) {
      if (!peer.queue.isEmpty) this.flushPeer(peer, true);
    }
  }

  /**
   * Tells `listener` of every later snapshot transfer that ends, sent or received, succeeded or
   * not, timed on `clock` (milliseconds that never go backwards). One observer at a time (an
   * Error for a second); the function returned removes it.
   */
  observeSnapshots(clock: () => number, listener: SnapshotTransferListener): () => void {
    if (this.snapshotObserver !== null) throw new Error("snapshot transfers are observed already");
    const observer = { clock, listener };
    this.snapshotObserver = observer;
    return () => {
      if (this.snapshotObserver === observer) this.snapshotObserver = null;
    };
  }

  private tellSnapshotEnded(
    peer: NodeId,
    direction: SnapshotTransferOutcome["direction"],
    succeeded: boolean,
    startedAt: number,
  ): void {
    const observer = this.snapshotObserver;
    if (observer === null) return;
    const milliseconds = Math.max(0, observer.clock() - startedAt);
    try {
      observer.listener({ peer, direction, succeeded, milliseconds });
    } catch (error) {
      this.logger.warn({ error: String(error) }, "a snapshot transfer observer failed");
    }
  }

  async sendSnapshot(to: NodeId, groupId: number, message: Message, data: SnapshotData): Promise<void> {
    checkSnapshotMessage(this.nodeId, to, message);
    const startedAt = this.snapshotObserver?.clock() ?? 0;
    const connection = this.peers.get(to)?.connection ?? null;
    if (this.lifecycle !== "running" || connection === null) {
      this.counters.snapshotsSendFailed++;
      this.tellSnapshotEnded(to, "send", false, startedAt);
      throw new TransportError(`cannot send a snapshot to node ${to}: not connected`);
    }
    const transfer = new OutgoingSnapshot(this.nextTransferId++, to, connection);
    this.outgoing.set(transfer.id, transfer);
    const header: Envelope = {
      groupId,
      from: this.nodeId,
      to,
      messages: [{ ...message, snapshot: { ...message.snapshot!, data: new Uint8Array(0) } }],
    };
    try {
      await streamSnapshot(transfer, header, data, {
        chunkBytes: this.options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES,
        maxFrameBytes: this.maxFrameBytes,
      });
      await transfer.outcome();
      this.counters.snapshotsSent++;
      this.tellSnapshotEnded(to, "send", true, startedAt);
    } catch (error) {
      this.counters.snapshotsSendFailed++;
      this.tellSnapshotEnded(to, "send", false, startedAt);
      const failure = transfer.fail(error);
      this.logger.warn({ peer: to, groupId, reason: failure.message }, "snapshot transfer failed");
      throw failure;
    } finally {
      this.outgoing.delete(transfer.id);
    }
  }

  async close(): Promise<void> {
    if (this.lifecycle === "closed") return;
    this.lifecycle = "closed";
    for (const peer of this.peers.values()) {
      peer.redialTimer?.cancel();
      this.countDropped(peer.id, peer.queue.clear());
    }
    for (const transfer of this.outgoing.values()) transfer.fail(new TransportError("transport closed"));
    for (const connection of [...this.connections]) connection.destroy("node shutting down");
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ------------------------------------------------------------------------- connections

  /** The lower id of a pair dials; the higher one waits to be dialed. */
  private dialsTo(peer: NodeId): boolean {
    return this.nodeId < peer;
  }

  private dial(peer: PeerState): void {
    peer.redialTimer = null;
    this.counters.dialAttempts++;
    const socket = connect({ host: peer.address.host, port: peer.address.port });
    socket.setNoDelay(true);
    const connection = this.track(socket, true, peer.id);
    peer.dialing = connection;
    connection.send(FrameKind.Handshake, encodeHandshake(this.handshakeFor(peer.id)));
  }

  private accept(socket: Socket): void {
    if (this.lifecycle !== "running") {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.counters.connectionsAccepted++;
    this.track(socket, false, null);
  }

  private track(socket: Socket, outbound: boolean, expectedPeer: NodeId | null): FramedConnection {
    const connection = new FramedConnection(socket, outbound, expectedPeer, this.connectionOptions, {
      frame: (c, frame) => this.onFrame(c, frame),
      drained: (c) => {
        const peer = c.peerId === null ? undefined : this.peers.get(c.peerId);
        if (peer?.connection === c && !peer.queue.isEmpty) this.flushPeer(peer, false);
      },
      closed: (c, reason) => this.onClosed(c, reason),
      released: (c) => this.connections.delete(c),
    });
    this.connections.add(connection);
    return connection;
  }

  private handshakeFor(peer: NodeId): Handshake {
    return {
      clusterId: this.options.clusterId,
      nodeId: this.nodeId,
      peerNodeId: peer,
      protocolVersion: PROTOCOL_VERSION,
    };
  }

  /** Why the handshake `h` received on `connection` is refused, or null if it is accepted. */
  private handshakeProblem(connection: FramedConnection, h: Handshake): string | null {
    if (h.protocolVersion !== PROTOCOL_VERSION) {
      return `protocol version ${h.protocolVersion} is not supported (this node speaks ${PROTOCOL_VERSION})`;
    }
    if (h.clusterId !== this.options.clusterId) {
      return `cluster id mismatch: peer is in "${h.clusterId}", this node is in "${this.options.clusterId}"`;
    }
    if (h.peerNodeId !== this.nodeId)
      return `node id mismatch: peer expected node ${h.peerNodeId}, this is ${this.nodeId}`;
    if (connection.outbound) {
      return h.nodeId === connection.expectedPeer
        ? null
        : `node id mismatch: dialed node ${connection.expectedPeer}, reached node ${h.nodeId}`;
    }
    if (!this.peers.has(h.nodeId)) return `node ${h.nodeId} is not a configured peer of node ${this.nodeId}`;
    if (h.nodeId < this.nodeId) return null;
    return `node ${h.nodeId} must not dial node ${this.nodeId}: the lower node id dials`;
  }

  private onHandshakeFrame(connection: FramedConnection, frame: Frame): void {
    if (frame.kind === FrameKind.Goodbye) {
      this.counters.handshakeFailures++;
      const reason = decodeGoodbye(frame.payload).reason;
      this.logger.warn(
        { peer: connection.expectedPeer, remote: connection.remote, reason },
        "peer refused the handshake",
      );
      connection.close(`peer refused the handshake: ${reason}`, false);
      return;
    }
    if (frame.kind !== FrameKind.Handshake) {
      throw new ProtocolError(`${FrameKind[frame.kind]} frame before the handshake`);
    }
    const handshake = decodeHandshake(frame.payload);
    const problem = this.handshakeProblem(connection, handshake);
    if (problem !== null) {
      this.counters.handshakeFailures++;
      this.logger.warn(
        { peer: handshake.nodeId, remote: connection.remote, reason: problem },
        "handshake refused",
      );
      connection.close(problem, true);
      return;
    }
    const peer = this.peers.get(handshake.nodeId);
    if (peer === undefined) throw new Error(`accepted a handshake from unknown node ${handshake.nodeId}`);
    // Open before the answer goes out, so that its bytes count as this peer's.
    connection.markOpen(peer.id);
    if (!connection.outbound)
      connection.send(FrameKind.Handshake, encodeHandshake(this.handshakeFor(peer.id)));
    this.adopt(peer, connection);
  }

  /** `connection` (open: its handshake done) becomes the one to `peer`. */
  private adopt(peer: PeerState, connection: FramedConnection): void {
    if (peer.dialing === connection) peer.dialing = null;
    const previous = peer.connection;
    peer.connection = connection;
    peer.failures = 0;
    peer.dropLogged = false;
    previous?.close("replaced by a newer connection from the same peer", true);
    this.logger.info({ peer: peer.id, remote: connection.remote }, "peer connected");
    if (!peer.queue.isEmpty) this.flushPeer(peer, false);
  }

  private onClosed(connection: FramedConnection, reason: string): void {
    this.receiver.onConnectionClosed(connection);
    for (const transfer of this.outgoing.values()) {
      if (transfer.connection === connection) {
        transfer.fail(new TransportError(`connection to node ${transfer.peer} lost: ${reason}`));
      }
    }
    const id = connection.peerId ?? connection.expectedPeer;
    const peer = id === null ? undefined : this.peers.get(id);
    if (peer === undefined || this.lifecycle !== "running") return;
    if (peer.connection === connection) {
      peer.connection = null;
      this.counters.connectionsLost++;
      this.logger.info({ peer: peer.id, reason }, "peer connection lost");
      this.reportUnreachable(peer.id);
      this.scheduleRedial(peer);
    } else if (peer.dialing === connection) {
      peer.dialing = null;
      peer.failures++;
      this.counters.dialFailures++;
      // Only the first failure of a streak is news; the redials that follow are not.
      const fields = { peer: peer.id, address: peer.address, reason };
      if (peer.failures === 1) this.logger.warn(fields, "cannot connect to peer");
      else this.logger.debug?.(fields, "cannot connect to peer");
      this.scheduleRedial(peer);
    }
  }

  private scheduleRedial(peer: PeerState): void {
    if (!this.dialsTo(peer.id) || peer.redialTimer !== null || this.peers.get(peer.id) !== peer) return;
    this.counters.reconnects++;
    const delay = backoffDelay(this.options.backoff ?? DEFAULT_BACKOFF, peer.failures, this.random);
    peer.redialTimer = this.timers.setTimeout(() => {
      if (this.lifecycle === "running" && this.peers.get(peer.id) === peer) this.dial(peer);
    }, delay);
  }

  private reportUnreachable(peer: NodeId): void {
    if (this.lifecycle !== "running" || this.unreachableHandler === null) return;
    try {
      this.unreachableHandler(peer);
    } catch (error) {
      this.logger.warn({ peer, error }, "unreachable handler threw");
    }
  }

  private flushPeer(peer: PeerState, reportIfDown: boolean): void {
    const connection = peer.connection;
    if (connection === null) {
      if (reportIfDown) this.reportUnreachable(peer.id);
      return;
    }
    // A slow peer: keep messages in the bounded queue until the socket drains.
    if (connection.bufferedBytes > (this.options.socketBufferLimitBytes ?? 16 * 1024 * 1024)) return;
    for (const batch of peer.queue.takeBatches(this.maxFrameBytes)) {
      connection.send(FrameKind.RaftBatch, encodeRaftBatch(batch.map((e) => e.encoded)));
      for (const e of batch) this.counters.messagesSent += e.messageCount;
    }
  }

  // ------------------------------------------------------------------------- receiving

  private onFrame(connection: FramedConnection, frame: Frame): void {
    if (!connection.isOpen) {
      this.onHandshakeFrame(connection, frame);
      return;
    }
    switch (frame.kind) {
      case FrameKind.Handshake:
        throw new ProtocolError("second handshake on an open connection");
      case FrameKind.Goodbye:
        connection.close(`peer closed the connection: ${decodeGoodbye(frame.payload).reason}`, false);
        return;
      case FrameKind.RaftBatch:
        this.onBatch(connection, decodeRaftBatch(frame.payload));
        return;
      case FrameKind.SnapshotChunk:
        this.receiver.onChunk(connection, decodeSnapshotChunk(frame.payload));
        return;
      case FrameKind.SnapshotStatus:
        this.onSnapshotStatus(connection, decodeSnapshotStatus(frame.payload));
        return;
      case FrameKind.Heartbeat:
        return;
    }
  }

  private checkEnvelopeRoute(connection: FramedConnection, envelope: Envelope): void {
    if (envelope.from !== connection.peerId || envelope.to !== this.nodeId) {
      throw new ProtocolError(
        `envelope ${envelope.from}→${envelope.to} on the connection between ${connection.peerId} and ${this.nodeId}`,
      );
    }
  }

  private onBatch(connection: FramedConnection, envelopes: Envelope[]): void {
    // Validate the whole batch before delivering any of it: a bad frame delivers nothing.
    for (const envelope of envelopes) this.checkEnvelopeRoute(connection, envelope);
    for (const envelope of envelopes) {
      this.counters.messagesReceived += envelope.messages.length;
      this.deliver(envelope);
    }
  }

  /** Hands an envelope to the receive handler; false if the handler threw. */
  private deliver(envelope: Envelope): boolean {
    try {
      this.receiveHandler?.(envelope);
      return true;
    } catch (error) {
      this.logger.warn({ peer: envelope.from, groupId: envelope.groupId, error }, "receive handler threw");
      return false;
    }
  }

  private onSnapshotStatus(connection: FramedConnection, status: SnapshotStatus): void {
    if (status.outcome === SnapshotOutcome.Cancelled) {
      this.receiver.onCancelled(connection, status);
      return;
    }
    const transfer = this.outgoing.get(status.transferId);
    // Unknown ids are answers to transfers that already failed here.
    if (transfer === undefined || transfer.connection !== connection) return;
    if (status.outcome === SnapshotOutcome.Accepted) transfer.accept();
    else transfer.fail(new TransportError(`node ${transfer.peer} rejected the snapshot: ${status.reason}`));
  }
}
