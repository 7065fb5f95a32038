/**
 * The server side of one HTTP/2 connection (RFC 9113), as much of it as a gRPC server needs,
 * in JS over the socket: frames, HPACK decoding of the client's header blocks, streams opened
 * by the client, flow control in both directions, SETTINGS, PING, RST_STREAM and GOAWAY. No
 * server push, no priorities (PRIORITY is read and ignored), no TLS.
 *
 * Why not node:http2: per request it costs a server about 100 µs of CPU (nghttp2, a
 * ServerHttp2Stream, a headers object, one JS call per stream event), about as much as the
 * rest of a Concord read; the gRPC layer on top of it (grpc-js) another 35 µs
 * (bench/etcd-compare/grpc-overhead.ts). Here a request is a few frames parsed in place.
 *
 * Writes made while JS runs on behalf of one socket read (a turn's worth of responses) leave
 * in one socket write: the socket is corked from the first write until the next tick.
 *
 * What the client sends wrong is answered as RFC 9113 says: a connection error (GOAWAY with
 * the code, then the socket is closed) or a stream error (RST_STREAM). Memory is bounded: frames
 * above 16 KiB, header blocks above 64 KiB, more than `maxConcurrentStreams` open streams, and
 * more than `maxBufferedRequestBytes` of request bytes held by the layer above all fail; the
 * connection stops reading while over 1 MiB of its writes wait for the client to read (PING
 * floods included). A client must send its preface within 10 s. Resetting streams faster than
 * 33 per second after a burst of 1,000 ("rapid reset", CVE-2023-44487; nghttp2's limits) ends
 * the connection with ENHANCE_YOUR_CALM: each reset stream's handler may still be running.
 */
import type { Duplex } from "node:stream";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  goAwayFrame,
  Http2ErrorCode,
  MAX_ALLOWED_FRAME_SIZE,
  MAX_WINDOW_SIZE,
  pingAckFrame,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK_FRAME,
  settingsFrame,
  windowUpdateFrame,
  frame,
} from "./frames.js";
import { HpackDecoder, HpackError, type HeaderField } from "./hpack.js";

/** Each stream's receive window this server advertises: a whole 2 MiB gRPC request fits. */
const STREAM_RECEIVE_WINDOW = 4 * 1024 * 1024;
/** The connection's receive window (raised from 65,535 by a WINDOW_UPDATE at the start). */
const CONNECTION_RECEIVE_WINDOW = 16 * 1024 * 1024;
/** The largest header block (all its HEADERS and CONTINUATION fragments) accepted. */
const MAX_HEADER_BLOCK_BYTES = 64 * 1024;
/** The largest decoded header list (RFC 9113 sizes: name + value + 32 per field). */
const MAX_HEADER_LIST_BYTES = 64 * 1024;
/** This side's SETTINGS_HEADER_TABLE_SIZE (the default; never changed). */
const HEADER_TABLE_SIZE = 4096;
/** A stream whose unsent response bytes exceed this asks its writer to wait for drain. */
const STREAM_SEND_BACKLOG_BYTES = 64 * 1024;
/** Reading stops while more than this waits in the socket for the client to read. */
const MAX_UNREAD_WRITE_BYTES = 1024 * 1024;
/** How long a new connection has to send the client preface, unless told otherwise. */
const PREFACE_TIMEOUT_MS = 10_000;
/** Client stream resets allowed at once, and regained per second (nghttp2's defaults). */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 33;
const EMPTY = Buffer.alloc(0);
/** How long a connection this side closed waits for the client to close its side. */
const CLOSE_GRACE_MS = 1_000;

