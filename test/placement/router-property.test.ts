// Property: a keyspace split into random ranges, behind a RangeRouter, answers every Range
// exactly as ONE unsplit store given the same writes. Every write takes its revision from one
// shared clock, and the reference store applies each put with the revision the router's
// answer carries, so revisions (mod / create) are comparable; the reference is read at the
// revision the router says it read at (R), or at the explicit revision asked for. Range 1
// also holds system keys the reference never sees: they must not show up, nor be counted.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compareBytes, concatBytes } from "../../src/kv/bytes.js";
import {
  SortOrder,
  SortTarget,
  deleteRangeRequest,
  putRequest,
  rangeRequest,
  type KvCommand,
  type RangeRequest,
} from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import type { ReadConsistency } from "../../src/node/types.js";
import { RangeRouter } from "../../src/placement/router/router.js";
import { SYSTEM_PREFIX, catalogKeys } from "../../src/placement/router/system-keys.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import { b, split } from "./arbitraries.js";
import { SharedClock, fakeRanges } from "./router-fakes.js";

const userKey = fc
  .array(fc.constantFrom("a", "b", "c", "d", "e"), { minLength: 1, maxLength: 3 })
  .map((letters) => letters.join(""));

type WriteOp =
  | { readonly kind: "put"; readonly key: string; readonly value: string }
  | { readonly kind: "delete"; readonly key: string; readonly end: string | null };

const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: userKey,
      value: fc.string({ maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      key: userKey,
      end: fc.option(userKey, { nil: null }),
    }),
  },
);

interface ReadSpec {
  readonly start: Uint8Array;
  /** "single", "from" (rangeEnd "\0"), or an end key. */
  readonly end: "single" | "from" | Uint8Array;
  readonly limit: number;
  readonly countOnly: boolean;
  readonly keysOnly: boolean;
  readonly sortOrder: SortOrder;
  readonly sortTarget: SortTarget;
  /** Index into the put revisions (modulo), or null: revision 0. */
  readonly revisionPick: number | null;
  /** Indexes into the put revisions for minMod, maxMod, minCreate, maxCreate (null: 0). */
  readonly filters: readonly (number | null)[];
  readonly consistency: ReadConsistency;
}

const readStart = fc.oneof(
  { weight: 5, arbitrary: userKey.map(b) },
  { weight: 1, arbitrary: fc.constant(Uint8Array.of(0)) },
  { weight: 1, arbitrary: fc.constant(SYSTEM_PREFIX) },
);

const readSpec: fc.Arbitrary<ReadSpec> = fc.record({
  start: readStart,
  end: fc.oneof(
    fc.constant("single" as const),
    fc.constant("from" as const),
    userKey.map(b),
    fc.constant(b("zz")),
  ),
  limit: fc.nat({ max: 5 }),
  countOnly: fc.constantFrom(false, false, false, true),
  keysOnly: fc.boolean(),
  sortOrder: fc.constantFrom(SortOrder.None, SortOrder.Ascend, SortOrder.Descend),
  sortTarget: fc.constantFrom(
    SortTarget.Key,
    SortTarget.Key,
    SortTarget.Version,
    SortTarget.Create,
    SortTarget.Mod,
    SortTarget.Value,
  ),
  revisionPick: fc.option(fc.nat(), { nil: null, freq: 2 }),
  filters: fc.array(fc.option(fc.nat(), { nil: null, freq: 1 }), { minLength: 4, maxLength: 4 }),
  consistency: fc.constantFrom("linearizable" as const, "serializable" as const),
});

function toRequest(spec: ReadSpec, putRevisions: readonly bigint[]): RangeRequest {
  const pick = (index: number | null): bigint =>
    index === null || putRevisions.length === 0 ? 0n : putRevisions[index % putRevisions.length]!;
  const rangeEnd =
    spec.end === "single" ? new Uint8Array(0) : spec.end === "from" ? Uint8Array.of(0) : spec.end;
  return rangeRequest({
    key: spec.start,
    rangeEnd,
    limit: spec.limit,
    countOnly: spec.countOnly,
    keysOnly: spec.keysOnly,
    sortOrder: spec.sortOrder,
    sortTarget: spec.sortTarget,
    revision: pick(spec.revisionPick),
    minModRevision: pick(spec.filters[0]!),
    maxModRevision: pick(spec.filters[1]!),
    minCreateRevision: pick(spec.filters[2]!),
    maxCreateRevision: pick(spec.filters[3]!),
  });
}

