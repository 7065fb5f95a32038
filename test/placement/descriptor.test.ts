// The catalog rules: each rule refused with its own reason by validateCatalog (unit cases and
// random mutations of random valid catalogs), valid catalogs accepted, and the error classes.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  routeContains,
  sameDescriptor,
  validateCatalog,
  type RouteDescriptor,
} from "../../src/placement/catalog/descriptor.js";
import {
  CatalogConflictError,
  CatalogDecodeError,
  CatalogStoreError,
  CatalogVersionMismatchError,
  InvalidCatalogError,
  type InvalidCatalogReason,
} from "../../src/placement/catalog/errors.js";
import { MUTATIONS, b, route, split, validCatalog } from "./arbitraries.js";

function reasonOf(routes: readonly RouteDescriptor[]): InvalidCatalogReason | "valid" {
  try {
    validateCatalog(routes);
    return "valid";
  } catch (error) {
    assert.ok(error instanceof InvalidCatalogError, `not an InvalidCatalogError: ${String(error)}`);
    return error.reason;
  }
}

test("valid catalogs: one route over everything, and split ones", () => {
  assert.equal(reasonOf([route(1, "", null)]), "valid");
  assert.equal(reasonOf(split(["g", "p"])), "valid");
  assert.equal(reasonOf([route(7, "", Uint8Array.of(0)), route(3, Uint8Array.of(0), null)]), "valid");
});

test("each rule is refused with its reason", () => {
  const cases: [string, RouteDescriptor[], InvalidCatalogReason][] = [
    ["empty", [], "empty"],
    ["zero id", [route(0, "", null)], "invalid-route-id"],
    ["negative id", [route(-3, "", null)], "invalid-route-id"],
    ["id above 2^53", [route(2 ** 53, "", null)], "invalid-route-id"],
    ["duplicate id", [route(1, "", "m"), route(1, "m", null)], "duplicate-route-id"],
    ["zero group", [route(1, "", null, { groupId: 0 })], "invalid-group-id"],
    ["NaN group", [route(1, "", null, { groupId: Number.NaN })], "invalid-group-id"],
    ["unknown state", [route(1, "", null, { state: "gone" as RouteDescriptor["state"] })], "invalid-state"],
    ["parent is itself", [route(1, "", null, { parentRouteId: 1 })], "invalid-parent"],
    ["parent zero", [route(1, "", null, { parentRouteId: 0 })], "invalid-parent"],
    ["splitAt too large", [route(1, "", null, { splitAt: 1n << 63n })], "invalid-split-at"],
    ["start not bytes", [route(1, "", null, { start: "x" as unknown as Uint8Array })], "invalid-key"],
    ["start == end", [route(1, "", ""), route(2, "", null)], "empty-range"],
    ["start > end", [route(1, "", "m"), route(2, "z", "n"), route(3, "n", null)], "empty-range"],
    ["first starts late", [route(1, "a", null)], "not-from-empty-key"],
    ["unsorted", [route(1, "", "m"), route(2, "t", null), route(3, "m", "t")], "unsorted"],
    ["same start", [route(1, "", "m"), route(2, "m", "t"), route(3, "m", null)], "unsorted"],
    ["overlap", [route(1, "", "n"), route(2, "m", null)], "overlap"],
    ["route after +inf", [route(1, "", null), route(2, "m", null)], "overlap"],
    ["gap", [route(1, "", "m"), route(2, "n", null)], "gap"],
    ["bounded last", [route(1, "", "m"), route(2, "m", "z")], "not-to-infinity"],
  ];
  for (const [name, routes, reason] of cases) assert.equal(reasonOf(routes), reason, name);
});

test("the error names the route at fault", () => {
  try {
    validateCatalog([route(1, "", "m"), route(2, "n", null)]);
    assert.fail("a gap was accepted");
  } catch (error) {
    assert.ok(error instanceof InvalidCatalogError);
    assert.equal(error.routeId, 2);
    assert.equal(error.retryable, false);
    assert.match(error.message, /^invalid route catalog: gap: /);
  }
});

test("property: random valid catalogs validate; every mutation is refused with its reason", () => {
  fc.assert(
    fc.property(validCatalog(), fc.nat(), (routes, at) => {
      assert.equal(reasonOf(routes), "valid");
      for (const mutation of MUTATIONS) {
        if (!mutation.applies(routes.length)) continue;
        assert.equal(reasonOf(mutation.mutate(routes, at)), mutation.reason, mutation.name);
      }
    }),
    { numRuns: 200 },
  );
});

test("routeContains and sameDescriptor", () => {
  const r = route(4, "b", "d");
  assert.equal(routeContains(r, b("a")), false);
  assert.equal(routeContains(r, b("b")), true);
  assert.equal(routeContains(r, b("c\xff")), true);
  assert.equal(routeContains(r, b("d")), false);
  assert.equal(routeContains(route(5, "d", null), b("zzz")), true);
  assert.equal(sameDescriptor(r, route(4, "b", "d")), true);
  assert.equal(sameDescriptor(r, route(4, "b", null)), false);
  assert.equal(sameDescriptor(r, route(4, "b", "d", { state: "write-fenced" })), false);
  assert.equal(sameDescriptor(r, route(4, "b", "d", { splitAt: 9n })), false);
});

test("error classes carry what callers act on", () => {
  const mismatch = new CatalogVersionMismatchError(3, 5);
  assert.deepEqual([mismatch.expected, mismatch.actual, mismatch.retryable], [3, 5, true]);
  assert.equal(mismatch.name, "CatalogVersionMismatchError");
  const decode = new CatalogDecodeError("route descriptor", "trailing-bytes", "2 unread bytes");
  assert.deepEqual(
    [decode.what, decode.failure, decode.retryable],
    ["route descriptor", "trailing-bytes", false],
  );
  const conflict = new CatalogConflictError("save", 16);
  assert.deepEqual([conflict.attempts, conflict.retryable], [16, true]);
  assert.equal(new CatalogStoreError(null, "odd").code, null);
  for (const error of [mismatch, decode, conflict, new InvalidCatalogError("gap", 1, "x")]) {
    assert.ok(error instanceof Error);
  }
});
