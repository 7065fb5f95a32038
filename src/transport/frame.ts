/**
 * Framing of the peer byte stream: every frame is
 *
 *   u32 big-endian payload length | u8 protocol version | u8 frame kind | payload
 *
 * `FrameDecoder` turns TCP chunks split anywhere into whole frames and rejects, before buffering
 * any payload, a frame with an unknown version or kind or a payload over the size limit. A
 * rejected stream cannot be resynchronised, so the decoder stays failed and its connection
 * must be closed. The layout is shared by every Concord stream protocol; each names its own
 * version and frame kinds in a `FrameFormat` (the peer protocol's is `PEER_FRAMES`).
 */

export const PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 6;
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
const MAX_U32 = 0xffff_ffff;

export enum FrameKind {
  /** Handshake: first frame in each direction. */
  Handshake = 1,
  /** Goodbye: the reason the sender is closing the connection. */
  Goodbye = 2,
  /** RaftBatch: one flush's envelopes for this peer. */
  RaftBatch = 3,
  /** SnapshotChunk: part of a snapshot transfer. */
  SnapshotChunk = 4,
  /** SnapshotStatus: a transfer's acknowledgement, rejection or cancellation. */
  SnapshotStatus = 5,
  /** Heartbeat: empty; keeps an idle connection alive and proves the peer is. */
  Heartbeat = 6,
}

/** A protocol's version byte and the frame kinds it knows. */
export interface FrameFormat<K extends number> {
  readonly version: number;
  /** Whether the protocol knows this frame kind. */
  isKind(kind: number): kind is K;
  nameOf(kind: K): string;
}

export const PEER_FRAMES: FrameFormat<FrameKind> = {
  version: PROTOCOL_VERSION,
  isKind: (kind): kind is FrameKind => FrameKind[kind] !== undefined,
  nameOf: (kind) => FrameKind[kind],
};

export interface Frame<K extends number = FrameKind> {
  readonly kind: K;
  readonly payload: Uint8Array;
}

/** The byte stream broke the framing contract; the connection it came from must be closed. */
export class FrameError extends Error {
  constructor(readonly reason: string) {
    super(`invalid frame: ${reason}`);
    this.name = "FrameError";
  }
}

function checkMaxFrameBytes(maxFrameBytes: number): void {
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > MAX_U32) {
    throw new Error(`maxFrameBytes must be an integer in [0, 2^32 - 1], got ${maxFrameBytes}`);
  }
}

/** One frame's bytes: header and payload in one buffer (a single socket write). */
export function encodeFrame(kind: number, payload: Uint8Array, version = PROTOCOL_VERSION): Uint8Array {
  if (payload.byteLength > MAX_U32)
    throw new Error(`frame payload of ${payload.byteLength} bytes is too large`);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  new DataView(frame.buffer).setUint32(0, payload.byteLength, false);
  frame[4] = version;
  frame[5] = kind;
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

export class FrameDecoder<K extends number = FrameKind> {
  private readonly maxFrameBytes: number;
  private readonly format: FrameFormat<K>;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** The frame being assembled once its header is complete. */
  private current: { kind: K; payload: Uint8Array; filled: number } | null = null;
  private failure: FrameError | null = null;

  constructor(options: { maxFrameBytes?: number; format?: FrameFormat<K> } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.format = options.format ?? (PEER_FRAMES as unknown as FrameFormat<K>);
    checkMaxFrameBytes(this.maxFrameBytes);
  }

  /** Bytes received that do not yet form a whole frame. */
  get bufferedBytes(): number {
    return this.current === null ? this.headerFilled : FRAME_HEADER_BYTES + this.current.filled;
  }

  /** Whole frames completed by `chunk`, in order; throws FrameError (forever after) on a violation. */
  push(chunk: Uint8Array): Frame<K>[] {
    if (this.failure !== null) throw this.failure;
    const frames: Frame<K>[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current === null) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - offset);
        this.header.set(chunk.subarray(offset, offset + take), this.headerFilled);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < FRAME_HEADER_BYTES) break;
        this.headerFilled = 0;
        this.current = this.startFrame();
      } else {
        const current = this.current;
        const take = Math.min(current.payload.length - current.filled, chunk.length - offset);
        current.payload.set(chunk.subarray(offset, offset + take), current.filled);
        current.filled += take;
        offset += take;
      }
      if (this.current.filled === this.current.payload.length) {
        frames.push({ kind: this.current.kind, payload: this.current.payload });
        this.current = null;
      }
    }
    return frames;
  }

  private startFrame(): { kind: K; payload: Uint8Array; filled: number } {
    const length = new DataView(this.header.buffer).getUint32(0, false);
    const version = this.header[4]!;
    const kind = this.header[5]!;
    if (version !== this.format.version) {
      throw this.fail(`unsupported protocol version ${version} (this node speaks ${this.format.version})`);
    }
    if (!this.format.isKind(kind)) throw this.fail(`unknown frame kind ${kind}`);
    if (length > this.maxFrameBytes) {
      throw this.fail(
        `${this.format.nameOf(kind)} frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`,
      );
    }
    return { kind, payload: new Uint8Array(length), filled: 0 };
  }

  private fail(reason: string): FrameError {
    this.failure = new FrameError(reason);
    return this.failure;
  }
}
