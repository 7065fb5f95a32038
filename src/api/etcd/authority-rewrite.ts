/**
 * Lenient `:authority` for the etcd gRPC port. etcdctl 3.4 with `--cluster` dials the client
 * URLs of the member list and sends the whole URL ("http://127.0.0.1:2379") as the HTTP/2
 * `:authority` of its requests. Node's HTTP/2 layer (nghttp2, which grpc-js's server runs on)
 * checks a server's incoming `:authority` against the RFC 3986 authority characters and
 * resets the stream (PROTOCOL_ERROR) before grpc-js sees it; Node offers no option to relax
 * that check. So the client port reads a gRPC connection whose first request carries such an
 * `:authority` (http2-preface.ts decides) through this module, which replaces a URL-shaped
 * `:authority` by the URL's `host[:port]` inside the HEADERS frames, before nghttp2 parses
 * them. Nothing else of the connection changes. The module also lends that decision its frame
 * constants, `headersFrameParts` and `needsLenientAuthority`.
 *
 * Keeping HPACK's dynamic table in step: the rewritten value is never longer than the one the
 * client sent, and every other representation is copied byte for byte. So each entry of the
 * server's dynamic table is at most as large as the client's view of it, the server evicts no
 * entry before the client does, and every index the client sends still names the same entry.
 * Only whether an entry's name is `:authority` is tracked here (to recognise a literal that
 * names it by a dynamic index). A connection whose frames or header blocks this module cannot
 * follow is passed through untouched from then on: nghttp2 reports the error itself.
 */
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import {
  encodeRawStringLiteral,
  HpackError,
  readInteger,
  readStringLiteral,
  stringLiteralText,
} from "./hpack.js";

/** The HTTP/2 client connection preface (RFC 7540 3.5). */
export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER_LENGTH = 9;
export const FRAME_HEADERS = 0x1;
export const FRAME_SETTINGS = 0x4;
export const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
/** SETTINGS' ACK flag (the same bit as END_STREAM on HEADERS / DATA). */
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const PRIORITY_FIELDS_LENGTH = 5;
/** The frame size every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's initial value). */
const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** A header block larger than this is passed through unread (nghttp2 refuses far smaller ones). */
const MAX_HEADER_BLOCK_BYTES = 1024 * 1024;
const STATIC_TABLE_LENGTH = 61;
const STATIC_AUTHORITY_INDEX = 1;
const AUTHORITY = ":authority";
/**
 * Dynamic table entries remembered: every entry takes at least 32 bytes, so a table of the
 * default 4096 bytes (grpc-js leaves SETTINGS_HEADER_TABLE_SIZE alone) holds at most 128.
 */
const MAX_TRACKED_ENTRIES = 4096 / 32;

/**
 * The characters nghttp2 accepts in a server's `:authority` (RFC 3986 authority: unreserved,
 * sub-delims, ":", "@", "[", "]", and "%" of percent-encoding).
 */
const AUTHORITY_CHARACTERS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/**
 * The `:authority` to pass on instead of `value`, or undefined to leave it: only a URL with a
 * host (etcdctl's "http://host:port") whose `host[:port]` is valid and no longer than it.
 */
export function lenientAuthority(value: string): string | undefined {
  if (AUTHORITY_CHARACTERS.test(value) || !URL.canParse(value)) return undefined;
  const host = new URL(value).host;
  if (host === "" || host.length > value.length || !AUTHORITY_CHARACTERS.test(host)) return undefined;
  return host;
}

/**
 * A HEADERS frame's payload split into its priority fields (when flagged) and its header block
 * fragment (padding removed), or undefined when the padding does not fit (nghttp2 refuses it).
 */
export function headersFrameParts(
  flags: number,
  payload: Buffer,
): { priority: Buffer | undefined; fragment: Buffer } | undefined {
  let start = 0;
  let padding = 0;
  if ((flags & FLAG_PADDED) !== 0) {
    padding = payload[0] ?? 0;
    start = 1;
  }
  let priority: Buffer | undefined;
  if ((flags & FLAG_PRIORITY) !== 0) {
    priority = payload.subarray(start, start + PRIORITY_FIELDS_LENGTH);
    start += PRIORITY_FIELDS_LENGTH;
  }
  if (start + padding > payload.length) return undefined;
  return { priority, fragment: payload.subarray(start, payload.length - padding) };
}

/**
 * Whether a connection's first header block carries a URL-shaped `:authority` that
 * `withLenientAuthority` would rewrite. Only reads: the block is decoded by a rewriter of its
 * own, so nothing of the connection's later HPACK state depends on this call.
 * Throws HpackError for a block that is not valid HPACK.
 */
export function needsLenientAuthority(firstHeaderBlock: Uint8Array): boolean {
  return new HeaderBlockRewriter().rewrite(firstHeaderBlock) !== null;
}

/**
 * Rewrites the header blocks of one connection (client to server), keeping track of which
 * dynamic table entries the client's encoder named `:authority`.
 */