export interface Http2ServerConnectionOptions {
  /** A client opened a stream: its request headers are complete (END_STREAM may follow at once). */
  readonly onRequest: (stream: Http2ServerStream, headers: readonly HeaderField[]) => void;
  /** The connection is gone (closed by either side); called once. */
  readonly onClose?: () => void;
  /** A callback of the layer above threw outside a frame it was handed (a bug there, reported). */
  readonly onCallbackError?: (error: unknown) => void;
  readonly maxConcurrentStreams?: number;
  readonly maxBufferedRequestBytes?: number;
  /** The clock of the reset rate limit (milliseconds). */
  readonly now?: () => number;
  /** How long a new connection has to send the client preface (default 10 s). */
  readonly prefaceTimeoutMs?: number;
}

/** A connection error: GOAWAY with this code, then close. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class Http2ServerConnection {
  private readonly streams = new Map<number, Http2ServerStream>();
  private readonly decoder = new HpackDecoder(HEADER_TABLE_SIZE);
  private readonly maxConcurrentStreams: number;
  private readonly maxBufferedRequestBytes: number;
  private input: Buffer = EMPTY;
  private prefaceRead = false;
  private lastStreamId = 0;
  /** A header block waiting for CONTINUATION frames. */
  private headerBlock: { streamId: number; endStream: boolean; fragments: Buffer[]; bytes: number } | null =
    null;
  private peerInitialWindow = DEFAULT_WINDOW_SIZE;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** How much DATA the client lets this side send on the connection. */
  sendWindow = DEFAULT_WINDOW_SIZE;
  private receiveWindow = CONNECTION_RECEIVE_WINDOW;
  private receivedUnacked = 0;
  /** Streams with response bytes waiting for flow-control window, in the order they blocked. */
  private readonly blocked = new Set<Http2ServerStream>();
  /** Streams told to wait (write returned false) and not told to resume yet. */
  private readonly waitingForDrain = new Set<Http2ServerStream>();
  private bufferedRequestBytes = 0;
  private corked = false;
  private closed = false;
  private readingPaused = false;
  private readonly prefaceTimer: NodeJS.Timeout;
  private readonly now: () => number;
  private resetTokens = RESET_BURST;
  private resetTokensAt: number;

  constructor(
    private readonly socket: Duplex,
    private readonly options: Http2ServerConnectionOptions,
  ) {
    this.maxConcurrentStreams = options.maxConcurrentStreams ?? 1000;
    this.maxBufferedRequestBytes = options.maxBufferedRequestBytes ?? 256 * 1024 * 1024;
    this.now = options.now ?? (() => performance.now());
    this.resetTokensAt = this.now();
    this.prefaceTimer = setTimeout(
      () => this.fail(new ConnectionError(Http2ErrorCode.protocol, "no client preface")),
      options.prefaceTimeoutMs ?? PREFACE_TIMEOUT_MS,
    );
    this.prefaceTimer.unref();
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("drain", () => this.drained());
    socket.on("error", () => this.destroy());
    socket.on("close", () => this.destroy());
    this.write(
      settingsFrame([
        [Setting.maxConcurrentStreams, this.maxConcurrentStreams],
        [Setting.initialWindowSize, STREAM_RECEIVE_WINDOW],
        [Setting.maxHeaderListSize, MAX_HEADER_LIST_BYTES],
      ]),
    );
    this.write(windowUpdateFrame(0, CONNECTION_RECEIVE_WINDOW - DEFAULT_WINDOW_SIZE));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Says goodbye (GOAWAY, NO_ERROR) and closes at once: open streams are aborted. */
  close(): void {
    this.goAway(Http2ErrorCode.noError, "");
  }

  /** Bytes the layer above holds of requests it has not handed on yet (positive: more held). */
  adjustBufferedRequestBytes(delta: number): void {
    this.bufferedRequestBytes += delta;
    if (this.bufferedRequestBytes > this.maxBufferedRequestBytes) {
      this.fail(new ConnectionError(Http2ErrorCode.enhanceYourCalm, "too many request bytes buffered"));
    }
  }

  /** Queues bytes for the socket; everything written until the next tick leaves in one write. */
  write(bytes: Uint8Array): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  /** HEADERS (split into CONTINUATION frames when the block exceeds the peer's frame size). */
  writeHeaders(streamId: number, block: Uint8Array, endStream: boolean): void {
    let offset = 0;
    do {
      const fragment = block.subarray(offset, offset + this.peerMaxFrameSize);
      const first = offset === 0;
      offset += fragment.length;
      const flags =
        (first && endStream ? Flag.endStream : 0) | (offset >= block.length ? Flag.endHeaders : 0);
      this.write(frame(first ? FrameType.headers : FrameType.continuation, flags, streamId, fragment));
    } while (offset < block.length);
  }

  /** DATA frames for bytes the windows already allow (the caller has checked and charged them). */
  writeData(streamId: number, data: Uint8Array): void {
    let offset = 0;
    do {
      const chunk = data.subarray(offset, offset + this.peerMaxFrameSize);
      offset += chunk.length;
      this.write(frame(FrameType.data, 0, streamId, chunk));
    } while (offset < data.length);
  }

  /** Whether `bytes` of DATA fit in one frame and both windows right now. */
  fitsAtOnce(stream: Http2ServerStream, bytes: number): boolean {
    return bytes <= this.peerMaxFrameSize && bytes <= this.sendWindow && bytes <= stream.sendWindow;
  }

  get socketNeedsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** A stream has bytes waiting for window; they go as window arrives. */
  block(stream: Http2ServerStream): void {
    this.blocked.add(stream);
  }

  waitForDrain(stream: Http2ServerStream): void {
    this.waitingForDrain.add(stream);
  }

  /** The stream has sent END_STREAM or RST_STREAM, or was reset by the client: forget it. */
  forget(stream: Http2ServerStream): void {
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    this.waitingForDrain.delete(stream);
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    let input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    try {
      let offset = 0;
      if (!this.prefaceRead) {
        const compared = Math.min(input.length, CLIENT_PREFACE.length);
        if (!input.subarray(0, compared).equals(CLIENT_PREFACE.subarray(0, compared))) {
          throw new ConnectionError(Http2ErrorCode.protocol, "not the HTTP/2 client preface");
        }
        if (compared < CLIENT_PREFACE.length) {
          this.input = input;
          return;
        }
        this.prefaceRead = true;
        clearTimeout(this.prefaceTimer);
        offset = CLIENT_PREFACE.length;
      }
      while (input.length - offset >= FRAME_HEADER_LENGTH) {
        const length = (input[offset]! << 16) | (input[offset + 1]! << 8) | input[offset + 2]!;
        if (length > DEFAULT_MAX_FRAME_SIZE) {
          throw new ConnectionError(Http2ErrorCode.frameSize, `frame of ${length} bytes`);
        }
        const end = offset + FRAME_HEADER_LENGTH + length;
        if (end > input.length) break;
        const type = input[offset + 3]!;
        const flags = input[offset + 4]!;
        const streamId = input.readUInt32BE(offset + 5) & 0x7fffffff;
        const payload = input.subarray(offset + FRAME_HEADER_LENGTH, end);
        offset = end;
        this.frame(type, flags, streamId, payload);
        if (this.closed) return;
      }
      input = input.subarray(offset);
      // Keep a copy of a short remainder, not a view pinning the whole read buffer.
      this.input = input.length === 0 ? EMPTY : Buffer.from(input);
      if (this.socket.writableLength > MAX_UNREAD_WRITE_BYTES && !this.readingPaused) {
        // The client is not reading what it asked for: stop taking more requests (and PINGs).
        this.readingPaused = true;
        this.socket.pause();
      }
    } catch (error) {
      if (error instanceof ConnectionError) this.fail(error);
      else if (error instanceof HpackError)
        this.fail(new ConnectionError(Http2ErrorCode.compression, error.message));
      else this.fail(new ConnectionError(Http2ErrorCode.internal, String(error)));
    }
  }

  private frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (
      this.headerBlock !== null &&
      (type !== FrameType.continuation || streamId !== this.headerBlock.streamId)
    ) {
      throw new ConnectionError(Http2ErrorCode.protocol, "a header block was interrupted");
    }
    switch (type) {
      case FrameType.data:
        return this.data(flags, streamId, payload);
      case FrameType.headers:
        return this.headers(flags, streamId, payload);
      case FrameType.continuation:
        return this.continuation(flags, streamId, payload);
      case FrameType.priority:
        if (streamId === 0) throw new ConnectionError(Http2ErrorCode.protocol, "PRIORITY on stream 0");
        return;
      case FrameType.rstStream:
        return this.rstStream(streamId, payload);
      case FrameType.settings:
        return this.settings(flags, streamId, payload);
      case FrameType.ping:
        if (streamId !== 0) throw new ConnectionError(Http2ErrorCode.protocol, "PING on a stream");
        if (payload.length !== 8) throw new ConnectionError(Http2ErrorCode.frameSize, "PING is not 8 bytes");
        if ((flags & Flag.ack) === 0) this.write(pingAckFrame(payload));
        return;
      case FrameType.goAway:
        if (streamId !== 0) throw new ConnectionError(Http2ErrorCode.protocol, "GOAWAY on a stream");
        // The client stops opening streams; the open ones are answered, then it closes.
        return;
      case FrameType.windowUpdate:
        return this.windowUpdate(streamId, payload);
      case FrameType.pushPromise:
        throw new ConnectionError(Http2ErrorCode.protocol, "PUSH_PROMISE from a client");
      default:
        // Unknown frame types are ignored (RFC 9113 4.1).
        return;
    }
  }

  private data(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(Http2ErrorCode.protocol, "DATA on stream 0");
    this.receiveWindow -= payload.length;
    if (this.receiveWindow < 0)
      throw new ConnectionError(Http2ErrorCode.flowControl, "connection window exceeded");
    this.receivedUnacked += payload.length;
    if (this.receivedUnacked >= CONNECTION_RECEIVE_WINDOW / 2) {
      this.write(windowUpdateFrame(0, this.receivedUnacked));
      this.receiveWindow += this.receivedUnacked;
      this.receivedUnacked = 0;
    }
    const data = withoutPadding(flags, payload, 0);
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.lastStreamId)
        throw new ConnectionError(Http2ErrorCode.protocol, "DATA on an idle stream");
      return; // A stream this side has finished or reset: its late bytes are dropped.
    }
    if (stream.remoteEnded) return stream.reset(Http2ErrorCode.streamClosed);
    if (!stream.received(payload.length)) return stream.reset(Http2ErrorCode.flowControl);
    // Marked before the data is handed on: a response finished on it must not reset the stream.
    const endStream = (flags & Flag.endStream) !== 0;
    if (endStream) stream.remoteEnded = true;
    if (data.length > 0) stream.onData(data);
    if (endStream && !stream.isFinished) stream.onEnd();
  }

  private headers(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0 || streamId % 2 === 0) {
      throw new ConnectionError(Http2ErrorCode.protocol, `HEADERS on stream ${streamId}`);
    }
    const fragment = withoutPadding(flags, payload, (flags & Flag.priority) !== 0 ? 5 : 0);
    const endStream = (flags & Flag.endStream) !== 0;
    if ((flags & Flag.endHeaders) !== 0) return this.headerBlockDone(streamId, endStream, fragment);
    this.headerBlock = { streamId, endStream, fragments: [Buffer.from(fragment)], bytes: fragment.length };
  }

  private continuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.headerBlock;
    if (block === null) throw new ConnectionError(Http2ErrorCode.protocol, "CONTINUATION without HEADERS");
    block.fragments.push(Buffer.from(payload));
    block.bytes += payload.length;
    if (block.bytes > MAX_HEADER_BLOCK_BYTES) {
      throw new ConnectionError(Http2ErrorCode.enhanceYourCalm, "header block too large");
    }
    if ((flags & Flag.endHeaders) === 0) return;
    this.headerBlock = null;
    this.headerBlockDone(streamId, block.endStream, Buffer.concat(block.fragments));
  }

  private headerBlockDone(streamId: number, endStream: boolean, block: Uint8Array): void {
    // Decoded whatever becomes of the stream: the dynamic table must follow every block.
    const { fields, overflow } = this.decoder.decode(block, MAX_HEADER_LIST_BYTES);
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers: only as the request's end.
      if (!endStream || existing.remoteEnded) return existing.reset(Http2ErrorCode.protocol);
      existing.remoteEnded = true;
      existing.onEnd();
      return;
    }
    if (streamId <= this.lastStreamId) {
      throw new ConnectionError(Http2ErrorCode.streamClosed, `HEADERS on closed stream ${streamId}`);
    }
    this.lastStreamId = streamId;
    if (overflow) {
      this.write(rstStreamFrame(streamId, Http2ErrorCode.enhanceYourCalm));
      return;
    }
    if (this.streams.size >= this.maxConcurrentStreams) {
      this.write(rstStreamFrame(streamId, Http2ErrorCode.refusedStream));
      return;
    }
    const stream = new Http2ServerStream(this, streamId, this.peerInitialWindow, STREAM_RECEIVE_WINDOW);
    this.streams.set(streamId, stream);
    stream.remoteEnded = endStream;
    this.options.onRequest(stream, fields);
    if (endStream && !stream.isFinished) stream.onEnd();
  }

  private rstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(Http2ErrorCode.protocol, "RST_STREAM on stream 0");
    if (payload.length !== 4)
      throw new ConnectionError(Http2ErrorCode.frameSize, "RST_STREAM is not 4 bytes");
    if (streamId > this.lastStreamId)
      throw new ConnectionError(Http2ErrorCode.protocol, "RST_STREAM on an idle stream");
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    this.chargeReset();
    stream.abort();
  }

  private settings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(Http2ErrorCode.protocol, "SETTINGS on a stream");
    if ((flags & Flag.ack) !== 0) {
      if (payload.length !== 0)
        throw new ConnectionError(Http2ErrorCode.frameSize, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(Http2ErrorCode.frameSize, "SETTINGS length");
    for (let offset = 0; offset < payload.length; offset += 6) {
      const id = payload.readUInt16BE(offset);
      const value = payload.readUInt32BE(offset + 2);
      if (id === Setting.initialWindowSize) {
        if (value > MAX_WINDOW_SIZE)
          throw new ConnectionError(Http2ErrorCode.flowControl, "initial window too large");
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          if (!stream.addSendWindow(delta)) {
            throw new ConnectionError(Http2ErrorCode.flowControl, "a stream window overflowed");
          }
        }
      } else if (id === Setting.maxFrameSize) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE) {
          throw new ConnectionError(Http2ErrorCode.protocol, "SETTINGS_MAX_FRAME_SIZE out of range");
        }
        this.peerMaxFrameSize = value;
      } else if (id === Setting.enablePush && value > 1) {
        throw new ConnectionError(Http2ErrorCode.protocol, "SETTINGS_ENABLE_PUSH above 1");
      }
      // HEADER_TABLE_SIZE: this side's header blocks never index (every one starts with a
      // table size update to 0); MAX_CONCURRENT_STREAMS: this side opens none; others: unknown.
    }
    this.write(SETTINGS_ACK_FRAME);
    this.flushBlocked();
  }

  private windowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new ConnectionError(Http2ErrorCode.frameSize, "WINDOW_UPDATE is not 4 bytes");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(Http2ErrorCode.protocol, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_SIZE)
        throw new ConnectionError(Http2ErrorCode.flowControl, "window overflow");
    } else {
      const stream = this.streams.get(streamId);
      if (stream === undefined) return;
      if (increment === 0 || !stream.addSendWindow(increment)) {
        return stream.reset(increment === 0 ? Http2ErrorCode.protocol : Http2ErrorCode.flowControl);
      }
    }
    this.flushBlocked();
  }

  /** One client reset of a stream this side had not finished; too many too fast end the connection. */
  private chargeReset(): void {
    const now = this.now();
    const regained = ((now - this.resetTokensAt) / 1000) * RESETS_PER_SECOND;
    this.resetTokens = Math.min(RESET_BURST, this.resetTokens + regained);
    this.resetTokensAt = now;
    this.resetTokens -= 1;
    if (this.resetTokens < 0) {
      throw new ConnectionError(Http2ErrorCode.enhanceYourCalm, "too many stream resets");
    }
  }

  private flushBlocked(): void {
    for (const stream of this.blocked) {
      if (this.sendWindow <= 0) break;
      if (stream.flush()) this.blocked.delete(stream);
    }
    this.resumeWriters();
  }

  private drained(): void {
    if (this.readingPaused && !this.closed) {
      this.readingPaused = false;
      this.socket.resume();
    }
    this.resumeWriters();
  }

  private resumeWriters(): void {
    // A copy: a writer resumed here may wait again, and then it is told on the next drain.
    for (const stream of [...this.waitingForDrain]) {
      if (this.socket.writableNeedDrain) return;
      if (stream.pendingBytes >= STREAM_SEND_BACKLOG_BYTES) continue;
      this.waitingForDrain.delete(stream);
      this.callback(() => stream.onDrain());
    }
  }

  /** Runs a callback of the layer above where a throw would escape a socket callback. */
  callback(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.options.onCallbackError?.(error);
    }
  }

  private fail(error: ConnectionError): void {
    this.goAway(error.code, error.message);
  }

  /** GOAWAY, then the socket ends; a client that does not close its side within a second is cut. */
  private goAway(code: number, debug: string): void {
    if (this.closed) return;
    this.socket.write(goAwayFrame(this.lastStreamId, code, debug));
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.destroy();
  }

  private destroy(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.prefaceTimer);
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    this.waitingForDrain.clear();
    for (const stream of streams) this.callback(() => stream.abort());
    this.callback(() => this.options.onClose?.());
  }
}

