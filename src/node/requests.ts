/**
 * Bookkeeping of one replica's outstanding requests: proposals waiting for their entry to be
 * applied (matched by request id, with the log index a leader expects as a second clue), and
 * linearizable reads waiting first for a read index, then for the state machine to reach it.
 * Pure data structures: the replica decides when things happen, these settle the promises.
 */
import type { RangeRequest } from "../kv/commands.js";
import type { RangeResult } from "../kv/results.js";

/** The request id of a command, as proposals are matched to applied entries. */
export function commandKey(clientId: string, sequence: number): string {
  return `${sequence}:${clientId}`;
}

export interface Waiter<T> {
  /** The request id carried in the log entry (a command's clientId/sequence, a conf change's context). */
  readonly key: string;
  /** Monotonic time after which the caller is told the outcome is unknown. */
  readonly deadline: number;
  /** The log index the entry was appended at when this node led; 0 when proposed elsewhere. */
  expectedIndex: number;
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
}

/**
 * A proposal's waiter that counts its failure: every way a proposal a replica took can fail
 * (refused, overwritten, timed out, stopped, ...) ends in its `reject`, so the count is kept
 * here once. A class, not a closure over the promise's reject: that closure cost a proposal
 * about 0.35 µs more (measured), this nothing.
 */
export class CountingWaiter<T> implements Waiter<T> {
  expectedIndex = 0;

  constructor(
    readonly key: string,
    readonly deadline: number,
    readonly resolve: (value: T) => void,
    private readonly rejectPromise: (error: Error) => void,
    private readonly failures: { proposalsFailed: number },
  ) {}

  reject(error: Error): void {
    this.failures.proposalsFailed++;
    this.rejectPromise(error);
  }
}

/**
 * Proposals of one kind awaiting application. A waiter is settled exactly once: resolved when
 * an entry with its key applies; rejected when the entry at its expected index turns out to
 * carry something else, when a snapshot passes that index, or when it times out.
 */
export class PendingRequests<T> {
  private readonly byKey = new Map<string, Set<Waiter<T>>>();
  private readonly byIndex = new Map<number, Waiter<T>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(waiter: Waiter<T>): void {
    let waiters = this.byKey.get(waiter.key);
    if (waiters === undefined) {
      waiters = new Set();
      this.byKey.set(waiter.key, waiters);
    }
    waiters.add(waiter);
    this.count++;
    if (waiter.expectedIndex > 0) {
      const earlier = this.byIndex.get(waiter.expectedIndex);
      // This node leads again and appends at an index where its log held an earlier proposal
      // (since truncated). That entry may still survive on other nodes and commit there, so
      // the earlier waiter keeps waiting for its request id, no longer for this index.
      if (earlier !== undefined) earlier.expectedIndex = 0;
      this.byIndex.set(waiter.expectedIndex, waiter);
    }
  }

  /** Resolves every waiter for request `key`: a request proposed twice is answered by whichever copy applies first. */
  resolve(key: string, value: T): void {
    for (const waiter of this.byKey.get(key) ?? []) this.settle(waiter).resolve(value);
  }

  /** Rejects every waiter for request `key`. */
  reject(key: string, error: () => Error): void {
    for (const waiter of this.byKey.get(key) ?? []) this.settle(waiter).reject(error());
  }

  /**
   * The entry at `index` was applied. A waiter still expecting that index (its request was
   * not in the entry, or it would have been settled) learns that its entry was overwritten.
   */
  indexTaken(index: number, overwritten: () => Error): void {
    const expected = this.byIndex.get(index);
    if (expected !== undefined) this.settle(expected).reject(overwritten());
  }

  /** Entries up to `index` will never be handed out here (a snapshot replaced them). */
  passed(index: number, unknown: () => Error): void {
    for (const [expectedIndex, waiter] of this.byIndex) {
      if (expectedIndex <= index) this.settle(waiter).reject(unknown());
    }
  }

  /** Rejects the waiters whose deadline is at or before `now`; returns how many. */
  expire(now: number, timedOut: () => Error): number {
    let expired = 0;
    for (const waiters of this.byKey.values()) {
      for (const waiter of waiters) {
        if (waiter.deadline <= now) {
          this.settle(waiter).reject(timedOut());
          expired++;
        }
      }
    }
    return expired;
  }

  failAll(error: () => Error): void {
    for (const waiters of [...this.byKey.values()]) {
      for (const waiter of waiters) this.settle(waiter).reject(error());
    }
  }

