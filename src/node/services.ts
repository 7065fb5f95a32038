/**
 * ReplicaServices: the watches and the lease clock of one replica, kept in step with its
 * state machine. The replica registers `listener` with its state machine and reports every
 * change of leadership; the services do the rest:
 *
 * - Watches: every applied command's events are published to the replica's WatchHub, in log
 *   order, right after the store write that applied them and before anything else is applied
 *   (the listener runs synchronously inside the apply), and a
 *   restored snapshot image sends every live watch back to history (`resync`), so a watch on
 *   any replica sees each revision once, in order, across leader changes and snapshots.
 * - Leases: the LeaseClock runs on the leader only. It starts afresh, with a full TTL for
 *   every lease, whenever this replica becomes leader (a lease never expires early after a
 *   leader change), forgets everything when it steps down, follows the grants and revocations
 *   the log applies, and on each tick proposes a LeaseRevoke for every lease whose deadline
 *   has passed. Replicas never expire leases on their own: every one applies the revocation.
 *   Only the lease range (range 1, `expiresLeases`) expires leases by its clock: a split
 *   copies the lease table into the new range, which keeps its copies (and their attached
 *   keys) until a revocation is applied there, proposed by whoever revokes the lease.
 * - Splits: a split shrinks the range's bounds; watches no longer inside them end with
 *   KeyOutsideRange (WatchHub.boundsChanged), so a router re-opens them on the new ranges.
 *   A range destroyed on this node (merged away) ends every watch the same way.
 */
import type { RangeBounds } from "../kv/bounds.js";
import { leaseRevokeRequest, type KvCommand } from "../kv/commands.js";
import { LeaseClock, type LeaseClockOptions, type LeaseSource, type TimeToLive } from "../kv/lease-clock.js";
import type { LeaseSummary } from "../kv/leases.js";
import {
  WatchHub,
  type Watch,
  type WatchHubOptions,
  type WatchRequest,
  type WatchSource,
} from "../kv/watch.js";
import type { Logger } from "../transport/transport.js";
import type { ApplyListener } from "./types.js";

/**
 * Bounds that contain no span (every watch span has a non-empty end, which is never at or
 * below the empty key): what the hub sees once the range is removed.
 */
const NO_KEYS: RangeBounds = Object.freeze({ start: new Uint8Array(0), end: new Uint8Array(0) });

/** What the services read from the applied state (the replica's MvccStore). */
export interface ServiceSource extends WatchSource, LeaseSource {}

export interface ReplicaServicesOptions {
  readonly watch?: WatchHubOptions;
  readonly lease?: LeaseClockOptions;
  /** How often watches that asked for progress notifications get one. */
  readonly progressIntervalMs: number;
  /** Whether this replica's leader expires leases by its clock (the lease range's only). */
  readonly expiresLeases: boolean;
}

export class ReplicaServices {
  readonly listener: ApplyListener;
  private readonly hub: WatchHub;
  private readonly clock: LeaseClock;
  private readonly progressIntervalMs: number;
  private readonly expiresLeases: boolean;
  private nextProgressAt: number;
  private removed = false;

  /**
   * @param source the replica's applied state
   * @param monotonicNow the node's monotonic clock in milliseconds (lease deadlines)
   */
  constructor(
    private readonly rangeId: number,
    private readonly source: ServiceSource,
    monotonicNow: () => number,
    private readonly logger: Logger,
    options: ReplicaServicesOptions,
  ) {
    // The hub sees the range's bounds through `removed`: a range gone from the node holds no keys.
    const removed = () => this.removed;
    const watched: WatchSource = {
      get revision() {
        return source.revision;
      },
      get bounds() {
        return removed() ? NO_KEYS : source.bounds;
      },
      get compactedRevision() {
        return source.compactedRevision;
      },
      history: (request) => source.history(request),
    };
    this.hub = new WatchHub(watched, options.watch);
    this.clock = new LeaseClock(source, monotonicNow, options.lease);
    this.progressIntervalMs = options.progressIntervalMs;
    this.expiresLeases = options.expiresLeases;
    this.nextProgressAt = monotonicNow() + this.progressIntervalMs;
    this.listener = {
      onCommand: ({ outcome }) => {
        this.hub.publish(outcome.result.revision, outcome.events);
        this.clock.applied(outcome.leaseChange);
        if (outcome.split !== undefined) this.hub.boundsChanged();
        // A merge can bring leases this clock never saw granted: restart it from the table
        // (existing leases get a fresh TTL: a lease may outlive its TTL, never end early).
        if (outcome.merge !== undefined && this.clock.isLeader) this.clock.onBecomeLeader();
      },
      onRestore: () => this.hub.resync(),
    };
  }

  /**
   * The range is gone from this node (merged away and destroyed): every watch ends with a
   * KeyOutsideRange response at the revision it had reached, so a router re-opens it on the
   * range that holds its keys now.
   */
  rangeRemoved(): void {
    this.removed = true;
    this.hub.boundsChanged();
  }

  /** Whether the lease clock runs (this replica leads, as far as it knows). */
  /** Open watches of the range on this node that someone waits on (not `background`). */
  get foregroundWatchCount(): number {
    return this.hub.foregroundSize;
  }

  get leading(): boolean {
    return this.clock.isLeader;
  }

  /** The replica became leader (`true`) or stopped being leader (`false`). */
  leadershipChanged(leading: boolean): void {
    if (leading === this.clock.isLeader) return;
    if (leading) this.clock.onBecomeLeader();
    else this.clock.onStepDown();
  }

  /**
   * On the leader, proposes (through `propose`) a LeaseRevoke for every lease past its
   * deadline; nothing on a follower. A revocation that fails (leadership lost, proposal
   * dropped) is only logged: the lease clock lists the lease again after its retry interval
   * while the lease exists and this replica leads.
   */
  revokeExpired(propose: (command: KvCommand) => Promise<unknown>): void {
    if (!this.expiresLeases || !this.clock.isLeader) return;
    for (const id of this.clock.expired()) {
      propose(leaseRevokeRequest(id)).catch((error: unknown) => {
        this.logger.info(
          { rangeId: this.rangeId, lease: id.toString(), error: String(error) },
          "lease revocation not applied",
        );
      });
    }
  }

  /** Called on every tick: sends the periodic progress notifications when they are due. */
  notifyProgress(now: number): void {
    if (now < this.nextProgressAt) return;
    this.nextProgressAt = now + this.progressIntervalMs;
    this.hub.progress();
  }

  /** A watch of the applied state (see WatchHub.watch for the request's rules). */
  watch(request: WatchRequest): Watch {
    return this.hub.watch(request);
  }

  /** Leader only (KvError NotLeader otherwise): see LeaseClock.keepAlive. */
  keepAlive(id: bigint, asOf: number): number | null {
    return this.clock.keepAlive(id, asOf);
  }

  /** Leader only (KvError NotLeader otherwise): see LeaseClock.timeToLive. */
  timeToLive(id: bigint, withKeys: boolean): TimeToLive | null {
    return this.clock.timeToLive(id, withKeys);
  }

  /** Whether the leader must keep ticking to expire leases on time (it expires leases and has some). */
  get holdsExpiringLeases(): boolean {
    return this.expiresLeases && this.source.leases().length > 0;
  }

  /** The keys attached to lease `id` in the applied state, in key order (none without the lease), on any replica. */
  attachedKeys(id: bigint): readonly Uint8Array[] {
    return this.source.lease(id, { keys: true })?.keys ?? [];
  }

  /** Every live lease of the applied state, on any replica. */
  leases(): readonly LeaseSummary[] {
    return this.source.leases();
  }
}
