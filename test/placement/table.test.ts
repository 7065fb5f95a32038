// RouteTable: lookup and intersecting against a brute-force scan of random catalogs; snapshots
// taken only when newer, deltas only when contiguous; refused updates change nothing. And the
// stale-routing helpers: routeFor / RangeMovedError, withRouteRetry's bounded reload loop.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compareBytes } from "../../src/kv/bytes.js";
import { routeContains, type RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import {
  RangeMovedError,
  RoutesUnavailableError,
  routeFor,
  withRouteRetry,
} from "../../src/placement/routes/moved.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import { b, plain, route, split, validCatalog } from "./arbitraries.js";

const probeKey = fc.uint8Array({ maxLength: 5, max: 9 });

test("property: lookup finds the one route holding the key", () => {
  fc.assert(
    fc.property(
      validCatalog({ maxRoutes: 30, idMax: 1000 }),
      fc.array(probeKey, { maxLength: 20 }),
      (routes, keys) => {
        const table = new RouteTable();
        assert.equal(table.applySnapshot(1, routes).applied, true);
        for (const key of keys) {
          const expected = routes.filter((r) => routeContains(r, key));
          assert.equal(expected.length, 1);
          assert.equal(table.lookup(key)?.routeId, expected[0]!.routeId);
        }
        assert.equal(table.lookup(new Uint8Array(0))?.routeId, routes[0]!.routeId);
      },
    ),
    { numRuns: 200 },
  );
});

test("property: intersecting returns exactly the routes meeting [start, end)", () => {
  fc.assert(
    fc.property(
      validCatalog({ maxRoutes: 20, idMax: 1000 }),
      probeKey,
      fc.option(probeKey),
      (routes, start, end) => {
        const table = new RouteTable();
        table.applySnapshot(1, routes);
        const meets = (r: RouteDescriptor) =>
          (end === null || compareBytes(r.start, end) < 0) &&
          (r.end === null || compareBytes(r.end, start) > 0);
        const expected = end !== null && compareBytes(start, end) >= 0 ? [] : routes.filter(meets);
        assert.deepEqual(
          table.intersecting(start, end).map((r) => r.routeId),
          expected.map((r) => r.routeId),
        );
      },
    ),
    { numRuns: 300 },
  );
});

test("an empty table routes nothing", () => {
  const table = new RouteTable();
  assert.equal(table.version, 0);
  assert.equal(table.lookup(b("a")), undefined);
  assert.deepEqual(table.intersecting(new Uint8Array(0), null), []);
  assert.throws(() => routeFor(table, b("a")), RoutesUnavailableError);
});

test("snapshots: only newer ones, only valid ones", () => {
  const table = new RouteTable();
  assert.deepEqual(table.applySnapshot(3, split(["m"])), { applied: true, version: 3 });
  const stale = table.applySnapshot(3, split(["q"], 10));
  assert.deepEqual([stale.applied, !stale.applied && stale.reason], [false, "stale"]);
  const invalid = table.applySnapshot(4, [route(1, "", "m")]);
  assert.deepEqual([invalid.applied, !invalid.applied && invalid.reason], [false, "invalid"]);
  const badVersion = table.applySnapshot(0, split([]));
  assert.deepEqual([badVersion.applied, !badVersion.applied && badVersion.reason], [false, "invalid"]);
  assert.equal(table.version, 3);
  assert.deepEqual(
    table.routes.map((r) => r.routeId),
    [1, 2],
  );
  assert.deepEqual(table.applySnapshot(9, split(["q"], 10)), { applied: true, version: 9 });
  assert.deepEqual(
    table.routes.map((r) => r.routeId),
    [10, 11],
  );
});

test("deltas: only the next version; stale, gapped and invalid ones change nothing", () => {
  const table = new RouteTable();
  assert.deepEqual(table.applyDelta({ version: 1, upserts: [route(1, "", null)], removed: [] }), {
    applied: true,
    version: 1,
  });
  const held = table.routes;
  const refused = (update: ReturnType<RouteTable["applyDelta"]>) =>
    update.applied ? "applied" : update.reason;
  assert.equal(refused(table.applyDelta({ version: 1, upserts: [], removed: [1] })), "stale");
  assert.equal(refused(table.applyDelta({ version: 3, upserts: split(["m"], 2), removed: [1] })), "gap");
  assert.equal(
    refused(table.applyDelta({ version: 2, upserts: [route(2, "", "m")], removed: [1] })),
    "invalid",
  );
  assert.equal(refused(table.applyDelta({ version: 2, upserts: split(["m"], 2), removed: [7] })), "invalid");
  assert.equal(table.version, 1);
  assert.equal(table.routes, held, "a refused delta replaced the routes");
  assert.deepEqual(table.applyDelta({ version: 2, upserts: split(["m"], 2), removed: [1] }), {
    applied: true,
    version: 2,
  });
  assert.deepEqual(table.routes.map(plain), split(["m"], 2).map(plain));
  assert.equal(table.route(3)?.start.length, 1);
  assert.ok(Object.isFrozen(table.routes));
});

test("routeFor: the holder, or RangeMovedError carrying the route that holds the key now", () => {
  const table = new RouteTable();
  table.applySnapshot(1, split(["m"], 5));
  assert.equal(routeFor(table, b("a")).routeId, 5);
  assert.equal(routeFor(table, b("z"), 6).routeId, 6);
  try {
    routeFor(table, b("z"), 5);
    assert.fail("stale routing was not detected");
  } catch (error) {
    assert.ok(error instanceof RangeMovedError);
    assert.equal(error.retryable, true);
    assert.equal(error.expectedRouteId, 5);
    assert.equal(error.current.routeId, 6);
    assert.deepEqual(error.key, b("z"));
  }
});

test("withRouteRetry reloads and retries routing errors, bounded; other errors pass at once", async () => {
  const table = new RouteTable();
  table.applySnapshot(1, split(["m"], 5));
  let reloads = 0;
  const reload = () => {
    reloads += 1;
    table.applySnapshot(1 + reloads, split(["m", "t"], 10 * (1 + reloads)));
    return Promise.resolve();
  };
  // The caller believes route 5 holds "p"; after one reload it asks the table again.
  let expected = 6;
  const result = await withRouteRetry(
    async (attempt) => {
      const r = routeFor(table, b("p"), expected);
      expected = table.lookup(b("p"))!.routeId;
      return Promise.resolve([attempt, r.routeId]);
    },
    { reload },
  );
  assert.deepEqual(result, [1, 6]);
  expected = 999;
  const moved = await withRouteRetry(
    (attempt) => {
      if (attempt < 3) routeFor(table, b("p"), expected);
      return Promise.resolve(attempt);
    },
    { reload },
  );
  assert.equal(moved, 3);
  assert.equal(reloads, 2);
  let calls = 0;
  await assert.rejects(
    withRouteRetry(
      () => {
        calls += 1;
        routeFor(table, b("p"), 999);
        return Promise.resolve();
      },
      { reload, maxAttempts: 4 },
    ),
    RangeMovedError,
  );
  assert.deepEqual([calls, reloads], [4, 5]);
  await assert.rejects(
    withRouteRetry(() => Promise.reject(new TypeError("boom")), { reload }),
    TypeError,
  );
  assert.equal(reloads, 5);
  await assert.rejects(
    withRouteRetry(() => Promise.resolve(1), { reload, maxAttempts: 0 }),
    RangeError,
  );
});
