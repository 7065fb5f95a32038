/**
 * MergeCoordinator: carries a merge of route R = [b, c) into its left neighbour out against the
 * route catalog and the ranges, crash-safe by rolling forward. The protocol (the merge contract):
 *
 *   1. `mergeFence` R's range: from here it refuses every state change, its revision frozen;
 *   2. save the catalog with R migrating-source;
 *   3. take R's image (`mergeImage`: a barrier on the local replica, then its whole store);
 *   4. `merge` the image into the range of the route that ends at b now (normally the left
 *      neighbour; its right half if it split meanwhile): that range becomes [a, c). The
 *      command names the bounds revision the target was described at, and the catalog is read
 *      again after that look and must still show R: a target that took R in already (by
 *      another coordinator) and split at b since ends at b again, but refuses the command;
 *   5. save the catalog with that route ending at c and R removed.
 *
 * Steps 2 to 5 are chosen by looking at what the catalog and the ranges say now (`rollForward`),
 * so each is idempotent: a crash after any step, followed by `recover()`, ends in exactly the
 * new layout. Once R is merge-fenced the merge only goes forward (some route always ends at b).
 * A catalog showing R migrating-source while its range is not merge-fenced is set back to
 * active. A left neighbour busy with a split or merge of its own holds the merge up
 * (MergeConflictError, retryable); the split's and this recovery finish both.
 */
import { boundsEqual } from "../../kv/bounds.js";
import { bytesEqual } from "../../kv/bytes.js";
import type { CatalogSnapshot } from "../catalog/catalog.js";
import { describeRoute, routeContains, type RouteDescriptor } from "../catalog/descriptor.js";
import type { AppliedMerge, RangeDescription, RangeOps, SplitCatalog } from "./coordinator.js";
import { MergeConflictError, MergeRefusedError, MergeStateError } from "./errors.js";
import {
  boundsOf,
  isCatalogRace,
  recoverRoutes,
  replaceRoute,
  RoutesUnderWay,
  type RecoveryPass,
} from "./route-edits.js";
import { positiveInteger } from "../option-checks.js";

/** What the merge coordinator needs of the catalog (RouteCatalog). */
export type MergeCatalog = Pick<SplitCatalog, "snapshot" | "save">;

/** Why a merge was made: the policy's (cold, small ranges), an operator's, or a recovery pass. */
export type MergeCause = "cold" | "manual" | "recovered";

export interface MergeResult {
  /** The left route, grown to R's end (its id, group and state unchanged). */
  readonly merged: RouteDescriptor;
  /** R as this coordinator last saw it in the catalog (normally migrating-source). */
  readonly removed: RouteDescriptor;
  /** The merge entry's revision in the left range. */
  readonly revision: bigint;
  /** The catalog version that shows the new layout. */
  readonly catalogVersion: number;
  readonly cause: MergeCause;
}

export interface MergeCounters {
  /** Merges finished, by cause. */
  readonly merges: Record<MergeCause, number>;
  /** Merges refused before anything changed (MergeRefusedError). */
  refused: number;
  /** Merges and recoveries that ended in another error. */
  failures: number;
  /** Catalog-only migrating-source routes set back to active by recover(). */
  unfenced: number;
  /** Catalog saves (and merge targets) that lost a race and were retried. */
  catalogRaces: number;
}

export interface MergeCoordinatorOptions {
  readonly catalog: MergeCatalog;
  readonly ranges: RangeOps;
  /** Races tolerated per merge before MergeConflictError (default 16). */
  readonly maxAttempts?: number;
  /** Called after each finished merge, manual or not (e.g. to start the policy's cooldown). */
  readonly onMerge?: (result: MergeResult) => void;
}

export type MergeRecoveryReport = RecoveryPass<MergeResult>;

/** The next protocol step for route R. */
type Step =
  | { readonly kind: "nothing" }
  | { readonly kind: "save-migrating" }
  | { readonly kind: "unfence" }
  | { readonly kind: "merge"; readonly target: RouteDescriptor; readonly boundsRevision: bigint }
  | { readonly kind: "save-merged"; readonly target: RouteDescriptor; readonly revision: bigint };

