/**
 * Snapshot transfers, independent of sockets: cutting the sender's data (whole or streamed in
 * pieces of any size) into fixed-size chunks, and reassembling and verifying them on the
 * receiver — sequence numbers, a CRC-32 per chunk, a size limit, and the whole snapshot's
 * length and CRC-32 in the last chunk.
 */
import { MessageType } from "../raft/types.js";
import type { SnapshotChunk } from "./control-codec.js";
import { crc32 } from "node:zlib";
import type { Envelope, SnapshotData } from "./transport.js";

export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/** An incoming transfer that has to be discarded, and why. */
export class SnapshotTransferError extends Error {
  constructor(readonly reason: string) {
    super(`snapshot transfer failed: ${reason}`);
    this.name = "SnapshotTransferError";
  }
}

/** Pieces of exactly `chunkBytes`, except the final one, which is shorter and never empty. */
async function* evenPieces(data: SnapshotData, chunkBytes: number): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    for (let offset = 0; offset < data.length; offset += chunkBytes) {
      yield data.subarray(offset, offset + chunkBytes);
    }
    return;
  }
  let buffer = new Uint8Array(chunkBytes);
  let filled = 0;
  for await (const piece of data) {
    if (!(piece instanceof Uint8Array)) throw new Error("snapshot data must yield Uint8Array pieces");
    let offset = 0;
    while (offset < piece.length) {
      const take = Math.min(chunkBytes - filled, piece.length - offset);
      buffer.set(piece.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === chunkBytes) {
        yield buffer;
        buffer = new Uint8Array(chunkBytes);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

/**
 * The chunks to send for `data`: every one `chunkBytes` long except the last, which is flagged
 * and may be empty (so even an empty snapshot is one chunk).
 */
export async function* snapshotChunks(
  data: SnapshotData,
  chunkBytes: number,
): AsyncGenerator<{ readonly data: Uint8Array; readonly last: boolean }> {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
    throw new Error(`snapshot chunk size must be a positive integer, got ${chunkBytes}`);
  }
  // One piece of lookahead: a chunk is known to be the last only once the data has ended.
  let held: Uint8Array | null = null;
  for await (const piece of evenPieces(data, chunkBytes)) {
    if (held !== null) yield { data: held, last: false };
    held = piece;
  }
  yield { data: held ?? new Uint8Array(0), last: true };
}

/** Throws unless `header` is what chunk 0 of a transfer must carry: one Snap message, no data. */
function checkSnapshotHeader(header: Envelope): void {
  const [message, ...rest] = header.messages;
  if (message === undefined || rest.length > 0) {
    throw new SnapshotTransferError(`header carries ${header.messages.length} messages, expected 1`);
  }
  if (message.type !== MessageType.Snap || message.snapshot === null) {
    throw new SnapshotTransferError(`header carries a ${MessageType[message.type]} message, expected Snap`);
  }
  if (message.snapshot.data.length > 0) {
    throw new SnapshotTransferError("header carries snapshot data; data travels in chunks");
  }
}

/** Reassembles one incoming transfer; any violation throws SnapshotTransferError. */
export class SnapshotAssembler {
  private readonly parts: Uint8Array[] = [];
  private receivedBytes = 0;
  private runningCrc = 0;
  private nextSeq = 0;
  private done = false;

  constructor(
    readonly header: Envelope,
    private readonly maxBytes: number,
  ) {
    checkSnapshotHeader(header);
  }

  /** Takes the next chunk; after the last one returns the header's envelope with the data. */
  add(chunk: SnapshotChunk): Envelope | null {
    if (this.done) throw new SnapshotTransferError(`chunk ${chunk.seq} arrived after the last chunk`);
    if (chunk.seq !== this.nextSeq) {
      throw new SnapshotTransferError(`chunk ${chunk.seq} arrived, expected chunk ${this.nextSeq}`);
    }
    if (crc32(chunk.data) !== chunk.crc32) {
      throw new SnapshotTransferError(`chunk ${chunk.seq} fails its CRC-32 check`);
    }
    if (this.receivedBytes + chunk.data.length > this.maxBytes) {
      throw new SnapshotTransferError(`snapshot exceeds the limit of ${this.maxBytes} bytes`);
    }
    this.nextSeq++;
    this.parts.push(chunk.data);
    this.receivedBytes += chunk.data.length;
    this.runningCrc = crc32(chunk.data, this.runningCrc);
    if (!chunk.last) return null;
    this.done = true;
    if (chunk.totalBytes !== this.receivedBytes) {
      throw new SnapshotTransferError(
        `received ${this.receivedBytes} bytes, sender sent ${chunk.totalBytes}`,
      );
    }
    if (chunk.totalCrc32 !== this.runningCrc) {
      throw new SnapshotTransferError("the whole snapshot fails its CRC-32 check");
    }
    return this.assemble();
  }

  private assemble(): Envelope {
    const data = new Uint8Array(this.receivedBytes);
    let offset = 0;
    for (const part of this.parts) {
      data.set(part, offset);
      offset += part.length;
    }
    this.parts.length = 0;
    const message = this.header.messages[0]!;
    const snapshot = message.snapshot!;
    return { ...this.header, messages: [{ ...message, snapshot: { ...snapshot, data } }] };
  }
}
