/**
 * NodeRanges: one node's whole placement layer, assembled over its NodeHost — the route
 * catalog in range 1 (under the system prefix), the route table kept current by a watcher,
 * the router every client request goes through, routed watches, the load sampler, the split
 * and merge coordinators and the policy loop (acting only while this node leads range 1), and
 * the reconciliation that makes this node host every range the catalog lists and no other:
 * a range merged away is destroyed here once this node's replica of its left neighbour
 * applied the merge.
 *
 * The table starts at catalog version 1 — one route over the whole keyspace, group 1 —
 * which is exactly what `RouteCatalog.initialize()` writes, so a node routes correctly before
 * its first catalog read and before the catalog exists at all; the range-1 leader initializes
 * the catalog on its first cycle. A stale table is harmless: replicas refuse keys outside
 * their bounds and the router reloads and retries.
 */
import {
  compactRequest,
  leaseRevokeRequest,
  rangeRequest,
  type KvCommand,
  type RangeRequest,
} from "../kv/commands.js";
import { boundsContainKey, boundsEqual, firstKey, type RangeBounds } from "../kv/bounds.js";
import { KvError, KvErrorCode } from "../kv/errors.js";
import type { CommandResult, RangeResult } from "../kv/results.js";
import type { TimeToLive } from "../kv/lease-clock.js";
import type { KvHash, MvccSnapshot, SizeEstimate } from "../kv/store.js";
import { backupSnapshot } from "../kv/backup.js";
import type { Watch, WatchRequest } from "../kv/watch.js";
import type { NodeHost } from "../node/host.js";
import { NotLeaderError } from "../node/errors.js";
import type { Replica } from "../node/replica.js";
import type { ReadConsistency, RequestId } from "../node/types.js";
import { NONE, type ConfState, type NodeId, type RandomSource } from "../raft/types.js";
import type { Timers, TimerHandle } from "../transport/timers.js";
import type { Logger } from "../transport/transport.js";
import { AutoCompactor } from "./auto-compaction.js";
import { RouteCatalog } from "./catalog/catalog.js";
import { describeRoute, type RouteDescriptor, type RouteState } from "./catalog/descriptor.js";
import { replicaMetaKv } from "./catalog/meta-kv.js";
import { RouteTable } from "./routes/table.js";
import { RouteWatcher } from "./routes/watcher.js";
import { backoffDelay, DEFAULT_RETRY_POLICY, ReplicaNotHostedError } from "./router/retry.js";
import { RangeRouter } from "./router/router.js";
import { SYSTEM_PREFIX, catalogKeys } from "./router/system-keys.js";
import { RoutedWatch } from "./router/watch.js";
import type { RangeDescription, RangeOps, SplitResult } from "./split/coordinator.js";
import { SplitCoordinator } from "./split/coordinator.js";
import { MergeRefusedError } from "./split/errors.js";
import { MergeCoordinator, type MergeResult } from "./split/merge-coordinator.js";
import { LoadSampler } from "./split/load-sampler.js";
import { SplitLoop } from "./split/loop.js";
import { SplitPolicy, type RangeSizeSource, type SplitPolicyOptions } from "./split/policy.js";

/** The meta range: holds the system span (the route catalog) and is never merged away. */
export const META_RANGE_ID = 1;

/**
 * The largest range a merge takes (by its measured size): its whole store travels to the left
 * neighbour in one Raft entry. Automatic merges take far smaller ones (mergeMaxBytes).
 */
export const MAX_MERGE_BYTES = 32 * 1024 * 1024;

/** The catalog's first version, as `RouteCatalog.initialize()` writes it on a fresh store. */
const INITIAL_ROUTE: RouteDescriptor = {
  routeId: 1,
  start: new Uint8Array(0),
  end: null,
  groupId: META_RANGE_ID,
  state: "active",
  parentRouteId: null,
  splitAt: 0n,
};

export interface NodeRangesOptions {
  readonly host: NodeHost;
  readonly timers: Timers;
  /** Monotonic milliseconds (load windows, split cooldowns). */
  readonly monotonicClock: () => number;
  readonly random: RandomSource;
  readonly logger: Logger;
  /** Split ranges by load and size on their own (default true); manual splits always work. */
  readonly autoSplit?: boolean;
  /** Merge adjacent small, cold ranges on their own (default: as autoSplit); manual merges always work. */
  readonly autoMerge?: boolean;
  readonly splitPolicy?: SplitPolicyOptions;
  /** Milliseconds between split-loop cycles on the meta leader (default 1,000). */
  readonly splitIntervalMs?: number;
  /** Milliseconds between catalog polls (default 1,000; the catalog watch makes most moot). */
  readonly routePollIntervalMs?: number;
  /** Milliseconds between reconciliation passes (default 2,000). */
  readonly reconcileIntervalMs?: number;
  /** How often a range's size is measured for size splits (default 30,000 ms). */
  readonly sizeRefreshMs?: number;
  /**
   * etcd's periodic auto-compaction: keep this many milliseconds of history, compacting every
   * range on the meta leader (AutoCompactor). Absent or 0: off.
   */
  readonly autoCompactionRetentionMs?: number;
  /** Milliseconds since the epoch (what revisions follow): auto-compaction's clock. */
  readonly wallClock?: () => number;
}

