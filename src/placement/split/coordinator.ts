/**
 * SplitCoordinator: carries a split out against the route catalog and the range, crash-safe by
 * rolling forward. The protocol (the multi-range contract):
 *
 *   1. allocate the right side's route id n (= its group id) from the catalog;
 *   2. `fence` the range (group g) for the plan (splitKey, n): writes are refused from here;
 *   3. save the catalog with route r write-fenced;
 *   4. `split` the range: keys >= splitKey move to the new range n;
 *   5. save the catalog with r = [start, splitKey) active and n = [splitKey, end) active,
 *      parent r, splitAt = the split's revision.
 *
 * Steps 3 to 5 are chosen by looking at what the catalog and the range say now
 * (`rollForward`), so each is idempotent: a crash (an exception) after any step, followed by
 * `recover()`, ends in exactly the new layout. A crash after step 1 only wastes an id (the
 * range was never fenced). Catalog version races re-read and retry, a bounded number of times.
 * Merges (merge-coordinator.ts) share the `RangeOps` interface; a split leaves a range a merge
 * is under way in (its route migrating, its range merge-fenced or grown) to the merge's
 * roll-forward.
 */
import { boundsEqual, type RangeBounds } from "../../kv/bounds.js";
import { bytesEqual, compareBytes } from "../../kv/bytes.js";
import type { CatalogSnapshot, RouteCatalog } from "../catalog/catalog.js";
import { describeRoute, type RouteDescriptor } from "../catalog/descriptor.js";
import { SplitConflictError, SplitRefusedError, SplitStateError } from "./errors.js";
import {
  boundsOf,
  isCatalogRace,
  recoverRoutes,
  replaceRoute,
  RoutesUnderWay,
  type RecoveryPass,
} from "./route-edits.js";
import { SYSTEM_SPAN_END, splitKeyRefusal } from "./split-key.js";
import { positiveInteger } from "../option-checks.js";

/** A split a range is fenced for. */
export interface PlannedSplit {
  readonly splitKey: Uint8Array;
  readonly rhsRangeId: number;
}

/** A split a range applied, with the revision of its split entry. */
export interface AppliedSplit extends PlannedSplit {
  readonly revision: bigint;
}

/** A merge a range applied: the right-hand range it absorbed, and the merge entry's revision. */
export interface AppliedMerge {
  readonly rhsRangeId: number;
  readonly revision: bigint;
}

/** What a range's store says of itself (read on its leader). */
export interface RangeDescription {
  readonly bounds: RangeBounds;
  /** write-fenced: for a split (plannedSplit); merge-fenced: about to be merged into its left neighbour. */
  readonly state: "active" | "write-fenced" | "merge-fenced";
  /** The split the range is fenced for (null when active). */
  readonly plannedSplit: PlannedSplit | null;
  /**
   * The last split the range applied (null: none, or not remembered). Needed only to finish
   * a split that applied before its catalog save did.
   */
  readonly lastSplit: AppliedSplit | null;
  /** The last merge the range applied as the left side (null: none). */
  readonly lastMerge: AppliedMerge | null;
  /** The revision of its last split or merge (kv boundsRevision): a merge into it names it. */
  readonly boundsRevision: bigint;
}

/** The range commands the coordinator needs (the node implements them over its replicas). */
export interface RangeOps {
  /** Proposes the `fence` command on the group; idempotent for the same plan. */
  fence(groupId: number, splitKey: Uint8Array, rhsGroupId: number): Promise<void>;
  /** Proposes the `split` command; resolves with the split entry's revision. */
  split(groupId: number, splitKey: Uint8Array, rhsGroupId: number): Promise<{ revision: bigint }>;
  describe(groupId: number): Promise<RangeDescription>;
  /** Proposes `merge-fence` on the right-hand range's group; idempotent. */
  mergeFence(groupId: number): Promise<void>;
  /** A linearizable barrier on the local replica of the group, then its merge image. */
  mergeImage(groupId: number): Promise<Uint8Array>;
  /**
   * Proposes `merge` on the left group with the right group's image, refused unless the left
   * range's bounds revision is still `lhsBoundsRevision`; resolves with the merge entry's
   * revision (also when a retry finds this very merge applied).
   */
  merge(
    groupId: number,
    rhsGroupId: number,
    image: Uint8Array,
    lhsBoundsRevision: bigint,
  ): Promise<{ revision: bigint }>;
}

/** What the coordinator needs of the catalog (RouteCatalog). */
export type SplitCatalog = Pick<RouteCatalog, "snapshot" | "save" | "allocateRouteIds">;

/** Why a split was made: the policy's reasons, an operator's request, or a recovery pass. */
export type SplitCause = "load" | "size" | "manual" | "recovered";