/** Whether the range applied the merge of `rhsGroupId` and now ends where `right` ended. */
function appliedMerge(
  range: RangeDescription,
  rhsGroupId: number,
  right: RouteDescriptor,
): AppliedMerge | null {
  const merge = range.lastMerge;
  if (merge === null || merge.rhsRangeId !== rhsGroupId) return null;
  const end = range.bounds.end;
  const endsAtRight = end === null || right.end === null ? end === right.end : bytesEqual(end, right.end);
  return endsAtRight ? merge : null;
}

/** Whether `snapshot` still shows R as it was and `target` as the route ending where R starts. */
function mergeStillDue(snapshot: CatalogSnapshot, right: RouteDescriptor, target: RouteDescriptor): boolean {
  const nowRight = snapshot.routes.find((r) => r.routeId === right.routeId);
  const nowTarget = snapshot.routes.find((r) => r.routeId === target.routeId);
  return (
    nowRight !== undefined &&
    nowRight.state === "migrating-source" &&
    boundsEqual(boundsOf(nowRight), boundsOf(right)) &&
    nowTarget !== undefined &&
    nowTarget.state === target.state &&
    boundsEqual(boundsOf(nowTarget), boundsOf(target))
  );
}

export class MergeCoordinator {
  readonly catalog: MergeCatalog;
  readonly counters: MergeCounters = {
    merges: { cold: 0, manual: 0, recovered: 0 },
    refused: 0,
    failures: 0,
    unfenced: 0,
    catalogRaces: 0,
  };
  private readonly ranges: RangeOps;
  private readonly maxAttempts: number;
  private readonly underWay = new RoutesUnderWay();

  constructor(private readonly options: MergeCoordinatorOptions) {
    this.catalog = options.catalog;
    this.ranges = options.ranges;
    this.maxAttempts = positiveInteger("maxAttempts", options.maxAttempts ?? 16);
  }

  /**
   * Merges route `rightRouteId` into its left neighbour. Throws MergeRefusedError (nothing
   * changed) for an unknown route, the first route, a route or left neighbour not active, or a
   * range fenced for a split (or split or merged without the catalog showing it yet). Once the
   * range is merge-fenced, other errors leave a merge that `recover()` finishes.
   */
  async merge(rightRouteId: number, cause: Exclude<MergeCause, "recovered">): Promise<MergeResult> {
    return this.underWay.during(rightRouteId, async () => {
      try {
        const snapshot = await this.catalog.snapshot();
        const right = snapshot.routes.find((r) => r.routeId === rightRouteId);
        if (right === undefined) throw new MergeRefusedError("unknown-route", rightRouteId, "no such route");
        if (right.start.length === 0) {
          throw new MergeRefusedError(
            "first-route",
            rightRouteId,
            `${describeRoute(right)} starts the keyspace`,
          );
        }
        if (right.state !== "active") {
          throw new MergeRefusedError(
            "not-active",
            rightRouteId,
            `${describeRoute(right)} is ${right.state}`,
          );
        }
        const left = snapshot.routes.find((r) => r.end !== null && bytesEqual(r.end, right.start));
        if (left === undefined) throw new MergeStateError(rightRouteId, "no route ends where it starts");
        if (left.state !== "active") {
          throw new MergeRefusedError(
            "left-not-active",
            rightRouteId,
            `its left neighbour ${describeRoute(left)} is ${left.state}`,
          );
        }
        const range = await this.ranges.describe(right.groupId);
        if (range.state === "write-fenced") {
          throw new MergeRefusedError("fenced", rightRouteId, "its range is fenced for a split");
        }
        if (!boundsEqual(range.bounds, boundsOf(right))) {
          throw new MergeRefusedError(
            "fenced",
            rightRouteId,
            "a split or merge of its range applied and the catalog does not show it yet",
          );
        }
        if (range.state === "active") await this.fence(right);
        const result = await this.rollForward(right, null, cause, true);
        if (result === null) throw new MergeStateError(rightRouteId, "the range is not merge-fenced");
        return result;
      } catch (error) {
        if (error instanceof MergeRefusedError) this.counters.refused += 1;
        else this.counters.failures += 1;
        throw error;
      }
    });
  }