/**
 * What request servers need of the keyspace: NodeRanges routes over every range; a lone
 * Replica (which has the same methods) serves a keyspace that was never split.
 */
export type RoutedKv = Pick<
  Replica,
  "propose" | "range" | "watch" | "leaseKeys" | "hashKv" | "backupImage" | "compactedPhysically"
>;

/**
 * A lease's time-to-live (read on range 1) with the keys attached to it in every range of
 * `kv` when `withKeys`: range 1's own copy lists only the keys it holds.
 */
export async function withLeaseKeys(
  timeToLive: TimeToLive | null,
  withKeys: boolean,
  kv: Pick<RoutedKv, "leaseKeys">,
): Promise<TimeToLive | null> {
  if (timeToLive === null || !withKeys) return timeToLive;
  return { ...timeToLive, keys: await kv.leaseKeys(timeToLive.id) };
}

/** One range as `concord range list` shows it. */
export interface RangeListing {
  readonly routeId: number;
  readonly groupId: number;
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
  readonly state: RouteState;
  readonly replicas: readonly number[];
  /** 0 when unknown. */
  readonly leader: number;
  readonly sizeBytes: number;
  readonly opsPerSecond: number;
  readonly catalogVersion: number;
}

/** A range's size as measured by this node, when the measurement began, and what it cost. */
export interface MeasuredSize extends SizeEstimate {
  readonly at: number;
  /** Milliseconds the measurement's steps ran (the scan's cost, not the waits between steps). */
  readonly costMs: number;
  /** The replica's changedOps when the measurement began. */
  readonly changedOps: number;
}

/**
 * A range's next measurement waits at least this many times as long as its last one ran, so
 * measuring takes at most 1/500 of the node's time per range however much history the range
 * holds: with a 30 s refresh alone, the scans of ranges holding millions of versions (after
 * 90 s of puts) ran 2.1 s of every 55 on the meta leader, 15% of its CPU under etcdctl check
 * perf.
 */
export const SIZE_MEASUREMENT_COST_RATIO = 500;

/**
 * A range is measured again only once operations numbering this share of its stored versions
 * were written since (MvccStore.changedOps), so a range nobody writes to is not scanned again
 * and again for the size it had: after the benchmark's load, the meta leader's one scan of an
 * idle range that held its history ran 1.2 s of CPU.
 */
export const SIZE_MEASUREMENT_CHANGE_SHARE = 0.05;

/**
 * Whether a range last measured as `known` (undefined: never) is due for a new measurement at
 * `now`, its replica's changedOps being `changedOps`.
 */
export function sizeMeasurementDue(
  known: MeasuredSize | undefined,
  now: number,
  refreshMs: number,
  changedOps: number,
): boolean {
  if (known === undefined) return true;
  if (now - known.at < Math.max(refreshMs, known.costMs * SIZE_MEASUREMENT_COST_RATIO)) return false;
  // A replica hosted anew (destroyed and hosted again) counts its changes from zero again.
  if (changedOps < known.changedOps) return true;
  return changedOps - known.changedOps >= Math.max(1, known.versions * SIZE_MEASUREMENT_CHANGE_SHARE);
}

/**
 * Stored versions a size measurement scans before it lets other work run: one scan of a range
 * holding tens of megabytes of history took over a second on the development VM, and every
 * request of the node waited behind it. A version costs 2.5-4.5 µs to scan there (200,000
 * versions of 295 bytes in 540-1,070 ms), so a step holds the loop for about 1-2 ms, as long
 * as a put's own work: 2,000 a step held it for 5-9 ms, a tail every request behind it paid.
 */
const SIZE_SCAN_VERSIONS_PER_STEP = 500;

/** Route reloads a backup image waits through for a split or merge to reach the table. */
const BACKUP_ATTEMPTS = 5;

