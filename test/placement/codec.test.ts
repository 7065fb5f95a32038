// The catalog's keys and record encodings: round trips (random descriptors and deltas), key
// order, and decoders refusing unknown formats, truncation, trailing bytes and bad fields
// with CatalogDecodeError.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compareBytes } from "../../src/kv/bytes.js";
import {
  CatalogKeys,
  RECORD_FORMAT,
  decodeDelta,
  decodeDescriptor,
  decodeNextRouteId,
  decodeVersion,
  encodeDelta,
  encodeDescriptor,
  encodeNextRouteId,
  encodeVersion,
  type CatalogDelta,
} from "../../src/placement/catalog/codec.js";
import { CatalogDecodeError, InvalidCatalogError } from "../../src/placement/catalog/errors.js";
import { b, plain, route, validCatalog } from "./arbitraries.js";

function failure(decode: () => unknown): string {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof CatalogDecodeError, `not a CatalogDecodeError: ${String(error)}`);
    return error.failure;
  }
  return assert.fail("decoded");
}

const deltaArb: fc.Arbitrary<CatalogDelta> = fc
  .tuple(validCatalog(), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.nat())
  .map(([routes, version, cut]) => {
    const upserts = routes.slice(0, cut % (routes.length + 1));
    const used = new Set(routes.map((r) => r.routeId));
    const removed = [Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER].filter((id) => !used.has(id));
    return { version, upserts, removed };
  });

