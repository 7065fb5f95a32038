// Splits of a range's store: what moves (every version of every key from the split key on),
// what is copied (leases with their attachments divided, members, dedup), what is refused
// (and then changes nothing), fences, revision floors, the codec of the range commands, the
// snapshot image carrying bounds and state, and watches that end when their keys leave.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FULL_BOUNDS, boundsEqual } from "../../src/kv/bounds.js";
import { DecodeError } from "../../src/kv/bytes.js";
import {
  decodeCommand,
  decodeEnvelope,
  deleteRangeRequest,
  encodeCommand,
  encodeEnvelope,
  fenceRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  putRequest,
  rangeRequest,
  revisionFloorRequest,
  splitRequest,
  txnRequest,
} from "../../src/kv/commands.js";
import { WriteBatch } from "../../src/kv/engine.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import { KeyLayout, rangeNamespace } from "../../src/kv/keys.js";
import { memberSetRequest } from "../../src/kv/members.js";
import { namespacePairs } from "../../src/kv/snapshot.js";
import { RHS_INITIAL_INDEX } from "../../src/kv/split.js";
import type { KvCommand } from "../../src/kv/commands.js";
import { WatchHub } from "../../src/kv/watch.js";
import { b, s } from "./helpers.js";
import { Ranges } from "./split-helpers.js";

function errorCode(result: { response: { kind: string } }): KvErrorCode | null {
  const response = result.response as { kind: string; code?: KvErrorCode };
  return response.kind === "error" ? response.code! : null;
}