export class NodeRanges {
  readonly table = new RouteTable();
  readonly catalog: RouteCatalog;
  readonly watcher: RouteWatcher;
  readonly router: RangeRouter;
  readonly sampler: LoadSampler;
  readonly policy: SplitPolicy;
  readonly coordinator: SplitCoordinator;
  readonly merges: MergeCoordinator;
  readonly loop: SplitLoop;
  /** Null when auto-compaction is off. */
  readonly autoCompactor: AutoCompactor | null;
  private readonly host: NodeHost;
  private readonly sizes = new Map<number, MeasuredSize>();
  /** Size measurements under way, by range: the steps left of each. */
  private readonly measuring = new Map<number, Generator<void, SizeEstimate, void>>();
  /** Ranges whose applied writes feed the sampler (each replica once). */
  private readonly sampled = new WeakSet<Replica>();
  /** Groups the catalog lists that this node did not host at the previous pass. */
  private missingBefore = new Set<number>();
  /** Every range a route table here listed since start (destroyMergedReplicas). */
  private readonly everListed = new Set<number>();
  private reconcileTimer: TimerHandle | null = null;
  private catalogInitialized = false;
  private initializing = false;
  private sweeping = false;
  private stopped = false;

  constructor(private readonly options: NodeRangesOptions) {
    this.host = options.host;
    const meta = this.hosted(META_RANGE_ID);
    this.table.applySnapshot(1, [INITIAL_ROUTE]);
    const metaKv = replicaMetaKv(meta);
    this.catalog = new RouteCatalog(metaKv, { keys: catalogKeys() });
    this.watcher = new RouteWatcher({
      catalog: this.catalog,
      watch: metaKv,
      timers: options.timers,
      table: this.table,
      pollIntervalMs: options.routePollIntervalMs ?? 1_000,
      logger: options.logger,
    });
    this.router = new RangeRouter({
      table: this.table,
      replicas: this.host,
      reload: () => this.watcher.refresh(),
      sleep: (ms) => this.sleep(ms),
    });
    this.sampler = new LoadSampler({ clock: options.monotonicClock, random: options.random });
    this.policy = new SplitPolicy(this.sampler, this.sizeSource(), {
      ...options.splitPolicy,
      ...(options.autoSplit === false ? NEVER_SPLIT : {}),
    });
    const ranges = this.rangeOps();
    this.coordinator = new SplitCoordinator({
      catalog: this.catalog,
      ranges,
      onSplit: (result) => this.afterSplit(result),
    });
    this.merges = new MergeCoordinator({
      catalog: this.catalog,
      ranges,
      onMerge: (result) => this.afterMerge(result),
    });
    this.loop = new SplitLoop({
      coordinator: this.coordinator,
      mergeCoordinator: this.merges,
      policy: this.policy,
      autoMerge: options.autoMerge ?? options.autoSplit !== false,
      timers: options.timers,
      clock: options.monotonicClock,
      isMetaLeader: () => this.leadsMetaRange() && this.initializeCatalogOnce(),
      intervalMs: options.splitIntervalMs ?? 1_000,
      logger: options.logger,
    });
    const retentionMs = options.autoCompactionRetentionMs ?? 0;
    this.autoCompactor =
      retentionMs > 0
        ? new AutoCompactor({
            retentionMs,
            timers: options.timers,
            wallClock: options.wallClock ?? (() => Date.now()),
            isMetaLeader: () => this.leadsMetaRange(),
            compact: (revision) => this.router.propose(compactRequest(revision)),
            logger: options.logger,
          })
        : null;
  }

  start(): void {
    this.watcher.start();
    this.loop.start();
    this.autoCompactor?.start();
    this.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reconcileTimer?.cancel();
    this.reconcileTimer = null;
    this.autoCompactor?.stop();
    for (const rangeId of [...this.measuring.keys()]) this.forgetSize(rangeId);
    await Promise.all([this.watcher.stop(), this.loop.stop()]);
  }

  // ------------------------------------------------------------------ requests

  propose(command: KvCommand, request?: RequestId): Promise<CommandResult> {
    return this.router.propose(command, request);
  }

  range(request: RangeRequest, consistency: ReadConsistency = "linearizable"): Promise<RangeResult> {
    this.recordRead(request.key);
    return this.router.range(request, consistency);
  }

  /**
   * etcd's HashKV over every range this node hosts a replica of, in key order: one CRC-32
   * continued from range to range (MvccStore.hashKv), so members holding the same versions
   * answer the same hash however the keyspace is split. Revision 0 hashes every version;
   * otherwise every version at or below `revision`, and all of a range that has not reached
   * it (KvError FutureRevision when no range has; Compacted below a range's compaction). The
   * answer's revision is the newest range's, its compacted revision the highest.
   */
  hashKv(revision = 0n): KvHash {
    const replicas = this.table.routes.flatMap((route) => this.host.replica(route.groupId) ?? []);
    const newest = replicas.reduce((max, replica) => (replica.revision > max ? replica.revision : max), 0n);
    if (revision > newest) throw new KvError(KvErrorCode.FutureRevision);
    let hash = 0;
    let compacted = 0n;
    for (const replica of replicas) {
      const hashed = replica.hashKv(revision > replica.revision ? 0n : revision, hash);
      hash = hashed.hash;
      if (hashed.compacted > compacted) compacted = hashed.compacted;
    }
    return { hash, revision: newest, compacted };
  }

