// RouteCatalog over an in-memory meta range: bootstrap, optimistic saves and their conflicts,
// invalid catalogs that never commit, route id allocation that never goes backwards (races,
// failed saves, a restart over the same engine), deltas for caches, corrupt records.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compactRequest, deleteRangeRequest, putRequest, rangeRequest } from "../../src/kv/commands.js";
import { KvErrorCode } from "../../src/kv/errors.js";
import { errorResponse } from "../../src/kv/results.js";
import { RouteCatalog } from "../../src/placement/catalog/catalog.js";
import { encodeDescriptor, encodeNextRouteId } from "../../src/placement/catalog/codec.js";
import {
  CatalogConflictError,
  CatalogDecodeError,
  CatalogStoreError,
  CatalogVersionMismatchError,
  InvalidCatalogError,
} from "../../src/placement/catalog/errors.js";
import { MemoryMetaKv } from "../../src/placement/catalog/memory-meta-kv.js";
import { toTxnResult } from "../../src/placement/catalog/meta-kv.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import { dataDump } from "../kv/helpers.js";
import { MUTATIONS, b, plain, route, split, validCatalog } from "./arbitraries.js";

function open(kv = new MemoryMetaKv()): { kv: MemoryMetaKv; catalog: RouteCatalog } {
  return { kv, catalog: new RouteCatalog(kv) };
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    return error;
  }
  return assert.fail(`expected ${type.name}, nothing was thrown`);
}

test("an empty catalog reads as version 0; initialize writes version 1 once", async () => {
  const { kv, catalog } = open();
  const empty = await catalog.snapshot();
  assert.deepEqual([empty.version, empty.nextRouteId, empty.routes.length], [0, 1, 0]);
  const first = await catalog.initialize();
  assert.equal(first.version, 1);
  assert.equal(first.nextRouteId, 2);
  assert.deepEqual(first.routes.map(plain), [plain(route(1, "", null, { groupId: 1 }))]);
  const before = dataDump(kv.engine);
  const again = await catalog.initialize();
  assert.equal(again.version, 1);
  assert.deepEqual(dataDump(kv.engine), before, "a second initialize wrote something");
  const read = await catalog.deltasSince(0);
  assert.equal(read.kind, "deltas");
  assert.deepEqual(
    read.kind === "deltas" ? read.deltas.map((d) => [d.version, d.upserts.length, d.removed.length]) : [],
    [[1, 1, 0]],
  );
});

test("save bumps the version by one and writes only what changed", async () => {
  const { kv, catalog } = open();
  await catalog.initialize();
  const [left, right] = await catalog.allocateRouteIds(2);
  const saved = await catalog.save(1, [
    route(left!, "", "m", { parentRouteId: 1, splitAt: 42n }),
    route(right!, "m", null, { parentRouteId: 1 }),
  ]);
  assert.equal(saved.version, 2);
  assert.deepEqual(saved.delta.removed, [1]);
  assert.deepEqual(
    saved.delta.upserts.map((r) => r.routeId),
    [left, right],
  );
  const modBefore = (await kv.range(rangeRequest({ key: catalog.keys.route(left!) }))).kvs[0]!.modRevision;
  const fenced = await catalog.save(2, [
    route(left!, "", "m", { parentRouteId: 1, splitAt: 42n }),
    route(right!, "m", null, { parentRouteId: 1, state: "write-fenced" }),
  ]);
  assert.deepEqual(
    fenced.delta.upserts.map((r) => [r.routeId, r.state]),
    [[right, "write-fenced"]],
  );
  assert.deepEqual(fenced.delta.removed, []);
  const modAfter = (await kv.range(rangeRequest({ key: catalog.keys.route(left!) }))).kvs[0]!.modRevision;
  assert.equal(modAfter, modBefore, "an unchanged route was rewritten");
  const snapshot = await catalog.snapshot();
  assert.equal(snapshot.version, 3);
  assert.deepEqual(
    snapshot.routes.map((r) => [r.routeId, r.state]),
    [
      [left, "active"],
      [right, "write-fenced"],
    ],
  );
  assert.equal(
    (await kv.range(rangeRequest({ key: catalog.keys.route(1) }))).kvs.length,
    0,
    "removed route still stored",
  );
});

test("a stale expected version fails with CatalogVersionMismatchError and changes nothing", async () => {
  const { kv, catalog } = open();
  await catalog.initialize();
  await catalog.save(1, split(["k"], 2));
  const before = dataDump(kv.engine);
  const error = await rejectsWith(catalog.save(1, split(["q"], 4)), CatalogVersionMismatchError);
  assert.deepEqual([error.expected, error.actual], [1, 2]);
  await rejectsWith(catalog.save(0, split([], 9)), CatalogVersionMismatchError);
  await rejectsWith(catalog.save(7, split([], 9)), CatalogVersionMismatchError);
  assert.deepEqual(dataDump(kv.engine), before);
});

