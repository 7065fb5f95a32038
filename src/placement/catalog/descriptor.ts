/**
 * What a route is: the descriptor of one contiguous key range `[start, end)` (end null: up to
 * +infinity) served by one Raft group, its state, and where it came from; and the rules that
 * make a list of descriptors a valid catalog (`validateCatalog`). Keys are bytes compared
 * bytewise; the first route starts at the empty key and the last one has no end, so a valid
 * catalog maps every key to exactly one route.
 */
import { compareBytes } from "../../kv/bytes.js";
import { InvalidCatalogError } from "./errors.js";

export const ROUTE_STATES = ["active", "write-fenced", "migrating-source", "migrating-target"] as const;

/**
 * `active`: serving reads and writes. `write-fenced`: writes refused with a retryable error
 * while a cutover commits. `migrating-source` / `migrating-target`: the range's data is moving
 * from the one to the other.
 */
export type RouteState = (typeof ROUTE_STATES)[number];

export interface RouteDescriptor {
  /** Unique, non-zero, never reused (allocated from the catalog's next route id). */
  readonly routeId: number;
  /** Inclusive start key; the first route starts at the empty key. */
  readonly start: Uint8Array;
  /** Exclusive end key; null: no end (+infinity). */
  readonly end: Uint8Array | null;
  /** The Raft group (range id of `NodeHost.createReplica`) serving this route; non-zero. */
  readonly groupId: number;
  readonly state: RouteState;
  /** The route this one was split or merged from, or null. */
  readonly parentRouteId: number | null;
  /** HLC timestamp of the split that made this route (0 when it was not made by a split). */
  readonly splitAt: bigint;
}

/** Largest route / group id: ids are JavaScript numbers and must stay exact. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;
/** HLC timestamps stay below 2^63 (etcd clients read revisions as int64). */
export const MAX_SPLIT_AT = (1n << 63n) - 1n;

const STATE_SET: ReadonlySet<string> = new Set(ROUTE_STATES);

export function isRouteState(value: unknown): value is RouteState {
  return typeof value === "string" && STATE_SET.has(value);
}

export function isValidId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1 && value <= MAX_ID;
}

/** Whether `key` lies in the route's `[start, end)`. */
export function routeContains(route: RouteDescriptor, key: Uint8Array): boolean {
  return compareBytes(route.start, key) <= 0 && (route.end === null || compareBytes(key, route.end) < 0);
}

function keyText(key: Uint8Array | null): string {
  return key === null ? "+inf" : JSON.stringify(Buffer.from(key).toString("hex"));
}

export function describeRoute(route: RouteDescriptor): string {
  return `route ${route.routeId} [${keyText(route.start)}, ${keyText(route.end)})`;
}

/** Checks one descriptor's own fields; throws InvalidCatalogError naming the first broken rule. */
export function validateDescriptor(route: RouteDescriptor): void {
  const id = isValidId(route.routeId) ? route.routeId : null;
  if (id === null) {
    throw new InvalidCatalogError(
      "invalid-route-id",
      null,
      `route id ${String(route.routeId)} is not in 1..2^53-1`,
    );
  }
  if (!isValidId(route.groupId)) {
    throw new InvalidCatalogError(
      "invalid-group-id",
      id,
      `route ${id}: group id ${String(route.groupId)} is not in 1..2^53-1`,
    );
  }
  if (!isRouteState(route.state)) {
    throw new InvalidCatalogError(
      "invalid-state",
      id,
      `route ${id}: unknown state ${JSON.stringify(route.state)}`,
    );
  }
  if (route.parentRouteId !== null && (!isValidId(route.parentRouteId) || route.parentRouteId === id)) {
    throw new InvalidCatalogError(
      "invalid-parent",
      id,
      `route ${id}: parent ${String(route.parentRouteId)} is neither null nor another route id`,
    );
  }
  if (typeof route.splitAt !== "bigint" || route.splitAt < 0n || route.splitAt > MAX_SPLIT_AT) {
    throw new InvalidCatalogError(
      "invalid-split-at",
      id,
      `route ${id}: splitAt ${String(route.splitAt)} is not an HLC timestamp`,
    );
  }
  if (!(route.start instanceof Uint8Array) || !(route.end === null || route.end instanceof Uint8Array)) {
    throw new InvalidCatalogError(
      "invalid-key",
      id,
      `route ${id}: start and end must be byte arrays (end may be null)`,
    );
  }
  if (route.end !== null && compareBytes(route.start, route.end) >= 0) {
    throw new InvalidCatalogError("empty-range", id, `${describeRoute(route)}: start must be below end`);
  }
}

/**
 * Checks a whole proposed catalog: every descriptor valid, ids unique, routes sorted by start,
 * non-overlapping and covering the keyspace from the empty key to +infinity with no gap.
 * Throws InvalidCatalogError naming the first broken rule; returns normally when valid.
 */
export function validateCatalog(routes: readonly RouteDescriptor[]): void {
  if (routes.length === 0) throw new InvalidCatalogError("empty", null, "a catalog needs at least one route");
  const ids = new Set<number>();
  for (const route of routes) {
    validateDescriptor(route);
    if (ids.has(route.routeId)) {
      throw new InvalidCatalogError(
        "duplicate-route-id",
        route.routeId,
        `route id ${route.routeId} appears twice`,
      );
    }
    ids.add(route.routeId);
  }
  const first = routes[0]!;
  if (first.start.length !== 0) {
    throw new InvalidCatalogError(
      "not-from-empty-key",
      first.routeId,
      `the first route, ${describeRoute(first)}, must start at the empty key`,
    );
  }
  for (let i = 1; i < routes.length; i++) {
    const previous = routes[i - 1]!;
    const route = routes[i]!;
    if (compareBytes(previous.start, route.start) >= 0) {
      throw new InvalidCatalogError(
        "unsorted",
        route.routeId,
        `${describeRoute(route)} does not start after ${describeRoute(previous)}`,
      );
    }
  }
  // Sorted by start: each route must end exactly where the next one starts.
  for (let i = 1; i < routes.length; i++) {
    const previous = routes[i - 1]!;
    const route = routes[i]!;
    const order = previous.end === null ? 1 : compareBytes(previous.end, route.start);
    if (order > 0) {
      throw new InvalidCatalogError(
        "overlap",
        route.routeId,
        `${describeRoute(route)} overlaps ${describeRoute(previous)}`,
      );
    }
    if (order < 0) {
      throw new InvalidCatalogError(
        "gap",
        route.routeId,
        `no route covers the keys between ${describeRoute(previous)} and ${describeRoute(route)}`,
      );
    }
  }
  const last = routes[routes.length - 1]!;
  if (last.end !== null) {
    throw new InvalidCatalogError(
      "not-to-infinity",
      last.routeId,
      `the last route, ${describeRoute(last)}, must reach +inf`,
    );
  }
}

/** Whether two descriptors are field-for-field equal. */
export function sameDescriptor(a: RouteDescriptor, b: RouteDescriptor): boolean {
  return (
    a.routeId === b.routeId &&
    compareBytes(a.start, b.start) === 0 &&
    (a.end === null ? b.end === null : b.end !== null && compareBytes(a.end, b.end) === 0) &&
    a.groupId === b.groupId &&
    a.state === b.state &&
    a.parentRouteId === b.parentRouteId &&
    a.splitAt === b.splitAt
  );
}