  /**
   * Rolls forward every merge left half-done: each route the catalog shows migrating-source and
   * each active route (but the first) whose range is merge-fenced (one describe per route),
   * except those whose merge() is under way on this coordinator. One route's failure does not
   * stop the others. `snapshot`: a catalog read the caller just made (default: a fresh one).
   */
  async recover(snapshot?: CatalogSnapshot): Promise<MergeRecoveryReport> {
    return recoverRoutes(
      snapshot ?? (await this.catalog.snapshot()),
      (route) =>
        !this.underWay.has(route.routeId) &&
        (route.state === "migrating-source" || (route.state === "active" && route.start.length > 0)),
      (route, shared) => this.rollForward(route, shared, "recovered", false),
      () => (this.counters.failures += 1),
    );
  }

  /** Proposes the fence; a failure that left the range fenced for a split is a refusal. */
  private async fence(right: RouteDescriptor): Promise<void> {
    try {
      await this.ranges.mergeFence(right.groupId);
    } catch (error) {
      const range = await this.ranges.describe(right.groupId).catch(() => null);
      if (range?.state === "merge-fenced") return;
      if (range?.state === "write-fenced") {
        throw new MergeRefusedError("fenced", right.routeId, "its range was fenced for a split first");
      }
      throw error;
    }
  }

  /**
   * Takes the merge of route R (`known`: as the caller last read it) through the remaining
   * steps, each chosen from what the catalog and the ranges say now. `ownFence`: this caller
   * merge-fenced the range (so it must be fenced). Returns the finished merge, or null when
   * there was nothing to finish.
   */
  private async rollForward(
    known: RouteDescriptor,
    firstSnapshot: CatalogSnapshot | null,
    cause: MergeCause,
    ownFence: boolean,
  ): Promise<MergeResult | null> {
    const rightRouteId = known.routeId;
    let races = 0;
    let snapshot = firstSnapshot;
    let lastRight = known;
    let applied: { readonly targetRouteId: number; readonly revision: bigint } | null = null;
    // At most three steps make progress (save migrating, merge, save merged); the rest are races.
    for (let round = 0; round < this.maxAttempts + 3; round++) {
      snapshot ??= await this.catalog.snapshot();
      const right = snapshot.routes.find((r) => r.routeId === rightRouteId);
      if (right === undefined) return this.finishedElsewhere(snapshot, lastRight, applied, cause);
      lastRight = right;
      const step = await this.decide(snapshot, right, ownFence, races);
      try {
        switch (step.kind) {
          case "nothing":
            return null;
          case "unfence":
            await this.catalog.save(
              snapshot.version,
              replaceRoute(snapshot.routes, right.routeId, [{ ...right, state: "active" }]),
            );
            this.counters.unfenced += 1;
            return null;
          case "save-migrating":
            await this.catalog.save(
              snapshot.version,
              replaceRoute(snapshot.routes, right.routeId, [{ ...right, state: "migrating-source" }]),
            );
            break;
          case "merge": {
            const image = await this.ranges.mergeImage(right.groupId);
            // The catalog read after the target's description must still show R and the
            // target as decided: then the target had not taken R in when it was described, and
            // its bounds revision changes if it does before the command applies.
            const after = await this.catalog.snapshot();
            if (!mergeStillDue(after, right, step.target)) {
              this.counters.catalogRaces += 1;
              races += 1;
              snapshot = after;
              continue;
            }
            const revision = await this.applyMerge(step.target, right, image, step.boundsRevision);
            if (revision !== null) {
              applied = { targetRouteId: step.target.routeId, revision };
            } else {
              // The target split or changed between the look and the command: look again.
              this.counters.catalogRaces += 1;
              races += 1;
              if (races > this.maxAttempts) throw new MergeConflictError(rightRouteId, races);
            }
            break;
          }
          case "save-merged": {
            const merged: RouteDescriptor = { ...step.target, end: right.end };
            const routes = replaceRoute(
              replaceRoute(snapshot.routes, step.target.routeId, [merged]),
              right.routeId,
              [],
            );
            const saved = await this.catalog.save(snapshot.version, routes);
            return this.finish({
              merged,
              removed: right,
              revision: step.revision,
              catalogVersion: saved.version,
              cause,
            });
          }
        }
      } catch (error) {
        if (!isCatalogRace(error)) throw error;
        this.counters.catalogRaces += 1;
        races += 1;
        if (races > this.maxAttempts) break;
      }
      snapshot = null;
    }
    throw new MergeConflictError(rightRouteId, races);
  }

