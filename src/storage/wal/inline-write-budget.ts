/**
 * InlineWriteBudget: how much of the event loop's time the write-ahead log may spend blocked
 * in writes made inline (`writeSync` on the O_DSYNC segment) instead of on libuv's thread pool.
 *
 * Why write inline at all: a write on the pool costs a thread wake-up there and one back
 * (futex, eventfd, epoll; on a VM each cross-CPU wake-up is an interrupt through the
 * hypervisor). At a few hundred writes a second, with each wake-up running cold, that cost
 * measured larger than the write itself. Alternating 3-member clusters on the 2-core
 * development VM, server CPU per put at 150 puts/s: 2,292 and 4,217 µs through the pool,
 * 1,092 and 1,425 µs with a budget of 10% of the time; the watch fan-out (100 puts/s, 100
 * watchers) 21.9 and 24.9 µs per event against 18.1 and 18.4; put c=1 and 1,000 puts/s
 * unchanged, p99 included. A budget of 30% (the default) against 10%, 3 alternating runs
 * each: c=1 881 against 930 µs, 1,000 puts/s 620 against 688, 2,000 puts/s 418 against 428,
 * c=64 equal, p99 equal or lower on every row. Writing every small frame inline instead cut
 * CPU at 1,000 puts/s too but raised its p99 (12-27 ms against 9-17): the budget is what
 * keeps that tail away.
 *
 * Why a budget: an inline write stops everything else the process serves until the disk has
 * flushed. The budget is a token bucket of blocked milliseconds that refills at `share` of
 * wall time, up to `capMs`: a write goes inline while the bucket is not empty and is charged
 * its whole duration afterwards. So however slow the disk, inline writes block the loop at
 * most `share` of the time over any long stretch (a 50 ms write empties the bucket for
 * 167 ms at the default share); at high rates the bucket stays empty and writes go through
 * the pool, where they overlap with the Raft turns. Writes above `maxBytes` (checkpoints) never
 * go inline. One budget per process is right: it is the one event loop's time that is spent,
 * however many logs the process writes.
 */

export interface InlineWriteBudgetOptions {
  /** Milliseconds that never go backwards (the budget's clock). */
  readonly now: () => number;
  /** The share of wall time inline writes may block the loop (0 turns them off). */
  readonly share?: number;
  /** The most blocked time saved up while the loop was free, in milliseconds. */
  readonly capMs?: number;
  /** The largest write made inline, in bytes. */
  readonly maxBytes?: number;
}

const DEFAULT_INLINE_WRITE_SHARE = 0.3;
const DEFAULT_INLINE_WRITE_CAP_MS = 2;
/** A Raft turn's frame, not a checkpoint. */
const DEFAULT_INLINE_WRITE_MAX_BYTES = 64 * 2 ** 10;

export class InlineWriteBudget {
  private readonly now: () => number;
  private readonly share: number;
  private readonly capMs: number;
  private readonly maxBytes: number;
  private availableMs: number;
  private refilledAt: number;

  constructor(options: InlineWriteBudgetOptions) {
    this.now = options.now;
    this.share = options.share ?? DEFAULT_INLINE_WRITE_SHARE;
    this.capMs = options.capMs ?? DEFAULT_INLINE_WRITE_CAP_MS;
    this.maxBytes = options.maxBytes ?? DEFAULT_INLINE_WRITE_MAX_BYTES;
    if (!(this.share >= 0 && this.share <= 1))
      throw new RangeError(`share must be in [0, 1], got ${this.share}`);
    if (!(this.capMs >= 0 && Number.isFinite(this.capMs)))
      throw new RangeError(`capMs must be a non-negative number, got ${this.capMs}`);
    if (!(Number.isSafeInteger(this.maxBytes) && this.maxBytes >= 0))
      throw new RangeError(`maxBytes must be a non-negative integer, got ${this.maxBytes}`);
    this.availableMs = this.share > 0 ? this.capMs : 0;
    this.refilledAt = this.now();
  }

  /**
   * Runs `write` (a blocking write of `bytes`) and returns true when the budget allows it now,
   * charging its whole duration, a throw included; returns false, running nothing, otherwise.
   */
  tryInline(bytes: number, write: () => void): boolean {
    const startedAt = this.now();
    this.availableMs = Math.min(this.capMs, this.availableMs + (startedAt - this.refilledAt) * this.share);
    this.refilledAt = startedAt;
    if (bytes > this.maxBytes || this.availableMs <= 0) return false;
    try {
      write();
    } finally {
      const endedAt = this.now();
      this.availableMs -= endedAt - startedAt;
      // The blocked time does not refill the bucket.
      this.refilledAt = endedAt;
    }
    return true;
  }

  /** Milliseconds of blocking left (negative: owed), as of the last call. */
  get remainingMs(): number {
    return this.availableMs;
  }
}
