/**
 * The leader's half of leases: when each lease expires, judged on the leader's monotonic
 * clock and kept only in the leader's memory. Nothing here is replicated and no replica ever
 * expires a lease by itself: the leader lists the leases whose deadline has passed
 * (`expired`) and proposes a LeaseRevoke for each, which every replica then applies.
 *
 * Keep-alives are leader-local too (no log entry), as in etcd. A new leader cannot know how
 * much time its predecessor had left on each lease, so `onBecomeLeader` gives every lease a
 * full TTL from now: a lease may outlive its TTL across a leader change, never expire early.
 * (etcd can checkpoint remaining TTLs through the log to bound that; Concord does not, so
 * leader changes more frequent than a TTL keep a lease alive without keep-alives.)
 *
 * The table is a cache of deadlines; the store (the `LeaseSource`) says which leases exist.
 * A lease missing from the table is adopted with a full TTL, and one the store no longer has
 * is dropped, so a missed notification can only make a lease live longer, never shorter.
 */
import { KvError, KvErrorCode } from "./errors.js";
import type { LeaseChange, LeaseInfo, LeaseSummary } from "./leases.js";

/** What the lease clock reads from the applied state (MvccStore implements it). */
export interface LeaseSource {
  leases(): readonly LeaseSummary[];
  lease(id: bigint, options?: { readonly keys?: boolean }): LeaseInfo | undefined;
}

export interface LeaseClockOptions {
  /**
   * After `expired` lists a lease, how long before it lists it again if the revocation has
   * not been applied by then (a lost proposal). Default 3000 ms, etcd's retry interval.
   */
  readonly revokeRetryMs?: number;
}

/** etcd's LeaseTimeToLive answer. */
export interface TimeToLive {
  readonly id: bigint;
  readonly grantedTtlSeconds: number;
  /** Whole seconds left on the leader's clock (truncated, as etcd does; 0 once expired). */
  readonly remainingTtlSeconds: number;
  /** The attached keys when asked for, else empty. */
  readonly keys: readonly Uint8Array[];
}

interface Deadline {
  readonly ttlMs: number;
  /** When the lease expires unless kept alive. */
  expiresAt: number;
  /** Its one current heap entry has this generation; entries of older ones are stale. */
  generation: number;
}

interface HeapItem {
  readonly at: number;
  readonly id: bigint;
  readonly generation: number;
}

/** A binary min-heap of check times. Entries go stale instead of being removed. */
class CheckHeap {
  private readonly items: HeapItem[] = [];

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  push(item: HeapItem): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= item.at) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): HeapItem | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.at < items[left]!.at ? right : left;
      if (items[child]!.at >= last.at) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}

export const DEFAULT_REVOKE_RETRY_MS = 3000;

export class LeaseClock {
  private readonly deadlines = new Map<bigint, Deadline>();
  private readonly checks = new CheckHeap();
  private readonly revokeRetryMs: number;
  private leading = false;
  private lastReading = -Infinity;
  private generations = 0;