/** The payload of a DATA or HEADERS frame without its padding (and `skip` bytes of priority). */
function withoutPadding(flags: number, payload: Buffer, skip: number): Buffer {
  let start = 0;
  let end = payload.length;
  if ((flags & Flag.padded) !== 0) {
    if (payload.length === 0)
      throw new ConnectionError(Http2ErrorCode.frameSize, "padded frame without a pad length");
    start = 1;
    end -= payload[0]!;
  }
  start += skip;
  if (end < start) throw new ConnectionError(Http2ErrorCode.protocol, "padding longer than the frame");
  return payload.subarray(start, end);
}

const noop = (): void => undefined;

/**
 * One stream a client opened. The layer above sets the callbacks in `onRequest` and answers
 * with `respond` (a whole response at once) or `sendHeaders` / `sendData` / `end`.
 */
export class Http2ServerStream {
  /** Request bytes (DATA payloads, possibly views into the read buffer). */
  onData: (data: Buffer) => void = noop;
  /** The client ended its side (END_STREAM). */
  onEnd: () => void = noop;
  /** The client reset the stream, or the connection went, before this side ended it. */
  onAbort: () => void = noop;
  /** `sendData` returned false earlier and the backlog has drained. */
  onDrain: () => void = noop;
  remoteEnded = false;
  /** This side sent END_STREAM or RST_STREAM, or the stream was aborted: nothing more goes out. */
  private finished = false;
  private pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** Trailers to send once the pending DATA has gone. */
  private pendingTrailers: Uint8Array | null = null;
  private receiveWindow: number;
  private receivedUnacked = 0;