  /**
   * Resolves once every range this node hosts a replica of holds none of the versions its
   * compactions removed (Replica.compactedPhysically): etcd's "physical" compaction.
   */
  async compactedPhysically(): Promise<void> {
    const replicas = this.table.routes.flatMap((route) => this.host.replica(route.groupId) ?? []);
    await Promise.all(replicas.map((replica) => replica.compactedPhysically()));
  }

  /**
   * A backup of every range, as one store image of the whole keyspace (src/kv/backup.ts; the
   * route catalog left out): what Maintenance.Snapshot streams. Every range's view opens at
   * once, after checking that this node hosts each route's range and that each still holds
   * exactly its route's span (else the routes are reloaded and checked again, a few times;
   * then KvError KeyOutsideRange), so the image holds every key once. Its revision is the
   * newest range's.
   */
  async backupImage(): Promise<MvccSnapshot> {
    for (let attempt = 1; ; attempt++) {
      const routes = this.table.routes;
      const hosted = routes.map((route) => this.hosted(route.groupId));
      if (routes.every((route, i) => boundsEqual(hosted[i]!.bounds, route))) {
        return backupSnapshot(
          hosted.map((replica) => replica.imageView()),
          SYSTEM_PREFIX,
        );
      }
      if (attempt >= BACKUP_ATTEMPTS) throw new KvError(KvErrorCode.KeyOutsideRange);
      await this.watcher.refresh();
    }
  }

  /** The keys attached to lease `id` in every range (RangeRouter.leaseKeys). */
  leaseKeys(id: bigint): Promise<Uint8Array[]> {
    return this.router.leaseKeys(id);
  }

  watch(request: WatchRequest): Watch {
    return new RoutedWatch(request, {
      routes: this.table,
      reload: () => this.watcher.refresh(),
      openRangeWatch: (rangeId, sub) => this.hosted(rangeId).watch(sub),
      floorRevision: (rangeId, revision) => this.hosted(rangeId).floorRevision(revision),
      timers: this.options.timers,
    });
  }

  // ------------------------------------------------------------------ administration

  /** Every range in key order, as this node sees it. */
  list(): RangeListing[] {
    return this.table.routes.map((route) => this.listing(route));
  }

  /** Splits the range holding `key` at `key` (SplitRefusedError when it cannot). */
  async split(key: Uint8Array): Promise<{ left: RangeListing; right: RangeListing }> {
    // A fresh cluster's catalog may not be written yet (the meta leader's first cycle does it).
    if (this.table.version <= 1) await this.catalog.initialize();
    await this.watcher.refresh().catch(() => undefined);
    const route = this.router.rangeForKey(key);
    const result = await this.coordinator.split(route.routeId, key, "manual");
    await this.watcher.refresh().catch(() => undefined);
    return { left: this.listing(result.left), right: this.listing(result.right) };
  }

  /**
   * Merges route `routeId` into its left neighbour (MergeRefusedError when it cannot, among
   * others for a range over MAX_MERGE_BYTES as measured here); resolves with the neighbour grown.
   */
  async merge(routeId: number): Promise<{ merged: RangeListing }> {
    if (this.table.version <= 1) await this.catalog.initialize();
    await this.watcher.refresh().catch(() => undefined);
    const route = this.table.routes.find((candidate) => candidate.routeId === routeId);
    const replica = route === undefined ? undefined : this.host.replica(route.groupId);
    if (replica !== undefined) {
      const { bytes } = replica.sizeEstimate();
      if (bytes > MAX_MERGE_BYTES) {
        throw new MergeRefusedError(
          "too-large",
          routeId,
          `it holds about ${bytes} bytes; a merge moves at most ${MAX_MERGE_BYTES} in one Raft entry`,
        );
      }
    }
    const result = await this.merges.merge(routeId, "manual");
    await this.watcher.refresh().catch(() => undefined);
    return { merged: this.listing(result.merged) };
  }

  // ------------------------------------------------------------------ internals

  private hosted(rangeId: number): Replica {
    const replica = this.host.replica(rangeId);
    if (replica === undefined) throw new ReplicaNotHostedError(rangeId);
    return replica;
  }