describe("split", () => {
  it("moves every version of the keys from the split key on, and history answers on the side that holds them", () => {
    const r = new Ranges();
    r.put(1, "a", "a1");
    const early = r.put(1, "m", "m1").revision;
    r.put(1, "z", "z1");
    r.put(1, "m", "m2");
    r.apply(1, deleteRangeRequest({ key: b("z") }));
    r.put(1, "z", "z2");
    r.put(1, "l", "l1");
    const versionsBefore = r.versions(1);
    const { result, split } = r.split(1, "m", 2);
    assert.equal(errorCode(result), null);
    assert.deepEqual(split?.rhsRangeId, 2);
    assert.equal(split?.rhsCreated, true);
    const lhs = r.store(1);
    const rhs = r.store(2);
    assert.ok(boundsEqual(lhs.bounds, { start: new Uint8Array(0), end: b("m") }));
    assert.ok(boundsEqual(rhs.bounds, { start: b("m"), end: null }));
    // Exactly the versions of keys >= "m" moved, all of them. The left side still stores
    // them until its removal steps run, where none of its reads, hashes or images look.
    assert.deepEqual(
      r.versions(2),
      versionsBefore.filter((v) => v >= "m"),
    );
    assert.deepEqual(r.versions(1), versionsBefore);
    assert.equal(lhs.removalPending, true);
    const hashWithLeftovers = lhs.hashKv().hash;
    const historyWithLeftovers = lhs.history({
      key: b("a"),
      rangeEnd: Uint8Array.of(0),
      fromRevision: 1n,
      maxEvents: 100,
    });
    const imageWithLeftovers = lhs.imageView();
    const pairsWithLeftovers = [
      ...namespacePairs(imageWithLeftovers.view, new KeyLayout(rangeNamespace(1)), lhs.bounds),
    ];
    imageWithLeftovers.view.release();
    r.removeLeftovers(1);
    assert.deepEqual(
      r.versions(1),
      versionsBefore.filter((v) => v < "m"),
    );
    assert.equal(r.store(1).removalPending, false);
    assert.equal(r.store(1).hashKv().hash, hashWithLeftovers);
    assert.deepEqual(
      r.store(1).history({ key: b("a"), rangeEnd: Uint8Array.of(0), fromRevision: 1n, maxEvents: 100 }),
      historyWithLeftovers,
    );
    const image = r.store(1).imageView();
    assert.deepEqual(
      [...namespacePairs(image.view, new KeyLayout(rangeNamespace(1)), lhs.bounds)],
      pairsWithLeftovers,
    );
    image.view.release();
    assert.deepEqual(r.read(1), ["a=a1", "l=l1"]);
    assert.deepEqual(r.read(2), ["m=m2", "z=z2"]);
    // Both sides are at the split's revision, the right side at the initial applied index.
    assert.equal(lhs.revision, result.revision);
    assert.equal(rhs.revision, result.revision);
    assert.equal(rhs.appliedIndex, RHS_INITIAL_INDEX);
    assert.deepEqual(lhs.lastSplit, { splitKey: b("m"), rhsRangeId: 2, revision: result.revision });
    assert.equal(rhs.lastSplit, null);
    // History at an old revision answers on the right side for a moved key.
    const old = rhs.range(rangeRequest({ key: b("m"), revision: early }));
    assert.equal(s(old.kvs[0]!.value), "m1");
    assert.throws(
      () => lhs.range(rangeRequest({ key: b("m"), revision: early })),
      (e: unknown) => e instanceof KvError && e.code === KvErrorCode.KeyOutsideRange,
    );
    assert.throws(
      () => rhs.range(rangeRequest({ key: b("a") })),
      (e: unknown) => e instanceof KvError && e.code === KvErrorCode.KeyOutsideRange,
    );
    // A later write on the right side lands above the split.
    const next = r.put(2, "q", "q1");
    assert.ok(next.revision > result.revision);
  });

  it("answers a retried request from the dedup table on both sides", () => {
    const r = new Ranges();
    const first = r.apply(1, putRequest({ key: b("x"), value: b("1") }), { clientId: "c", sequence: 5 });
    r.split(1, "m", 2);
    for (const id of [1, 2]) {
      const retry = r.apply(id, putRequest({ key: b("x"), value: b("1") }), { clientId: "c", sequence: 5 });
      assert.equal(retry.duplicate, true, `range ${id}`);
      assert.deepEqual(retry.result, first.result);
    }
    const next = r.apply(2, putRequest({ key: b("x"), value: b("2") }), { clientId: "c", sequence: 6 });
    assert.equal(next.duplicate, false);
    assert.deepEqual(r.read(2), ["x=2"]);
  });

  it("keeps inherited dedup records out of the bound: new clients of the right side never fail", () => {
    const r = new Ranges({ maxDedupClients: 2 });
    for (const client of ["c1", "c2"]) {
      r.apply(1, putRequest({ key: b("x"), value: b(client) }), { clientId: client, sequence: 1 });
    }
    r.split(1, "m", 2);
    for (const client of ["d1", "d2", "d3", "d4"]) {
      const outcome = r.apply(2, putRequest({ key: b("y"), value: b(client) }), {
        clientId: client,
        sequence: 1,
      });
      assert.equal(errorCode(outcome.result), null);
    }
    // The inherited records still answer retries.
    const retry = r.apply(2, putRequest({ key: b("x"), value: b("c1") }), { clientId: "c1", sequence: 1 });
    assert.equal(retry.duplicate, true);
  });

  it("copies leases, members and the compacted revision; attachments follow their keys", () => {
    const r = new Ranges({ enforceLeases: true });
    const grant = r.apply(1, leaseGrantRequest(60, 7n)).result;
    assert.equal(grant.response.kind, "leaseGrant");
    r.put(1, "a", "1", 7n);
    r.put(1, "z", "1", 7n);
    const member = { id: 3, name: "n3", peerUrls: ["http://p3"], clientUrls: [] };
    r.apply(1, memberSetRequest(member));
    const compactAt = r.put(1, "k", "1").revision;
    r.apply(1, { kind: "compact", revision: compactAt });
    r.split(1, "m", 2);
    const lhs = r.store(1);
    const rhs = r.store(2);
    assert.deepEqual(lhs.leases(), [{ id: 7n, ttlSeconds: 60 }]);
    assert.deepEqual(rhs.leases(), [{ id: 7n, ttlSeconds: 60 }]);
    assert.deepEqual(lhs.lease(7n, { keys: true })?.keys.map(s), ["a"]);
    assert.deepEqual(rhs.lease(7n, { keys: true })?.keys.map(s), ["z"]);
    assert.deepEqual(rhs.members(), lhs.members());
    assert.equal(rhs.compactedRevision, compactAt);
    // A revocation on each side deletes only that side's keys.
    const left = r.apply(1, leaseRevokeRequest(7n));
    assert.deepEqual(
      left.events.map((e) => s(e.kv.key)),
      ["a"],
    );
    assert.deepEqual(r.read(2), ["z=1"]);
    const right = r.apply(2, leaseRevokeRequest(7n));
    assert.deepEqual(
      right.events.map((e) => s(e.kv.key)),
      ["z"],
    );
    assert.deepEqual(r.store(2).leases(), []);
  });

  it("refuses invalid splits and changes nothing", () => {
    const r = new Ranges();
    r.put(1, "a", "1");
    r.put(1, "q", "1");
    r.split(1, "m", 2);
    r.split(2, "t", 3);
    const before = [r.dumpRange(1), r.dumpRange(2), r.dumpRange(3), r.dumpRange(4)];
    // Range 2 holds [m, t): the split key must lie strictly inside.
    for (const key of ["m", "a", "t", "z"]) {
      const outcome = r.split(2, key, 4);
      assert.equal(errorCode(outcome.result), KvErrorCode.KeyOutsideRange, key);
      assert.equal(outcome.split, undefined);
    }
    // Fenced for another plan.
    assert.equal(errorCode(r.apply(2, fenceRequest(b("p"), 4)).result), null);
    assert.equal(errorCode(r.split(2, "o", 4).result), KvErrorCode.RangeFenced);
    assert.equal(errorCode(r.split(2, "p", 5).result), KvErrorCode.RangeFenced);
    assert.equal(errorCode(r.apply(2, fenceRequest(b("o"), 4)).result), KvErrorCode.RangeFenced);
    // A split into a range whose namespace is this one's.
    assert.equal(errorCode(r.split(1, "c", 1).result), KvErrorCode.KeyOutsideRange);
    const fencedDump = r.dumpRange(2);
    assert.deepEqual([r.dumpRange(1), r.dumpRange(3), r.dumpRange(4)], [before[0], before[2], before[3]]);
    assert.notDeepEqual(fencedDump, before[1]); // only the fence itself changed range 2
    // An empty split key or a bad range id never reaches the store.
    assert.throws(() => r.apply(2, splitRequest(new Uint8Array(0), 4)), RangeError);
    assert.throws(() => r.apply(2, splitRequest(b("p"), 0)), RangeError);
    assert.deepEqual(r.dumpRange(2), fencedDump);
  });

  it("fences writes to the moving part but not reads or writes below the split key; the split clears the fence", () => {
    const r = new Ranges({ enforceLeases: true });
    r.apply(1, leaseGrantRequest(60, 9n));
    r.put(1, "a", "1", 9n);
    assert.equal(errorCode(r.apply(1, fenceRequest(b("m"), 2)).result), null);
    assert.equal(errorCode(r.apply(1, fenceRequest(b("m"), 2)).result), null);
    assert.equal(r.store(1).rangeState.kind, "write-fenced");
    const writes: KvCommand[] = [
      putRequest({ key: b("n"), value: b("1") }),
      putRequest({ key: b("m"), value: b("1") }),
      deleteRangeRequest({ key: b("a"), rangeEnd: b("z") }),
      txnRequest({ success: [putRequest({ key: b("b") })], failure: [putRequest({ key: b("q") })] }),
      leaseRevokeRequest(9n),
    ];
    for (const command of writes) {
      const outcome = r.apply(1, command, { clientId: "w", sequence: 1 });
      assert.equal(errorCode(outcome.result), KvErrorCode.RangeFenced, command.kind);
      assert.equal(outcome.duplicate, false, "a fenced write is not recorded: its retry is applied");
    }
    assert.deepEqual(r.read(1), ["a=1"]);
    const staying = r.apply(1, putRequest({ key: b("b"), value: b("2") }), { clientId: "s", sequence: 1 });
    assert.equal(errorCode(staying.result), null, "a write below the split key stays in this range");
    assert.deepEqual(r.read(1), ["a=1", "b=2"]);
    const readOnly = r.apply(1, txnRequest({ success: [rangeRequest({ key: b("a"), rangeEnd: b("z") })] }));
    assert.equal(readOnly.result.response.kind, "txn");
    assert.ok(r.apply(1, leaseGrantRequest(5, 10n)).result.response.kind === "leaseGrant");
    r.split(1, "m", 2);
    assert.equal(r.store(1).rangeState.kind, "active");
    assert.equal(r.store(2).rangeState.kind, "active");
    assert.equal(
      errorCode(
        r.apply(2, putRequest({ key: b("n"), value: b("1") }), { clientId: "w", sequence: 1 }).result,
      ),
      null,
    );
  });

  it("answers keys outside the bounds with KeyOutsideRange, unrecorded, so the retry applies on the right range", () => {
    const r = new Ranges();
    r.split(1, "m", 2);
    const request = { clientId: "c", sequence: 1 };
    const command = putRequest({ key: b("x"), value: b("1") });
    const before = r.dumpRange(1);
    assert.equal(errorCode(r.apply(1, command, request).result), KvErrorCode.KeyOutsideRange);
    assert.equal(errorCode(r.apply(1, command, request).result), KvErrorCode.KeyOutsideRange);
    assert.deepEqual(r.dumpRange(1), before);
    const moved = r.apply(2, command, request);
    assert.equal(moved.duplicate, false);
    assert.equal(moved.result.response.kind, "put");
  });

  it("raises the revision to a floor, so the next write is above it", () => {
    const r = new Ranges();
    const first = r.put(1, "a", "1").revision;
    const floor = first + 1000n;
    const applied = r.apply(1, revisionFloorRequest(floor)).result;
    assert.equal(applied.revision, floor);
    assert.equal(r.store(1).revision, floor);
    // A floor below the revision changes nothing.
    assert.equal(r.apply(1, revisionFloorRequest(5n)).result.revision, floor);
    assert.ok(r.put(1, "b", "1").revision > floor);
  });

  it("writes nothing under the right-hand namespace when a store exists there already", () => {
    const r = new Ranges();
    r.put(1, "a", "1");
    r.put(1, "x", "old");
    // Range 2's store as another node would have it after the split and a later write, made
    // there first (as by a snapshot of range 2).
    r.split(1, "m", 2);
    r.put(2, "x", "newer");
    const rhsBefore = r.dumpRange(2);
    const other = new Ranges();
    other.put(1, "a", "1");
    other.put(1, "x", "old");
    // Copy range 2's store into the other engine, then let its range 1 apply the split.
    const copy = new WriteBatch();
    const view = r.kv.view();
    try {
      for (const { key, value } of view.scan(rangeNamespace(2), rangeNamespace(3))) copy.put(key, value);
    } finally {
      view.release();
    }
    other.kv.write(copy);
    const outcome = other.split(1, "m", 2);
    assert.equal(outcome.split?.rhsCreated, false);
    assert.deepEqual(other.dumpRange(2), rhsBefore);
    assert.deepEqual(other.read(1), ["a=1"]);
    other.removeLeftovers(1);
    assert.deepEqual(
      other.versions(1).filter((v) => v >= "m"),
      [],
    );
  });

  it("carries bounds and state in the snapshot image", async () => {
    const r = new Ranges();
    r.put(1, "a", "1");
    r.split(1, "m", 2);
    r.apply(2, fenceRequest(b("q"), 3));
    const source = r.store(2);
    const chunks: Uint8Array[] = [];
    for await (const chunk of source.snapshot()) chunks.push(chunk);
    const target = new Ranges();
    const restored = target.store(9);
    assert.ok(boundsEqual(restored.bounds, FULL_BOUNDS));
    await restored.restore(chunks);
    assert.ok(boundsEqual(restored.bounds, source.bounds));
    assert.deepEqual(restored.rangeState, source.rangeState);
    const parentImage: Uint8Array[] = [];
    for await (const chunk of r.store(1).snapshot()) parentImage.push(chunk);
    const parent = target.store(8);
    await parent.restore(parentImage);
    assert.deepEqual(parent.lastSplit, r.store(1).lastSplit);
    assert.equal(parent.lastSplit?.rhsRangeId, 2);
    const reopened = target.store(9);
    assert.ok(boundsEqual(reopened.bounds, { start: b("m"), end: null }));
    assert.equal(reopened.rangeState.kind, "write-fenced");
  });

  it("encodes the range commands and rejects bad ones", () => {
    const commands: KvCommand[] = [
      fenceRequest(b("m"), 2),
      splitRequest(Uint8Array.of(0, 1), 0xffff_ffff),
      revisionFloorRequest((1n << 63n) - 1n),
    ];
    for (const command of commands) {
      assert.deepEqual(decodeCommand(encodeCommand(command)), command);
      const envelope = { clientId: "c", sequence: 1, timestamp: 5n, command };
      assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
    }
    assert.throws(() => encodeCommand(fenceRequest(new Uint8Array(0), 2)), RangeError);
    assert.throws(() => encodeCommand(splitRequest(b("m"), 0)), RangeError);
    assert.throws(() => encodeCommand(revisionFloorRequest(1n << 63n)), RangeError);
    const good = encodeCommand(splitRequest(b("m"), 2));
    const zeroId = good.slice();
    zeroId.fill(0, zeroId.length - 4);
    assert.throws(() => decodeCommand(zeroId), DecodeError);
    assert.throws(() => decodeCommand(good.subarray(0, good.length - 1)), DecodeError);
    assert.throws(() => decodeCommand(Uint8Array.of(...good, 0)), DecodeError);
    const floor = encodeCommand(revisionFloorRequest(1n));
    floor[2] = 0x80;
    assert.throws(() => decodeCommand(floor), DecodeError);
  });

  it("ends watches whose keys left the range with KeyOutsideRange and where to resume", () => {
    const r = new Ranges();
    const store = r.store(1);
    const hub = new WatchHub(store);
    const left = hub.watch({ key: b("a") });
    const moved = hub.watch({ key: b("a"), rangeEnd: Uint8Array.of(0) });
    const apply = (command: KvCommand) => {
      const index = store.appliedIndex + 1;
      const outcome = store.apply(index, { clientId: "", sequence: 0, timestamp: 0n, command });
      hub.publish(outcome.result.revision, outcome.events);
      if (outcome.split !== undefined) hub.boundsChanged();
      return outcome;
    };
    const put = apply(putRequest({ key: b("x"), value: b("1") }));
    const split = apply(splitRequest(b("m"), 2));
    assert.ok(split.result.revision > put.result.revision);
    const first = moved.poll();
    assert.equal(first?.events.length, 1);
    const end = moved.poll();
    assert.equal(end?.canceled, true);
    assert.equal(end?.cancelReason, new KvError(KvErrorCode.KeyOutsideRange).message);
    // A live watch has every event through the hub's last publish, the split itself: resuming
    // after it, not after its last event, spares an idle watch a compaction of what it skipped.
    assert.equal(end?.revision, split.result.revision);
    assert.equal(left.poll(), undefined);
    assert.equal(hub.size, 1);
    assert.throws(
      () => hub.watch({ key: b("x") }),
      (e: unknown) => e instanceof KvError && e.code === KvErrorCode.KeyOutsideRange,
    );
  });
});
