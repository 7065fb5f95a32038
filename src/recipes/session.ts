/**
 * `Session`: one lease kept alive for the recipes (a candidate's or a lock holder's records
 * are attached to it, so they vanish with it), and the holder's conservative view of how long
 * it surely still exists. The local deadline is measured from the START of the last successful
 * keep-alive (or grant) request: the store renewed the lease no earlier than that moment, so
 * the store cannot expire it before start + TTL; a margin covers clock-rate differences and the
 * time the holder needs to stop acting. `lost` fires at that deadline, when a keep-alive says
 * the lease is gone, when a user of the session reports its records gone, or on close.
 */
import type { RecipeClient, RecipeRuntime, RecipeTimer } from "./client.js";
import { systemRuntime } from "./client.js";
import { RecipeConfigError, SessionLostError, type SessionLossReason } from "./errors.js";

export interface SessionOptions {
  /** The lease's TTL in seconds (an integer of at least 1). Default 10. */
  readonly ttlSeconds?: number;
  /** Time between keep-alives; less than half the TTL. Default TTL / 4. */
  readonly renewIntervalMs?: number;
  /** Safety margin subtracted from the local deadline. Default TTL / 5, capped at 1 s. */
  readonly marginMs?: number;
  readonly runtime?: RecipeRuntime;
}

export interface AttachOptions extends Omit<SessionOptions, "ttlSeconds"> {
  /** The lease's TTL as granted (the caller granted it). */
  readonly ttlSeconds: number;
  /**
   * Whether this session keeps the lease alive (default true). False when its owner (an etcd
   * client holding the lease) renews it: then only a keep-alive answer, a report of vanished
   * records or close ends the session, and it has no local deadline.
   */
  readonly keepAlive?: boolean;
}

/** Delay between keep-alive attempts after one failed (the deadline still bounds them). */
const FAILED_RENEWAL_RETRY_MS = 100;
const DEFAULT_TTL_SECONDS = 10;

function checkTiming(ttlSeconds: number, renewIntervalMs: number, marginMs: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new RecipeConfigError(`session TTL must be an integer number of seconds >= 1, got ${ttlSeconds}`);
  }
  if (!Number.isSafeInteger(renewIntervalMs) || renewIntervalMs < 1) {
    throw new RecipeConfigError(`renew interval must be a positive integer (ms), got ${renewIntervalMs}`);
  }
  if (!Number.isSafeInteger(marginMs) || marginMs < 0) {
    throw new RecipeConfigError(`deadline margin must be a non-negative integer (ms), got ${marginMs}`);
  }
  if (ttlSeconds * 1000 <= 2 * renewIntervalMs) {
    throw new RecipeConfigError(
      `renew interval ${renewIntervalMs} ms must be less than half the lease TTL (${ttlSeconds} s)`,
    );
  }
  if (ttlSeconds * 1000 - marginMs <= renewIntervalMs) {
    throw new RecipeConfigError(
      `deadline margin ${marginMs} ms leaves no time to renew every ${renewIntervalMs} ms within ${ttlSeconds} s`,
    );
  }
}

export class Session {
  readonly lost: AbortSignal;
  private readonly controller = new AbortController();
  private readonly runtime: RecipeRuntime;
  private readonly renewIntervalMs: number;
  private readonly marginMs: number;
  private deadlineAt: number;
  private renewTimer: RecipeTimer | null = null;
  private deadlineTimer: RecipeTimer | null = null;
  private readonly renewedListeners = new Set<() => void>();

  private constructor(
    private readonly client: RecipeClient,
    readonly leaseId: bigint,
    ttlSeconds: number,
    startedAt: number,
    options: { renewIntervalMs: number; marginMs: number; runtime: RecipeRuntime; keepAlive: boolean },
  ) {
    this.lost = this.controller.signal;
    this.runtime = options.runtime;
    this.renewIntervalMs = options.renewIntervalMs;
    this.marginMs = options.marginMs;
    this.deadlineAt = options.keepAlive ? startedAt + ttlSeconds * 1000 - options.marginMs : Infinity;
    if (options.keepAlive) {
      this.armDeadline();
      this.scheduleRenewal(startedAt + this.renewIntervalMs);
    }
  }

  /** Grants a new lease and keeps it alive. */
  static async create(client: RecipeClient, options: SessionOptions = {}): Promise<Session> {
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    const resolved = resolveTiming(ttlSeconds, options);
    const runtime = options.runtime ?? systemRuntime;
    const startedAt = runtime.monotonicNow();
    const granted = await client.leaseGrant(ttlSeconds);
    // The store may raise a TTL; it never lowers one. Judge by what was granted.
    return new Session(client, granted.id, granted.ttlSeconds, startedAt, {
      ...resolved,
      runtime,
      keepAlive: true,
    });
  }