export interface SplitResult {
  /** Route r, now [start, splitKey). */
  readonly left: RouteDescriptor;
  /** Route n, [splitKey, end). */
  readonly right: RouteDescriptor;
  /** The split entry's revision (right.splitAt). */
  readonly revision: bigint;
  /** The catalog version that shows the new layout. */
  readonly catalogVersion: number;
  readonly cause: SplitCause;
}

export interface SplitCounters {
  /** Splits finished, by cause. */
  readonly splits: Record<SplitCause, number>;
  /** Splits refused before anything changed (SplitRefusedError). */
  refused: number;
  /** Splits and recoveries that ended in another error. */
  failures: number;
  /** Catalog-only fences undone by recover() (range not fenced, not split). */
  unfenced: number;
  /** Catalog saves that lost a version race and were retried. */
  catalogRaces: number;
}

export interface SplitCoordinatorOptions {
  readonly catalog: SplitCatalog;
  readonly ranges: RangeOps;
  /** Split keys must be strictly greater (default: the end of the system span). */
  readonly minSplitKey?: Uint8Array;
  /** Catalog races tolerated per split before SplitConflictError (default 16). */
  readonly maxAttempts?: number;
  /** Called after each finished split, manual or not (e.g. to start the policy's cooldown). */
  readonly onSplit?: (result: SplitResult) => void;
}

export type RecoveryReport = RecoveryPass<SplitResult>;

/** The next protocol step for one route. */
type Step =
  | { readonly kind: "nothing" }
  | { readonly kind: "merge-pending" }
  | { readonly kind: "save-fenced"; readonly plan: PlannedSplit }
  | { readonly kind: "split"; readonly plan: PlannedSplit }
  | { readonly kind: "save-layout"; readonly applied: AppliedSplit }
  | { readonly kind: "unfence" };

/** Whether the range starts where the route does and ends beyond it (a merge applied). */
function grewPast(bounds: RangeBounds, route: RouteDescriptor): boolean {
  if (!bytesEqual(bounds.start, route.start) || route.end === null) return false;
  return bounds.end === null || compareBytes(bounds.end, route.end) > 0;
}

function samePlan(a: PlannedSplit, b: PlannedSplit): boolean {
  return a.rhsRangeId === b.rhsRangeId && bytesEqual(a.splitKey, b.splitKey);
}

export class SplitCoordinator {
  readonly catalog: SplitCatalog;
  readonly counters: SplitCounters = {
    splits: { load: 0, size: 0, manual: 0, recovered: 0 },
    refused: 0,
    failures: 0,
    unfenced: 0,
    catalogRaces: 0,
  };
  private readonly ranges: RangeOps;
  private readonly minSplitKey: Uint8Array;
  private readonly maxAttempts: number;
  private readonly underWay = new RoutesUnderWay();

  constructor(private readonly options: SplitCoordinatorOptions) {
    this.catalog = options.catalog;
    this.ranges = options.ranges;
    this.minSplitKey = options.minSplitKey ?? SYSTEM_SPAN_END;
    this.maxAttempts = positiveInteger("maxAttempts", options.maxAttempts ?? 16);
  }

  /**
   * Splits route `routeId` at `splitKey` (strictly inside the route, above the system span).
   * Throws SplitRefusedError (nothing changed) for an unknown or non-active route or a bad
   * key; other errors leave a split that `recover()` finishes (or a wasted id, if the range
   * was not fenced yet).
   */
  async split(
    routeId: number,
    splitKey: Uint8Array,
    cause: Exclude<SplitCause, "recovered"> = "manual",
  ): Promise<SplitResult> {
    return this.underWay.during(routeId, async () => {
      try {
        if (!(splitKey instanceof Uint8Array)) throw new TypeError("splitKey must be a byte array");
        const snapshot = await this.catalog.snapshot();
        const route = snapshot.routes.find((r) => r.routeId === routeId);
        if (route === undefined) throw new SplitRefusedError("unknown-route", routeId, "no such route");
        if (route.state !== "active") {
          throw new SplitRefusedError("not-active", routeId, `${describeRoute(route)} is ${route.state}`);
        }
        const refusal = splitKeyRefusal(boundsOf(route), splitKey, this.minSplitKey);
        if (refusal !== null) {
          throw new SplitRefusedError(
            refusal,
            routeId,
            `key ${Buffer.from(splitKey).toString("hex")} for ${describeRoute(route)}`,
          );
        }
        const [rhsRangeId] = await this.catalog.allocateRouteIds(1);
        const plan: PlannedSplit = { splitKey: splitKey.slice(), rhsRangeId: rhsRangeId! };
        await this.ranges.fence(route.groupId, plan.splitKey, plan.rhsRangeId);
        const result = await this.rollForward(routeId, plan, null, cause);
        if (result === null)
          throw new SplitStateError(routeId, "the range is neither fenced for the split nor split");
        return result;
      } catch (error) {
        if (error instanceof SplitRefusedError) this.counters.refused += 1;
        else this.counters.failures += 1;
        throw error;
      }
    });
  }