export class HeaderBlockRewriter {
  /** Newest first: whether each dynamic table entry's name is `:authority`. */
  private readonly authorityEntries: boolean[] = [];

  /** The block with URL-shaped `:authority` values replaced, or null when nothing changed. */
  rewrite(block: Uint8Array): Buffer | null {
    const pieces: Uint8Array[] = [];
    let copiedUpTo = 0;
    let offset = 0;
    while (offset < block.length) {
      const first = block[offset] ?? 0;
      if ((first & 0x80) !== 0) {
        offset = readInteger(block, offset, 7).next; // indexed field
        continue;
      }
      if ((first & 0xe0) === 0x20) {
        offset = readInteger(block, offset, 5).next; // dynamic table size update
        continue;
      }
      const indexing = (first & 0xc0) === 0x40;
      const name = readInteger(block, offset, indexing ? 6 : 4);
      let isAuthority: boolean;
      let valueOffset = name.next;
      if (name.value === 0) {
        const literalName = readStringLiteral(block, name.next);
        isAuthority = stringLiteralText(literalName) === AUTHORITY;
        valueOffset = literalName.next;
      } else {
        isAuthority = this.namesAuthority(name.value);
      }
      const value = readStringLiteral(block, valueOffset);
      const replacement = isAuthority ? lenientAuthority(stringLiteralText(value)) : undefined;
      if (replacement !== undefined) {
        pieces.push(block.subarray(copiedUpTo, valueOffset), encodeRawStringLiteral(replacement));
        copiedUpTo = value.next;
      }
      if (indexing) {
        this.authorityEntries.unshift(isAuthority);
        if (this.authorityEntries.length > MAX_TRACKED_ENTRIES) this.authorityEntries.pop();
      }
      offset = value.next;
    }
    if (pieces.length === 0) return null;
    pieces.push(block.subarray(copiedUpTo));
    return Buffer.concat(pieces);
  }

  private namesAuthority(index: number): boolean {
    if (index <= STATIC_TABLE_LENGTH) return index === STATIC_AUTHORITY_INDEX;
    return this.authorityEntries[index - STATIC_TABLE_LENGTH - 1] ?? false;
  }
}

/** A header block being collected: its frames as received, and what a rewrite needs of them. */
interface PendingHeaderBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly priority: Buffer | undefined;
  readonly rawFrames: Buffer[];
  readonly fragments: Buffer[];
  size: number;
}

/**
 * The client-to-server byte stream of one HTTP/2 connection, rewritten: the preface and every
 * frame other than HEADERS / CONTINUATION pass through as slices of the input (no copy);
 * header blocks are collected whole, rewritten if they need it, and sent on as one HEADERS
 * frame (plus CONTINUATIONs when larger than the default frame size).
 */
export class AuthorityRewritingParser {
  private readonly headerBlocks = new HeaderBlockRewriter();
  private prefaceLeft = CLIENT_PREFACE.length;
  /** Bytes of a frame header or header-block frame that has not fully arrived. */
  private partial: Buffer = Buffer.alloc(0);
  /** Payload bytes still to come of a frame passed through as it arrives. */
  private passThroughLeft = 0;
  private block: PendingHeaderBlock | undefined;
  /** Set once the stream is not followed any more: everything passes through. */
  private passingThrough = false;

  /** The bytes to hand on for `chunk` (possibly none, while a frame is incomplete). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const data = this.partial.length === 0 ? chunk : Buffer.concat([this.partial, chunk]);
    this.partial = Buffer.alloc(0);
    let offset = 0;
    while (offset < data.length) {
      if (this.passingThrough) {
        out.push(data.subarray(offset));
        break;
      }
      const available = data.length - offset;
      if (this.prefaceLeft > 0 || this.passThroughLeft > 0) {
        const take = Math.min(available, this.prefaceLeft > 0 ? this.prefaceLeft : this.passThroughLeft);
        out.push(data.subarray(offset, offset + take));
        if (this.prefaceLeft > 0) this.prefaceLeft -= take;
        else this.passThroughLeft -= take;
        offset += take;
        continue;
      }
      if (available < FRAME_HEADER_LENGTH) {
        this.partial = Buffer.from(data.subarray(offset));
        break;
      }
      const length = data.readUIntBE(offset, 3);
      const type = data[offset + 3] ?? 0;
      if (type !== FRAME_HEADERS && type !== FRAME_CONTINUATION && this.block === undefined) {
        out.push(data.subarray(offset, offset + FRAME_HEADER_LENGTH));
        this.passThroughLeft = length;
        offset += FRAME_HEADER_LENGTH;
        continue;
      }
      const collected = this.block?.size ?? 0;
      if (collected + length > MAX_HEADER_BLOCK_BYTES) {
        this.stopFollowing(out);
        continue;
      }
      if (available < FRAME_HEADER_LENGTH + length) {
        this.partial = Buffer.from(data.subarray(offset));
        break;
      }
      this.headerBlockFrame(data.subarray(offset, offset + FRAME_HEADER_LENGTH + length), out);
      offset += FRAME_HEADER_LENGTH + length;
    }
    return out;
  }

  /** What is left when the client ends its side: an incomplete frame, as received. */
  flush(): Buffer[] {
    const out: Buffer[] = [];
    this.stopFollowing(out);
    if (this.partial.length > 0) out.push(this.partial);
    this.partial = Buffer.alloc(0);
    return out;
  }

