// MvccStore transactions, one etcd behaviour per test (named after it): compares, branches,
// one revision per transaction, reading its own writes, the duplicate-key rule, atomicity and
// compares evaluated before any write. Timestamps default to 0: revisions count 1, 2, 3, ...
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CompareResult,
  CompareTarget,
  deleteRangeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
  type Compare,
} from "../../src/kv/commands.js";
import type { KvPair, ReadView, ScanOptions } from "../../src/kv/engine.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { FROM_KEY, Harness, b, compare, dataDump, get, keys, kvText, s } from "./helpers.js";

/** A memory engine that counts the scans its views are asked for, from the first byte of the start key on. */
class ScanCountingKv extends MemoryOrderedKv {
  scansFrom = new Map<number, number>();

  override view(): ReadView {
    const view = super.view();
    return {
      get: (key) => view.get(key),
      scan: (start: Uint8Array, end: Uint8Array | null, options?: ScanOptions): Iterable<KvPair> => {
        const first = start[0] ?? -1;
        this.scansFrom.set(first, (this.scansFrom.get(first) ?? 0) + 1);
        return view.scan(start, end, options);
      },
      release: () => view.release(),
    };
  }
}

describe("Txn (etcd semantics)", () => {
  function seeded(): Harness {
    const h = new Harness();
    h.ok(putRequest({ key: b("a"), value: b("m"), lease: 9n }), "put");
    h.ok(putRequest({ key: b("a"), value: b("m"), lease: 9n }), "put");
    h.ok(putRequest({ key: b("b"), value: b("z") }), "put");
    return h;
  }

  it("compares value, version, create, mod revision and lease with EQUAL, GREATER, LESS, NOT_EQUAL", () => {
    const h = seeded();
    const holds = (c: Compare) => h.ok(txnRequest({ compares: [c] }), "txn").succeeded;
    const { Equal, Greater, Less, NotEqual } = CompareResult;
    const table: [CompareTarget, bigint | string, [boolean, boolean, boolean, boolean]][] = [
      // target, operand, [EQUAL, GREATER, LESS, NOT_EQUAL] against a = "m", v2, c1, m2, lease 9
      [CompareTarget.Value, "m", [true, false, false, false]],
      [CompareTarget.Value, "a", [false, true, false, true]],
      [CompareTarget.Value, "n", [false, false, true, true]],
      [CompareTarget.Version, 2n, [true, false, false, false]],
      [CompareTarget.Version, 1n, [false, true, false, true]],
      [CompareTarget.Create, 1n, [true, false, false, false]],
      [CompareTarget.Create, 5n, [false, false, true, true]],
      [CompareTarget.Mod, 2n, [true, false, false, false]],
      [CompareTarget.Lease, 9n, [true, false, false, false]],
      [CompareTarget.Lease, 0n, [false, true, false, true]],
    ];
    for (const [target, operand, expected] of table) {
      const actual = [Equal, Greater, Less, NotEqual].map((r) => holds(compare(target, r, "a", operand)));
      assert.deepEqual(actual, expected, `${CompareTarget[target]} vs ${operand}`);
    }
  });

  it("a missing key has version, create, mod and lease 0, and a value compare on it fails", () => {
    const h = seeded();
    const holds = (c: Compare) => h.ok(txnRequest({ compares: [c] }), "txn").succeeded;
    assert.equal(holds(compare(CompareTarget.Create, CompareResult.Equal, "nope", 0n)), true);
    assert.equal(holds(compare(CompareTarget.Version, CompareResult.Equal, "nope", 0n)), true);
    assert.equal(holds(compare(CompareTarget.Value, CompareResult.Equal, "nope", "")), false);
    assert.equal(holds(compare(CompareTarget.Value, CompareResult.NotEqual, "nope", "x")), false);
  });

  it("a compare over a range holds only if every key in it satisfies it", () => {
    const h = seeded();
    const over = (rangeEnd: Uint8Array, operand: bigint) =>
      h.ok(
        txnRequest({
          compares: [
            { target: CompareTarget.Mod, result: CompareResult.Greater, key: b("a"), rangeEnd, operand },
          ],
        }),
        "txn",
      ).succeeded;
    assert.equal(over(FROM_KEY, 1n), true);
    assert.equal(over(FROM_KEY, 2n), false, "a has mod 2");
    assert.equal(over(b("b"), 1n), true, "only a");
  });

  it("takes the success branch when all compares hold and the failure branch otherwise", () => {
    const h = seeded();
    const run = (value: string) =>
      h.ok(
        txnRequest({
          compares: [compare(CompareTarget.Value, CompareResult.Equal, "b", value)],
          success: [putRequest({ key: b("then"), value: b("1") })],
          failure: [putRequest({ key: b("else"), value: b("1") }), rangeRequest({ key: b("b") })],
        }),
        "txn",
      );
    const failed = run("nope");
    assert.equal(failed.succeeded, false);
    assert.equal(failed.responses.length, 2);
    assert.equal(get(h, "else"), "else=1 c4 m4 v1 l0");
    assert.equal(get(h, "then"), undefined);
    assert.equal(run("z").succeeded, true);
    assert.equal(get(h, "then"), "then=1 c5 m5 v1 l0");
  });

  it("gives every write of the transaction the same revision, and later ops read earlier ones", () => {
    const h = seeded();
    const { result, events } = h.apply(
      txnRequest({
        success: [
          putRequest({ key: b("x"), value: b("1") }),
          deleteRangeRequest({ key: b("b") }),
          rangeRequest({ key: b("a"), rangeEnd: FROM_KEY }),
          putRequest({ key: b("y"), value: b("2") }),
        ],
      }),
    );
    assert.equal(result.revision, 4n);
    assert.deepEqual(
      events.map((e) => `${e.type} ${s(e.kv.key)} m${e.kv.modRevision}`),
      ["put x m4", "delete b m4", "put y m4"],
    );
    assert.equal(result.response.kind, "txn");
    const read = result.response.kind === "txn" ? result.response.responses[2] : undefined;
    assert.deepEqual(read?.kind === "range" && read.kvs.map(kvText), ["a=m c1 m2 v2 l9", "x=1 c4 m4 v1 l0"]);
    assert.deepEqual(keys(h, "a", FROM_KEY), ["a", "x", "y"]);
  });

  it('rejects a key put twice, or put and deleted, with "etcdserver: duplicate key given in txn request"', () => {
    const duplicate = "etcdserver: duplicate key given in txn request";
    const put = (k: string) => putRequest({ key: b(k), value: b("v") });
    const cases = [
      txnRequest({ success: [put("k"), put("k")] }),
      txnRequest({ failure: [put("k"), deleteRangeRequest({ key: b("a"), rangeEnd: b("z") })] }),
      txnRequest({ success: [put("k"), txnRequest({ success: [put("k")] })] }),
      txnRequest({ success: [deleteRangeRequest({ key: b("k") }), txnRequest({ failure: [put("k")] })] }),
      txnRequest({ success: [txnRequest({ success: [put("k")] }), txnRequest({ failure: [put("k")] })] }),
      txnRequest({ success: [put("k"), deleteRangeRequest({ key: b("a"), rangeEnd: FROM_KEY })] }),
      txnRequest({
        success: [
          txnRequest({ success: [put("k")] }),
          txnRequest({ success: [deleteRangeRequest({ key: b("k") })] }),
        ],
      }),
    ];
    for (const [i, txn] of cases.entries()) {
      const h = seeded();
      const before = dataDump(h.kv);
      assert.equal(h.error(txn), duplicate, `case ${i}`);
      assert.equal(h.store.revision, 3n);
      assert.deepEqual(dataDump(h.kv), before);
    }
  });

  it("allows the same key in the then and else branches of a nested transaction, and in separate top-level branches", () => {
    const h = seeded();
    const put = (k: string) => putRequest({ key: b(k), value: b("v") });
    h.ok(txnRequest({ success: [put("k")], failure: [put("k")] }), "txn");
    h.ok(txnRequest({ success: [txnRequest({ success: [put("k")], failure: [put("k")] })] }), "txn");
    h.ok(
      txnRequest({
        success: [deleteRangeRequest({ key: b("a") }), deleteRangeRequest({ key: b("a"), rangeEnd: b("c") })],
      }),
      "txn",
    );
    assert.deepEqual(keys(h, "a", FROM_KEY), ["k"]);
  });

  it("is atomic: a failing op (a range at a future revision, ignore_value on a missing key) applies nothing", () => {
    for (const failing of [
      rangeRequest({ key: b("a"), revision: 100n }),
      putRequest({ key: b("missing"), ignoreValue: true }),
    ]) {
      const h = seeded();
      const before = get(h, "a");
      const message = h.error(
        txnRequest({
          success: [putRequest({ key: b("a"), value: b("new") }), txnRequest({ success: [failing] })],
        }),
      );
      assert.match(message, /future revision|key not found/);
      assert.equal(get(h, "a"), before);
      assert.equal(h.store.revision, 3n);
    }
  });

  it("evaluates nested compares against the state before the transaction", () => {
    const h = seeded();
    const response = h.ok(
      txnRequest({
        success: [
          putRequest({ key: b("b"), value: b("changed") }),
          txnRequest({
            compares: [compare(CompareTarget.Value, CompareResult.Equal, "b", "z")],
            success: [putRequest({ key: b("saw-old"), value: b("1") })],
            failure: [putRequest({ key: b("saw-new"), value: b("1") })],
          }),
        ],
      }),
      "txn",
    );
    const nested = response.responses[1];
    assert.equal(nested?.kind === "txn" && nested.succeeded, true);
    assert.deepEqual(keys(h, "s", b("t")), ["saw-old"]);
  });

  it("a transaction that only reads creates no revision", () => {
    const h = seeded();
    const { result, events } = h.apply(txnRequest({ success: [rangeRequest({ key: b("a") })] }), 1000n);
    assert.equal(result.revision, 3n);
    assert.deepEqual(events, []);
  });

  it("single-key compares read the store's index of newest versions, not the engine", () => {
    const kv = new ScanCountingKv();
    const h = new Harness({}, kv);
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    h.ok(putRequest({ key: b("b"), value: b("1") }), "put");
    kv.scansFrom.clear();
    const cas = (from: string, to: string) =>
      h.ok(
        txnRequest({
          compares: [compare(CompareTarget.Value, CompareResult.Equal, "a", from)],
          success: [putRequest({ key: b("a"), value: b(to) })],
        }),
        "txn",
      ).succeeded;
    assert.equal(cas("1", "2"), true);
    assert.equal(cas("1", "3"), false, "the compare saw the first swap");
    assert.equal(cas("2", "3"), true);
    // Keys under the store's namespace start with 0x10 (a version), whatever the key.
    assert.equal(kv.scansFrom.get(0x10) ?? 0, 0, "versions scanned");
    assert.equal(get(h, "a"), "a=3 c1 m4 v3 l0");
  });
});
