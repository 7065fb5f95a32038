/**
 * Catalog edits the split and merge coordinators share: a route's bounds, the catalog with some
 * routes replaced or removed, telling a lost catalog version race (retry) from any other
 * failure, and a recovery pass over the catalog's routes.
 */
import type { RangeBounds } from "../../kv/bounds.js";
import type { CatalogSnapshot } from "../catalog/catalog.js";
import type { RouteDescriptor } from "../catalog/descriptor.js";
import { CatalogConflictError, CatalogVersionMismatchError } from "../catalog/errors.js";

export function boundsOf(route: RouteDescriptor): RangeBounds {
  return { start: route.start, end: route.end };
}

/** The routes with route `routeId` replaced by `by` (in key order; empty: removed). */
export function replaceRoute(
  routes: readonly RouteDescriptor[],
  routeId: number,
  by: readonly RouteDescriptor[],
): RouteDescriptor[] {
  return routes.flatMap((r) => (r.routeId === routeId ? [...by] : [r]));
}

/** Whether a catalog save failed only because another save moved the version first. */
export function isCatalogRace(error: unknown): boolean {
  return error instanceof CatalogVersionMismatchError || error instanceof CatalogConflictError;
}

/**
 * Routes whose split() or merge() is under way on one coordinator: its recover() leaves them to
 * that call. Otherwise the split loop's recovery pass could finish an operation the call had
 * fenced a moment before, and both would count it.
 */
export class RoutesUnderWay {
  readonly #routes = new Set<number>();

  /** Runs `operation` with `routeId` under way; a call already under way on it keeps the claim. */
  async during<T>(routeId: number, operation: () => Promise<T>): Promise<T> {
    if (this.#routes.has(routeId)) return operation();
    this.#routes.add(routeId);
    try {
      return await operation();
    } finally {
      this.#routes.delete(routeId);
    }
  }

  has(routeId: number): boolean {
    return this.#routes.has(routeId);
  }
}

/** What a recovery pass finished, and the routes it failed on. */
export interface RecoveryPass<T> {
  readonly completed: readonly T[];
  readonly failed: readonly { readonly routeId: number; readonly error: unknown }[];
}

/**
 * Rolls forward every route of `snapshot` that `candidate` picks, one at a time, each from
 * `snapshot`. When an earlier route saved, a later one's save fails its version check and it
 * reads the catalog again, as in a race with another coordinator. Why not a fresh read per
 * route: the loop recovers every cycle, and a read per route is a linearizable read of the
 * meta range per range per second, nearly always to find nothing to do.
 * One route's failure (counted by `failure`) does not stop the others.
 */
export async function recoverRoutes<T>(
  snapshot: CatalogSnapshot,
  candidate: (route: RouteDescriptor) => boolean,
  rollForward: (route: RouteDescriptor, snapshot: CatalogSnapshot) => Promise<T | null>,
  failure: () => void,
): Promise<RecoveryPass<T>> {
  const completed: T[] = [];
  const failed: { routeId: number; error: unknown }[] = [];
  for (const route of snapshot.routes) {
    if (!candidate(route)) continue;
    try {
      const result = await rollForward(route, snapshot);
      if (result !== null) completed.push(result);
    } catch (error) {
      failure();
      failed.push({ routeId: route.routeId, error });
    }
  }
  return { completed, failed };
}