  /** A whole HEADERS or CONTINUATION frame (or another frame arriving inside a header block). */
  private headerBlockFrame(frame: Buffer, out: Buffer[]): void {
    const type = frame[3] ?? 0;
    const flags = frame[4] ?? 0;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    const payload = frame.subarray(FRAME_HEADER_LENGTH);
    const block = this.block;
    if (block === undefined && type === FRAME_HEADERS) {
      const parts = headersFrameParts(flags, payload);
      if (parts === undefined) {
        out.push(frame);
        this.passingThrough = true;
        return;
      }
      this.block = {
        streamId,
        endStream: (flags & FLAG_END_STREAM) !== 0,
        priority: parts.priority,
        rawFrames: [frame],
        fragments: [parts.fragment],
        size: payload.length,
      };
    } else if (block !== undefined && type === FRAME_CONTINUATION && streamId === block.streamId) {
      block.rawFrames.push(frame);
      block.fragments.push(payload);
      block.size += payload.length;
    } else {
      // A CONTINUATION without its HEADERS, or a frame interleaved into a header block: a
      // protocol error that nghttp2 answers with GOAWAY.
      this.stopFollowing(out);
      out.push(frame);
      return;
    }
    if ((flags & FLAG_END_HEADERS) !== 0) this.finishBlock(out);
  }

  private finishBlock(out: Buffer[]): void {
    const block = this.block;
    if (block === undefined) return;
    this.block = undefined;
    let rewritten: Buffer | null;
    try {
      rewritten = this.headerBlocks.rewrite(Buffer.concat(block.fragments));
    } catch (error) {
      if (!(error instanceof HpackError)) throw error;
      out.push(...block.rawFrames);
      this.passingThrough = true;
      return;
    }
    if (rewritten === null) out.push(...block.rawFrames);
    else out.push(...headerBlockFrames(block, rewritten));
  }

  /** Hands on whatever header block was collected, as received, and follows no further. */
  private stopFollowing(out: Buffer[]): void {
    if (this.block !== undefined) out.push(...this.block.rawFrames);
    this.block = undefined;
    this.passingThrough = true;
  }
}

/** A HEADERS frame (and CONTINUATIONs) carrying `fragment` for `block`'s stream, unpadded. */
function headerBlockFrames(block: PendingHeaderBlock, fragment: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  const prefix = block.priority ?? Buffer.alloc(0);
  let offset = 0;
  let first = true;
  while (first || offset < fragment.length) {
    const room = DEFAULT_MAX_FRAME_SIZE - (first ? prefix.length : 0);
    const piece = fragment.subarray(offset, offset + room);
    offset += piece.length;
    const last = offset >= fragment.length;
    let flags = last ? FLAG_END_HEADERS : 0;
    if (first && block.endStream) flags |= FLAG_END_STREAM;
    if (first && block.priority !== undefined) flags |= FLAG_PRIORITY;
    const payload = first ? Buffer.concat([prefix, piece]) : piece;
    const header = Buffer.alloc(FRAME_HEADER_LENGTH);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = first ? FRAME_HEADERS : FRAME_CONTINUATION;
    header[4] = flags;
    header.writeUInt32BE(block.streamId, 5);
    frames.push(header, payload);
    first = false;
  }
  return frames;
}

/**
 * `socket` as a duplex whose readable side is rewritten by an `AuthorityRewritingParser`;
 * writes, end and destroy go to the socket. Back-pressure: the socket pauses while the reader
 * of this stream does not keep up.
 */
export function withLenientAuthority(socket: Socket): Duplex {
  const parser = new AuthorityRewritingParser();
  // Node's HTTP/2 session turns Nagle off on the stream it is given; that is this duplex
  // now, not the socket, and small frames would otherwise wait for the peer's delayed ACK.
  socket.setNoDelay(true);
  const connection = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  const forward = (pieces: Buffer[]) => {
    let wantsMore = true;
    for (const piece of pieces) wantsMore = connection.push(piece) && wantsMore;
    if (!wantsMore) socket.pause();
  };
  socket.on("data", (chunk: Buffer) => {
    try {
      forward(parser.push(chunk));
    } catch (error) {
      connection.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  });
  socket.on("end", () => {
    forward(parser.flush());
    connection.push(null);
  });
  socket.on("error", (error) => connection.destroy(error));
  socket.on("close", () => connection.destroy());
  return connection;
}