  private leadsMetaRange(): boolean {
    return this.host.replica(META_RANGE_ID)?.termLeaderRevision().leader === this.host.nodeId;
  }

  /**
   * The first cycle on a meta leader writes catalog version 1 if the store has none; until
   * that succeeded cycles do nothing else (the loop retries on its next interval).
   */
  private initializeCatalogOnce(): boolean {
    if (this.catalogInitialized) return true;
    if (this.initializing) return false;
    this.initializing = true;
    this.catalog
      .initialize()
      .then(
        () => {
          this.catalogInitialized = true;
        },
        (error: unknown) => this.options.logger.warn({ err: error }, "route catalog initialization failed"),
      )
      .finally(() => {
        this.initializing = false;
      });
    return false;
  }

  private listing(route: RouteDescriptor): RangeListing {
    const replica = this.host.replica(route.groupId);
    const status = replica?.termLeaderRevision();
    const conf = replica?.status().confState;
    const windows = this.sampler.windowLoads(route.groupId);
    return {
      routeId: route.routeId,
      groupId: route.groupId,
      start: route.start,
      end: route.end,
      state: route.state,
      replicas: conf === undefined ? [] : [...conf.voters, ...conf.learners].sort((a, b) => a - b),
      leader: status === undefined || status.leader === NONE ? 0 : status.leader,
      sizeBytes: this.sizes.get(route.groupId)?.bytes ?? 0,
      opsPerSecond: windows[windows.length - 1]?.opsPerSecond ?? 0,
      catalogVersion: this.table.version,
    };
  }

  private afterSplit(result: SplitResult): void {
    this.options.logger.info(
      { left: describeRoute(result.left), right: describeRoute(result.right), cause: result.cause },
      "range split",
    );
    this.policy.recordSplit(this.options.monotonicClock(), result.left.groupId, result.right.groupId);
    this.forgetSize(result.left.groupId);
    this.watcher.refresh().catch(() => undefined);
  }

  private afterMerge(result: MergeResult): void {
    this.options.logger.info(
      { merged: describeRoute(result.merged), removed: result.removed.routeId, cause: result.cause },
      "ranges merged",
    );
    this.policy.recordMerge(this.options.monotonicClock(), result.merged.groupId, result.removed.groupId);
    this.forgetSize(result.merged.groupId);
    this.watcher.refresh().catch(() => undefined);
  }

  private recordRead(key: Uint8Array): void {
    if (key.length === 0) return;
    const route = this.table.lookup(key);
    if (route !== undefined) this.sampler.record(route.groupId, key, "read");
  }

  /**
   * Every node hosts every range (no replica moves yet): a range this node learns of only
   * from the catalog — its parent reached it by a snapshot taken after the split — is created
   * empty and caught up by the range's leader with a snapshot. A group missing at two passes
   * in a row is created, so the usual path (the split applying here) goes first. Each hosted
   * replica's applied writes also feed the load sampler.
   */
  private reconcile(): void {
    if (this.stopped) return;
    this.destroyMergedReplicas();
    const missing = new Set<number>();
    for (const route of this.table.routes) {
      const replica = this.host.replica(route.groupId);
      if (replica !== undefined) {
        this.sampleWrites(replica);
        continue;
      }
      missing.add(route.groupId);
      if (!this.missingBefore.has(route.groupId)) continue;
      try {
        this.host.createReplica(route.groupId, { join: true });
      } catch (error) {
        this.options.logger.warn({ err: error, rangeId: route.groupId }, "could not create a listed range");
      }
    }
    this.missingBefore = missing;
    if (this.leadsMetaRange() && !this.sweeping) {
      this.sweeping = true;
      this.metaLeaderPass()
        .catch((error: unknown) => this.options.logger.warn({ err: error }, "meta leader pass failed"))
        .finally(() => {
          this.sweeping = false;
        });
    }
    this.reconcileTimer = this.options.timers.setTimeout(
      () => this.reconcile(),
      this.options.reconcileIntervalMs ?? 2_000,
    );
  }

