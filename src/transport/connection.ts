/**
 * One peer socket seen as a stream of frames: decoding (with the size limit), writing frames,
 * the handshake deadline, keepalive heartbeats and the idle timeout that catches half-open
 * connections, and closing with a reason — told to the peer in a Goodbye frame when the
 * close is our decision. Any failure to decode or handle an incoming frame closes this
 * connection and is counted; nothing a peer sends can throw out of a socket callback.
 * What frames mean (handshake rules, Raft batches, snapshots) is up to tcp.ts.
 */
import type { Socket } from "node:net";
import type { NodeId } from "../raft/types.js";
import { encodeGoodbye } from "./control-codec.js";
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, FrameError, FrameKind, type Frame } from "./frame.js";
import type { TimerHandle, Timers } from "./timers.js";
import type { Logger, PeerTraffic, TransportCounters } from "./transport.js";
import { TransportDecodeError } from "./wire.js";

/** A peer broke the protocol's rules with well-formed frames (e.g. a batch before the handshake). */
export class ProtocolError extends Error {
  constructor(readonly reason: string) {
    super(`protocol violation: ${reason}`);
    this.name = "ProtocolError";
  }
}

export interface ConnectionOptions {
  readonly maxFrameBytes: number;
  readonly timers: Timers;
  readonly handshakeTimeoutMs: number;
  /** Send a heartbeat after this long without sending anything. */
  readonly keepaliveIntervalMs: number;
  /** Close after this long without receiving anything. */
  readonly idleTimeoutMs: number;
  /** How long a closing socket may take to flush its Goodbye before it is destroyed. */
  readonly lingerMs: number;
  readonly counters: TransportCounters;
  readonly traffic: PeerTraffic;
  readonly logger: Logger;
}

export interface ConnectionEvents {
  /** A frame arrived; throwing TransportDecodeError or ProtocolError closes the connection. */
  frame(connection: FramedConnection, frame: Frame): void;
  /** The socket's write buffer emptied after a write that exceeded its high-water mark. */
  drained(connection: FramedConnection): void;
  /** Called exactly once, whoever closed the connection. */
  closed(connection: FramedConnection, reason: string): void;
  /** The socket is gone (after `closed`, once a Goodbye has been flushed or the linger ran out). */
  released(connection: FramedConnection): void;
}

type State = "handshaking" | "open" | "closed";

export class FramedConnection {
  private state: State = "handshaking";
  private peer: NodeId | null = null;
  private readonly decoder: FrameDecoder;
  private handshakeTimer: TimerHandle | null;
  private keepaliveTimer: TimerHandle | null = null;
  private lingerTimer: TimerHandle | null = null;
  private sentSinceTick = false;
  private receivedSinceTick = false;
  private silentMs = 0;
  private drainWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(
    private readonly socket: Socket,
    /** True when this node dialed; then `expectedPeer` is who it dialed. */
    readonly outbound: boolean,
    readonly expectedPeer: NodeId | null,
    private readonly options: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.handshakeTimer = options.timers.setTimeout(
      () => this.close(`no handshake within ${options.handshakeTimeoutMs} ms`, true),
      options.handshakeTimeoutMs,
    );
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("error", (error: NodeJS.ErrnoException) =>
      this.close(`socket error: ${error.code ?? error.message}`, false),
    );
    socket.on("close", () => {
      this.lingerTimer?.cancel();
      this.close("connection closed by peer", false);
      this.events.released(this);
    });
  }