  private settle(waiter: Waiter<T>): Waiter<T> {
    const waiters = this.byKey.get(waiter.key);
    if (waiters === undefined || !waiters.delete(waiter)) {
      throw new Error(`proposal ${waiter.key} settled twice`);
    }
    if (waiters.size === 0) this.byKey.delete(waiter.key);
    if (waiter.expectedIndex > 0 && this.byIndex.get(waiter.expectedIndex) === waiter) {
      this.byIndex.delete(waiter.expectedIndex);
    }
    this.count--;
    return waiter;
  }
}

export interface ReadWaiter {
  readonly request: RangeRequest;
  /** Monotonic time after which a read still without a read index fails. */
  readonly deadline: number;
  readonly resolve: (result: RangeResult) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Linearizable reads in their three stages: queued (no ReadIndex requested yet), awaiting the
 * read index of their batch (one ReadIndex request per turn covers every read queued before
 * it), and awaiting application of that index.
 */
export class PendingReads {
  private queued: ReadWaiter[] = [];
  /** Per ReadIndex context: its reads, and when the request was last sent. */
  private readonly awaitingIndex = new Map<string, { reads: ReadWaiter[]; sentAt: number }>();
  private awaitingApply: { readonly index: number; readonly reads: readonly ReadWaiter[] }[] = [];

  get size(): number {
    let total = this.queued.length;
    for (const { reads } of this.awaitingIndex.values()) total += reads.length;
    for (const batch of this.awaitingApply) total += batch.reads.length;
    return total;
  }

  get hasQueued(): boolean {
    return this.queued.length > 0;
  }

  add(read: ReadWaiter): void {
    this.queued.push(read);
  }

  takeQueued(): ReadWaiter[] {
    const reads = this.queued;
    this.queued = [];
    return reads;
  }

  /** `reads` share the ReadIndex request with context `key`, sent at monotonic time `now`. */
  awaitIndex(key: string, reads: readonly ReadWaiter[], now: number): void {
    if (this.awaitingIndex.has(key)) throw new Error(`read index context ${key} used twice`);
    this.awaitingIndex.set(key, { reads: [...reads], sentAt: now });
  }

  /**
   * The contexts of ReadIndex requests unanswered for `retryMs` since they were last sent, now
   * counted as sent again at `now`: the caller sends each once more. A request, or its answer,
   * can be lost with nobody to tell (a follower forwarding to a leader that steps down drops
   * it, as etcd's raft does); etcd's server resends its read request every 500 ms for this.
   */
  resendDue(now: number, retryMs: number): string[] {
    const due: string[] = [];
    for (const [key, awaiting] of this.awaitingIndex) {
      if (now - awaiting.sentAt < retryMs) continue;
      awaiting.sentAt = now;
      due.push(key);
    }
    return due;
  }

  /** The ReadIndex request `key` was answered with `index`; unknown keys (stale answers) are ignored. */
  indexKnown(key: string, index: number): void {
    const awaiting = this.awaitingIndex.get(key);
    if (awaiting === undefined) return;
    this.awaitingIndex.delete(key);
    this.awaitingApply.push({ index, reads: awaiting.reads });
  }

  /** Removes and returns the reads whose read index is at or below `applied`. */
  takeServable(applied: number): ReadWaiter[] {
    const servable: ReadWaiter[] = [];
    const waiting: { readonly index: number; readonly reads: readonly ReadWaiter[] }[] = [];
    for (const batch of this.awaitingApply) {
      if (batch.index <= applied) servable.push(...batch.reads);
      else waiting.push(batch);
    }
    this.awaitingApply = waiting;
    return servable;
  }

  /**
   * Rejects reads whose deadline passed before their read index arrived; returns how many.
   * Reads that have an index only wait for local application, which cannot be lost.
   */
  expire(now: number, timedOut: () => Error): number {
    let expired = 0;
    const expireFrom = (reads: ReadWaiter[]): ReadWaiter[] =>
      reads.filter((read) => {
        if (read.deadline > now) return true;
        read.reject(timedOut());
        expired++;
        return false;
      });
    this.queued = expireFrom(this.queued);
    for (const [key, awaiting] of this.awaitingIndex) {
      awaiting.reads = expireFrom(awaiting.reads);
      if (awaiting.reads.length === 0) this.awaitingIndex.delete(key);
    }
    return expired;
  }

  failAll(error: () => Error): void {
    const all = [
      ...this.queued,
      ...[...this.awaitingIndex.values()].flatMap(({ reads }) => reads),
      ...this.awaitingApply.flatMap((batch) => batch.reads),
    ];
    this.queued = [];
    this.awaitingIndex.clear();
    this.awaitingApply = [];
    for (const read of all) read.reject(error());
  }
}