  /**
   * A session over a lease someone else granted. When `keepAlive` is on, the deadline starts
   * from a keep-alive sent now (the lease's age is unknown); a lease that is already gone
   * gives a session that is lost at once.
   */
  static async attach(client: RecipeClient, leaseId: bigint, options: AttachOptions): Promise<Session> {
    const resolved = resolveTiming(options.ttlSeconds, options);
    const runtime = options.runtime ?? systemRuntime;
    const keepAlive = options.keepAlive ?? true;
    if (!keepAlive) {
      return new Session(client, leaseId, options.ttlSeconds, runtime.monotonicNow(), {
        ...resolved,
        runtime,
        keepAlive,
      });
    }
    const startedAt = runtime.monotonicNow();
    const ttl = await client.leaseKeepAlive(leaseId);
    const session = new Session(client, leaseId, ttl ?? options.ttlSeconds, startedAt, {
      ...resolved,
      runtime,
      keepAlive,
    });
    if (ttl === null) session.markLost("lease-gone");
    return session;
  }

  /** The local deadline on the runtime's monotonic clock (Infinity when not kept alive here). */
  get deadline(): number {
    return this.deadlineAt;
  }

  get isLost(): boolean {
    return this.lost.aborted;
  }

  /** Calls `listener` after each successful renewal (the holder's renewal boundary); returns a remover. */
  onRenewed(listener: () => void): () => void {
    this.renewedListeners.add(listener);
    return () => this.renewedListeners.delete(listener);
  }

  /** Ends the session with `reason` (a reader of its records found them gone). */
  markLost(reason: SessionLossReason): void {
    if (this.lost.aborted) return;
    this.renewTimer?.cancel();
    this.deadlineTimer?.cancel();
    this.renewTimer = null;
    this.deadlineTimer = null;
    this.renewedListeners.clear();
    this.controller.abort(new SessionLostError(reason, this.leaseId));
  }

  /**
   * Stops renewing and fires `lost` ("closed"); with `revoke` (the default) also revokes the
   * lease, deleting every record attached to it at one revision. A lease that is already gone
   * is not an error.
   */
  async close(options: { revoke?: boolean } = {}): Promise<void> {
    const wasLost = this.lost.aborted;
    this.markLost("closed");
    if (options.revoke === false) return;
    if (wasLost && (this.lost.reason as SessionLostError).reason === "lease-gone") return;
    try {
      await this.client.leaseRevoke(this.leaseId);
    } catch (error) {
      if (!(error instanceof Error && /lease not found/.test(error.message))) throw error;
    }
  }

  private scheduleRenewal(at: number): void {
    if (this.lost.aborted) return;
    this.renewTimer?.cancel();
    const delay = Math.max(0, at - this.runtime.monotonicNow());
    this.renewTimer = this.runtime.setTimeout(() => void this.renew(), delay);
  }

  private armDeadline(): void {
    this.deadlineTimer?.cancel();
    const delay = Math.max(0, this.deadlineAt - this.runtime.monotonicNow());
    this.deadlineTimer = this.runtime.setTimeout(() => {
      if (this.runtime.monotonicNow() >= this.deadlineAt) this.markLost("deadline-passed");
      else this.armDeadline();
    }, delay);
  }

  private async renew(): Promise<void> {
    if (this.lost.aborted) return;
    const startedAt = this.runtime.monotonicNow();
    // The cadence does not wait for the answer: a request that hangs must not stop renewals.
    this.scheduleRenewal(startedAt + this.renewIntervalMs);
    let ttl: number | null;
    try {
      ttl = await this.client.leaseKeepAlive(this.leaseId);
    } catch {
      // Unknown whether it renewed: the old deadline stands; try again soon.
      this.scheduleRenewal(
        this.runtime.monotonicNow() + Math.min(FAILED_RENEWAL_RETRY_MS, this.renewIntervalMs),
      );
      return;
    }
    if (this.lost.aborted) return;
    if (ttl === null) {
      this.markLost("lease-gone");
      return;
    }
    const deadline = startedAt + ttl * 1000 - this.marginMs;
    // A slow answer to an earlier request never moves the deadline back.
    if (deadline > this.deadlineAt) {
      this.deadlineAt = deadline;
      this.armDeadline();
    }
    if (this.runtime.monotonicNow() >= this.deadlineAt) {
      this.markLost("deadline-passed");
      return;
    }
    for (const listener of [...this.renewedListeners]) listener();
  }
}

function resolveTiming(
  ttlSeconds: number,
  options: { renewIntervalMs?: number; marginMs?: number },
): { renewIntervalMs: number; marginMs: number } {
  const ttlMs = ttlSeconds * 1000;
  const renewIntervalMs = options.renewIntervalMs ?? Math.max(1, Math.floor(ttlMs / 4));
  const marginMs = options.marginMs ?? Math.min(1000, Math.floor(ttlMs / 5));
  checkTiming(ttlSeconds, renewIntervalMs, marginMs);
  return { renewIntervalMs, marginMs };
}
