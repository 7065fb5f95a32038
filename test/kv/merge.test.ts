// Merges of a range's store into its left neighbour's: the merge fence (every state change
// refused, reads go on, idempotent, durable), the merge's refusals (each changes nothing), and
// what a merge keeps: every key of both sides at every revision, leases and dedup records as
// the contract says, the last merge across a reopen, and watches (no events for the imported
// history; later writes to the merged keys are seen). Plus the codec of both commands.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { boundsEqual } from "../../src/kv/bounds.js";
import { DecodeError, concatBytes } from "../../src/kv/bytes.js";
import {
  compactRequest,
  decodeCommand,
  decodeEnvelope,
  deleteRangeRequest,
  encodeCommand,
  encodeEnvelope,
  fenceRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  mergeFenceRequest,
  mergeRequest,
  putRequest,
  rangeCommandProblem,
  rangeRequest,
  revisionFloorRequest,
  splitRequest,
  txnRequest,
  type KvCommand,
  type RangeCommand,
} from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import { KeyLayout, MetaField, rangeNamespace } from "../../src/kv/keys.js";
import { memberSetRequest } from "../../src/kv/members.js";
import { decodeAppliedMerge, encodeAppliedMerge } from "../../src/kv/merge.js";
import { decodeCommandResult, encodeCommandResult } from "../../src/kv/results.js";
import { MERGE_FENCED_RANGE, decodeRangeState, encodeRangeState } from "../../src/kv/split.js";
import { encodeSnapshot, namespacePairs } from "../../src/kv/snapshot.js";
import { WatchHub } from "../../src/kv/watch.js";
import { b, s } from "./helpers.js";
import { Ranges } from "./split-helpers.js";

function errorCode(result: { response: { kind: string } }): KvErrorCode | null {
  const response = result.response as { kind: string; code?: KvErrorCode };
  return response.kind === "error" ? response.code! : null;
}

/** Every key-value of range `id` at `revision` (0: current), all fields, as text. */
function readAll(r: Ranges, id: number, revision = 0n): string[] {
  const store = r.store(id);
  const { start, end } = store.bounds;
  const request = rangeRequest({
    key: start.length === 0 ? Uint8Array.of(0) : start,
    rangeEnd: end ?? Uint8Array.of(0),
    revision,
  });
  return store
    .range(request)
    .kvs.map(
      (kv) =>
        `${s(kv.key)}=${s(kv.value)} c${kv.createRevision} m${kv.modRevision} v${kv.version} l${kv.lease}`,
    );
}

/**
 * The store's dedup count as stored, and how many of its records count against the bound (those
 * not inherited: entry index, the u64 after the record's format byte and sequence, above 0):
 * always equal.
 */
function dedupCounts(r: Ranges, id: number): { stored: bigint; rows: number } {
  const layout = new KeyLayout(rangeNamespace(id));
  const view = r.kv.view();
  try {
    const bytes = view.get(layout.metaKey(MetaField.DedupClients));
    const stored = bytes === undefined ? 0n : new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
    const records = [...view.scan(layout.dedupClientsStart, layout.dedupClientsEnd)];
    const entryIndex = (record: Uint8Array) =>
      new DataView(record.buffer, record.byteOffset + 9, 8).getBigUint64(0);
    return { stored, rows: records.filter(({ value }) => entryIndex(value) > 0n).length };
  } finally {
    view.release();
  }
}

/** Three ranges: 1 = ["", m), 2 = [m, t), 3 = [t, end), each with some history. */
function threeRanges(options: ConstructorParameters<typeof Ranges>[0] = {}): Ranges {
  const r = new Ranges(options);
  r.put(1, "a", "a1");
  r.put(1, "n", "n1");
  r.put(1, "u", "u1");
  r.split(1, "m", 2);
  r.split(2, "t", 3);
  r.put(2, "n", "n2");
  r.put(3, "u", "u2");
  return r;
}

const merged = (r: Ranges) => r.apply(2, mergeFenceRequest());