function toCommand(op: WriteOp): KvCommand {
  if (op.kind === "put") return putRequest({ key: b(op.key), value: b(op.value) });
  return deleteRangeRequest({ key: b(op.key), rangeEnd: op.end === null ? new Uint8Array(0) : b(op.end) });
}

const splitKeys = fc
  .uniqueArray(userKey, { maxLength: 5 })
  .map((keys) => [...keys].sort((x, y) => compareBytes(b(x), b(y))));

test("property: a Range through the router over split ranges answers as one unsplit store", async () => {
  await fc.assert(
    fc.asyncProperty(
      splitKeys,
      fc.nat({ max: 3 }),
      fc.array(writeOp, { maxLength: 25 }),
      fc.array(readSpec, { minLength: 1, maxLength: 8 }),
      async (boundaries, systemWrites, ops, reads) => {
        const routes = split(boundaries);
        const table = new RouteTable();
        assert.equal(table.applySnapshot(1, routes).applied, true);
        const clock = new SharedClock();
        const directory = fakeRanges(routes, clock);
        const router = new RangeRouter({
          table,
          replicas: directory,
          reload: () => Promise.resolve(),
          sleep: () => Promise.resolve(),
        });
        const reference = new MvccStore(new MemoryOrderedKv());
        let referenceIndex = 1;
        const applyReference = (command: KvCommand, timestamp: bigint) =>
          reference.apply(referenceIndex++, { clientId: "", sequence: 0, timestamp, command }).result;

        // System data in range 1, written directly (as the catalog is): invisible to users.
        const range1 = directory.replica(1)!;
        for (let i = 0; i < systemWrites; i++) {
          range1.write(putRequest({ key: concatBytes(catalogKeys().prefix, b(`k${i}`)), value: b("sys") }));
        }

        const putRevisions: bigint[] = [];
        for (const op of ops) {
          const command = toCommand(op);
          const result = await router.propose(command);
          assert.notEqual(result.response.kind, "error", JSON.stringify(result.response));
          if (op.kind === "put") {
            putRevisions.push(result.revision);
            assert.equal(applyReference(command, result.revision).revision, result.revision);
          } else {
            // A delete over several ranges is one write per range (not atomic): the reference
            // deletes at the newest of their revisions, and every range is floored there so
            // no read lands between the parts.
            const expected = applyReference(command, result.revision).response;
            for (const replica of directory.replicas.values()) await replica.floorRevision(result.revision);
            assert.equal(expected.kind, "deleteRange");
            assert.equal(result.response.kind, "deleteRange");
            if (expected.kind === "deleteRange" && result.response.kind === "deleteRange") {
              assert.equal(result.response.deleted, expected.deleted);
            }
          }
        }

        for (const spec of reads) {
          const request = toRequest(spec, putRevisions);
          const got = await router.range(request, spec.consistency);
          // The reference at the revision the router read at; past its last write it is unchanged.
          const readAt = request.revision > 0n ? request.revision : got.revision;
          const expected = reference.range({
            ...request,
            revision: readAt > reference.revision ? 0n : readAt,
          });
          const where = `${JSON.stringify(boundaries)} read ${JSON.stringify({ ...spec, start: [...spec.start] }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`;
          assert.equal(got.count, expected.count, `count: ${where}`);
          assert.equal(got.more, expected.more, `more: ${where}`);
          assert.deepEqual(got.kvs, expected.kvs, `kvs: ${where}`);
          assert.ok(got.revision <= clock.last, "the header revision was issued");
          if (request.revision === 0n) {
            for (const kv of got.kvs)
              assert.ok(kv.modRevision <= got.revision, "a key newer than the read revision");
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});
