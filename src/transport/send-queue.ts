/**
 * One peer's outgoing Raft traffic between `send` and the socket: encoded envelopes, bounded
 * by message count and bytes. When the bound is hit (the peer is down or slow) the oldest
 * envelopes go first — Raft retransmits what matters — and the caller counts every message
 * dropped. `takeBatches` cuts the queue into frame-sized RaftBatch groups.
 */
import { BATCH_ENTRY_OVERHEAD_BYTES } from "./codec.js";

export interface QueuedEnvelope {
  readonly encoded: Uint8Array;
  readonly messageCount: number;
}

export interface SendQueueLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

export class SendQueue {
  private items: QueuedEnvelope[] = [];
  /** Index of the oldest item still queued; the array is compacted lazily. */
  private head = 0;
  private messages = 0;
  private bytes = 0;

  constructor(private readonly limits: SendQueueLimits) {
    if (!(limits.maxMessages >= 1 && limits.maxBytes >= 1)) {
      throw new Error(`send queue limits must be positive, got ${JSON.stringify(limits)}`);
    }
  }

  get messageCount(): number {
    return this.messages;
  }

  get byteCount(): number {
    return this.bytes;
  }

  get isEmpty(): boolean {
    return this.head === this.items.length;
  }

  /** Appends `item`, then drops the oldest items until within limits; returns messages dropped. */
  push(item: QueuedEnvelope): number {
    this.items.push(item);
    this.messages += item.messageCount;
    this.bytes += item.encoded.byteLength;
    let dropped = 0;
    while (!this.isEmpty && (this.messages > this.limits.maxMessages || this.bytes > this.limits.maxBytes)) {
      dropped += this.removeOldest().messageCount;
    }
    return dropped;
  }

  /** Empties the queue; returns the number of messages it held. */
  clear(): number {
    const dropped = this.messages;
    this.items = [];
    this.head = 0;
    this.messages = 0;
    this.bytes = 0;
    return dropped;
  }

  /**
   * Empties the queue into groups of encoded envelopes, oldest first, each group small enough
   * that its RaftBatch payload stays within `maxPayloadBytes`.
   */
  takeBatches(maxPayloadBytes: number): QueuedEnvelope[][] {
    const batches: QueuedEnvelope[][] = [];
    let batch: QueuedEnvelope[] = [];
    let batchBytes = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      const size = item.encoded.byteLength + BATCH_ENTRY_OVERHEAD_BYTES;
      if (size > maxPayloadBytes) {
        throw new Error(`queued envelope of ${item.encoded.byteLength} bytes cannot fit a frame`);
      }
      if (batchBytes + size > maxPayloadBytes) {
        batches.push(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(item);
      batchBytes += size;
    }
    if (batch.length > 0) batches.push(batch);
    this.clear();
    return batches;
  }

  private removeOldest(): QueuedEnvelope {
    const item = this.items[this.head];
    if (item === undefined) throw new Error("removeOldest on an empty send queue");
    this.head++;
    this.messages -= item.messageCount;
    this.bytes -= item.encoded.byteLength;
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