describe("merge fence", () => {
  it("refuses every state change with RangeFenced, unrecorded; reads and read-only transactions go on", () => {
    const r = new Ranges();
    const grant = r.apply(1, leaseGrantRequest(60, 7n)).result;
    assert.equal(errorCode(grant), null);
    r.put(1, "n", "n1", 7n);
    r.split(1, "m", 2);
    const revision = r.store(2).revision;
    const fence = merged(r);
    assert.equal(errorCode(fence.result), null);
    assert.equal(fence.result.response.kind, "merge-fence");
    assert.equal(fence.result.revision, revision, "a fence takes no revision");
    assert.equal(r.store(2).rangeState.kind, "merge-fenced");
    const before = r.dumpRange(2);
    const refused: KvCommand[] = [
      putRequest({ key: b("n"), value: b("x") }),
      deleteRangeRequest({ key: b("n") }),
      txnRequest({ success: [putRequest({ key: b("o"), value: b("x") })] }),
      leaseRevokeRequest(7n),
      leaseGrantRequest(60, 8n),
      compactRequest(revision),
      revisionFloorRequest(revision + 100n),
      fenceRequest(b("p"), 3),
      splitRequest(b("p"), 3),
      mergeRequest(3, new Uint8Array(0), 0n),
      memberSetRequest({ id: 5, name: "n5", peerUrls: [], clientUrls: [] }),
    ];
    refused.forEach((command, i) => {
      const outcome = r.apply(2, command, { clientId: "w", sequence: i + 1 });
      assert.equal(errorCode(outcome.result), KvErrorCode.RangeFenced, command.kind);
      assert.equal(outcome.result.revision, revision, command.kind);
    });
    // Nothing changed, the dedup table included: a retry of any of them applies again.
    assert.deepEqual(r.dumpRange(2), before);
    assert.deepEqual(r.read(2), ["n=n1"]);
    const readOnly = r.apply(2, txnRequest({ success: [rangeRequest({ key: b("n") })] }));
    assert.equal(readOnly.result.response.kind, "txn");
    assert.equal(r.store(2).lease(7n)?.ttlSeconds, 60);
  });

  it("is idempotent and survives a reopen", () => {
    const r = threeRanges();
    const unrecorded = { clientId: "", sequence: 0 };
    r.apply(2, mergeFenceRequest(), unrecorded);
    const dump = r.dumpRange(2);
    const again = r.apply(2, mergeFenceRequest(), unrecorded);
    assert.equal(errorCode(again.result), null);
    assert.equal(again.result.response.kind, "merge-fence");
    assert.deepEqual(r.dumpRange(2), dump);
    // Ranges.store opens a fresh store object over the engine: the state was read back.
    assert.equal(r.store(2).rangeState.kind, "merge-fenced");
    assert.deepEqual(decodeRangeState(encodeRangeState(MERGE_FENCED_RANGE)), MERGE_FENCED_RANGE);
    assert.throws(() => decodeRangeState(Uint8Array.of(1, 3)), DecodeError);
  });

  it("travels in snapshot images: the state, and the last merge of a merged range", async () => {
    const r = threeRanges();
    merged(r);
    r.apply(1, mergeRequest(2, r.store(2).mergeImage(), r.store(1).boundsRevision));
    const target = new Ranges();
    for (const [from, to] of [
      [2, 9],
      [1, 8],
    ] as const) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of r.store(from).snapshot()) chunks.push(chunk);
      await target.store(to).restore(chunks);
    }
    assert.equal(target.store(9).rangeState.kind, "merge-fenced");
    assert.deepEqual(target.store(9).mergeImage(), r.store(2).mergeImage());
    assert.deepEqual(target.store(8).lastMerge, r.store(1).lastMerge);
    assert.deepEqual(readAll(target, 8), readAll(r, 1));
  });

  it("is refused on the first range and on a range fenced for a split", () => {
    const r = threeRanges();
    const first = r.dumpRange(1);
    assert.equal(errorCode(r.apply(1, mergeFenceRequest()).result), KvErrorCode.KeyOutsideRange);
    assert.deepEqual(r.dumpRange(1), first);
    assert.equal(errorCode(r.apply(3, fenceRequest(b("w"), 4)).result), null);
    const fenced = r.dumpRange(3);
    assert.equal(errorCode(r.apply(3, mergeFenceRequest()).result), KvErrorCode.RangeFenced);
    assert.deepEqual(r.dumpRange(3), fenced);
    assert.equal(r.store(3).rangeState.kind, "write-fenced");
  });

  it("gives an image only once fenced", () => {
    const r = threeRanges();
    assert.throws(() => r.store(2).mergeImage(), /range 2 is not merge-fenced: its image would go stale/);
    merged(r);
    const image = r.store(2).mergeImage();
    assert.ok(image.length > 0);
    assert.deepEqual(r.store(2).mergeImage(), image, "a fenced range's image does not change");
  });
});

