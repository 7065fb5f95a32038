// The MVCC key layout: the user-key encoding preserves order, is prefix-free and round-trips;
// data keys group a key's versions together, newest first; the value header round-trips.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { record } from "./arbitraries.js";
import { DecodeError, compareBytes } from "../../src/kv/bytes.js";
import {
  KeyLayout,
  decodeDescendingRevision,
  decodeStoredVersion,
  decodeUserKey,
  encodeDescendingRevision,
  encodeStoredVersion,
  encodeUserKey,
  isTombstone,
} from "../../src/kv/keys.js";

/** Keys rich in 0x00, 0x01 and 0xFF, the bytes the escaping is about. */
const userKey = fc
  .uint8Array({ maxLength: 12 })
  .chain((random) =>
    fc
      .array(fc.constantFrom(0x00, 0x01, 0xff, 0x61), { maxLength: 6 })
      .map((special) => Uint8Array.from([...special, ...random].slice(0, 14))),
  );
const anyKey = fc.oneof(userKey, fc.uint8Array({ maxLength: 20 }));
const revision = fc.bigInt({ min: 0n, max: (1n << 63n) - 1n });
const sign = (n: number) => Math.sign(n);

describe("user key encoding", () => {
  it("preserves byte order", () => {
    fc.assert(
      fc.property(anyKey, anyKey, (a, b) => {
        assert.equal(sign(compareBytes(encodeUserKey(a), encodeUserKey(b))), sign(compareBytes(a, b)));
      }),
      { numRuns: 2000 },
    );
  });

  it("is prefix-free: no encoding starts with another key's encoding", () => {
    fc.assert(
      fc.property(anyKey, anyKey, (a, b) => {
        fc.pre(compareBytes(a, b) !== 0);
        const ea = encodeUserKey(a);
        const eb = encodeUserKey(b);
        const shorter = ea.length <= eb.length ? ea : eb;
        const longer = ea.length <= eb.length ? eb : ea;
        assert.notDeepEqual(longer.subarray(0, shorter.length), shorter);
      }),
      { numRuns: 2000 },
    );
  });

  it("round-trips, reporting where the encoding ends", () => {
    fc.assert(
      fc.property(anyKey, fc.uint8Array({ maxLength: 4 }), (key, suffix) => {
        const encoded = encodeUserKey(key);
        const decoded = decodeUserKey(Uint8Array.from([...encoded, ...suffix]));
        assert.deepEqual(decoded.key, key);
        assert.equal(decoded.end, encoded.length);
      }),
    );
  });

  it("escapes 0x00 as 0x00 0xFF and terminates with 0x00 0x01", () => {
    assert.deepEqual(
      encodeUserKey(Uint8Array.of(0x61, 0x00, 0x62)),
      Uint8Array.of(0x61, 0x00, 0xff, 0x62, 0x00, 0x01),
    );
    assert.deepEqual(encodeUserKey(new Uint8Array(0)), Uint8Array.of(0x00, 0x01));
  });

  it("rejects a missing terminator and unknown escapes", () => {
    assert.throws(() => decodeUserKey(Uint8Array.of(0x61)), DecodeError);
    assert.throws(() => decodeUserKey(Uint8Array.of(0x61, 0x00)), DecodeError);
    assert.throws(() => decodeUserKey(Uint8Array.of(0x61, 0x00, 0x02)), DecodeError);
  });
});

describe("data keys", () => {
  const layout = new KeyLayout(Uint8Array.of(0x07, 0x00));

  it("sort by user key, then by revision newest first", () => {
    fc.assert(
      fc.property(anyKey, revision, anyKey, revision, (ka, ra, kb, rb) => {
        const byKey = sign(compareBytes(ka, kb));
        const expected = byKey !== 0 ? byKey : ra === rb ? 0 : ra > rb ? -1 : 1;
        assert.equal(sign(compareBytes(layout.dataKey(ka, ra), layout.dataKey(kb, rb))), expected);
      }),
      { numRuns: 2000 },
    );
  });

  it("parse back into user key and revision", () => {
    fc.assert(
      fc.property(anyKey, revision, (key, rev) => {
        assert.deepEqual(layout.parseDataKey(layout.dataKey(key, rev)), { userKey: key, revision: rev });
      }),
    );
  });

  it("of one key all start with its versions prefix, and stay inside the data area", () => {
    fc.assert(
      fc.property(anyKey, revision, (key, rev) => {
        const dataKey = layout.dataKey(key, rev);
        const prefix = layout.versionsPrefix(key);
        assert.deepEqual(dataKey.subarray(0, prefix.length), prefix);
        assert.ok(compareBytes(layout.dataStart, dataKey) <= 0 && compareBytes(dataKey, layout.dataEnd) < 0);
      }),
    );
  });

  it("encode the revision as its complement, so a larger revision sorts first", () => {
    assert.deepEqual(encodeDescendingRevision(0n), new Uint8Array(8).fill(0xff));
    assert.equal(decodeDescendingRevision(encodeDescendingRevision(123456789n)), 123456789n);
    assert.ok(compareBytes(encodeDescendingRevision(2n), encodeDescendingRevision(1n)) < 0);
  });
});

describe("stored version value header", () => {
  it("round-trips every field and the value", () => {
    fc.assert(
      fc.property(
        record({
          createRevision: revision,
          modRevision: revision,
          version: fc.bigInt({ min: 0n, max: 1n << 40n }),
          lease: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
          tombstone: fc.boolean(),
          value: fc.uint8Array({ maxLength: 40 }),
        }),
        (version) => {
          const encoded = encodeStoredVersion(version);
          assert.deepEqual(decodeStoredVersion(encoded), version);
          assert.equal(isTombstone(encoded), version.tombstone);
        },
      ),
    );
  });

  it("decodes a value as a view of the stored bytes, and refuses fields out of range", () => {
    const value = new Uint8Array(300).map((_, i) => i & 0xff);
    const stored = { createRevision: 3n, modRevision: 5n, version: 2n, lease: -1n, tombstone: false, value };
    const encoded = encodeStoredVersion(stored);
    const decoded = decodeStoredVersion(encoded);
    assert.deepEqual(decoded, stored);
    assert.equal(decoded.value.buffer, encoded.buffer, "no copy of the value");
    assert.throws(() => encodeStoredVersion({ ...stored, modRevision: -1n }), /out of range/);
    assert.throws(() => encodeStoredVersion({ ...stored, version: 1n << 64n }), /out of range/);
    assert.throws(() => encodeStoredVersion({ ...stored, lease: 1n << 63n }), /out of range/);
  });

  it("rejects an unknown format and unknown flags", () => {
    const encoded = encodeStoredVersion({
      createRevision: 1n,
      modRevision: 1n,
      version: 1n,
      lease: 0n,
      tombstone: false,
      value: Uint8Array.of(1),
    });
    const badFormat = encoded.slice();
    badFormat[0] = 9;
    assert.throws(() => decodeStoredVersion(badFormat), { name: "DecodeError", failure: "unknown-version" });
    const badFlags = encoded.slice();
    badFlags[1] = 0x80;
    assert.throws(() => decodeStoredVersion(badFlags), { name: "DecodeError", failure: "invalid-field" });
    assert.throws(() => decodeStoredVersion(encoded.subarray(0, 10)), {
      name: "DecodeError",
      failure: "truncated",
    });
  });
});
