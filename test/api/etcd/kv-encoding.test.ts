// The hand-written KV response bytes (src/api/etcd/kv-encoding.ts) against protobuf-es toBinary
// of the same message, byte for byte, on random messages: absent and empty headers, int64
// extremes, negative values and values around 2^53, empty and large bytes, prev_kv present or
// not, transactions nested in transactions with every kind of response op, and an op with no
// response set. Messages carrying unknown fields are left to toBinary; the KV service's
// serializers use both.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { KeyValueSchema, type KeyValue } from "../../../src/api/etcd/gen/kv_pb.js";
import {
  DeleteRangeResponseSchema,
  KV,
  PutResponseSchema,
  RangeResponseSchema,
  ResponseHeaderSchema,
  ResponseOpSchema,
  TxnResponseSchema,
  type ResponseHeader,
  type ResponseOp,
  type TxnResponse,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { grpcServiceDefinition } from "../../../src/api/etcd/grpc-service.js";
import {
  encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
  handEncoder,
} from "../../../src/api/etcd/kv-encoding.js";
import { ProtoWriter } from "../../../src/api/etcd/proto-writer.js";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Values at the edges: zero, varint length steps, the largest exact double and its
 * neighbours (the writer splits smaller values without bigints), HLC-sized revisions.
 */
const EDGES = [0n, 1n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 56n - 1n, 2n ** 56n];
const int64 = fc.oneof(
  fc.constantFrom(...EDGES, -1n, INT64_MIN, INT64_MAX, (1_790_000_000_000n << 16n) | 0x1234n),
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
);
const uint64 = fc.oneof(fc.constantFrom(...EDGES, UINT64_MAX), fc.bigInt({ min: 0n, max: UINT64_MAX }));
const bytes = fc.oneof(fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ minLength: 120, maxLength: 300 }));

const header: fc.Arbitrary<ResponseHeader | undefined> = fc.option(
  fc
    .record({ clusterId: uint64, memberId: uint64, revision: int64, raftTerm: uint64 })
    .map((fields) => create(ResponseHeaderSchema, fields)),
  { nil: undefined },
);

const keyValue: fc.Arbitrary<KeyValue> = fc
  .record({
    key: bytes,
    createRevision: int64,
    modRevision: int64,
    version: int64,
    value: bytes,
    lease: int64,
  })
  .map((fields) => create(KeyValueSchema, fields));

const range = fc
  .record({ header, kvs: fc.array(keyValue, { maxLength: 4 }), more: fc.boolean(), count: int64 })
  .map((fields) => create(RangeResponseSchema, fields));

const put = fc
  .record({ header, prevKv: fc.option(keyValue, { nil: undefined }) })
  .map((fields) => create(PutResponseSchema, fields));

const deleteRange = fc
  .record({ header, deleted: int64, prevKvs: fc.array(keyValue, { maxLength: 3 }) })
  .map((fields) => create(DeleteRangeResponseSchema, fields));

const { txn } = fc.letrec<{ txn: TxnResponse; op: ResponseOp }>((tie) => ({
  txn: fc
    .record({
      header,
      succeeded: fc.boolean(),
      responses: fc.array(tie("op"), { maxLength: 3 }),
    })
    .map((fields) => create(TxnResponseSchema, fields)),
  op: fc
    .oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constant({ case: undefined }),
      range.map((value) => ({ case: "responseRange" as const, value })),
      put.map((value) => ({ case: "responsePut" as const, value })),
      deleteRange.map((value) => ({ case: "responseDeleteRange" as const, value })),
      tie("txn").map((value) => ({ case: "responseTxn" as const, value })),
    )
    .map((response) => create(ResponseOpSchema, { response })),
}));

function sameAsToBinary<D extends DescMessage>(
  schema: D,
  encode: (message: MessageShape<D>) => Uint8Array | undefined,
  message: MessageShape<D>,
): void {
  const mine = encode(message);
  assert.ok(mine !== undefined, "a message without unknown fields is encoded by hand");
  assert.deepEqual(Buffer.from(mine), Buffer.from(toBinary(schema, message)));
}

