// RangeRouter over a real NodeHost (one node, virtual time): range 1 is split at "m" under a
// router whose table still has one route; a write to the new range is refused by range 1
// (KeyOutsideRange), the router reloads and lands it on range 2 once; then reads over both
// ranges at one revision (with the real revision-floor command), a delete-range over both and
// a cross-range txn refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deleteRangeRequest, putRequest, rangeRequest, txnRequest } from "../../src/kv/commands.js";
import { KvErrorCode } from "../../src/kv/errors.js";
import { RangeRouter } from "../../src/placement/router/router.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import { TestCluster, track } from "../node/harness.js";
import { b, split } from "./arbitraries.js";

const ALL = Uint8Array.of(0);
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

test("the router over a real node: a split under a stale table, then reads and deletes over both ranges", async () => {
  const cluster = new TestCluster([1], {}, { sharedStateMachine: true });
  await cluster.startAll();
  try {
    cluster.bootstrap(1);
    await cluster.runUntil(() => cluster.leader(1) === 1, "range 1 has a leader");
    const host = cluster.host(1);
    const table = new RouteTable();
    assert.equal(table.applySnapshot(1, split([])).applied, true);
    let splitDone = false;
    let reloads = 0;
    const router = new RangeRouter({
      table,
      replicas: host,
      reload: () => {
        reloads += 1;
        if (splitDone && table.version === 1) table.applySnapshot(2, split(["m"]));
        return Promise.resolve();
      },
      sleep: () => Promise.resolve(),
    });
    const run = async <T>(promise: Promise<T>): Promise<T> => {
      const tracked = track(promise);
      await cluster.runUntil(() => tracked.settled, "the request settles");
      return promise;
    };

    for (const key of ["a", "b", "x"]) {
      assert.equal(
        (await run(router.propose(putRequest({ key: b(key), value: b(key) })))).response.kind,
        "put",
      );
    }
    await run(host.replica(1)!.split(b("m"), 2));
    splitDone = true;
    await cluster.runUntil(() => cluster.leader(2) === 1, "range 2 has a leader");

    // The table still says one route: range 1 refuses, the router reloads and retries.
    const late = await run(
      router.propose(putRequest({ key: b("y"), value: b("y") }), { clientId: "c", sequence: 1 }),
    );
    assert.equal(late.response.kind, "put");
    assert.equal(reloads, 1);
    const onRange2 = await run(host.replica(2)!.range(rangeRequest({ key: b("y") }), "serializable"));
    assert.equal(onRange2.kvs[0]?.version, 1n);

    // Range 1 is behind range 2 now: a read over both floors it to range 2's revision.
    const r2 = host.replica(2)!.revision;
    assert.ok(host.replica(1)!.revision < r2);
    const all = await run(router.range(rangeRequest({ key: b("a"), rangeEnd: ALL })));
    assert.deepEqual(
      all.kvs.map((kv) => text(kv.key)),
      ["a", "b", "x", "y"],
    );
    assert.equal(all.count, 4);
    assert.equal(all.revision, r2);
    assert.ok(host.replica(1)!.revision >= r2, "range 1 was floored");
    const next = await run(router.propose(putRequest({ key: b("c"), value: b("c") })));
    assert.ok(next.revision > r2, "a later write on the floored range lands above R");
    const atR = await run(router.range(rangeRequest({ key: b("a"), rangeEnd: ALL, revision: r2 })));
    assert.equal(atR.count, 4, "the read at R does not change");
    const serializable = await run(
      router.range(rangeRequest({ key: b("a"), rangeEnd: ALL }), "serializable"),
    );
    // Serializable: at the lowest local revision (range 2's, below the write of "c").
    assert.equal(serializable.revision, r2);
    assert.equal(serializable.count, 4);

    const cross = await run(
      router.propose(txnRequest({ success: [putRequest({ key: b("a") }), putRequest({ key: b("z") })] })),
    );
    assert.equal(cross.response.kind === "error" ? cross.response.code : null, KvErrorCode.CrossRangeTxn);

    const deleted = await run(
      router.propose(deleteRangeRequest({ key: b("b"), rangeEnd: ALL, prevKv: true })),
    );
    assert.equal(deleted.response.kind, "deleteRange");
    if (deleted.response.kind === "deleteRange") {
      assert.deepEqual(
        deleted.response.prevKvs.map((kv) => text(kv.key)),
        ["b", "c", "x", "y"],
      );
    }
    const left = await run(router.range(rangeRequest({ key: b("a"), rangeEnd: ALL })));
    assert.deepEqual(
      left.kvs.map((kv) => text(kv.key)),
      ["a"],
    );
  } finally {
    for (const id of [...cluster.hosts.keys()]) await cluster.stopNode(id);
  }
});