  /**
   * Destroys this node's replica of every range merged away: one the route table no longer
   * lists whose start key the replica of the route covering it now holds, that replica
   * showing exactly its route's bounds (it applied the merge, by entry or by snapshot, and
   * nothing the table does not show yet). Nothing is destroyed before the table was loaded
   * from the catalog: the seed table (version 1, one route) lists no other range. And a
   * replica behind its route — range 1 replaying its log after a restart, with bounds from
   * before a split — shows other bounds, so it vouches for nothing. A range created here by a
   * split the table does not show yet is kept: its parent's bounds no longer hold its start.
   *
   * That is not enough on its own: a stale table can agree with a stale replica. Simulator
   * seed 21019: a table from before range 6 merged into range 8 still showed route 6 over
   * [k2, k4), and this node's replica of range 6, lagging and not yet destroyed, still showed
   * those bounds; so range 14, split off range 8 at k2~ since, looked merged into range 6 and
   * was destroyed after acknowledging entries its leader counted, then created again empty
   * once the table listed it. So the range must also be proven gone, one of two ways:
   * - some table this node loaded listed it (`everListed`): routes leave the catalog only by a
   *   merge, and a node's table only moves forward;
   * - or the covering replica's revision is above the range's (a non-empty one): the range
   *   that took it in, and every range descended from that one, applies the merge at a
   *   revision above the merged range's last, while a stale replica's revision stayed below
   *   every split and merge that happened after it — among them the range's own creation.
   * Route ids are never reused, so a destroyed range is never listed, nor created, again.
   */
  private destroyMergedReplicas(): void {
    if (this.table.version <= 1) return;
    const listed = new Set(this.table.routes.map((route) => route.groupId));
    for (const rangeId of listed) this.everListed.add(rangeId);
    for (const rangeId of this.host.rangeIds()) {
      if (rangeId === META_RANGE_ID || listed.has(rangeId)) continue;
      const replica = this.host.replica(rangeId);
      if (replica === undefined) continue;
      const start = replica.bounds.start;
      const cover = this.table.lookup(start);
      const coverReplica = cover === undefined ? undefined : this.host.replica(cover.groupId);
      const vouches =
        cover !== undefined &&
        coverReplica !== undefined &&
        boundsEqual(coverReplica.bounds, { start: cover.start, end: cover.end }) &&
        boundsContainKey(coverReplica.bounds, start);
      const provenGone =
        this.everListed.has(rangeId) ||
        (replica.revision > 0n && (coverReplica?.revision ?? 0n) > replica.revision);
      if (!vouches || !provenGone) continue;
      this.sampler.forget(rangeId);
      this.forgetSize(rangeId);
      this.host
        .destroyReplica(rangeId)
        .then(() => this.options.logger.info({ rangeId }, "destroyed the replica of a merged range"))
        .catch((error: unknown) =>
          this.options.logger.warn({ err: error, rangeId }, "could not destroy a merged range's replica"),
        );
    }
  }

  /** What the meta leader does each reconciliation pass: memberships, then lease mirrors. */
  private async metaLeaderPass(): Promise<void> {
    await this.followMembership();
    await this.sweepLeaseMirrors();
  }

  /**
   * Every range has range 1's members (replicas do not move yet): on the meta leader, each
   * pass makes one membership step per range whose configuration differs from range 1's —
   * a missing member is added as a learner (caught up by snapshot), a learner that range 1
   * has as a voter is promoted, a member range 1 no longer has is removed. Additions go
   * first, so replacing a member never leaves a range with fewer voters than before. Nothing
   * is done while range 1's own configuration is joint.
   */
  private async followMembership(): Promise<void> {
    const target = this.hosted(META_RANGE_ID).status().confState;
    if (target.votersOutgoing.length > 0) return;
    for (const route of this.table.routes) {
      const replica = route.groupId === META_RANGE_ID ? undefined : this.host.replica(route.groupId);
      if (replica === undefined) continue;
      const step = membershipStep(replica.status().confState, target);
      if (step === null) continue;
      try {
        if (step.kind === "addLearner") await replica.addLearner(step.nodeId);
        else if (step.kind === "promote") await replica.addVoter(step.nodeId);
        else await replica.removeNode(step.nodeId);
      } catch (error) {
        this.options.logger.warn({ err: error, rangeId: route.groupId, step }, "membership step failed");
      }
    }
  }

  /**
   * On the meta leader, each pass: revokes in every other range the mirrors of leases range 1
   * no longer has (expired or revoked there, or mirrored just after a revocation went by), so
   * their keys go too — within a pass of the lease's end. Each range's leases are read before
   * the linearizable barrier on range 1: a mirror is only made after its lease's grant
   * committed in range 1, so a live lease is never taken for a gone one.
   */
  private async sweepLeaseMirrors(): Promise<void> {
    const mirrored: { replica: Replica; ids: bigint[] }[] = [];
    for (const route of this.table.routes) {
      const replica = route.groupId === META_RANGE_ID ? undefined : this.host.replica(route.groupId);
      const ids = replica?.leases().map((lease) => lease.id) ?? [];
      if (replica !== undefined && ids.length > 0) mirrored.push({ replica, ids });
    }
    if (mirrored.length === 0) return;
    const home = this.hosted(META_RANGE_ID);
    await home.range(rangeRequest({ key: Uint8Array.of(0), countOnly: true }), "linearizable");
    const live = new Set(home.leases().map((lease) => lease.id));
    for (const { replica, ids } of mirrored) {
      for (const id of ids) if (!live.has(id)) await replica.propose(leaseRevokeRequest(id));
    }
  }