test("two writers racing: the transaction's compare catches a save that lands after the read", async () => {
  const { kv, catalog } = open();
  const other = new RouteCatalog(kv);
  await catalog.initialize();
  // Runs between `catalog`'s read and its transaction: another node's save commits first.
  kv.beforeTxn = async () => {
    await other.save(1, split(["x"], 10));
  };
  const error = await rejectsWith(catalog.save(1, split(["m"], 20)), CatalogVersionMismatchError);
  assert.deepEqual([error.expected, error.actual], [1, 2]);
  assert.deepEqual(
    (await catalog.snapshot()).routes.map((r) => r.routeId),
    [10, 11],
  );
});

test("property: invalid catalogs never commit; valid saves applied as deltas equal the snapshot", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(validCatalog({ maxRoutes: 6, idMax: 12 }), fc.nat(), fc.nat()), {
        minLength: 1,
        maxLength: 8,
      }),
      async (steps) => {
        const { kv, catalog } = open();
        await catalog.initialize();
        const cache = new RouteTable();
        assert.equal(cache.applySnapshot(1, (await catalog.snapshot()).routes).applied, true);
        let version = 1;
        for (const [routes, at, pick] of steps) {
          const mutation = MUTATIONS[pick % MUTATIONS.length]!;
          if (mutation.applies(routes.length)) {
            const before = dataDump(kv.engine);
            const error = await rejectsWith(
              catalog.save(version, mutation.mutate(routes, at)),
              InvalidCatalogError,
            );
            assert.equal(error.reason, mutation.reason, mutation.name);
            assert.deepEqual(dataDump(kv.engine), before, `${mutation.name} changed the store`);
          }
          const saved = await catalog.save(version, routes);
          version += 1;
          assert.equal(saved.version, version);
          assert.deepEqual(cache.applyDelta(saved.delta), { applied: true, version });
          const snapshot = await catalog.snapshot();
          assert.equal(snapshot.version, version);
          assert.deepEqual(cache.routes.map(plain), snapshot.routes.map(plain));
          assert.ok(snapshot.nextRouteId > Math.max(...routes.map((r) => r.routeId)));
        }
        const replayed = new RouteTable();
        const read = await catalog.deltasSince(0);
        assert.equal(read.kind, "deltas");
        if (read.kind === "deltas")
          for (const delta of read.deltas) assert.equal(replayed.applyDelta(delta).applied, true);
        assert.deepEqual(replayed.routes.map(plain), cache.routes.map(plain));
      },
    ),
    { numRuns: 40 },
  );
});

test("allocateRouteIds: increasing, disjoint, retried when another allocation wins the race", async () => {
  const { kv, catalog } = open();
  assert.deepEqual(await catalog.allocateRouteIds(3), [1, 2, 3]);
  kv.beforeTxn = () => {
    kv.apply(putRequest({ key: catalog.keys.nextRouteId, value: encodeNextRouteId(10) }));
  };
  assert.deepEqual(await catalog.allocateRouteIds(2), [10, 11]);
  assert.equal((await catalog.snapshot()).nextRouteId, 12);
  await assert.rejects(catalog.allocateRouteIds(0), RangeError);
  await assert.rejects(catalog.allocateRouteIds(1.5), RangeError);
});

test("allocateRouteIds gives up with CatalogConflictError when it loses every race", async () => {
  const kv = new MemoryMetaKv();
  const catalog = new RouteCatalog(kv, { maxAttempts: 3 });
  let next = 100;
  const interfere = () => {
    kv.apply(putRequest({ key: catalog.keys.nextRouteId, value: encodeNextRouteId(next++) }));
    kv.beforeTxn = interfere;
  };
  kv.beforeTxn = interfere;
  const error = await rejectsWith(catalog.allocateRouteIds(1), CatalogConflictError);
  assert.equal(error.attempts, 3);
  kv.beforeTxn = null;
  assert.deepEqual(await catalog.allocateRouteIds(1), [next - 1]);
});

test("save retries when only the next route id moved, and never moves it back", async () => {
  const { kv, catalog } = open();
  await catalog.initialize();
  kv.beforeTxn = () => {
    kv.apply(putRequest({ key: catalog.keys.nextRouteId, value: encodeNextRouteId(50) }));
  };
  const saved = await catalog.save(1, split(["m"], 2));
  assert.equal(saved.version, 2);
  assert.equal(saved.nextRouteId, 50);
  assert.equal((await catalog.snapshot()).nextRouteId, 50);
});

test("nextRouteId never goes backwards across failed saves and a restart", async () => {
  const engineOwner = open();
  const { catalog } = engineOwner;
  await catalog.initialize();
  const ids = await catalog.allocateRouteIds(4);
  await rejectsWith(catalog.save(1, [route(99, "", "m"), route(99, "m", null)]), InvalidCatalogError);
  await rejectsWith(catalog.save(5, split(["m"], 200)), CatalogVersionMismatchError);
  const reopened = open(new MemoryMetaKv(engineOwner.kv.engine));
  const afterRestart = await reopened.catalog.allocateRouteIds(1);
  assert.ok(afterRestart[0]! > Math.max(...ids), `id ${afterRestart[0]} handed out again`);
  // A save with an id above the next route id raises it past that id.
  await reopened.catalog.save(1, split(["m"], 500));
  assert.equal((await reopened.catalog.snapshot()).nextRouteId, 502);
  assert.ok((await reopened.catalog.allocateRouteIds(1))[0]! >= 502);
});