  /**
   * Rolls forward every split left half-done: each route the catalog shows write-fenced, and
   * each active route whose range is fenced or already split (one describe per route). A
   * route the catalog shows write-fenced whose range is neither fenced nor split is set back
   * to active. One route's failure does not stop the others. Migrating routes (a merge under
   * way) are the merge coordinator's, and routes whose split() is under way here are left to
   * it. `snapshot`: a catalog read the caller just made (default: a fresh one).
   */
  async recover(snapshot?: CatalogSnapshot): Promise<RecoveryReport> {
    return recoverRoutes(
      snapshot ?? (await this.catalog.snapshot()),
      (route) =>
        !this.underWay.has(route.routeId) && (route.state === "active" || route.state === "write-fenced"),
      (route, shared) => this.rollForward(route.routeId, null, shared, "recovered"),
      () => (this.counters.failures += 1),
    );
  }

  /**
   * Takes route `routeId` through the remaining protocol steps, each chosen from what the
   * catalog and the range say now. `plan`: the split this caller fenced for (null: whatever
   * the range says). Returns the finished split, or null when there was nothing to finish.
   */
  private async rollForward(
    routeId: number,
    plan: PlannedSplit | null,
    firstSnapshot: CatalogSnapshot | null,
    cause: SplitCause,
  ): Promise<SplitResult | null> {
    let races = 0;
    // A recovery adopts the plan the range is fenced for; only a caller's own split reports a wait.
    const ownPlan = plan !== null;
    let applied: AppliedSplit | null = null;
    let snapshot = firstSnapshot;
    // At most three steps make progress (save fenced, split, save layout); the rest are races.
    for (let round = 0; round < this.maxAttempts + 3; round++) {
      snapshot ??= await this.catalog.snapshot();
      const route = snapshot.routes.find((r) => r.routeId === routeId);
      if (route === undefined) throw new SplitStateError(routeId, "the route left the catalog");
      if (plan !== null) {
        const done = this.finished(snapshot, route, plan, cause);
        if (done !== null) return done;
      }
      const description = await this.ranges.describe(route.groupId);
      plan ??= description.plannedSplit;
      const step = this.decide(route, description, plan, applied);
      try {
        switch (step.kind) {
          case "nothing":
            return null;
          case "merge-pending":
            if (!ownPlan) return null;
            throw new SplitConflictError(
              routeId,
              races,
              "waits for a merge into its range to reach the catalog",
            );
          case "split":
            applied = await this.applySplit(route.groupId, step.plan);
            break;
          case "save-fenced":
            await this.catalog.save(
              snapshot.version,
              replaceRoute(snapshot.routes, route.routeId, [{ ...route, state: "write-fenced" }]),
            );
            break;
          case "unfence":
            await this.catalog.save(
              snapshot.version,
              replaceRoute(snapshot.routes, route.routeId, [{ ...route, state: "active" }]),
            );
            this.counters.unfenced += 1;
            return null;
          case "save-layout": {
            const { left, right } = this.layout(snapshot, route, step.applied);
            const saved = await this.catalog.save(
              snapshot.version,
              replaceRoute(snapshot.routes, route.routeId, [left, right]),
            );
            const ours = plan === null || samePlan(plan, step.applied);
            const result = this.finish({
              left,
              right,
              revision: step.applied.revision,
              catalogVersion: saved.version,
              cause: ours ? cause : "recovered",
            });
            // Another split's layout, saved on its behalf: our own plan goes on.
            if (ours) return result;
            break;
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
    throw new SplitConflictError(routeId, races);
  }

  /**
   * Proposes the split. When that fails because someone else's split of the same plan applied
   * first (a concurrent recovery), the range's last split says so and the roll-forward goes on.
   * Any other failure (the range cannot even be described) is the split's own error.
   */
  private async applySplit(groupId: number, plan: PlannedSplit): Promise<AppliedSplit> {
    try {
      const { revision } = await this.ranges.split(groupId, plan.splitKey, plan.rhsRangeId);
      return { ...plan, revision };
    } catch (error) {
      const description = await this.ranges.describe(groupId).catch(() => null);
      if (description === null) throw error;
      const { lastSplit, bounds } = description;
      const appliedHere =
        lastSplit !== null &&
        samePlan(lastSplit, plan) &&
        bounds.end !== null &&
        bytesEqual(bounds.end, plan.splitKey);
      if (appliedHere) return lastSplit;
      throw error;
    }
  }

  /** The finished split when the catalog already shows the layout `plan` leads to. */
  private finished(
    snapshot: CatalogSnapshot,
    route: RouteDescriptor,
    plan: PlannedSplit,
    cause: SplitCause,
  ): SplitResult | null {
    if (route.state !== "active" || route.end === null || !bytesEqual(route.end, plan.splitKey)) return null;
    const right = snapshot.routes.find((r) => r.routeId === plan.rhsRangeId);
    if (right === undefined || !bytesEqual(right.start, plan.splitKey)) return null;
    return this.finish({
      left: route,
      right,
      revision: right.splitAt,
      catalogVersion: snapshot.version,
      cause,
    });
  }

  private finish(result: SplitResult): SplitResult {
    this.counters.splits[result.cause] += 1;
    this.options.onSplit?.(result);
    return result;
  }

  private decide(
    route: RouteDescriptor,
    range: RangeDescription,
    plan: PlannedSplit | null,
    applied: AppliedSplit | null,
  ): Step {
    const routeBounds = boundsOf(route);
    // A merge applied (the range absorbed its right neighbour) and the catalog does not show it
    // yet: the merge's roll-forward saves it; a split fenced for a key of the old route goes on
    // from there.
    if (grewPast(range.bounds, route)) return { kind: "merge-pending" };
    if (!boundsEqual(range.bounds, routeBounds)) {
      // The range shrank: a split applied that the catalog does not show yet. Its layout is
      // saved first, whoever asks: also a caller with another plan, and also when the range
      // was fenced again since (a split planned from an older catalog) — that split goes on
      // once the catalog shows the shrunk route.
      const split = [applied, range.lastSplit].find(
        (s): s is AppliedSplit =>
          s !== null && range.bounds.end !== null && bytesEqual(s.splitKey, range.bounds.end),
      );
      if (split === undefined) {
        throw new SplitStateError(
          route.routeId,
          `the range's bounds differ from ${describeRoute(route)} and its last split is unknown`,
        );
      }
      this.checkPlan(route, range.bounds, split, true);
      return { kind: "save-layout", applied: split };
    }
    if (range.state === "write-fenced") {
      const fencedFor = range.plannedSplit;
      if (fencedFor === null)
        throw new SplitStateError(route.routeId, "the range is fenced without a planned split");
      if (plan !== null && !samePlan(plan, fencedFor)) {
        throw new SplitStateError(
          route.routeId,
          `the range is fenced for another split (right side ${fencedFor.rhsRangeId})`,
        );
      }
      this.checkPlan(route, range.bounds, fencedFor);
      if (route.state === "active") return { kind: "save-fenced", plan: fencedFor };
      if (route.state === "write-fenced") return { kind: "split", plan: fencedFor };
      throw new SplitStateError(route.routeId, `the range is fenced but the catalog shows it ${route.state}`);
    }
    if (plan !== null)
      throw new SplitStateError(route.routeId, "the range is neither fenced for the split nor split");
    return route.state === "write-fenced" ? { kind: "unfence" } : { kind: "nothing" };
  }

  /** The plan must split the catalog's route inside its bounds, and the range must match the route. */
  private checkPlan(
    route: RouteDescriptor,
    rangeBounds: RangeBounds,
    plan: PlannedSplit,
    applied = false,
  ): void {
    const routeBounds = boundsOf(route);
    const expected = applied ? { start: route.start, end: plan.splitKey } : routeBounds;
    if (!boundsEqual(rangeBounds, expected)) {
      throw new SplitStateError(route.routeId, `the range's bounds do not match ${describeRoute(route)}`);
    }
    if (splitKeyRefusal(routeBounds, plan.splitKey, this.minSplitKey) !== null) {
      throw new SplitStateError(
        route.routeId,
        `the planned split key is not a valid split of ${describeRoute(route)}`,
      );
    }
  }

  private layout(
    snapshot: CatalogSnapshot,
    route: RouteDescriptor,
    applied: AppliedSplit,
  ): { left: RouteDescriptor; right: RouteDescriptor } {
    if (snapshot.routes.some((r) => r.routeId === applied.rhsRangeId)) {
      throw new SplitStateError(
        route.routeId,
        `route id ${applied.rhsRangeId} of the right side is already in the catalog`,
      );
    }
    const left: RouteDescriptor = { ...route, end: applied.splitKey, state: "active" };
    const right: RouteDescriptor = {
      routeId: applied.rhsRangeId,
      start: applied.splitKey,
      end: route.end,
      groupId: applied.rhsRangeId,
      state: "active",
      parentRouteId: route.routeId,
      splitAt: applied.revision,
    };
    return { left, right };
  }
}