  private sampleWrites(replica: Replica): void {
    if (this.sampled.has(replica)) return;
    this.sampled.add(replica);
    replica.addApplyListener({
      onCommand: ({ envelope }) => {
        const key = writtenKey(envelope.command);
        if (key !== null) this.sampler.record(replica.rangeId, key, "write");
      },
    });
  }

  private rangeOps(): RangeOps {
    return {
      fence: async (groupId, splitKey, rhsGroupId) => {
        await this.withLeader(() => this.hosted(groupId).fence(splitKey, rhsGroupId));
      },
      split: async (groupId, splitKey, rhsGroupId) => {
        const replica = this.hosted(groupId);
        return this.withLeader(() =>
          applyOnce(replica.split(splitKey, rhsGroupId), () => replica.lastSplit, rhsGroupId),
        );
      },
      describe: (groupId) => this.describe(groupId),
      mergeFence: async (groupId) => {
        await this.withLeader(() => this.hosted(groupId).mergeFence());
      },
      mergeImage: async (groupId) => {
        const replica = this.hosted(groupId);
        await this.barrier(replica);
        return replica.mergeImage();
      },
      merge: async (groupId, rhsGroupId, image, lhsBoundsRevision) => {
        const replica = this.hosted(groupId);
        return this.withLeader(() =>
          applyOnce(replica.merge(rhsGroupId, image, lhsBoundsRevision), () => replica.lastMerge, rhsGroupId),
        );
      },
    };
  }

  /** Backoff waits run on the node's timers (virtual in the simulator), not the real event loop's. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.options.timers.setTimeout(() => resolve(), ms));
  }

  /**
   * Runs a range command through this node's replica, riding out a group with no leader known
   * here (NotLeaderError: nothing was proposed) with the router's bounded backoff, on the
   * node's timers. A split's new range is still electing its first leader right after the
   * split returns; a split of it made then through another member failed at once.
   */
  private async withLeader<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (!(error instanceof NotLeaderError) || attempt >= DEFAULT_RETRY_POLICY.attempts) throw error;
        await this.sleep(backoffDelay(DEFAULT_RETRY_POLICY, attempt));
      }
    }
  }

  /**
   * The range's own account of itself. A range this node's replica shows active with exactly
   * its route's bounds is answered from local state: recovery asks this of every range every
   * cycle, and a barrier would wake every quiesced range each second. (A replica behind a
   * fence or split is seen at a later cycle, once it applied it.) Anything else is read after
   * a linearizable barrier (ReadIndex).
   */
  private async describe(groupId: number): Promise<RangeDescription> {
    const replica = this.hosted(groupId);
    const route = this.table.routes.find((candidate) => candidate.groupId === groupId);
    const settled =
      route !== undefined &&
      route.state === "active" &&
      replica.rangeState === "active" &&
      boundsEqual(replica.bounds, { start: route.start, end: route.end });
    if (!settled) await this.barrier(replica);
    return {
      bounds: replica.bounds,
      state: replica.rangeState,
      plannedSplit: replica.plannedSplit,
      lastSplit: replica.lastSplit,
      lastMerge: replica.lastMerge,
      boundsRevision: replica.boundsRevision,
    };
  }

  private async barrier(replica: Replica): Promise<void> {
    try {
      await replica.range(rangeRequest({ key: firstKey(replica.bounds), countOnly: true }), "linearizable");
    } catch (error) {
      // The range shrank under the probe, or is merge-fenced (it refuses linearizable reads
      // once their read index is reached): the barrier still happened; read it as it is now.
      const passed =
        error instanceof KvError &&
        (error.code === KvErrorCode.KeyOutsideRange || error.code === KvErrorCode.RangeFenced);
      if (!passed) throw error;
    }
  }

  /**
   * Sizes for size splits, measured on this node's replica (one scan of its stored versions)
   * at most once per `sizeRefreshMs` per range, less often when the scans are costly, and not
   * again while little was written to it (sizeMeasurementDue). A size that is due is measured
   * in steps on the node's timers (SIZE_SCAN_VERSIONS_PER_STEP), so meanwhile, and before the
   * first measurement ends, the last one (or none) is answered.
   */
  private sizeSource(): RangeSizeSource {
    const refreshMs = this.options.sizeRefreshMs ?? 30_000;
    const measured = (rangeId: number): MeasuredSize | undefined => {
      const now = this.options.monotonicClock();
      const known = this.sizes.get(rangeId);
      const replica = this.host.replica(rangeId);
      if (replica !== undefined && sizeMeasurementDue(known, now, refreshMs, replica.changedOps())) {
        this.measureInSteps(replica, now);
      }
      return known;
    };
    return {
      approximateBytes: (rangeId) => measured(rangeId)?.bytes ?? 0,
      sizeMedianKey: (rangeId, bounds) => {
        const size = measured(rangeId);
        return size === undefined || !sameStart(bounds, this.host.replica(rangeId)?.bounds)
          ? null
          : size.medianKey;
      },
    };
  }

  /** Starts measuring `replica`'s size unless a measurement of its range is under way. */
  private measureInSteps(replica: Replica, startedAt: number): void {
    const { rangeId } = replica;
    if (this.stopped || this.measuring.has(rangeId)) return;
    const steps = replica.sizeEstimateSteps(SIZE_SCAN_VERSIONS_PER_STEP);
    const changedOps = replica.changedOps();
    this.measuring.set(rangeId, steps);
    let costMs = 0;
    const step = (): void => {
      // Forgotten meanwhile (split, merged, destroyed, stopped): its view is released already.
      if (this.measuring.get(rangeId) !== steps) return;
      let next: IteratorResult<void, SizeEstimate>;
      const stepStartedAt = this.options.monotonicClock();
      try {
        next = steps.next();
        costMs += this.options.monotonicClock() - stepStartedAt;
      } catch (error) {
        this.measuring.delete(rangeId);
        this.options.logger.warn({ err: error, rangeId }, "range size measurement failed");
        return;
      }
      if (next.done !== true) {
        this.options.timers.setTimeout(step, 0);
        return;
      }
      this.measuring.delete(rangeId);
      this.sizes.set(rangeId, { at: startedAt, costMs, changedOps, ...next.value });
    };
    step();
  }

  /** Drops what is known of a range's size and stops a measurement of it (releasing its view). */
  private forgetSize(rangeId: number): void {
    this.sizes.delete(rangeId);
    const steps = this.measuring.get(rangeId);
    this.measuring.delete(rangeId);
    steps?.return(undefined as never);
  }
}

