/**
 * Catalog edits the split and merge coordinators share: a route's bounds, the catalog with some
 * routes replaced or removed, and telling a lost catalog version race (retry) from any other
 * failure.
 */
import type { RangeBounds } from "../../kv/bounds.js";
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
