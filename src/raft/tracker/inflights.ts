/**
 * Flow control for one follower in Replicate state: a sliding window of append messages sent
 * but not yet acknowledged, bounded by a message count and (optionally) by total payload bytes.
 * Entries are freed in order as the follower acknowledges indexes.
 */
import { invariant } from "../assert.js";

export class Inflights {
  readonly maxCount: number;
  /** 0 means no byte limit. */
  readonly maxBytes: number;
  /**
   * Ring buffers of the in-flight messages' last indexes and sizes, oldest at `start`. They
   * grow on demand up to `maxCount`, since most followers never fill their window.
   */
  private lastIndexes: number[] = [];
  private sizes: number[] = [];
  private start = 0;
  private inflightCount = 0;
  private inflightBytes = 0;

  constructor(maxCount: number, maxBytes: number) {
    invariant(
      Number.isSafeInteger(maxCount) && maxCount >= 1,
      () => `inflights: maxCount must be a positive integer, got ${maxCount}`,
    );
    invariant(
      Number.isSafeInteger(maxBytes) && maxBytes >= 0,
      () => `inflights: maxBytes must be a non-negative integer, got ${maxBytes}`,
    );
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
  }

  /** Number of messages in flight. */
  get count(): number {
    return this.inflightCount;
  }

  /** Total payload bytes in flight. */
  get bytes(): number {
    return this.inflightBytes;
  }

  /**
   * Records a message whose last entry is `lastIndex`, carrying `bytes` of payload. The caller
   * must check full() first; indexes must strictly increase, since each message carries entries
   * after the previous one.
   */
  add(lastIndex: number, bytes: number): void {
    invariant(!this.full(), "inflights: add called while the window is full");
    invariant(
      Number.isSafeInteger(bytes) && bytes >= 0,
      () => `inflights: bytes must be a non-negative integer, got ${bytes}`,
    );
    if (this.inflightCount > 0) {
      const newest = this.lastIndexes[this.slot(this.inflightCount - 1)]!;
      invariant(
        lastIndex > newest,
        () => `inflights: lastIndex ${lastIndex} does not follow the newest in-flight ${newest}`,
      );
    }
    if (this.inflightCount === this.lastIndexes.length) this.grow();
    const slot = this.slot(this.inflightCount);
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.inflightCount++;
    this.inflightBytes += bytes;
  }

  /** Frees every in-flight message whose last index is <= `index` (the follower has it). */
  freeLE(index: number): void {
    let freedBytes = 0;
    while (this.inflightCount > 0 && this.lastIndexes[this.start]! <= index) {
      freedBytes += this.sizes[this.start]!;
      this.start = (this.start + 1) % this.lastIndexes.length;
      this.inflightCount--;
    }
    this.inflightBytes -= freedBytes;
    if (this.inflightCount === 0) this.start = 0;
  }

  /**
   * No more messages may be sent. The byte budget is checked against what is already in flight,
   * so one message larger than the whole budget can still go out when the window is empty.
   */
  full(): boolean {
    return (
      this.inflightCount === this.maxCount || (this.maxBytes !== 0 && this.inflightBytes >= this.maxBytes)
    );
  }

  /** Forgets every in-flight message (the follower left Replicate state). */
  reset(): void {
    this.start = 0;
    this.inflightCount = 0;
    this.inflightBytes = 0;
  }

  clone(): Inflights {
    const copy = new Inflights(this.maxCount, this.maxBytes);
    copy.lastIndexes = this.lastIndexes.slice();
    copy.sizes = this.sizes.slice();
    copy.start = this.start;
    copy.inflightCount = this.inflightCount;
    copy.inflightBytes = this.inflightBytes;
    return copy;
  }

  /** Ring position of the `offset`-th oldest message. */
  private slot(offset: number): number {
    const capacity = this.lastIndexes.length;
    const position = this.start + offset;
    return position < capacity ? position : position - capacity;
  }

  /** Doubles the buffers (bounded by maxCount), unrolling the ring so `start` becomes 0. */
  private grow(): void {
    const capacity = this.lastIndexes.length;
    const newCapacity = Math.min(Math.max(1, capacity * 2), this.maxCount);
    invariant(newCapacity > capacity, "inflights: buffer cannot grow past maxCount");
    const lastIndexes: number[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < this.inflightCount; i++) {
      const from = this.slot(i);
      lastIndexes.push(this.lastIndexes[from]!);
      sizes.push(this.sizes[from]!);
    }
    for (let i = this.inflightCount; i < newCapacity; i++) {
      lastIndexes.push(0);
      sizes.push(0);
    }
    this.lastIndexes = lastIndexes;
    this.sizes = sizes;
    this.start = 0;
  }
}
