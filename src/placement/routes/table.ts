/**
 * RouteTable: a node's in-memory copy of the route catalog, sorted by start key, answering
 * "which route holds this key" by binary search and "which routes meet this span". It moves
 * forward only: a snapshot is taken only if newer than what it holds, a delta only if it is
 * the very next version. A refused update changes nothing and says why, so the caller can
 * reload a snapshot. Each update swaps in a new frozen array: a reader holding `routes` keeps
 * a consistent view.
 */
import { compareBytes } from "../../kv/bytes.js";
import type { CatalogDelta } from "../catalog/codec.js";
import { validateCatalog, type RouteDescriptor } from "../catalog/descriptor.js";
import { InvalidCatalogError } from "../catalog/errors.js";

/** Why an update was refused: older than the table, not the next version, or not a valid catalog. */
export type RefusalReason = "stale" | "gap" | "invalid";

export type UpdateResult =
  | { readonly applied: true; readonly version: number }
  | { readonly applied: false; readonly reason: RefusalReason; readonly detail: string };

export class RouteTable {
  private currentVersion = 0;
  private sorted: readonly RouteDescriptor[] = Object.freeze([]);
  private byId: ReadonlyMap<number, RouteDescriptor> = new Map();

  /** The catalog version held; 0 while nothing is loaded. */
  get version(): number {
    return this.currentVersion;
  }

  /** Every route, sorted by start key (a frozen array; updates replace it). */
  get routes(): readonly RouteDescriptor[] {
    return this.sorted;
  }

  get size(): number {
    return this.sorted.length;
  }

  route(routeId: number): RouteDescriptor | undefined {
    return this.byId.get(routeId);
  }

  /** The route whose `[start, end)` holds `key`; undefined only while the table is empty. O(log n). */
  lookup(key: Uint8Array): RouteDescriptor | undefined {
    const index = this.indexOf(key);
    return index < 0 ? undefined : this.sorted[index];
  }

  /** The routes meeting `[start, end)` (end null: to +inf), in key order; none for an empty span. */
  intersecting(start: Uint8Array, end: Uint8Array | null): RouteDescriptor[] {
    if (end !== null && compareBytes(start, end) >= 0) return [];
    const out: RouteDescriptor[] = [];
    for (let i = Math.max(this.indexOf(start), 0); i < this.sorted.length; i++) {
      const route = this.sorted[i]!;
      if (end !== null && compareBytes(route.start, end) >= 0) break;
      if (route.end === null || compareBytes(route.end, start) > 0) out.push(route);
    }
    return out;
  }

  /** Takes a whole catalog if `version` is newer than the table's and the routes are a valid catalog. */
  applySnapshot(version: number, routes: readonly RouteDescriptor[]): UpdateResult {
    if (!Number.isSafeInteger(version) || version < 1) {
      return {
        applied: false,
        reason: "invalid",
        detail: `snapshot version ${version} is not a positive integer`,
      };
    }
    if (version <= this.currentVersion) {
      return {
        applied: false,
        reason: "stale",
        detail: `snapshot version ${version}, table at ${this.currentVersion}`,
      };
    }
    return this.install(version, [...routes]);
  }

  /** Takes a delta only if it produces exactly the next version and the result is a valid catalog. */
  applyDelta(delta: CatalogDelta): UpdateResult {
    if (delta.version <= this.currentVersion) {
      return {
        applied: false,
        reason: "stale",
        detail: `delta version ${delta.version}, table at ${this.currentVersion}`,
      };
    }
    if (delta.version !== this.currentVersion + 1) {
      return {
        applied: false,
        reason: "gap",
        detail: `delta version ${delta.version}, table at ${this.currentVersion}`,
      };
    }
    const next = new Map(this.byId);
    for (const id of delta.removed) {
      if (!next.delete(id)) {
        return {
          applied: false,
          reason: "invalid",
          detail: `delta ${delta.version} removes unknown route ${id}`,
        };
      }
    }
    for (const route of delta.upserts) next.set(route.routeId, route);
    const routes = [...next.values()].sort((a, b) => compareBytes(a.start, b.start));
    return this.install(delta.version, routes);
  }

  private install(version: number, routes: RouteDescriptor[]): UpdateResult {
    try {
      validateCatalog(routes);
    } catch (error) {
      if (error instanceof InvalidCatalogError)
        return { applied: false, reason: "invalid", detail: error.message };
      throw error;
    }
    this.sorted = Object.freeze(routes);
    this.byId = new Map(routes.map((route) => [route.routeId, route]));
    this.currentVersion = version;
    return { applied: true, version };
  }

  /** Index of the last route starting at or before `key`; -1 when the table is empty. */
  private indexOf(key: Uint8Array): number {
    let low = 0;
    let high = this.sorted.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (compareBytes(this.sorted[mid]!.start, key) <= 0) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}
