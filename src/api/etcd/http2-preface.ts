/**
 * The start of an HTTP/2 client connection, read by the client port before it hands the
 * connection to grpc-js: enough to decide whether the connection needs the `:authority`
 * rewriting of authority-rewrite.ts (a JS stream, costly) or can be served on the raw socket.
 *
 * The client port sends the server connection preface itself (an empty SETTINGS frame:
 * RFC 7540 3.5 lets it be empty, and it changes no setting), because grpc-go sends no request
 * before it has received the server's SETTINGS. The client answers it with a SETTINGS ACK,
 * which this reader removes: nghttp2 sends its own SETTINGS later and must see exactly one
 * ACK for it (an ACK it did not ask for is a connection error). Every other byte is kept as
 * received, in order, so nghttp2 (or the rewriting) reads the same connection from its start.
 *
 * The decision waits for the first header block (HEADERS + CONTINUATIONs) and the ACK. The
 * first block's `:authority` is decoded by a HPACK reader of its own: it may add dynamic table
 * entries, but nghttp2 builds its table from the very same bytes, untouched.
 */
import {
  CLIENT_PREFACE,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FRAME_CONTINUATION,
  FRAME_HEADER_LENGTH,
  FRAME_HEADERS,
  FRAME_SETTINGS,
  headersFrameParts,
  needsLenientAuthority,
} from "./authority-rewrite.js";
import { HpackError } from "./hpack.js";

/** The server connection preface the port sends: a SETTINGS frame with no setting. */
export const EMPTY_SETTINGS_FRAME = Buffer.from([0, 0, 0, FRAME_SETTINGS, 0, 0, 0, 0, 0]);

/**
 * Bytes read before giving up on a decision. A first header block is far smaller (Node's
 * HTTP/2 header list limit is 64 KiB by default), and a client may send at most one 64 KiB
 * flow-control window of DATA before the server's WINDOW_UPDATE.
 */
export const MAX_PREFACE_READ_BYTES = 256 * 1024;

/**
 * What to do with the connection: still reading; serve it on the raw socket (plain
 * `:authority`, or anything this reader cannot follow, for nghttp2 to judge); or read it
 * through the `:authority` rewriting.
 */
export type PrefaceVerdict = "pending" | "raw" | "lenient";

/** The first header block being collected (HEADERS, then CONTINUATIONs on its stream). */
interface FirstHeaderBlock {
  readonly streamId: number;
  readonly fragments: Buffer[];
}

export class ClientPrefaceReader {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  /** Everything received, once concatenated (`data()`); parsing starts at `parsed`. */
  private joined: Buffer = Buffer.alloc(0);
  private parsed = 0;
  private prefaceChecked = false;
  private clientSettingsSeen = false;
  /** Where the client's ACK of the port's SETTINGS lies in the received bytes, once seen. */
  private ackOffset: number | undefined;
  private block: FirstHeaderBlock | undefined;
  /** Whether the first header block needs the rewriting, once it has been read whole. */
  private firstBlockLenient: boolean | undefined;
  private decided: PrefaceVerdict = "pending";

