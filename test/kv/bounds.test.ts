// Range bounds at apply time: random commands against a store with random bounds never write
// a key outside them; a command naming any key outside is answered KeyOutsideRange and
// changes nothing; one naming only keys inside behaves as it would without bounds. Plus the
// helpers' edge cases and the stored form of bounds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  boundsContainKey,
  boundsContainSpan,
  commandInsideBounds,
  decodeRangeBounds,
  encodeRangeBounds,
  type RangeBounds,
} from "../../src/kv/bounds.js";
import { DecodeError, compareBytes } from "../../src/kv/bytes.js";
import { splitRequest } from "../../src/kv/commands.js";
import { KvErrorCode } from "../../src/kv/errors.js";
import { commandArb, type KeySpace } from "./arbitraries.js";
import { b } from "./helpers.js";
import { Ranges } from "./split-helpers.js";

const KEYS = ["a", "b", "c", "d", "e"].map(b);
const SMALL: KeySpace = {
  key: fc.constantFrom(...KEYS, b("bb"), b("c\u0000")),
  rangeEnd: fc.constantFrom(new Uint8Array(0), Uint8Array.of(0), ...KEYS, b("z")),
  value: fc.constantFrom(b("1"), b("2")),
  revision: fc.constant(0n),
  lease: fc.constant(0n),
};

/** Range 2 of `r` made to hold [start, end) by splits of range 1 (start, end among KEYS). */
function boundedRange(r: Ranges, start: number, end: number | null): RangeBounds {
  // Keys everywhere first, so the bounded range has neighbours on both sides.
  for (const key of ["a", "b", "bb", "c", "d", "e", "f"]) r.put(1, key, "0");
  r.split(1, String.fromCharCode(97 + start), 2);
  if (end !== null) r.split(2, String.fromCharCode(97 + end), 3);
  r.removeLeftovers(1);
  r.removeLeftovers(2);
  return r.store(2).bounds;
}

describe("range bounds at apply time", () => {
  it("random commands never write outside random bounds; outside ones change nothing", () => {
    const boundsArb = fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.option(fc.integer({ min: 1, max: 3 })))
      .map(([start, width]) => [start, width === null ? null : start + width] as const);
    fc.assert(
      fc.property(
        boundsArb,
        fc.array(commandArb(SMALL, fc.constant(0n)), { maxLength: 12 }),
        ([start, end], commands) => {
          const r = new Ranges();
          const bounds = boundedRange(r, start, end);
          const neighbours = [r.dumpRange(1), r.dumpRange(3)];
          for (const command of commands) {
            const before = r.dumpRange(2);
            const inside = commandInsideBounds(bounds, command);
            const outcome = r.apply(2, command);
            const response = outcome.result.response;
            if (!inside) {
              assert.equal(response.kind, "error");
              assert.equal((response as { code: KvErrorCode }).code, KvErrorCode.KeyOutsideRange);
              assert.deepEqual(r.dumpRange(2), before);
            } else if (response.kind === "error") {
              assert.notEqual(response.code, KvErrorCode.KeyOutsideRange);
            }
            for (const event of outcome.events) assert.ok(boundsContainKey(bounds, event.kv.key));
          }
          for (const version of r.versions(2)) {
            const key = b(version.slice(0, version.lastIndexOf("@")));
            assert.ok(boundsContainKey(bounds, key), `stored ${version} outside`);
          }
          assert.deepEqual([r.dumpRange(1), r.dumpRange(3)], neighbours);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuses splits outside the bounds however random", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.constantFrom(...KEYS, b("bb"), b("z")), (start, key) => {
        const r = new Ranges();
        const bounds = boundedRange(r, start, start + 2);
        const strictlyInside = boundsContainKey(bounds, key) && compareBytes(key, bounds.start) > 0;
        const outcome = r.apply(2, splitRequest(key, 4));
        assert.equal(outcome.split !== undefined, strictlyInside);
      }),
      { numRuns: 40 },
    );
  });

  it("span containment follows etcd's range ends", () => {
    const bounds: RangeBounds = { start: b("b"), end: b("d") };
    assert.ok(boundsContainSpan(bounds, b("b"), b("d")));
    assert.ok(!boundsContainSpan(bounds, b("b"), null));
    assert.ok(!boundsContainSpan(bounds, b("a"), b("c")));
    assert.ok(boundsContainSpan({ start: b("b"), end: null }, b("c"), null));
    assert.ok(!boundsContainKey(bounds, b("d")));
    assert.ok(boundsContainKey(bounds, b("c\u0000")));
  });

  it("stores bounds and rejects bad stored forms", () => {
    for (const bounds of [
      { start: new Uint8Array(0), end: null },
      { start: b("a"), end: b("b") },
    ]) {
      assert.deepEqual(decodeRangeBounds(encodeRangeBounds(bounds)), bounds);
    }
    const good = encodeRangeBounds({ start: b("a"), end: b("b") });
    assert.throws(() => decodeRangeBounds(good.subarray(0, good.length - 1)), DecodeError);
    assert.throws(() => decodeRangeBounds(Uint8Array.of(...good, 0)), DecodeError);
    assert.throws(() => decodeRangeBounds(encodeRangeBounds({ start: b("b"), end: b("a") })), DecodeError);
    assert.throws(() => decodeRangeBounds(Uint8Array.of(9, ...good.subarray(1))), DecodeError);
  });
});
