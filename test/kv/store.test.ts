// MvccStore, one etcd behaviour per test (named after it): Put, DeleteRange and Range.
// Timestamps default to 0, so revisions count 1, 2, 3, ... unless a test stamps them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  SortOrder,
  SortTarget,
  compactRequest,
  deleteRangeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
} from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import { MAX_KEY_BYTES } from "../../src/kv/keys.js";
import { FROM_KEY, Harness, NO_END, b, get, keys, kvText, s } from "./helpers.js";

function rangeError(h: Harness, revision: bigint): KvErrorCode {
  try {
    h.store.range(rangeRequest({ key: b("a"), revision }));
  } catch (error) {
    assert.ok(error instanceof KvError);
    return error.code;
  }
  assert.fail("range succeeded");
}

describe("Put (etcd semantics)", () => {
  it("a new key gets version 1 and create_revision = mod_revision = the put's revision", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    assert.equal(get(h, "a"), "a=1 c1 m1 v1 l0");
  });

  it("overwriting a key increments its version and keeps its create_revision", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    h.ok(putRequest({ key: b("b"), value: b("x") }), "put");
    h.ok(putRequest({ key: b("a"), value: b("2") }), "put");
    assert.equal(get(h, "a"), "a=2 c1 m3 v2 l0");
  });

  it("prev_kv returns the key-value before the put, and nothing for a new key", () => {
    const h = new Harness();
    assert.equal(h.ok(putRequest({ key: b("a"), value: b("1"), prevKv: true }), "put").prevKv, null);
    const second = h.ok(putRequest({ key: b("a"), value: b("2"), prevKv: true }), "put");
    assert.equal(second.prevKv && kvText(second.prevKv), "a=1 c1 m1 v1 l0");
    assert.equal(h.ok(putRequest({ key: b("a"), value: b("3") }), "put").prevKv, null, "only when asked");
  });

  it("records the lease id; ignore_lease keeps it and ignore_value keeps the value", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1"), lease: 77n }), "put");
    h.ok(putRequest({ key: b("a"), value: b("2"), ignoreLease: true }), "put");
    assert.equal(get(h, "a"), "a=2 c1 m2 v2 l77");
    h.ok(putRequest({ key: b("a"), lease: 5n, ignoreValue: true }), "put");
    assert.equal(get(h, "a"), "a=2 c1 m3 v3 l5");
  });

  it('ignore_value / ignore_lease on a missing key fail with "etcdserver: key not found"', () => {
    const h = new Harness();
    assert.equal(h.error(putRequest({ key: b("a"), ignoreValue: true })), "etcdserver: key not found");
    assert.equal(h.error(putRequest({ key: b("a"), ignoreLease: true })), "etcdserver: key not found");
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    h.ok(deleteRangeRequest({ key: b("a") }), "deleteRange");
    assert.equal(
      h.error(putRequest({ key: b("a"), ignoreValue: true })),
      "etcdserver: key not found",
      "deleted",
    );
    assert.equal(h.store.revision, 2n, "failed puts create no revision");
  });

  it("rejects a value with ignore_value, a lease with ignore_lease, and an empty key, as etcd's request checks do", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    assert.equal(
      h.error(putRequest({ key: b("a"), value: b("x"), ignoreValue: true })),
      "etcdserver: value is provided",
    );
    assert.equal(
      h.error(putRequest({ key: b("a"), lease: 1n, ignoreLease: true })),
      "etcdserver: lease is provided",
    );
    assert.equal(
      h.error(putRequest({ key: new Uint8Array(0), value: b("x") })),
      "etcdserver: key is not provided",
    );
    assert.equal(get(h, "a"), "a=1 c1 m1 v1 l0");
  });

  it("refuses a key over MAX_KEY_BYTES (a zero byte counting twice), alone or in a txn, and writes nothing", () => {
    const h = new Harness();
    const longest = new Uint8Array(MAX_KEY_BYTES).fill(0x61);
    h.ok(putRequest({ key: longest, value: b("1") }), "put");
    const tooLong = new Uint8Array(MAX_KEY_BYTES + 1).fill(0x61);
    const zeros = new Uint8Array(MAX_KEY_BYTES / 2 + 1);
    const message = "concord: key is too large (at most 1,900 bytes, a zero byte counting as two)";
    assert.equal(h.error(putRequest({ key: tooLong, value: b("x") })), message);
    assert.equal(h.error(putRequest({ key: zeros, value: b("x") })), message);
    const txn = txnRequest({
      success: [putRequest({ key: b("b"), value: b("x") }), putRequest({ key: tooLong, value: b("x") })],
    });
    assert.equal(h.error(txn), message);
    assert.equal(h.store.revision, 1n, "only the put of the longest key wrote");
    // Reading or deleting a key that cannot exist is no error.
    assert.equal(h.store.range(rangeRequest({ key: tooLong })).kvs.length, 0);
    h.ok(deleteRangeRequest({ key: tooLong }), "deleteRange");
  });
});