  /** Reads `chunk`; returns the verdict so far. */
  push(chunk: Buffer): PrefaceVerdict {
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.decided !== "pending") return this.decided;
    this.decided = this.parse();
    if (this.decided === "pending" && this.received >= MAX_PREFACE_READ_BYTES) this.decided = "raw";
    return this.decided;
  }

  /** The client preface and its first SETTINGS frame have been read: the port may send its SETTINGS. */
  get clientSettingsRead(): boolean {
    return this.clientSettingsSeen;
  }

  /**
   * The verdict when the port stops waiting (timeout): the rewriting if the first header block
   * has been read and needs it (its ACK did not come), else the raw socket.
   */
  giveUp(): PrefaceVerdict {
    if (this.decided === "pending") this.decided = this.firstBlockLenient === true ? "lenient" : "raw";
    return this.decided;
  }

  /** Every byte received, in order, without the ACK of the port's SETTINGS. */
  bytes(): Buffer {
    const data = this.data();
    const ack = this.ackOffset;
    if (ack === undefined) return data;
    return Buffer.concat([data.subarray(0, ack), data.subarray(ack + FRAME_HEADER_LENGTH)]);
  }

  private data(): Buffer {
    if (this.joined.length !== this.received) this.joined = Buffer.concat(this.chunks, this.received);
    return this.joined;
  }

  /** Parses the whole frames received since the last call; the verdict they allow. */
  private parse(): PrefaceVerdict {
    const data = this.data();
    if (!this.prefaceChecked) {
      const length = Math.min(data.length, CLIENT_PREFACE.length);
      if (!data.subarray(0, length).equals(CLIENT_PREFACE.subarray(0, length))) return "raw";
      if (length < CLIENT_PREFACE.length) return "pending";
      this.prefaceChecked = true;
      this.parsed = CLIENT_PREFACE.length;
    }
    while (data.length - this.parsed >= FRAME_HEADER_LENGTH) {
      const offset = this.parsed;
      const length = data.readUIntBE(offset, 3);
      if (data.length - offset - FRAME_HEADER_LENGTH < length) return "pending";
      const verdict = this.frame(
        offset,
        data[offset + 3] ?? 0,
        data[offset + 4] ?? 0,
        data.readUInt32BE(offset + 5) & 0x7fffffff,
        data.subarray(offset + FRAME_HEADER_LENGTH, offset + FRAME_HEADER_LENGTH + length),
      );
      this.parsed = offset + FRAME_HEADER_LENGTH + length;
      if (verdict !== "pending") return verdict;
    }
    return "pending";
  }

  /** One whole frame at `offset`; "pending" to read on. */
  private frame(
    offset: number,
    type: number,
    flags: number,
    streamId: number,
    payload: Buffer,
  ): PrefaceVerdict {
    if (!this.clientSettingsSeen) {
      // RFC 7540 3.5: the client preface ends with a SETTINGS frame (not an ACK).
      if (type !== FRAME_SETTINGS || (flags & FLAG_ACK) !== 0) return "raw";
      this.clientSettingsSeen = true;
      return "pending";
    }
    const block = this.block;
    if (block !== undefined) {
      // Only CONTINUATIONs of the block's stream may follow its HEADERS (RFC 7540 6.10).
      if (type !== FRAME_CONTINUATION || streamId !== block.streamId) return "raw";
      block.fragments.push(payload);
      return (flags & FLAG_END_HEADERS) !== 0 ? this.firstBlockRead(block) : "pending";
    }
    if (type === FRAME_SETTINGS && (flags & FLAG_ACK) !== 0 && this.ackOffset === undefined) {
      // An ACK with a payload is a FRAME_SIZE_ERROR: leave it to nghttp2.
      if (payload.length !== 0) return "raw";
      this.ackOffset = offset;
      return this.verdictWhenComplete();
    }
    if (this.firstBlockLenient !== undefined) return "pending";
    if (type === FRAME_CONTINUATION) return "raw";
    if (type !== FRAME_HEADERS) return "pending";
    const parts = headersFrameParts(flags, payload);
    if (parts === undefined) return "raw";
    const started: FirstHeaderBlock = { streamId, fragments: [parts.fragment] };
    this.block = started;
    return (flags & FLAG_END_HEADERS) !== 0 ? this.firstBlockRead(started) : "pending";
  }

  private firstBlockRead(block: FirstHeaderBlock): PrefaceVerdict {
    this.block = undefined;
    try {
      this.firstBlockLenient = needsLenientAuthority(Buffer.concat(block.fragments));
    } catch (error) {
      if (error instanceof HpackError) return "raw";
      throw error;
    }
    return this.verdictWhenComplete();
  }

  /** Decided once both the first header block and the ACK have been read. */
  private verdictWhenComplete(): PrefaceVerdict {
    if (this.firstBlockLenient === undefined || this.ackOffset === undefined) return "pending";
    return this.firstBlockLenient ? "lenient" : "raw";
  }
}
