// fast-check generators for the placement tests: valid route catalogs (sorted boundary keys,
// unique ids, any states), the mutations that must make one invalid (each with the rule it
// breaks), and small helpers to build and compare descriptors.
import fc from "fast-check";
import { compareBytes } from "../../src/kv/bytes.js";
import { ROUTE_STATES, type RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import type { InvalidCatalogReason } from "../../src/placement/catalog/errors.js";

const encoder = new TextEncoder();

export function b(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A descriptor with defaults for everything but its id and span. */
export function route(
  routeId: number,
  start: string | Uint8Array,
  end: string | Uint8Array | null,
  fields: Partial<RouteDescriptor> = {},
): RouteDescriptor {
  return {
    routeId,
    start: typeof start === "string" ? b(start) : start,
    end: typeof end === "string" ? b(end) : end,
    groupId: routeId,
    state: "active",
    parentRouteId: null,
    splitAt: 0n,
    ...fields,
  };
}

/** Routes split at `boundaries` (sorted, distinct, non-empty keys), ids in order from `firstId`. */
export function split(boundaries: readonly string[], firstId = 1): RouteDescriptor[] {
  const starts = ["", ...boundaries];
  return starts.map((start, i) => route(firstId + i, start, boundaries[i] ?? null));
}

/** A descriptor in a form deepEqual compares by content. */
export function plain(r: RouteDescriptor): object {
  return {
    ...r,
    start: Buffer.from(r.start).toString("hex"),
    end: r.end === null ? null : Buffer.from(r.end).toString("hex"),
  };
}

export interface CatalogShape {
  /** Most routes in a catalog. */
  readonly maxRoutes: number;
  /** Ids are drawn from 1..idMax (small: successive catalogs reuse ids, so routes change in place). */
  readonly idMax: number;
}

const boundaryKey = fc.uint8Array({ minLength: 1, maxLength: 4, max: 8 });

/** A random valid catalog. */
export function validCatalog(
  shape: CatalogShape = { maxRoutes: 10, idMax: 1_000_000 },
): fc.Arbitrary<RouteDescriptor[]> {
  return fc
    .uniqueArray(boundaryKey, {
      maxLength: shape.maxRoutes - 1,
      comparator: (x, y) => compareBytes(x, y) === 0,
    })
    .chain((keys) => {
      const boundaries = [...keys].sort(compareBytes);
      const count = boundaries.length + 1;
      return fc
        .tuple(
          fc.uniqueArray(fc.integer({ min: 1, max: Math.max(shape.idMax, count) }), {
            minLength: count,
            maxLength: count,
          }),
          fc.array(
            fc.record({
              groupId: fc.integer({ min: 1, max: 50 }),
              state: fc.constantFrom(...ROUTE_STATES),
              parent: fc.option(fc.integer({ min: 1, max: Math.max(shape.idMax, count) + 1 })),
              splitAt: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
            }),
            { minLength: count, maxLength: count },
          ),
        )
        .map(([ids, fields]) =>
          ids.map((routeId, i): RouteDescriptor => {
            const f = fields[i]!;
            return {
              routeId,
              start: i === 0 ? new Uint8Array(0) : boundaries[i - 1]!,
              end: boundaries[i] ?? null,
              groupId: f.groupId,
              state: f.state,
              parentRouteId: f.parent === routeId ? null : f.parent,
              splitAt: f.splitAt,
            };
          }),
        );
    });
}

export interface Mutation {
  readonly name: string;
  readonly reason: InvalidCatalogReason;
  /** Applicable to a catalog of this many routes. */
  readonly applies: (count: number) => boolean;
  /** The mutated copy; `at` picks a route (taken modulo what the mutation can use). */
  readonly mutate: (routes: readonly RouteDescriptor[], at: number) => RouteDescriptor[];
}

function replace(routes: readonly RouteDescriptor[], index: number, fields: object): RouteDescriptor[] {
  return routes.map((r, i) => (i === index ? { ...r, ...fields } : r));
}

/** Every way tests break a valid catalog, with the rule each breaks. */
export const MUTATIONS: readonly Mutation[] = [
  { name: "no routes", reason: "empty", applies: () => true, mutate: () => [] },
  {
    name: "zero route id",
    reason: "invalid-route-id",
    applies: () => true,
    mutate: (rs, at) => replace(rs, at % rs.length, { routeId: 0 }),
  },
  {
    name: "fractional route id",
    reason: "invalid-route-id",
    applies: () => true,
    mutate: (rs, at) => replace(rs, at % rs.length, { routeId: 1.5 }),
  },
  {
    name: "duplicate route id",
    reason: "duplicate-route-id",
    applies: (n) => n >= 2,
    mutate: (rs, at) => {
      const i = 1 + (at % (rs.length - 1));
      return replace(rs, i, { routeId: rs[i - 1]!.routeId, parentRouteId: null });
    },
  },
  {
    name: "zero group id",
    reason: "invalid-group-id",
    applies: () => true,
    mutate: (rs, at) => replace(rs, at % rs.length, { groupId: 0 }),
  },
  {
    name: "unknown state",
    reason: "invalid-state",
    applies: () => true,
    mutate: (rs, at) => replace(rs, at % rs.length, { state: "paused" }),
  },
  {
    name: "own parent",
    reason: "invalid-parent",
    applies: () => true,
    mutate: (rs, at) => replace(rs, at % rs.length, { parentRouteId: rs[at % rs.length]!.routeId }),
  },
  {
    name: "negative splitAt",
    reason: "invalid-split-at",
    applies: () => true,
    mutate: (rs, at) => replace(rs, at % rs.length, { splitAt: -1n }),
  },
  {
    name: "end equal to start",
    reason: "empty-range",
    applies: (n) => n >= 2,
    mutate: (rs, at) => {
      const i = at % (rs.length - 1);
      return replace(rs, i, { end: rs[i]!.start });
    },
  },
  {
    name: "first route removed",
    reason: "not-from-empty-key",
    applies: (n) => n >= 2,
    mutate: (rs) => rs.slice(1),
  },
  {
    name: "adjacent routes swapped",
    reason: "unsorted",
    applies: (n) => n >= 3,
    mutate: (rs, at) => {
      const i = 1 + (at % (rs.length - 2));
      const out = [...rs];
      [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
      return out;
    },
  },
  {
    name: "end stretched over the next route",
    reason: "overlap",
    applies: (n) => n >= 2,
    mutate: (rs, at) => {
      const i = at % (rs.length - 1);
      return replace(rs, i, { end: rs[i + 1]!.end });
    },
  },
  {
    name: "middle route removed",
    reason: "gap",
    applies: (n) => n >= 3,
    mutate: (rs, at) => {
      const i = 1 + (at % (rs.length - 2));
      return rs.filter((_, j) => j !== i);
    },
  },
  {
    name: "last route removed",
    reason: "not-to-infinity",
    applies: (n) => n >= 2,
    mutate: (rs) => rs.slice(0, -1),
  },
];
