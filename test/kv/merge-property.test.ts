// Property: split and merge undo each other for readers. A random history on one range, a
// split at a random key, more random writes (and maybe a compaction) on both sides, a merge
// fence on the right side and a merge into the left: the merged range holds exactly the union
// of both sides' stored versions, answers every revision either side answered as the two
// sides together did, and agrees with a never-split reference store on every key's latest
// value and version.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { compareBytes } from "../../src/kv/bytes.js";
import {
  compactRequest,
  deleteRangeRequest,
  mergeFenceRequest,
  mergeRequest,
  putRequest,
  rangeRequest,
  type Command,
} from "../../src/kv/commands.js";
import { KeyLayout, rangeNamespace } from "../../src/kv/keys.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import { b, s } from "./helpers.js";
import { Ranges } from "./split-helpers.js";

const KEYS = ["a", "b", "c", "d", "e", "f", "g", "h"];

interface Op {
  readonly key: string;
  /** null: delete the key. */
  readonly value: string | null;
}

const opArb: fc.Arbitrary<Op> = fc.record(
  { key: fc.constantFrom(...KEYS), value: fc.option(fc.constantFrom("x", "y", "z"), { freq: 4 }) },
  { noNullPrototype: true },
);

function command(op: Op): Command {
  return op.value === null
    ? deleteRangeRequest({ key: b(op.key) })
    : putRequest({ key: b(op.key), value: b(op.value) });
}

/** Every key-value of range `id` at `revision` (0: current), with its revisions and version. */
function readAll(r: Ranges, id: number, revision = 0n): string[] {
  const { start, end } = r.store(id).bounds;
  const request = rangeRequest({
    key: start.length === 0 ? Uint8Array.of(0) : start,
    rangeEnd: end ?? Uint8Array.of(0),
    revision,
  });
  return r
    .store(id)
    .range(request)
    .kvs.map((kv) => `${s(kv.key)}=${s(kv.value)} c${kv.createRevision} m${kv.modRevision} v${kv.version}`);
}

/** Range `id`'s stored versions, keys relative to its namespace, in key order. */
/** Range `id`'s versions inside its bounds (a split's leftovers wait for removal outside them). */
function dataArea(r: Ranges, id: number): { key: Uint8Array; value: Uint8Array }[] {
  const layout = new KeyLayout(rangeNamespace(id));
  const { bounds } = r.store(id);
  const inside = layout.dataSpan(bounds.start, bounds.end);
  const view = r.kv.view();
  try {
    return [...view.scan(inside.start, inside.end)].map(({ key, value }) => ({
      key: key.slice(layout.namespace.length),
      value: value.slice(),
    }));
  } finally {
    view.release();
  }
}

/** A never-split store that applies the same key-value commands. */
class Reference {
  private readonly store = new MvccStore(new MemoryOrderedKv());
  private index = 0;

  apply(op: Op): void {
    this.store.apply(++this.index, { clientId: "", sequence: 0, timestamp: 0n, command: command(op) });
  }

  /** Every live key with its value and version (revisions differ from a split history's). */
  latest(): string[] {
    return this.store
      .range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) }))
      .kvs.map((kv) => `${s(kv.key)}=${s(kv.value)} v${kv.version}`);
  }
}

describe("merge (property)", () => {
  it("a merge after a split answers as the two sides did, and as a never-split store does", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 12 }),
        fc.constantFrom(...KEYS.slice(1)),
        fc.array(opArb, { maxLength: 16 }),
        fc.option(fc.record({ right: fc.boolean(), back: fc.nat({ max: 6 }) }, { noNullPrototype: true })),
        fc.boolean(),
        fc.boolean(),
        (before, splitKey, after, compaction, stamped, leftoversRemoved) => {
          const r = new Ranges();
          const reference = new Reference();
          const revisions = new Set<bigint>();
          for (const op of before) {
            revisions.add(r.apply(1, command(op)).result.revision);
            reference.apply(op);
          }
          r.split(1, splitKey, 2);
          for (const op of after) {
            const side = compareBytes(b(op.key), b(splitKey)) < 0 ? 1 : 2;
            revisions.add(r.apply(side, command(op)).result.revision);
            reference.apply(op);
          }
          if (compaction !== null) {
            const side = compaction.right ? 2 : 1;
            const store = r.store(side);
            const at = store.revision - BigInt(compaction.back);
            if (at > store.compactedRevision) r.apply(side, compactRequest(at));
          }
          const lhs = r.store(1);
          const rhs = r.store(2);
          const floor =
            lhs.compactedRevision > rhs.compactedRevision ? lhs.compactedRevision : rhs.compactedRevision;
          const min = (x: bigint, y: bigint) => (x < y ? x : y);
          const expected = new Map<bigint, string[]>();
          for (const revision of revisions) {
            if (revision < floor || revision === 0n) continue;
            expected.set(revision, [
              ...readAll(r, 1, min(revision, lhs.revision)),
              ...readAll(r, 2, min(revision, rhs.revision)),
            ]);
          }
          // The merge takes the right side in whether or not the left side's removal steps
          // ran since the split.
          if (leftoversRemoved) r.removeLeftovers(1);
          const union = [...dataArea(r, 1), ...dataArea(r, 2)];
          const top = lhs.revision > rhs.revision ? lhs.revision : rhs.revision;

          r.apply(2, mergeFenceRequest());
          const stamp = stamped ? top + 50n : 0n;
          const merge = r.apply(
            1,
            mergeRequest(2, r.store(2).mergeImage(), r.store(1).boundsRevision),
            undefined,
            stamp,
          );
          assert.equal(merge.result.response.kind, "merge");
          assert.equal(merge.result.revision, stamped ? stamp : top + 1n);

          assert.deepEqual(dataArea(r, 1), union);
          const merged = r.store(1);
          assert.equal(merged.compactedRevision, floor);
          // Nothing lies outside the merged bounds; only a compaction's versions may wait.
          assert.equal(merged.removalPending, floor > 0n);
          assert.equal(merged.bounds.end, null);
          for (const [revision, kvs] of expected) {
            assert.deepEqual(readAll(r, 1, revision), kvs, `at revision ${revision}`);
          }
          const latest = readAll(r, 1).map((line) => line.replace(/ c\d+ m\d+/, ""));
          assert.deepEqual(latest, reference.latest());
        },
      ),
      { numRuns: 60 },
    );
  });
});