  /**
   * @param source the applied lease table
   * @param monotonicNow a monotonic clock in milliseconds (never a wall clock: it must not jump)
   */
  constructor(
    private readonly source: LeaseSource,
    private readonly monotonicNow: () => number,
    options: LeaseClockOptions = {},
  ) {
    this.revokeRetryMs = options.revokeRetryMs ?? DEFAULT_REVOKE_RETRY_MS;
    if (!(this.revokeRetryMs > 0))
      throw new RangeError(`revokeRetryMs must be positive, got ${this.revokeRetryMs}`);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The node became leader: every lease in the applied state gets a full TTL from now. */
  onBecomeLeader(): void {
    this.reset();
    this.leading = true;
    const now = this.now();
    for (const { id, ttlSeconds } of this.source.leases()) this.track(id, ttlSeconds, now);
  }

  /** The node lost leadership: forget every deadline (a later term starts afresh). */
  onStepDown(): void {
    this.reset();
    this.leading = false;
  }

  /** Follows an applied command's lease change (ApplyOutcome.leaseChange); call on every replica. */
  applied(change: LeaseChange | undefined): void {
    if (!this.leading || change === undefined) return;
    if (change.kind === "granted") this.track(change.id, change.ttlSeconds, this.now());
    else this.deadlines.delete(change.id);
  }

  /**
   * etcd's LeaseKeepAlive: the lease's deadline becomes `asOf` + its TTL (never earlier than
   * it was). `asOf` (default now) is when this replica last knew it led: a caller that
   * confirms leadership with a quorum first passes the time the confirmation started, so a
   * deposed leader cannot stretch a lease past what its successor grants it. Returns the
   * granted TTL, or null when the lease does not exist or has already expired (its revocation
   * is on its way; renewing it now would let a client believe in a lease about to vanish).
   * Throws KvError(NotLeader) on a replica that does not lead.
   */
  keepAlive(id: bigint, asOf?: number): number | null {
    this.requireLeader();
    const now = this.now();
    const from = Math.min(asOf ?? now, now);
    const deadline = this.deadlines.get(id);
    if (deadline !== undefined && deadline.expiresAt <= now) return null;
    const lease = this.source.lease(id);
    if (lease === undefined) {
      this.deadlines.delete(id);
      return null;
    }
    if (deadline === undefined) this.track(id, lease.ttlSeconds, from);
    else deadline.expiresAt = Math.max(deadline.expiresAt, from + deadline.ttlMs);
    return lease.ttlSeconds;
  }

  /**
   * The leases whose deadline has passed, to be revoked through the log, at most `limit` of
   * them (etcd rate-limits revocations). A listed lease is listed again after revokeRetryMs
   * if it still exists then. Throws KvError(NotLeader) on a replica that does not lead.
   */
  expired(limit = Infinity): bigint[] {
    this.requireLeader();
    const now = this.now();
    const out: bigint[] = [];
    while (out.length < limit) {
      const top = this.checks.peek();
      if (top === undefined || top.at > now) break;
      this.checks.pop();
      const deadline = this.deadlines.get(top.id);
      if (deadline === undefined || deadline.generation !== top.generation) continue;
      if (deadline.expiresAt > now) {
        this.schedule(top.id, deadline, deadline.expiresAt);
      } else if (this.source.lease(top.id) === undefined) {
        this.deadlines.delete(top.id);
      } else {
        out.push(top.id);
        this.schedule(top.id, deadline, now + this.revokeRetryMs);
      }
    }
    return out;
  }

  /**
   * etcd's LeaseTimeToLive: the granted TTL, the time left on this leader's clock and, when
   * `withKeys`, the attached keys; null when the lease does not exist. Leader only.
   */
  timeToLive(id: bigint, withKeys = false): TimeToLive | null {
    this.requireLeader();
    const now = this.now();
    const lease = this.source.lease(id, { keys: withKeys });
    if (lease === undefined) {
      this.deadlines.delete(id);
      return null;
    }
    const deadline = this.deadlines.get(id) ?? this.track(id, lease.ttlSeconds, now);
    return {
      id,
      grantedTtlSeconds: lease.ttlSeconds,
      remainingTtlSeconds: Math.max(0, Math.trunc((deadline.expiresAt - now) / 1000)),
      keys: lease.keys,
    };
  }

  private track(id: bigint, ttlSeconds: number, now: number): Deadline {
    const ttlMs = ttlSeconds * 1000;
    const deadline: Deadline = { ttlMs, expiresAt: now + ttlMs, generation: 0 };
    this.deadlines.set(id, deadline);
    this.schedule(id, deadline, deadline.expiresAt);
    return deadline;
  }

  private schedule(id: bigint, deadline: Deadline, at: number): void {
    this.generations += 1;
    deadline.generation = this.generations;
    this.checks.push({ at, id, generation: this.generations });
  }

  private reset(): void {
    this.deadlines.clear();
    this.checks.clear();
  }

  private requireLeader(): void {
    if (!this.leading) throw new KvError(KvErrorCode.NotLeader);
  }

  private now(): number {
    const reading = this.monotonicNow();
    if (!Number.isFinite(reading)) throw new RangeError(`the monotonic clock returned ${reading}`);
    if (reading < this.lastReading) {
      throw new Error(
        `invariant violated: the monotonic clock went back from ${this.lastReading} to ${reading}`,
      );
    }
    this.lastReading = reading;
    return reading;
  }
}