test("RangeResponse bytes are toBinary's", () => {
  fc.assert(
    fc.property(range, (m) => sameAsToBinary(RangeResponseSchema, encodeRangeResponse, m)),
    {
      numRuns: 300,
    },
  );
});

test("PutResponse bytes are toBinary's", () => {
  fc.assert(
    fc.property(put, (m) => sameAsToBinary(PutResponseSchema, encodePutResponse, m)),
    { numRuns: 300 },
  );
});

test("DeleteRangeResponse bytes are toBinary's", () => {
  fc.assert(
    fc.property(deleteRange, (m) => sameAsToBinary(DeleteRangeResponseSchema, encodeDeleteRangeResponse, m)),
    { numRuns: 300 },
  );
});

test("TxnResponse bytes are toBinary's, transactions nested in transactions included", () => {
  fc.assert(
    fc.property(txn, (m) => sameAsToBinary(TxnResponseSchema, encodeTxnResponse, m)),
    { numRuns: 300 },
  );
});

test("a message with unknown fields anywhere is left to toBinary, and the KV serializers write its bytes", () => {
  const unknown = [{ no: 99, wireType: 0, data: Uint8Array.of(7) }];
  const kv = create(KeyValueSchema, { key: Uint8Array.of(1), value: Uint8Array.of(2) });
  kv.$unknown = unknown;
  const nested = create(TxnResponseSchema, {
    succeeded: true,
    responses: [
      create(ResponseOpSchema, {
        response: { case: "responseRange", value: create(RangeResponseSchema, { kvs: [kv], count: 1n }) },
      }),
    ],
  });
  assert.equal(encodeTxnResponse(nested), undefined);
  const topLevel = create(PutResponseSchema, { header: create(ResponseHeaderSchema, { revision: 5n }) });
  topLevel.$unknown = unknown;
  assert.equal(encodePutResponse(topLevel), undefined);

  const definition = grpcServiceDefinition(KV);
  assert.deepEqual(
    definition.Txn!.responseSerialize(nested),
    Buffer.from(toBinary(TxnResponseSchema, nested)),
  );
  assert.deepEqual(
    definition.Put!.responseSerialize(topLevel),
    Buffer.from(toBinary(PutResponseSchema, topLevel)),
  );
});

test("the KV service serializes its responses by hand, every other message by toBinary", () => {
  for (const schema of [
    RangeResponseSchema,
    PutResponseSchema,
    DeleteRangeResponseSchema,
    TxnResponseSchema,
  ]) {
    assert.ok(handEncoder(schema) !== undefined, schema.typeName);
  }
  assert.equal(handEncoder(ResponseHeaderSchema), undefined);
  const definition = grpcServiceDefinition(KV);
  const response = create(RangeResponseSchema, {
    header: create(ResponseHeaderSchema, { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n }),
    kvs: [create(KeyValueSchema, { key: Uint8Array.of(0x61), value: Uint8Array.of(0x62), modRevision: 3n })],
    count: 1n,
  });
  assert.deepEqual(
    definition.Range!.responseSerialize(response),
    Buffer.from(toBinary(RangeResponseSchema, response)),
  );
});

test("a ProtoWriter grows from any starting capacity, none included", () => {
  const value = new Uint8Array(40).fill(7);
  for (const capacity of [0, 1, 3]) {
    const bytes = new ProtoWriter(capacity).uint32(300).int64(-1n).bytesField(1, value).view();
    assert.deepEqual(
      Buffer.from(bytes),
      Buffer.concat([
        Buffer.of(0xac, 0x02),
        Buffer.alloc(9, 0xff),
        Buffer.of(0x01, 0x0a, 40),
        Buffer.from(value),
      ]),
    );
  }
});