  private async decide(
    snapshot: CatalogSnapshot,
    right: RouteDescriptor,
    ownFence: boolean,
    races: number,
  ): Promise<Step> {
    const range = await this.ranges.describe(right.groupId);
    if (range.state !== "merge-fenced") {
      if (ownFence) throw new MergeStateError(right.routeId, "the range is not merge-fenced");
      return right.state === "migrating-source" ? { kind: "unfence" } : { kind: "nothing" };
    }
    if (!boundsEqual(range.bounds, boundsOf(right))) {
      // Fenced after a split or merge of the range applied whose layout the catalog does not
      // show yet: that operation's roll-forward saves it, then this one goes on.
      if (!bytesEqual(range.bounds.start, right.start)) {
        throw new MergeStateError(right.routeId, `the range's bounds do not match ${describeRoute(right)}`);
      }
      throw new MergeConflictError(
        right.routeId,
        races,
        "waits for a split or merge of its range to reach the catalog",
      );
    }
    if (right.state === "active") return { kind: "save-migrating" };
    if (right.state !== "migrating-source") {
      throw new MergeConflictError(
        right.routeId,
        races,
        `waits for the catalog to show ${describeRoute(right)} active (it is ${right.state})`,
      );
    }
    const target = snapshot.routes.find((r) => r.end !== null && bytesEqual(r.end, right.start));
    if (target === undefined) throw new MergeStateError(right.routeId, "no route ends where it starts");
    const targetRange = await this.ranges.describe(target.groupId);
    const merged = appliedMerge(targetRange, right.groupId, right);
    if (merged !== null && bytesEqual(targetRange.bounds.start, target.start)) {
      return { kind: "save-merged", target, revision: merged.revision };
    }
    if (targetRange.state === "active" && boundsEqual(targetRange.bounds, boundsOf(target))) {
      return { kind: "merge", target, boundsRevision: targetRange.boundsRevision };
    }
    throw new MergeConflictError(
      right.routeId,
      races,
      `waits for its left neighbour ${describeRoute(target)} to finish a split or merge of its own`,
    );
  }

  /**
   * Proposes the merge. Returns its revision (also when a concurrent recovery's merge applied
   * first), or null when the target no longer is the active range ending at R's start with the
   * bounds revision it was described at (it split, merged or was fenced meanwhile). Any other
   * failure is the merge's own error.
   */
  private async applyMerge(
    target: RouteDescriptor,
    right: RouteDescriptor,
    image: Uint8Array,
    boundsRevision: bigint,
  ): Promise<bigint | null> {
    try {
      return (await this.ranges.merge(target.groupId, right.groupId, image, boundsRevision)).revision;
    } catch (error) {
      const range = await this.ranges.describe(target.groupId).catch(() => null);
      if (range === null) throw error;
      const merged = appliedMerge(range, right.groupId, right);
      if (merged !== null) return merged.revision;
      const unchanged =
        range.state === "active" &&
        boundsEqual(range.bounds, boundsOf(target)) &&
        range.boundsRevision === boundsRevision;
      if (!unchanged) return null;
      throw error;
    }
  }

  /**
   * Route R left the catalog while this caller rolled its merge forward: another coordinator
   * saved the layout. Its result is read from the route now covering R's start; a recovery
   * pass leaves it to whoever finished it.
   */
  private async finishedElsewhere(
    snapshot: CatalogSnapshot,
    right: RouteDescriptor,
    applied: { readonly targetRouteId: number; readonly revision: bigint } | null,
    cause: MergeCause,
  ): Promise<MergeResult | null> {
    if (cause === "recovered" && applied === null) return null;
    const merged = snapshot.routes.find((r) => routeContains(r, right.start));
    if (merged === undefined || bytesEqual(merged.start, right.start)) {
      throw new MergeStateError(right.routeId, "the route left the catalog and no route absorbed it");
    }
    let revision = applied?.targetRouteId === merged.routeId ? applied.revision : null;
    if (revision === null) {
      const range = await this.ranges.describe(merged.groupId);
      revision = range.lastMerge?.rhsRangeId === right.groupId ? range.lastMerge.revision : null;
    }
    if (revision === null) {
      throw new MergeStateError(
        right.routeId,
        "merged by another coordinator; its revision is no longer known",
      );
    }
    return this.finish({ merged, removed: right, revision, catalogVersion: snapshot.version, cause });
  }

  private finish(result: MergeResult): MergeResult {
    this.counters.merges[result.cause] += 1;
    this.options.onMerge?.(result);
    return result;
  }
}