/**
 * The revision of a split or merge with right-hand range `rhsRangeId`, proposed by `applied`.
 * A retry after it applied (a new request id) finds the range's bounds moved on —
 * KeyOutsideRange — while the range remembers doing it (`last`): that is the command done.
 */
async function applyOnce(
  applied: Promise<bigint>,
  last: () => { readonly rhsRangeId: number; readonly revision: bigint } | null,
  rhsRangeId: number,
): Promise<{ revision: bigint }> {
  try {
    return { revision: await applied };
  } catch (error) {
    const done = last();
    if (
      error instanceof KvError &&
      error.code === KvErrorCode.KeyOutsideRange &&
      done !== null &&
      done.rhsRangeId === rhsRangeId
    ) {
      return { revision: done.revision };
    }
    throw error;
  }
}

/** The next change that brings `current` toward `target` (voters and learners), or null. */
function membershipStep(
  current: ConfState,
  target: ConfState,
): { readonly kind: "addLearner" | "promote" | "remove"; readonly nodeId: NodeId } | null {
  if (current.votersOutgoing.length > 0) return null;
  const members = new Set([...current.voters, ...current.learners]);
  for (const nodeId of [...target.voters, ...target.learners]) {
    if (!members.has(nodeId)) return { kind: "addLearner", nodeId };
  }
  for (const nodeId of target.voters) {
    if (current.learners.includes(nodeId)) return { kind: "promote", nodeId };
  }
  const wanted = new Set([...target.voters, ...target.learners]);
  for (const nodeId of members) {
    if (!wanted.has(nodeId)) return { kind: "remove", nodeId };
  }
  return null;
}

function sameStart(a: RangeBounds, b: RangeBounds | undefined): boolean {
  return b !== undefined && Buffer.compare(a.start, b.start) === 0;
}

/** The key a write names first (the sampler weighs writes by it); null for non-key commands. */
function writtenKey(command: KvCommand): Uint8Array | null {
  switch (command.kind) {
    case "put":
    case "deleteRange":
      return command.key;
    case "txn": {
      const first = command.success[0] ?? command.failure[0];
      if (first === undefined || first.kind === "txn") return command.compares[0]?.key ?? null;
      return first.key;
    }
    default:
      return null;
  }
}

const NEVER_SPLIT: SplitPolicyOptions = {
  loadSplitOpsPerSecond: Number.MAX_SAFE_INTEGER,
  maxRangeBytes: Number.MAX_SAFE_INTEGER,
};
