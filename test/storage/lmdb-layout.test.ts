// The lmdb engine's on-disk layout: the key encoding (its byte order is the order of
// group, record kind and index, in memcmp and in a real lmdb store), value framing, the record
// codecs, and the lmdb store underneath (exact value sizes, ordered writes within a batch).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { EntryType, type ConfState } from "../../src/raft/types.js";
import {
  FORMAT_KEY,
  MalformedRecordError,
  RecordKind,
  decodeApplied,
  decodeEntry,
  decodeEntryTerm,
  decodeHardState,
  decodeLogStart,
  decodeSnapshot,
  decodeSnapshotMetadata,
  encodeApplied,
  frameEntry,
  encodeHardState,
  encodeLogStart,
  encodeSnapshot,
  entriesEnd,
  entryKey,
  frame,
  groupRecordKey,
  parseKey,
  unframe,
} from "../../src/storage/lmdb/layout.js";
import { openLmdbStore } from "../../src/storage/lmdb/store.js";
import { withDir } from "./support.js";

const text = (s: string) => new TextEncoder().encode(s);

/** A key address: a group record (kind < Entry) or an entry (kind Entry, with an index). */
interface Address {
  readonly groupId: number;
  readonly kind: number;
  readonly index: number;
}

const safeId = fc.oneof(fc.nat(5), fc.maxSafeNat());
const recordKinds = [RecordKind.HardState, RecordKind.LogStart, RecordKind.Applied, RecordKind.Snapshot];
const addressArbitrary: fc.Arbitrary<Address> = fc.oneof(
  fc.record({ groupId: safeId, kind: fc.constantFrom(...recordKinds), index: fc.constant(0) }),
  fc.record({ groupId: safeId, kind: fc.constant(RecordKind.Entry), index: safeId }),
);

function keyOf(address: Address): Uint8Array {
  return address.kind === RecordKind.Entry
    ? entryKey(address.groupId, address.index)
    : groupRecordKey(address.groupId, address.kind as RecordKind);
}

function compareAddresses(a: Address, b: Address): number {
  return Math.sign(a.groupId - b.groupId) || Math.sign(a.kind - b.kind) || Math.sign(a.index - b.index);
}

/** fast-check's records have a null prototype; decoded ones are plain objects. */
const confArbitrary: fc.Arbitrary<ConfState> = fc
  .record({
    voters: fc.array(safeId, { maxLength: 5 }),
    learners: fc.array(safeId, { maxLength: 3 }),
    votersOutgoing: fc.array(safeId, { maxLength: 5 }),
    learnersNext: fc.array(safeId, { maxLength: 3 }),
    autoLeave: fc.boolean(),
  })
  .map((conf) => ({ ...conf }));

