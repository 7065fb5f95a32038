/**
 * Detecting and recovering from stale routing. A caller that addressed a request to a route
 * (by id) checks it against the current table with `routeFor`: if the key now belongs to
 * another route, it gets a retryable RangeMovedError carrying the route that holds the key
 * now. `withRouteRetry` runs an operation again after reloading the routes, a bounded number
 * of times, whenever it fails with such a retryable routing error.
 */
import type { RouteDescriptor } from "../catalog/descriptor.js";
import type { RouteTable } from "./table.js";
import { positiveInteger } from "../option-checks.js";

/** The key is no longer served by the route the caller expected; retry with `current`. */
export class RangeMovedError extends Error {
  readonly retryable = true;
  constructor(
    readonly key: Uint8Array,
    readonly expectedRouteId: number,
    /** The route that holds the key now. */
    readonly current: RouteDescriptor,
  ) {
    super(
      `range moved: the key is now served by route ${current.routeId} (group ${current.groupId}), not route ${expectedRouteId}`,
    );
    this.name = "RangeMovedError";
  }
}

/** The route table has not been loaded yet (no catalog version): nothing can be routed. */
export class RoutesUnavailableError extends Error {
  readonly retryable = true;
  constructor() {
    super("no routes loaded yet: the route table is empty");
    this.name = "RoutesUnavailableError";
  }
}

/**
 * The route that holds `key`. With `expectedRouteId`, throws RangeMovedError when that is not
 * the route holding the key (the caller's routing is stale). Throws RoutesUnavailableError
 * while the table is empty.
 */
export function routeFor(table: RouteTable, key: Uint8Array, expectedRouteId?: number): RouteDescriptor {
  const route = table.lookup(key);
  if (route === undefined) throw new RoutesUnavailableError();
  if (expectedRouteId !== undefined && route.routeId !== expectedRouteId) {
    throw new RangeMovedError(key, expectedRouteId, route);
  }
  return route;
}

export interface RouteRetryOptions {
  /** Brings the routes up to date before the next attempt (e.g. `watcher.refresh()`). */
  readonly reload: (error: RangeMovedError | RoutesUnavailableError) => Promise<void>;
  /** Attempts in all, the first included (default 5). */
  readonly maxAttempts?: number;
}

export const DEFAULT_ROUTE_ATTEMPTS = 5;

/**
 * Runs `operation(attempt)` (attempt counts from 1); when it fails with RangeMovedError or
 * RoutesUnavailableError, reloads and runs it again, at most `maxAttempts` times in all, then
 * throws the last such error. Any other error is thrown at once.
 */
export async function withRouteRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RouteRetryOptions,
): Promise<T> {
  const maxAttempts = positiveInteger("maxAttempts", options.maxAttempts ?? DEFAULT_ROUTE_ATTEMPTS);
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const routing = error instanceof RangeMovedError || error instanceof RoutesUnavailableError;
      if (!routing || attempt >= maxAttempts) throw error;
      await options.reload(error);
    }
  }
}
