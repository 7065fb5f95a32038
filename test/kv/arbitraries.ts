// fast-check generators for kv commands and results. `keys` chooses the key space: arbitrary
// bytes for codec tests, a handful of short keys for model tests (so that operations collide).
import fc from "fast-check";
import {
  CompareResult,
  CompareTarget,
  SortOrder,
  SortTarget,
  type Command,
  type Compare,
  type CommandEnvelope,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
  type TxnOp,
  type TxnRequest,
} from "../../src/kv/commands.js";
import { KvErrorCode } from "../../src/kv/errors.js";
import { errorResponse, type CommandResult, type KeyValue, type OpResponse } from "../../src/kv/results.js";

/** fc.record with ordinary prototypes, so generated objects deep-equal decoded ones. */
export function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

export interface KeySpace {
  readonly key: fc.Arbitrary<Uint8Array>;
  readonly rangeEnd: fc.Arbitrary<Uint8Array>;
  readonly value: fc.Arbitrary<Uint8Array>;
  readonly revision: fc.Arbitrary<bigint>;
  readonly lease: fc.Arbitrary<bigint>;
}

export const anyBytes = fc.uint8Array({ maxLength: 12 });
const revision = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }));

export const WIDE_KEYS: KeySpace = {
  key: anyBytes,
  rangeEnd: fc.oneof(fc.constant(new Uint8Array(0)), fc.constant(Uint8Array.of(0)), anyBytes),
  value: anyBytes,
  revision,
  lease: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
};

export function rangeArb(space: KeySpace): fc.Arbitrary<RangeRequest> {
  const filter = fc.oneof(
    { weight: 4, arbitrary: fc.constant(0n) },
    { weight: 1, arbitrary: space.revision },
  );
  return record({
    kind: fc.constant("range" as const),
    key: space.key,
    rangeEnd: space.rangeEnd,
    limit: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 })),
    revision: fc.oneof({ weight: 3, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: space.revision }),
    sortOrder: fc.constantFrom(SortOrder.None, SortOrder.Ascend, SortOrder.Descend),
    sortTarget: fc.constantFrom(
      SortTarget.Key,
      SortTarget.Version,
      SortTarget.Create,
      SortTarget.Mod,
      SortTarget.Value,
    ),
    keysOnly: fc.boolean(),
    countOnly: fc.boolean(),
    minModRevision: filter,
    maxModRevision: filter,
    minCreateRevision: filter,
    maxCreateRevision: filter,
  });
}

export function putArb(space: KeySpace): fc.Arbitrary<PutRequest> {
  const flag = fc.oneof(
    { weight: 5, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  );
  const put = record({
    kind: fc.constant("put" as const),
    key: space.key,
    value: space.value,
    lease: fc.oneof({ weight: 3, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: space.lease }),
    prevKv: fc.boolean(),
    ignoreValue: flag,
    ignoreLease: flag,
  });
  // Usually leave out what an ignore flag replaces (as clients do); sometimes send both, which etcd rejects.
  return fc.tuple(put, fc.boolean(), fc.boolean()).map(([p, clearValue, clearLease]) => ({
    ...p,
    value: p.ignoreValue && clearValue ? new Uint8Array(0) : p.value,
    lease: p.ignoreLease && clearLease ? 0n : p.lease,
  }));
}

export function deleteRangeArb(space: KeySpace): fc.Arbitrary<DeleteRangeRequest> {
  return record({
    kind: fc.constant("deleteRange" as const),
    key: space.key,
    rangeEnd: space.rangeEnd,
    prevKv: fc.boolean(),
  });
}

export function compareArb(space: KeySpace): fc.Arbitrary<Compare> {
  const result = fc.constantFrom(
    CompareResult.Equal,
    CompareResult.Greater,
    CompareResult.Less,
    CompareResult.NotEqual,
  );
  const numeric = record({
    target: fc.constantFrom(
      CompareTarget.Version,
      CompareTarget.Create,
      CompareTarget.Mod,
      CompareTarget.Lease,
    ),
    result,
    key: space.key,
    rangeEnd: space.rangeEnd,
    operand: fc.oneof(fc.bigInt({ min: -1n, max: 3n }), space.revision),
  });
  const value = record({
    target: fc.constant(CompareTarget.Value as const),
    result,
    key: space.key,
    rangeEnd: space.rangeEnd,
    value: space.value,
  });
  return fc.oneof(numeric, value);
}

export function txnArb(space: KeySpace, depth: number): fc.Arbitrary<TxnRequest> {
  const op: fc.Arbitrary<TxnOp> =
    depth <= 0
      ? fc.oneof(rangeArb(space), putArb(space), deleteRangeArb(space))
      : fc.oneof(
          { weight: 3, arbitrary: fc.oneof(rangeArb(space), putArb(space), deleteRangeArb(space)) },
          { weight: 1, arbitrary: fc.constant(null).chain(() => txnArb(space, depth - 1)) },
        );
  return record({
    kind: fc.constant("txn" as const),
    compares: fc.array(compareArb(space), { maxLength: 3 }),
    success: fc.array(op, { maxLength: 3 }),
    failure: fc.array(op, { maxLength: 3 }),
  });
}

export function commandArb(
  space: KeySpace,
  compactRevision: fc.Arbitrary<bigint> = space.revision,
): fc.Arbitrary<Command> {
  return fc.oneof(
    { weight: 4, arbitrary: putArb(space) },
    { weight: 2, arbitrary: deleteRangeArb(space) },
    { weight: 3, arbitrary: txnArb(space, 2) },
    { weight: 1, arbitrary: compactRevision.map((r) => ({ kind: "compact" as const, revision: r })) },
  );
}

export const envelopeArb: fc.Arbitrary<CommandEnvelope> = fc.oneof(
  record({
    clientId: fc.string({ minLength: 1, maxLength: 8 }),
    sequence: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    timestamp: revision,
    command: commandArb(WIDE_KEYS),
  }),
  record({
    clientId: fc.constant(""),
    sequence: fc.constant(0),
    timestamp: revision,
    command: commandArb(WIDE_KEYS),
  }),
);

const keyValueArb: fc.Arbitrary<KeyValue> = record({
  key: anyBytes,
  value: anyBytes,
  createRevision: revision,
  modRevision: revision,
  version: fc.bigInt({ min: 0n, max: 1n << 40n }),
  lease: WIDE_KEYS.lease,
});

const opResponseArb: fc.Arbitrary<OpResponse> = fc.letrec<{ op: OpResponse }>((tie) => ({
  op: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    record({
      kind: fc.constant("range" as const),
      kvs: fc.array(keyValueArb, { maxLength: 3 }),
      more: fc.boolean(),
      count: fc.nat(),
    }),
    record({ kind: fc.constant("put" as const), prevKv: fc.option(keyValueArb, { nil: null }) }),
    record({
      kind: fc.constant("deleteRange" as const),
      deleted: fc.nat(),
      prevKvs: fc.array(keyValueArb, { maxLength: 3 }),
    }),
    record({
      kind: fc.constant("txn" as const),
      succeeded: fc.boolean(),
      responses: fc.array(tie("op"), { maxLength: 3 }),
    }),
  ),
})).op;

export const commandResultArb: fc.Arbitrary<CommandResult> = record({
  revision,
  response: fc.oneof(
    opResponseArb.filter((r): r is Exclude<OpResponse, { kind: "range" }> => r.kind !== "range"),
    fc.constant({ kind: "compact" as const }),
    fc
      .constantFrom(...Object.values(KvErrorCode).filter((v): v is KvErrorCode => typeof v === "number"))
      .map(errorResponse),
  ),
});