describe("lmdb layout", () => {
  describe("keys", () => {
    it("compare bytewise exactly as (group, kind, index) compare", () => {
      fc.assert(
        fc.property(addressArbitrary, addressArbitrary, (a, b) => {
          assert.equal(Math.sign(Buffer.compare(keyOf(a), keyOf(b))), compareAddresses(a, b));
        }),
      );
    });

    it("keep each group's entries between its first entry key and entriesEnd, below the next group", () => {
      fc.assert(
        fc.property(fc.nat(1000), safeId, (groupId, index) => {
          const key = entryKey(groupId, index);
          assert.equal(Buffer.compare(entryKey(groupId, 0), key) <= 0, true);
          assert.equal(Buffer.compare(key, entriesEnd(groupId)), -1);
          assert.equal(
            Buffer.compare(entriesEnd(groupId), groupRecordKey(groupId + 1, RecordKind.HardState)),
            -1,
          );
          assert.equal(Buffer.compare(key, FORMAT_KEY), -1, "the format key sorts after every group");
        }),
      );
    });

    it("parse back to what they address, and unknown keys parse to null", () => {
      fc.assert(
        fc.property(addressArbitrary, (address) => {
          const parsed = parseKey(keyOf(address));
          const expected =
            address.kind === RecordKind.Entry
              ? { type: "entry", groupId: address.groupId, index: address.index }
              : { type: "record", groupId: address.groupId, kind: address.kind };
          assert.deepEqual(parsed, expected);
        }),
      );
      assert.deepEqual(parseKey(FORMAT_KEY), { type: "format" });
      assert.equal(parseKey(text("foreign")), null);
      assert.equal(parseKey(new Uint8Array(9).fill(0x07)), null, "unknown record kind");
      assert.equal(parseKey(groupRecordKey(1, RecordKind.HardState).subarray(0, 8)), null);
      assert.equal(parseKey(new Uint8Array(17).fill(0xff)), null, "unsafe group id");
    });

    it("come back from a real lmdb store in (group, kind, index) order", () =>
      withDir(async (dir) => {
        const addresses = fc.sample(addressArbitrary, { numRuns: 300, seed: 7 });
        const store = openLmdbStore({ path: dir, mapSizeBytes: 1 << 26 });
        try {
          await store.commit(
            addresses.map((a) => ({ kind: "put", key: keyOf(a), value: new Uint8Array([1]) })),
          );
          const scanned = Array.from(store.scan(), ({ key }) => Buffer.from(key).toString("hex"));
          const unique = [
            ...new Map(addresses.map((a) => [Buffer.from(keyOf(a)).toString("hex"), a])).values(),
          ];
          const expected = unique.sort(compareAddresses).map((a) => Buffer.from(keyOf(a)).toString("hex"));
          assert.deepEqual(scanned, expected);
        } finally {
          await store.close();
        }
      }));
  });

  describe("values", () => {
    it("unframe returns the payload, and null after any flipped bit or under another key", () => {
      fc.assert(
        fc.property(
          addressArbitrary,
          addressArbitrary,
          fc.uint8Array({ maxLength: 64 }),
          fc.nat(),
          (a, b, payload, bit) => {
            const key = keyOf(a);
            const value = frame(key, payload);
            assert.deepEqual(unframe(key, value), payload);
            const flipped = value.slice();
            const at = bit % (flipped.byteLength * 8);
            flipped[at >> 3]! ^= 1 << (at & 7);
            assert.equal(unframe(key, flipped), null);
            if (compareAddresses(a, b) !== 0) assert.equal(unframe(keyOf(b), value), null);
          },
        ),
      );
      assert.equal(unframe(FORMAT_KEY, new Uint8Array(3)), null, "too short to hold a checksum");
    });

    it("entries, hard states, log starts, applied records and snapshots round-trip", () => {
      fc.assert(
        fc.property(
          safeId,
          safeId,
          fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
          fc.uint8Array({ maxLength: 40 }),
          confArbitrary,
          (index, term, type, data, confState) => {
            const entry = { index, term, type, data };
            const key = entryKey(1, index);
            const payload = unframe(key, frameEntry(key, entry));
            assert.ok(payload !== null, "a framed entry passes its checksum");
            assert.deepEqual(decodeEntry(index, payload), entry);
            assert.equal(decodeEntryTerm(payload), term);
            const hardState = { term, vote: index, commit: term };
            assert.deepEqual(decodeHardState(encodeHardState(hardState)), hardState);
            assert.deepEqual(decodeLogStart(encodeLogStart({ index, term })), { index, term });
            assert.deepEqual(decodeApplied(encodeApplied({ index, confState })), { index, confState });
            const snapshot = { metadata: { index, term, confState }, data };
            assert.deepEqual(decodeSnapshot(encodeSnapshot(snapshot)), snapshot);
            assert.deepEqual(decodeSnapshotMetadata(encodeSnapshot(snapshot)), snapshot.metadata);
          },
        ),
      );
    });

    it("decoded data is a copy, even when the stored bytes are a Buffer", () => {
      const key = entryKey(1, 1);
      const framed = frameEntry(key, { index: 1, term: 1, type: EntryType.Normal, data: text("abc") });
      const stored = Buffer.from(unframe(key, framed)!);
      const entry = decodeEntry(1, stored);
      stored.fill(0);
      assert.deepEqual(Array.from(entry.data), Array.from(text("abc")));
    });

    it("malformed payloads throw MalformedRecordError", () => {
      assert.throws(() => decodeHardState(new Uint8Array(23)), MalformedRecordError);
      assert.throws(() => decodeHardState(new Uint8Array(25)), MalformedRecordError);
      assert.throws(() => decodeEntryTerm(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, 9])), MalformedRecordError);
      assert.throws(() => decodeLogStart(new Uint8Array(16).fill(0xff)), MalformedRecordError);
      assert.throws(() => decodeApplied(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, 2])), MalformedRecordError);
      assert.throws(
        () => encodeHardState({ term: -1, vote: 0, commit: 0 }),
        /not a non-negative safe integer/,
      );
    });
  });

  describe("lmdb store", () => {
    it("get returns exactly the stored bytes, small or larger than lmdb-js's shared read buffer", () =>
      withDir(async (dir) => {
        const store = openLmdbStore({ path: dir, mapSizeBytes: 1 << 26 });
        try {
          const small = Uint8Array.from([1, 2, 3]);
          const large = new Uint8Array(20 << 20).map((_, i) => i & 0xff);
          await store.commit([
            { kind: "put", key: text("small"), value: small },
            { kind: "put", key: text("large"), value: large },
          ]);
          assert.deepEqual(Array.from(store.get(text("small")) ?? []), [1, 2, 3]);
          assert.equal(store.get(text("small"))?.byteLength, 3);
          assert.ok(Buffer.from(large).equals(store.get(text("large")) ?? new Uint8Array()));
          assert.equal(store.get(text("absent")), undefined);
        } finally {
          await store.close();
        }
      }));

    it("applies a batch's writes in order: a later range delete removes an earlier put, not a later one", () =>
      withDir(async (dir) => {
        const store = openLmdbStore({ path: dir, mapSizeBytes: 1 << 26 });
        try {
          const one = Uint8Array.from([1]);
          await store.commit([
            { kind: "put", key: text("a1"), value: one },
            { kind: "put", key: text("a2"), value: one },
            { kind: "deleteRange", start: text("a"), end: text("b") },
            { kind: "put", key: text("a3"), value: one },
            { kind: "put", key: text("b1"), value: one },
          ]);
          assert.deepEqual(
            Array.from(store.scan(), ({ key }) => new TextDecoder().decode(key)),
            ["a3", "b1"],
          );
        } finally {
          await store.close();
        }
      }));

    it("commits nothing of a batch whose writes fail midway, and keeps working", () =>
      withDir(async (dir) => {
        const store = openLmdbStore({ path: dir, mapSizeBytes: 1 << 26 });
        try {
          const one = Uint8Array.from([1]);
          const emptyKey = new Uint8Array();
          await assert.rejects(
            store.commit([
              { kind: "put", key: text("before"), value: one },
              { kind: "put", key: emptyKey, value: one },
            ]),
          );
          assert.equal(store.get(text("before")), undefined);
          await store.commit([{ kind: "put", key: text("after"), value: one }]);
          assert.deepEqual(
            Array.from(store.scan(), ({ key }) => new TextDecoder().decode(key)),
            ["after"],
          );
        } finally {
          await store.close();
        }
      }));
  });
});