  /** The authenticated peer, once the handshake succeeded. */
  get peerId(): NodeId | null {
    return this.peer;
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  /** Bytes written but not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  /** Where the socket leads, for logs. */
  get remote(): string {
    return `${this.socket.remoteAddress ?? "?"}:${this.socket.remotePort ?? "?"}`;
  }

  /**
   * Writes one frame. Returns false when the socket's buffer is above its high-water mark (the
   * frame is still queued; wait for `drained`), or when the connection is closed (dropped).
   */
  send(kind: FrameKind, payload: Uint8Array): boolean {
    if (this.state === "closed") return false;
    const frame = encodeFrame(kind, payload);
    this.sentSinceTick = true;
    this.options.counters.framesSent++;
    this.options.counters.bytesSent += frame.byteLength;
    const peer = this.peer ?? this.expectedPeer;
    if (peer !== null) this.options.traffic.sent(peer, frame.byteLength);
    return this.socket.write(frame);
  }

  /** Resolves once the socket's write buffer has drained; rejects if the connection closes first. */
  waitForDrain(): Promise<void> {
    if (this.state === "closed") return Promise.reject(new Error("connection closed"));
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** The handshake succeeded: frames of every kind may flow, and keepalive starts. */
  markOpen(peer: NodeId): void {
    if (this.state !== "handshaking") throw new Error(`markOpen on a connection that is ${this.state}`);
    this.state = "open";
    this.peer = peer;
    this.handshakeTimer?.cancel();
    this.handshakeTimer = null;
    this.scheduleKeepalive();
  }

  /**
   * Closes the connection once. With `notifyPeer`, a Goodbye carrying `reason` is flushed first
   * (bounded by the linger time); otherwise the socket is destroyed at once.
   */
  close(reason: string, notifyPeer: boolean): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.handshakeTimer?.cancel();
    this.keepaliveTimer?.cancel();
    if (notifyPeer && this.socket.writable) {
      this.socket.end(encodeFrame(FrameKind.Goodbye, encodeGoodbye({ reason })));
      this.lingerTimer = this.options.timers.setTimeout(() => this.socket.destroy(), this.options.lingerMs);
    } else {
      this.socket.destroy();
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter.reject(new Error(`connection closed: ${reason}`));
    this.events.closed(this, reason);
  }

  /** Destroys the socket now, skipping any linger (used when the whole transport shuts down). */
  destroy(reason: string): void {
    this.close(reason, false);
    this.lingerTimer?.cancel();
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.state === "closed") return;
    this.receivedSinceTick = true;
    try {
      for (const frame of this.decoder.push(chunk)) {
        // A handler may have closed the connection; the rest of the chunk is not ours to act on.
        if (this.isClosed) return;
        this.options.counters.framesReceived++;
        const bytes = FRAME_HEADER_BYTES + frame.payload.byteLength;
        this.options.counters.bytesReceived += bytes;
        this.events.frame(this, frame);
        // After the handler: a handshake it accepted named the peer of an accepted connection.
        const peer = this.peer ?? this.expectedPeer;
        if (peer !== null) this.options.traffic.received(peer, bytes);
      }
    } catch (error) {
      if (
        error instanceof FrameError ||
        error instanceof TransportDecodeError ||
        error instanceof ProtocolError
      ) {
        this.options.counters.decodeErrors++;
        this.options.logger.warn(
          { peer: this.peer ?? this.expectedPeer, remote: this.remote, reason: error.message },
          "closing connection: peer sent invalid data",
        );
        this.close(error.message, true);
      } else {
        // A bug on this side; the connection is in an unknown state, so it goes too.
        this.options.logger.warn(
          { peer: this.peer ?? this.expectedPeer, remote: this.remote, error },
          "closing connection: failed to handle a frame",
        );
        this.close(`internal error: ${(error as Error).message}`, true);
      }
    }
  }

  private onDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    if (this.state === "open") this.events.drained(this);
  }

  private scheduleKeepalive(): void {
    const interval = this.options.keepaliveIntervalMs;
    this.keepaliveTimer = this.options.timers.setTimeout(() => this.keepaliveTick(interval), interval);
  }

  private keepaliveTick(interval: number): void {
    if (this.state !== "open") return;
    this.silentMs = this.receivedSinceTick ? 0 : this.silentMs + interval;
    this.receivedSinceTick = false;
    if (this.silentMs >= this.options.idleTimeoutMs) {
      this.close(`nothing received for ${this.silentMs} ms`, true);
      return;
    }
    if (!this.sentSinceTick) this.send(FrameKind.Heartbeat, new Uint8Array(0));
    this.sentSinceTick = false;
    this.scheduleKeepalive();
  }
}
