/**
 * The sending end of a snapshot transfer over one connection: the transfer's state (waiting,
 * accepted by the receiver, or failed — with the single error the caller sees) and the loop
 * that writes its chunks with socket backpressure.
 */
import type { NodeId } from "../raft/types.js";
import type { FramedConnection } from "./connection.js";
import { encodeSnapshotChunk, encodeSnapshotStatus, SnapshotOutcome } from "./control-codec.js";
import { crc32 } from "node:zlib";
import { FrameKind } from "./frame.js";
import { snapshotChunks } from "./snapshot-stream.js";
import { TransportError, type Envelope, type SnapshotData } from "./transport.js";

export class OutgoingSnapshot {
  private accepted = false;
  private failure: TransportError | null = null;
  private waiter: { resolve: () => void; reject: (error: Error) => void } | null = null;

  constructor(
    readonly id: number,
    readonly peer: NodeId,
    readonly connection: FramedConnection,
  ) {}

  get settled(): boolean {
    return this.accepted || this.failure !== null;
  }

  /** The receiver verified and took the snapshot. */
  accept(): void {
    if (this.settled) return;
    this.accepted = true;
    this.waiter?.resolve();
  }

  /**
   * Fails the transfer (the first failure wins and is returned), telling the receiver to discard
   * what it has if the connection is still up.
   */
  fail(error: unknown): TransportError {
    if (this.failure !== null) return this.failure;
    const failure =
      error instanceof TransportError
        ? error
        : new TransportError(`snapshot transfer to node ${this.peer} failed: ${(error as Error).message}`, {
            cause: error,
          });
    if (this.accepted) return failure;
    this.failure = failure;
    if (this.connection.isOpen) {
      const status = { transferId: this.id, outcome: SnapshotOutcome.Cancelled, reason: failure.message };
      this.connection.send(FrameKind.SnapshotStatus, encodeSnapshotStatus(status));
    }
    this.waiter?.reject(failure);
    return failure;
  }

  /** Settles when the transfer does. */
  outcome(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.accepted) return Promise.resolve();
    if (this.waiter !== null) throw new Error(`snapshot transfer ${this.id} is already awaited`);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }
}

/**
 * Writes `data` as the chunks of `transfer`, the first carrying `header`; stops early once the
 * transfer has settled (rejected by the receiver, connection lost). Throws if the data source
 * throws or a chunk cannot be written.
 */
export async function streamSnapshot(
  transfer: OutgoingSnapshot,
  header: Envelope,
  data: SnapshotData,
  limits: { readonly chunkBytes: number; readonly maxFrameBytes: number },
): Promise<void> {
  let seq = 0;
  let totalBytes = 0;
  let totalCrc = 0;
  for await (const chunk of snapshotChunks(data, limits.chunkBytes)) {
    if (transfer.settled) return;
    totalBytes += chunk.data.length;
    totalCrc = crc32(chunk.data, totalCrc);
    const payload = encodeSnapshotChunk({
      transferId: transfer.id,
      seq,
      header: seq === 0 ? header : null,
      data: chunk.data,
      crc32: crc32(chunk.data),
      last: chunk.last,
      totalBytes: chunk.last ? totalBytes : 0,
      totalCrc32: chunk.last ? totalCrc : 0,
    });
    if (payload.byteLength > limits.maxFrameBytes) {
      throw new TransportError(
        `snapshot chunk ${seq} of ${payload.byteLength} bytes exceeds the frame limit`,
      );
    }
    seq++;
    if (!transfer.connection.send(FrameKind.SnapshotChunk, payload)) await transfer.connection.waitForDrain();
  }
}