test("property: descriptors and deltas round-trip", () => {
  fc.assert(
    fc.property(validCatalog(), (routes) => {
      for (const r of routes) {
        const bytes = encodeDescriptor(r);
        assert.equal(bytes[0], RECORD_FORMAT);
        assert.deepEqual(plain(decodeDescriptor(bytes)), plain(r));
      }
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(deltaArb, (delta) => {
      const decoded = decodeDelta(encodeDelta(delta));
      assert.equal(decoded.version, delta.version);
      assert.deepEqual(decoded.upserts.map(plain), delta.upserts.map(plain));
      assert.deepEqual(decoded.removed, delta.removed);
    }),
    { numRuns: 200 },
  );
});

test("property: every truncation and any trailing byte is refused", () => {
  fc.assert(
    fc.property(deltaArb, fc.integer({ min: 0, max: 255 }), (delta, extra) => {
      const bytes = encodeDelta(delta);
      for (let n = 0; n < bytes.length; n++)
        assert.equal(
          failure(() => decodeDelta(bytes.subarray(0, n))),
          "truncated",
        );
      assert.equal(
        failure(() => decodeDelta(Uint8Array.of(...bytes, extra))),
        "trailing-bytes",
      );
    }),
    { numRuns: 50 },
  );
});

test("version and next route id records", () => {
  assert.equal(decodeVersion(encodeVersion(1)), 1);
  assert.equal(decodeNextRouteId(encodeNextRouteId(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  assert.throws(() => encodeVersion(0), RangeError);
  assert.throws(() => encodeNextRouteId(2 ** 53), RangeError);
  assert.equal(
    failure(() => decodeVersion(Uint8Array.of(2, 0, 0, 0, 0, 0, 0, 0, 1))),
    "unknown-version",
  );
  assert.equal(
    failure(() => decodeVersion(Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0))),
    "invalid-field",
  );
  assert.equal(
    failure(() => decodeVersion(Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 1, 0))),
    "trailing-bytes",
  );
  assert.equal(
    failure(() => decodeNextRouteId(Uint8Array.of(1, 0, 0))),
    "truncated",
  );
  assert.equal(
    failure(() => decodeNextRouteId(new Uint8Array(0))),
    "truncated",
  );
  assert.equal(
    failure(() => decodeNextRouteId(Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))),
    "invalid-field",
  );
});

test("descriptor fields a valid route cannot hold are refused", () => {
  const good = encodeDescriptor(route(1, "", "m", { parentRouteId: 9, splitAt: 5n }));
  assert.equal(
    failure(() => decodeDescriptor(Uint8Array.of(9, ...good.subarray(1)))),
    "unknown-version",
  );
  // Layout: format, id (8), start (4 + 0), end marker, end (4 + 1), group (8), state, parent (8), splitAt (8).
  const stateAt = 1 + 8 + 4 + 1 + 5 + 8;
  const badState = good.slice();
  badState[stateAt] = 9;
  assert.equal(
    failure(() => decodeDescriptor(badState)),
    "invalid-field",
  );
  const badMarker = good.slice();
  badMarker[1 + 8 + 4] = 2;
  assert.equal(
    failure(() => decodeDescriptor(badMarker)),
    "invalid-field",
  );
  const selfParent = good.slice();
  selfParent.set([0, 0, 0, 0, 0, 0, 0, 1], stateAt + 1);
  assert.equal(
    failure(() => decodeDescriptor(selfParent)),
    "invalid-field",
  );
  const emptySpan = encodeDescriptor(route(2, "m", null)).slice();
  assert.equal(
    failure(() =>
      decodeDescriptor(Uint8Array.of(...emptySpan.subarray(0, 14), 1, 0, 0, 0, 0, ...emptySpan.subarray(15))),
    ),
    "invalid-field",
  );
  assert.throws(() => encodeDescriptor(route(1, "b", "a")), InvalidCatalogError);
});

test("malformed deltas are refused both ways", () => {
  assert.throws(() => encodeDelta({ version: 2, upserts: [route(3, "", null)], removed: [3] }), RangeError);
  assert.throws(() => encodeDelta({ version: 0, upserts: [], removed: [] }), RangeError);
  assert.throws(() => encodeDelta({ version: 2, upserts: [], removed: [4, 4] }), RangeError);
  const duplicate = Uint8Array.of(
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    ...[0, 0, 0, 0, 0, 0, 0, 7],
    ...[0, 0, 0, 0, 0, 0, 0, 7],
  );
  assert.equal(
    failure(() => decodeDelta(duplicate)),
    "invalid-field",
  );
  const valid = Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, ...[0, 0, 0, 0, 0, 0, 0, 7]);
  assert.deepEqual(decodeDelta(valid), { version: 2, upserts: [], removed: [7] });
});

test("keys: fixed layout, numeric order, snapshot span excludes the deltas", () => {
  const keys = new CatalogKeys();
  assert.deepEqual(Buffer.from(keys.version).toString(), "catalog/version");
  assert.deepEqual(Buffer.from(keys.nextRouteId).toString(), "catalog/next_route_id");
  assert.deepEqual(keys.route(258), Uint8Array.of(...b("catalog/route/"), 0, 0, 0, 0, 0, 0, 1, 2));
  assert.ok(compareBytes(keys.route(255), keys.route(256)) < 0);
  assert.ok(compareBytes(keys.delta(9), keys.delta(10)) < 0);
  assert.equal(keys.routeIdOf(keys.route(77)), 77);
  assert.equal(keys.deltaVersionOf(keys.delta(12)), 12);
  assert.equal(keys.routeIdOf(keys.delta(12)), null);
  assert.equal(
    failure(() => keys.routeIdOf(Uint8Array.of(...keys.routePrefix, 1))),
    "truncated",
  );
  // The snapshot reads [next_route_id, end): routes and version inside, deltas outside.
  assert.ok(compareBytes(keys.delta(Number.MAX_SAFE_INTEGER), keys.nextRouteId) < 0);
  assert.ok(compareBytes(keys.nextRouteId, keys.route(1)) < 0);
  assert.ok(compareBytes(keys.route(Number.MAX_SAFE_INTEGER), keys.version) < 0);
  assert.ok(compareBytes(keys.version, keys.end) < 0);
  assert.throws(() => new CatalogKeys(new Uint8Array(0)), RangeError);
  assert.throws(() => new CatalogKeys(Uint8Array.of(0xff)), RangeError);
});