describe("DeleteRange (etcd semantics)", () => {
  function seeded(): Harness {
    const h = new Harness();
    for (const k of ["a", "b", "c", "d"]) h.ok(putRequest({ key: b(k), value: b(k) }), "put");
    return h;
  }

  it("deletes one key (empty range_end), [key, range_end), or every key >= key (range_end \\0)", () => {
    const one = seeded();
    assert.equal(one.ok(deleteRangeRequest({ key: b("b") }), "deleteRange").deleted, 1);
    assert.deepEqual(keys(one, "a", FROM_KEY), ["a", "c", "d"]);
    const interval = seeded();
    assert.equal(
      interval.ok(deleteRangeRequest({ key: b("b"), rangeEnd: b("d") }), "deleteRange").deleted,
      2,
    );
    assert.deepEqual(keys(interval, "a", FROM_KEY), ["a", "d"]);
    const from = seeded();
    assert.equal(from.ok(deleteRangeRequest({ key: b("b"), rangeEnd: FROM_KEY }), "deleteRange").deleted, 3);
    assert.deepEqual(keys(from, "a", FROM_KEY), ["a"]);
  });

  it("returns the deleted key-values as prev_kvs when asked", () => {
    const h = seeded();
    const response = h.ok(deleteRangeRequest({ key: b("a"), rangeEnd: b("c"), prevKv: true }), "deleteRange");
    assert.deepEqual(response.prevKvs.map(kvText), ["a=a c1 m1 v1 l0", "b=b c2 m2 v1 l0"]);
    const quiet = h.ok(deleteRangeRequest({ key: b("c") }), "deleteRange");
    assert.deepEqual(quiet.prevKvs, []);
  });

  it("resets the version: a re-created key starts at version 1 with a new create_revision", () => {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    h.ok(putRequest({ key: b("a"), value: b("2") }), "put");
    h.ok(deleteRangeRequest({ key: b("a") }), "deleteRange");
    assert.equal(get(h, "a"), undefined);
    h.ok(putRequest({ key: b("a"), value: b("3") }), "put");
    assert.equal(get(h, "a"), "a=3 c4 m4 v1 l0");
  });

  it("deleting nothing creates no revision (etcd only bumps the revision on a change)", () => {
    const h = seeded();
    const { result, events } = h.apply(deleteRangeRequest({ key: b("x"), rangeEnd: b("z") }), 100n);
    assert.equal(result.revision, 4n);
    assert.deepEqual(events, []);
    assert.equal(h.store.revision, 4n);
  });
});