test("deltasSince: a compaction between its two reads is a gap, not an error (the caller reloads)", async () => {
  const { kv, catalog } = open();
  await catalog.initialize();
  await catalog.save(1, split(["k"], 10));
  // The head read sees the revision; then another write and a compaction past that revision
  // land before the deltas are read at it (found by the simulator with auto-compaction on).
  const range = kv.range.bind(kv);
  let reads = 0;
  kv.range = async (request) => {
    const result = await range(request);
    if (++reads === 1) {
      kv.apply(putRequest({ key: b("elsewhere"), value: b("v") }));
      kv.apply(compactRequest(kv.store.revision));
    }
    return result;
  };
  assert.deepEqual(await catalog.deltasSince(0), { kind: "gap", currentVersion: 2 });
});

test("deltasSince: limits, versions ahead, and a gap when a delta is gone", async () => {
  const { kv, catalog } = open();
  await catalog.initialize();
  for (let v = 1; v <= 5; v++) await catalog.save(v, split([`k${v}`], 10 * v));
  const page = await catalog.deltasSince(2, 2);
  assert.ok(page.kind === "deltas");
  assert.deepEqual([page.currentVersion, page.deltas.map((d) => d.version), page.more], [6, [3, 4], true]);
  const rest = await catalog.deltasSince(4);
  assert.ok(rest.kind === "deltas");
  assert.deepEqual([rest.deltas.map((d) => d.version), rest.more], [[5, 6], false]);
  assert.deepEqual(await catalog.deltasSince(6), {
    kind: "deltas",
    currentVersion: 6,
    deltas: [],
    more: false,
  });
  assert.deepEqual(await catalog.deltasSince(9), {
    kind: "deltas",
    currentVersion: 6,
    deltas: [],
    more: false,
  });
  kv.apply(deleteRangeRequest({ key: catalog.keys.delta(4) }));
  assert.deepEqual(await catalog.deltasSince(2), { kind: "gap", currentVersion: 6 });
  kv.apply(deleteRangeRequest({ key: catalog.keys.delta(1), rangeEnd: catalog.keys.delta(4) }));
  assert.deepEqual(await catalog.deltasSince(0), { kind: "gap", currentVersion: 6 });
  await assert.rejects(catalog.deltasSince(-1), RangeError);
  await assert.rejects(catalog.deltasSince(0, 0), RangeError);
});

test("corrupt stored records are reported as CatalogDecodeError", async () => {
  const { kv, catalog } = open();
  await catalog.initialize();
  kv.apply(putRequest({ key: catalog.keys.route(1), value: Uint8Array.of(7) }));
  await rejectsWith(catalog.snapshot(), CatalogDecodeError);
  kv.apply(putRequest({ key: catalog.keys.route(1), value: encodeDescriptor(route(2, "", null)) }));
  assert.match(
    (await rejectsWith(catalog.snapshot(), CatalogDecodeError)).message,
    /stored under the key of route 1/,
  );
  kv.apply(putRequest({ key: catalog.keys.route(1), value: encodeDescriptor(route(1, "", "q")) }));
  assert.equal((await rejectsWith(catalog.snapshot(), CatalogDecodeError)).failure, "invalid-field");
  kv.apply(putRequest({ key: catalog.keys.route(1), value: encodeDescriptor(route(1, "", null)) }));
  kv.apply(putRequest({ key: b("catalog/stray"), value: b("x") }));
  assert.equal((await rejectsWith(catalog.snapshot(), CatalogDecodeError)).failure, "unknown-kind");
});

test("an error result from the meta range becomes CatalogStoreError", () => {
  assert.throws(
    () => toTxnResult({ revision: 3n, response: errorResponse(KvErrorCode.DuplicateKey) }),
    (error: unknown) => error instanceof CatalogStoreError && error.code === KvErrorCode.DuplicateKey,
  );
  assert.throws(() => toTxnResult({ revision: 3n, response: { kind: "compact" } }), CatalogStoreError);
});

test("pruneDeltas removes old deltas; readers behind them get a gap", async () => {
  const { catalog } = open();
  await catalog.initialize();
  for (let v = 1; v <= 4; v++) await catalog.save(v, split([`k${v}`], 10 * v));
  await catalog.pruneDeltas(3);
  assert.deepEqual(await catalog.deltasSince(1), { kind: "gap", currentVersion: 5 });
  const rest = await catalog.deltasSince(3);
  assert.ok(rest.kind === "deltas");
  assert.deepEqual(
    rest.deltas.map((d) => d.version),
    [4, 5],
  );
  await assert.rejects(catalog.pruneDeltas(0), RangeError);
});