  constructor(
    readonly connection: Http2ServerConnection,
    readonly id: number,
    public sendWindow: number,
    private readonly receiveWindowSize: number,
  ) {
    this.receiveWindow = receiveWindowSize;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Charges received DATA to this stream's window; false when the client overran it. */
  received(bytes: number): boolean {
    this.receiveWindow -= bytes;
    if (this.receiveWindow < 0) return false;
    this.receivedUnacked += bytes;
    if (this.receivedUnacked >= this.receiveWindowSize / 2) {
      this.connection.write(windowUpdateFrame(this.id, this.receivedUnacked));
      this.receiveWindow += this.receivedUnacked;
      this.receivedUnacked = 0;
    }
    return true;
  }

  /** False when the window would exceed 2^31 - 1 (a flow-control error). */
  addSendWindow(delta: number): boolean {
    this.sendWindow += delta;
    return this.sendWindow <= MAX_WINDOW_SIZE;
  }

  /**
   * A whole response: HEADERS, one DATA payload, trailers (END_STREAM) — in one write when the
   * windows allow, else as window arrives.
   */
  respond(headers: Uint8Array, body: Uint8Array, trailers: Uint8Array): void {
    if (this.finished) return;
    this.connection.writeHeaders(this.id, headers, false);
    this.sendData(body);
    this.end(trailers);
  }

  sendHeaders(block: Uint8Array): void {
    if (this.finished) return;
    this.connection.writeHeaders(this.id, block, false);
  }

  /** Queues response bytes; false when the writer should wait for `onDrain`. */
  sendData(data: Uint8Array): boolean {
    if (this.finished) return true;
    const connection = this.connection;
    if (this.pendingBytes === 0 && connection.fitsAtOnce(this, data.length)) {
      this.sendWindow -= data.length;
      connection.sendWindow -= data.length;
      connection.writeData(this.id, data);
    } else {
      this.pending.push(data);
      this.pendingBytes += data.length;
      // What the windows allow goes now (a payload above the frame size, or part of one).
      if (!this.flush()) connection.block(this);
    }
    if (this.pendingBytes >= STREAM_SEND_BACKLOG_BYTES || connection.socketNeedsDrain) {
      connection.waitForDrain(this);
      return false;
    }
    return true;
  }

  /** Ends the response with trailers (HEADERS with END_STREAM), after any pending DATA. */
  end(trailers: Uint8Array): void {
    if (this.finished) return;
    if (this.pendingBytes > 0) {
      this.pendingTrailers = trailers;
      return;
    }
    this.finish(trailers);
  }

  /** RST_STREAM with `code`; the stream is over. */
  reset(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.connection.write(rstStreamFrame(this.id, code));
    this.connection.forget(this);
    this.onAbort();
  }

  /** The client reset the stream, or the connection is gone. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.connection.forget(this);
    this.onAbort();
  }

  /** Sends what the windows allow; true when nothing is pending any more. */
  flush(): boolean {
    const connection = this.connection;
    while (this.pending.length > 0) {
      const allowed = Math.min(this.sendWindow, connection.sendWindow);
      if (allowed <= 0) return false;
      const head = this.pending[0]!;
      const chunk = head.length <= allowed ? head : head.subarray(0, allowed);
      if (chunk === head) this.pending.shift();
      else this.pending[0] = head.subarray(allowed);
      this.pendingBytes -= chunk.length;
      this.sendWindow -= chunk.length;
      connection.sendWindow -= chunk.length;
      connection.writeData(this.id, chunk);
    }
    if (this.pendingTrailers !== null) {
      const trailers = this.pendingTrailers;
      this.pendingTrailers = null;
      this.finish(trailers);
    }
    return true;
  }

  private finish(trailers: Uint8Array): void {
    this.finished = true;
    this.connection.writeHeaders(this.id, trailers, true);
    // A response that ends before the request did: the rest of the request is not wanted.
    if (!this.remoteEnded) this.connection.write(rstStreamFrame(this.id, Http2ErrorCode.noError));
    this.connection.forget(this);
  }
}