describe("Range (etcd semantics)", () => {
  function seeded(): Harness {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("3") }), "put");
    h.ok(putRequest({ key: b("b"), value: b("1") }), "put");
    h.ok(putRequest({ key: b("c"), value: b("2") }), "put");
    h.ok(putRequest({ key: b("a"), value: b("0") }), "put");
    h.ok(putRequest({ key: b("ab"), value: b("4") }), "put");
    return h;
  }

  it("reads one key for an empty range_end, [key, range_end) otherwise, everything >= key for \\0", () => {
    const h = seeded();
    assert.deepEqual(keys(h, "a", NO_END), ["a"]);
    assert.deepEqual(keys(h, "a", b("b")), ["a", "ab"]);
    assert.deepEqual(keys(h, "ab", FROM_KEY), ["ab", "b", "c"]);
    assert.deepEqual(keys(h, "\0", FROM_KEY), ["a", "ab", "b", "c"]);
    assert.deepEqual(keys(h, "c", b("a")), [], "range_end below key");
    assert.deepEqual(keys(h, "zz", NO_END), []);
  });

  it("limit returns the first keys with more = true, and count is every key in the range", () => {
    const h = seeded();
    const r = h.store.range(rangeRequest({ key: b("a"), rangeEnd: FROM_KEY, limit: 2 }));
    assert.deepEqual(
      r.kvs.map((kv) => s(kv.key)),
      ["a", "ab"],
    );
    assert.equal(r.more, true);
    assert.equal(r.count, 4);
    const all = h.store.range(rangeRequest({ key: b("a"), rangeEnd: FROM_KEY, limit: 4 }));
    assert.equal(all.more, false);
  });

  it("sorts by key, version, create, mod or value; a non-key target without an order sorts ascending", () => {
    const h = seeded();
    const sorted = (sortTarget: SortTarget, sortOrder: SortOrder, limit = 0) =>
      h.store
        .range(rangeRequest({ key: b("a"), rangeEnd: FROM_KEY, sortTarget, sortOrder, limit }))
        .kvs.map((kv) => s(kv.key));
    assert.deepEqual(sorted(SortTarget.Key, SortOrder.Descend), ["c", "b", "ab", "a"]);
    assert.deepEqual(sorted(SortTarget.Key, SortOrder.Descend, 2), ["c", "b"]);
    assert.deepEqual(sorted(SortTarget.Value, SortOrder.None), ["a", "b", "c", "ab"]);
    assert.deepEqual(sorted(SortTarget.Value, SortOrder.Descend, 3), ["ab", "c", "b"]);
    assert.deepEqual(sorted(SortTarget.Mod, SortOrder.Descend), ["ab", "a", "c", "b"]);
    assert.deepEqual(sorted(SortTarget.Create, SortOrder.Ascend), ["a", "b", "c", "ab"]);
    assert.deepEqual(
      sorted(SortTarget.Version, SortOrder.Descend),
      ["a", "ab", "b", "c"],
      "ties keep key order",
    );
  });

  it("keys_only omits values; count_only returns the count alone", () => {
    const h = seeded();
    const keysOnly = h.store.range(rangeRequest({ key: b("a"), rangeEnd: FROM_KEY, keysOnly: true }));
    assert.deepEqual(keysOnly.kvs.map(kvText), [
      "a= c1 m4 v2 l0",
      "ab= c5 m5 v1 l0",
      "b= c2 m2 v1 l0",
      "c= c3 m3 v1 l0",
    ]);
    const countOnly = h.store.range(
      rangeRequest({ key: b("a"), rangeEnd: FROM_KEY, countOnly: true, limit: 1 }),
    );
    assert.deepEqual({ ...countOnly }, { kind: "range", kvs: [], more: false, count: 4, revision: 5n });
  });

  it("min/max mod and create revision filters prune results, but count still counts the whole range", () => {
    const h = seeded();
    const filtered = (fields: Parameters<typeof rangeRequest>[0]) => {
      const r = h.store.range(rangeRequest(fields));
      return { keys: r.kvs.map((kv) => s(kv.key)), count: r.count, more: r.more };
    };
    const all = { key: b("a"), rangeEnd: FROM_KEY };
    assert.deepEqual(filtered({ ...all, minModRevision: 3n }), {
      keys: ["a", "ab", "c"],
      count: 4,
      more: false,
    });
    assert.deepEqual(filtered({ ...all, maxModRevision: 3n }), { keys: ["b", "c"], count: 4, more: false });
    assert.deepEqual(filtered({ ...all, minCreateRevision: 2n, maxCreateRevision: 3n }), {
      keys: ["b", "c"],
      count: 4,
      more: false,
    });
    assert.deepEqual(filtered({ ...all, minCreateRevision: 2n, limit: 1 }), {
      keys: ["ab"],
      count: 4,
      more: true,
    });
  });

  it("reads history at a past revision; the header revision is still the current one", () => {
    const h = seeded();
    h.ok(deleteRangeRequest({ key: b("b") }), "deleteRange");
    assert.equal(get(h, "a", 1n), "a=3 c1 m1 v1 l0");
    assert.equal(get(h, "a", 3n), "a=3 c1 m1 v1 l0");
    assert.equal(get(h, "a", 4n), "a=0 c1 m4 v2 l0");
    assert.deepEqual(keys(h, "a", FROM_KEY, 2n), ["a", "b"]);
    assert.deepEqual(keys(h, "a", FROM_KEY, 5n), ["a", "ab", "b", "c"]);
    assert.deepEqual(keys(h, "a", FROM_KEY), ["a", "ab", "c"]);
    assert.equal(h.store.range(rangeRequest({ key: b("a"), revision: 1n })).revision, 6n);
  });

  it('a revision above the current one fails with "mvcc: required revision is a future revision"', () => {
    const h = seeded();
    assert.equal(rangeError(h, 6n), KvErrorCode.FutureRevision);
    assert.throws(() => h.store.range(rangeRequest({ key: b("a"), revision: 99n })), {
      message: "mvcc: required revision is a future revision",
    });
  });

  it('a revision below the compacted one fails with "mvcc: required revision has been compacted"', () => {
    const h = seeded();
    h.ok(compactRequest(3n), "compact");
    assert.equal(rangeError(h, 2n), KvErrorCode.Compacted);
    assert.throws(() => h.store.range(rangeRequest({ key: b("a"), revision: 1n })), {
      message: "mvcc: required revision has been compacted",
    });
    assert.equal(get(h, "a", 3n), "a=3 c1 m1 v1 l0", "the compacted revision itself stays readable");
  });

  it('an empty key fails with "etcdserver: key is not provided"', () => {
    const h = seeded();
    assert.throws(() => h.store.range(rangeRequest({ key: new Uint8Array(0), rangeEnd: FROM_KEY })), {
      message: "etcdserver: key is not provided",
    });
  });
});