describe("merge", () => {
  it("refuses a stale fence or split into the range it merged in (seed 94037 lost a write so)", () => {
    const r = new Ranges();
    r.put(1, "a", "a1");
    r.split(1, "m", 2);
    r.put(2, "x", "old");
    r.apply(2, mergeFenceRequest());
    const image = r.store(2).mergeImage();
    assert.equal(r.apply(1, mergeRequest(2, image, r.store(1).boundsRevision)).result.response.kind, "merge");
    r.put(1, "x", "new");
    // The split that applied before the merge, retried: refused, and the namespace of the
    // merged-away range (not destroyed yet) is not taken back.
    assert.equal(errorCode(r.split(1, "m", 2).result), KvErrorCode.KeyOutsideRange);
    assert.equal(errorCode(r.apply(1, fenceRequest(b("m"), 2)).result), KvErrorCode.KeyOutsideRange);
    assert.deepEqual(r.read(1), ["a=a1", "x=new"]);
    // A split into a new range id goes on.
    assert.equal(errorCode(r.split(1, "m", 3).result), null);
    assert.deepEqual(r.read(3), ["x=new"]);
  });

  it("refuses a stale fence or split naming any range id it split into or merged in before, or a lower one", () => {
    const r = new Ranges();
    r.put(1, "a", "a1");
    // Range 1 splits off 5 at "t", then 7 at "m"; 5 merges into 7, then 7 into 1.
    r.split(1, "t", 5);
    r.put(5, "x", "old");
    r.split(1, "m", 7);
    r.apply(5, mergeFenceRequest());
    assert.equal(
      r.apply(7, mergeRequest(5, r.store(5).mergeImage(), r.store(7).boundsRevision)).result.response.kind,
      "merge",
    );
    r.apply(7, mergeFenceRequest());
    assert.equal(
      r.apply(1, mergeRequest(7, r.store(7).mergeImage(), r.store(1).boundsRevision)).result.response.kind,
      "merge",
    );
    r.put(1, "x", "new");
    // The first plan retried (its store, merged away, is still under namespace 5): refused,
    // though range 1 last merged in 7; and so is any id up to 7 (each store opened afresh).
    for (const id of [5, 6, 7]) {
      assert.equal(errorCode(r.split(1, "t", id).result), KvErrorCode.KeyOutsideRange, `split into ${id}`);
      assert.equal(errorCode(r.apply(1, fenceRequest(b("t"), id)).result), KvErrorCode.KeyOutsideRange);
    }
    assert.deepEqual(r.read(1), ["a=a1", "x=new"]);
    assert.equal(errorCode(r.split(1, "t", 8).result), null);
    assert.deepEqual(r.read(8), ["x=new"]);
  });

  it("answers every key of both sides at every revision as before; bounds, revision and compaction", () => {
    const r = threeRanges();
    const revisions = new Set<bigint>();
    for (let i = 0; i < 4; i++) {
      revisions.add(r.put(1, `c${i}`, `l${i}`).revision);
      revisions.add(r.put(2, "n", `n${i + 3}`).revision);
      revisions.add(r.apply(2, deleteRangeRequest({ key: b("o") })).result.revision);
      revisions.add(r.put(2, `o`, `o${i}`).revision);
    }
    // The right side is ahead and compacted further: both carry into the merged range.
    for (let i = 0; i < 3; i++) revisions.add(r.put(2, "p", `p${i}`).revision);
    const compactAt = r.store(2).revision - 3n;
    assert.equal(errorCode(r.apply(2, compactRequest(compactAt)).result), null);
    const lhs = r.store(1);
    const rhs = r.store(2);
    const min = (a: bigint, c: bigint) => (a < c ? a : c);
    const expected = new Map<bigint, string[]>();
    for (const revision of revisions) {
      if (revision < compactAt) continue;
      expected.set(revision, [
        ...readAll(r, 1, min(revision, lhs.revision)),
        ...readAll(r, 2, min(revision, rhs.revision)),
      ]);
    }
    const latest = [...readAll(r, 1), ...readAll(r, 2)];
    merged(r);
    const image = r.store(2).mergeImage();
    const stamp = rhs.revision + 1000n;
    const outcome = r.apply(1, mergeRequest(2, image, r.store(1).boundsRevision), undefined, stamp);
    assert.equal(errorCode(outcome.result), null);
    assert.equal(outcome.result.response.kind, "merge");
    assert.equal(outcome.result.revision, stamp, "revisionForApply(max of both, stamp)");
    assert.deepEqual(outcome.events, [], "the imported history makes no watch events");
    const store = r.store(1);
    assert.ok(boundsEqual(store.bounds, { start: new Uint8Array(0), end: b("t") }));
    assert.ok(outcome.merge !== undefined && boundsEqual(outcome.merge.bounds, store.bounds));
    assert.equal(outcome.merge?.rhsRangeId, 2);
    assert.equal(store.rangeState.kind, "active");
    assert.equal(store.revision, stamp);
    assert.equal(store.compactedRevision, compactAt);
    assert.deepEqual(store.lastMerge, { rhsRangeId: 2, revision: stamp });
    assert.deepEqual(readAll(r, 1), latest);
    for (const [revision, kvs] of expected) assert.deepEqual(readAll(r, 1, revision), kvs, `at ${revision}`);
    assert.throws(
      () => readAll(r, 1, compactAt - 1n),
      (e: unknown) => e instanceof KvError && e.code === KvErrorCode.Compacted,
    );
    // Range 3 is untouched; the merged range writes above the merge.
    assert.deepEqual(r.read(3), ["u=u2"]);
    assert.ok(r.put(1, "q", "q1").revision > stamp);
  });

  it("without a stamp takes the revision after the larger of both sides", () => {
    const r = threeRanges();
    for (let i = 0; i < 5; i++) r.put(2, "n", `n${i}`);
    const top = r.store(2).revision;
    assert.ok(top > r.store(1).revision);
    merged(r);
    const outcome = r.apply(1, mergeRequest(2, r.store(2).mergeImage(), r.store(1).boundsRevision));
    assert.equal(outcome.result.revision, top + 1n);
  });

  it("merges the lease tables: own records kept, new ones added, attachments united", () => {
    const r = new Ranges({ enforceLeases: true });
    r.apply(1, leaseGrantRequest(60, 7n));
    r.put(1, "a", "a1", 7n);
    r.put(1, "n", "n1", 7n);
    r.split(1, "m", 2);
    // The right side's lease 7 is regranted with another TTL; lease 8 lives there only.
    r.apply(2, leaseRevokeRequest(7n));
    r.apply(2, leaseGrantRequest(100, 7n));
    r.put(2, "n", "n2", 7n);
    r.apply(2, leaseGrantRequest(30, 8n));
    r.put(2, "o", "o1", 8n);
    r.apply(1, leaseGrantRequest(20, 9n));
    r.put(1, "b", "b1", 9n);
    merged(r);
    r.apply(1, mergeRequest(2, r.store(2).mergeImage(), r.store(1).boundsRevision));
    const store = r.store(1);
    assert.deepEqual(
      store.leases().map(({ id, ttlSeconds }) => `${id}:${ttlSeconds}`),
      ["7:60", "8:30", "9:20"],
    );
    assert.deepEqual(store.lease(7n, { keys: true })?.keys.map(s), ["a", "n"]);
    assert.deepEqual(store.lease(8n, { keys: true })?.keys.map(s), ["o"]);
    // Revoking a lease in the merged range deletes its keys from both former sides.
    r.apply(1, leaseRevokeRequest(7n));
    assert.deepEqual(r.read(1), ["b=b1", "o=o1"]);
  });

  it("merges the dedup tables: the higher sequence wins, ties keep this range's, imports are inherited", () => {
    const r = new Ranges({ maxDedupClients: 50 });
    const put = (id: number, key: string, value: string, clientId: string, sequence: number) =>
      r.apply(id, putRequest({ key: b(key), value: b(value) }), { clientId, sequence });
    put(1, "a", "c5", "c", 5);
    r.split(1, "m", 2);
    const c6 = put(2, "n", "c6", "c", 6).result;
    const e1 = put(2, "n", "e1", "e", 1).result;
    put(2, "n", "d2", "d", 2);
    const d3 = put(1, "a", "d3", "d", 3).result;
    const f4 = put(1, "a", "f4", "f", 4).result;
    put(2, "n", "f4r", "f", 4);
    merged(r);
    r.apply(1, mergeRequest(2, r.store(2).mergeImage(), r.store(1).boundsRevision));
    const retry = (clientId: string, sequence: number) =>
      r.apply(1, putRequest({ key: b("z"), value: b("retry") }), { clientId, sequence });
    assert.deepEqual(retry("c", 6).result, c6);
    assert.equal(errorCode(retry("c", 5).result), KvErrorCode.StaleSequence);
    assert.deepEqual(retry("d", 3).result, d3);
    assert.deepEqual(retry("e", 1).result, e1);
    assert.deepEqual(retry("f", 4).result, f4);
    assert.equal(r.store(1).range(rangeRequest({ key: b("z") })).kvs.length, 0, "no retry applied");
    const counts = dedupCounts(r, 1);
    assert.equal(counts.stored, BigInt(counts.rows), "the stored count matches the eviction order");
    // An imported (inherited) record is replaced by the client's next command, counted again.
    assert.equal(retry("e", 2).duplicate, false);
    const after = dedupCounts(r, 1);
    assert.equal(after.stored, BigInt(after.rows));
    assert.equal(after.rows, counts.rows + 1);
  });

  it("remembers the last merge across a reopen; a retry finds the end moved on (KeyOutsideRange)", () => {
    const r = threeRanges();
    merged(r);
    const image = r.store(2).mergeImage();
    const revision = r.apply(1, mergeRequest(2, image, r.store(1).boundsRevision)).result.revision;
    const dump = r.dumpRange(1);
    const again = r.apply(1, mergeRequest(2, image, r.store(1).boundsRevision));
    assert.equal(errorCode(again.result), KvErrorCode.KeyOutsideRange);
    assert.deepEqual(r.dumpRange(1), dump);
    assert.deepEqual(r.store(1).lastMerge, { rhsRangeId: 2, revision });
    assert.deepEqual(decodeAppliedMerge(encodeAppliedMerge({ rhsRangeId: 2, revision })), {
      rhsRangeId: 2,
      revision,
    });
    // A retry of the same request is answered from the dedup table.
    const request = { clientId: "m", sequence: 1 };
    const fresh = threeRanges();
    merged(fresh);
    const first = fresh.apply(
      1,
      mergeRequest(2, fresh.store(2).mergeImage(), fresh.store(1).boundsRevision),
      request,
    );
    const retry = fresh.apply(
      1,
      mergeRequest(2, fresh.store(2).mergeImage(), fresh.store(1).boundsRevision),
      request,
    );
    assert.equal(retry.duplicate, true);
    assert.deepEqual(retry.result, first.result);
  });

  it("refuses a merge decided before the range merged and split at the image's start again (KeyOutsideRange)", () => {
    const r = threeRanges();
    merged(r);
    const image = r.store(2).mergeImage();
    const decided = r.store(1).boundsRevision;
    assert.equal(decided, r.store(1).lastSplit!.revision, "the split at m is the last change of range 1");
    const merge = r.apply(1, mergeRequest(2, image, decided)).result;
    assert.equal(errorCode(merge), null);
    assert.equal(r.store(1).boundsRevision, merge.revision);
    r.split(1, "m", 4);
    assert.equal(s(r.store(1).bounds.end!), "m", "range 1 ends where the image starts again");
    const moved = r.store(1).boundsRevision;
    assert.equal(moved, r.store(1).lastSplit!.revision);
    assert.ok(moved > merge.revision);
    const dump = r.dumpRange(1);
    const stale = r.apply(1, mergeRequest(2, image, decided));
    assert.equal(errorCode(stale.result), KvErrorCode.KeyOutsideRange);
    assert.equal(stale.merge, undefined);
    assert.deepEqual(r.dumpRange(1), dump);
    assert.equal(s(r.store(4).bounds.start), "m");
  });

  it("refuses bad merges and changes nothing, not even the dedup table", () => {
    const cases: {
      what: string;
      code: KvErrorCode;
      prepare: (r: Ranges) => { target: number; command: KvCommand };
    }[] = [
      {
        what: "an image that does not decode",
        code: KvErrorCode.MergeImageInvalid,
        prepare: (r) => ({
          target: 1,
          command: mergeRequest(2, b("not an image"), r.store(1).boundsRevision),
        }),
      },
      {
        what: "a corrupted image",
        code: KvErrorCode.MergeImageInvalid,
        prepare: (r) => {
          merged(r);
          const image = r.store(2).mergeImage();
          image[image.length - 20]! ^= 0xff;
          return { target: 1, command: mergeRequest(2, image, r.store(1).boundsRevision) };
        },
      },
      {
        what: "the image of a range that is not merge-fenced",
        code: KvErrorCode.MergeImageInvalid,
        prepare: (r) => ({
          target: 1,
          command: mergeRequest(2, unfencedImage(r, 2), r.store(1).boundsRevision),
        }),
      },
      {
        what: "the image of a range that does not start at this one's end",
        code: KvErrorCode.KeyOutsideRange,
        prepare: (r) => {
          r.apply(3, mergeFenceRequest());
          return { target: 1, command: mergeRequest(3, r.store(3).mergeImage(), r.store(1).boundsRevision) };
        },
      },
      {
        what: "a merge into the last range (no end)",
        code: KvErrorCode.KeyOutsideRange,
        prepare: (r) => {
          merged(r);
          return { target: 3, command: mergeRequest(2, r.store(2).mergeImage(), r.store(3).boundsRevision) };
        },
      },
      {
        what: "a merge into a range fenced for a split",
        code: KvErrorCode.RangeFenced,
        prepare: (r) => {
          merged(r);
          r.apply(1, fenceRequest(b("c"), 4));
          return { target: 1, command: mergeRequest(2, r.store(2).mergeImage(), r.store(1).boundsRevision) };
        },
      },
      {
        what: "a merge into a merge-fenced range",
        code: KvErrorCode.RangeFenced,
        prepare: (r) => {
          r.apply(3, mergeFenceRequest());
          merged(r);
          return { target: 2, command: mergeRequest(3, r.store(3).mergeImage(), r.store(2).boundsRevision) };
        },
      },
    ];
    for (const { what, code, prepare } of cases) {
      const r = threeRanges();
      const { target, command } = prepare(r);
      const dumps = () => [1, 2, 3].map((id) => r.dumpRange(id));
      const before = dumps();
      const outcome = r.apply(target, command, { clientId: "refused", sequence: 1 });
      assert.equal(errorCode(outcome.result), code, what);
      assert.equal(outcome.merge, undefined, what);
      assert.deepEqual(dumps(), before, what);
    }
  });

  it("makes no events for the imported history; a watcher of the merged range sees later writes to its new keys", () => {
    const r = threeRanges();
    merged(r);
    const image = r.store(2).mergeImage();
    const store = r.store(1);
    const hub = new WatchHub(store);
    const apply = (command: KvCommand) => {
      const outcome = store.apply(store.appliedIndex + 1, {
        clientId: "",
        sequence: 0,
        timestamp: 0n,
        command,
      });
      hub.publish(outcome.result.revision, outcome.events);
      return outcome;
    };
    const left = hub.watch({ key: b("a"), progressNotify: true });
    assert.throws(
      () => hub.watch({ key: b("n") }),
      (e: unknown) => e instanceof KvError && e.code === KvErrorCode.KeyOutsideRange,
    );
    const outcome = apply(mergeRequest(2, image, r.store(1).boundsRevision));
    assert.equal(outcome.events.length, 0);
    const right = hub.watch({ key: b("n") });
    const write = apply(putRequest({ key: b("n"), value: b("after") }));
    const seen = right.poll();
    assert.equal(seen?.events.length, 1);
    const event = seen?.events[0];
    assert.equal(event === undefined ? null : s(event.kv.value), "after");
    // The put replaced the imported newest version: n1 (before the split), n2 (right side), now 3.
    assert.equal(event?.kv.version, 3n);
    assert.equal(event?.type, "put");
    assert.equal(seen?.revision, write.result.revision);
    for (let response = left.poll(); response !== undefined; response = left.poll()) {
      assert.equal(response.events.length, 0, "the left-hand watch saw no imported event");
    }
  });

  it("encodes both commands and their responses, and rejects bad ones", () => {
    const commands: KvCommand[] = [
      mergeFenceRequest(),
      mergeRequest(0xffff_ffff, b("image"), (1n << 63n) - 1n),
      mergeRequest(2, new Uint8Array(0), 0n),
    ];
    for (const command of commands) {
      assert.deepEqual(decodeCommand(encodeCommand(command)), command);
      const envelope = { clientId: "c", sequence: 1, timestamp: 5n, command };
      assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
    }
    for (const response of [{ kind: "merge-fence" as const }, { kind: "merge" as const }]) {
      const result = { revision: 9n, response };
      assert.deepEqual(decodeCommandResult(encodeCommandResult(result)), result);
    }
    const notBytes = { kind: "merge", rhsRangeId: 2, image: "image" } as unknown as KvCommand;
    assert.match(rangeCommandProblem(notBytes as RangeCommand) ?? "", /image must be a Uint8Array/);
    assert.throws(() => encodeCommand(notBytes), RangeError);
    assert.throws(() => encodeCommand(mergeRequest(0, b("x"), 0n)), RangeError);
    assert.throws(() => encodeCommand(mergeRequest(1.5, b("x"), 0n)), RangeError);
    assert.throws(() => encodeCommand(mergeRequest(2, b("x"), -1n)), RangeError);
    assert.throws(() => encodeCommand(mergeRequest(2, b("x"), 1n << 63n)), RangeError);
    const good = encodeCommand(mergeRequest(2, b("x"), 0n));
    const zeroId = good.slice();
    zeroId.fill(0, 2, 6);
    assert.throws(() => decodeCommand(zeroId), DecodeError);
    assert.throws(() => decodeCommand(good.subarray(0, good.length - 1)), DecodeError);
    assert.throws(() => decodeCommand(Uint8Array.of(...good, 0)), DecodeError);
    assert.throws(() => decodeCommand(Uint8Array.of(...encodeCommand(mergeFenceRequest()), 0)), DecodeError);
  });
});

/** Range `id`'s whole namespace in the snapshot format, fenced or not (what mergeImage refuses to give). */
function unfencedImage(r: Ranges, id: number): Uint8Array {
  const view = r.kv.view();
  try {
    const bounds = r.store(id).bounds;
    return concatBytes(...encodeSnapshot(namespacePairs(view, new KeyLayout(rangeNamespace(id)), bounds)));
  } finally {
    view.release();
  }
}
