// The ranges admin service (concordpb.Ranges) on a real EtcdServer with a fake RangeAdmin,
// called with a raw grpc-js client: List, Split and Merge answers, each refusal's gRPC code and
// message, malformed requests refused before the admin sees them, the etcd services still
// served on the same server, and no Ranges service without an admin.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ListRangesRequestSchema,
  ListRangesResponseSchema,
  MergeRangeRequestSchema,
  MergeRangeResponseSchema,
  RangeInfoSchema,
  Ranges,
  SplitRangeRequestSchema,
  SplitRangeResponseSchema,
  type RangeInfo,
} from "../../../src/api/etcd/gen/concord/ranges_pb.js";
import {
  PutRequestSchema,
  PutResponseSchema,
  RangeRequestSchema,
  RangeResponseSchema,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { rangeInfoMessage } from "../../../src/api/etcd/range-service.js";
import { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "../../../src/kv/errors.js";
import { NotLeaderError } from "../../../src/node/errors.js";
import { CatalogVersionMismatchError } from "../../../src/placement/index.js";
import { MergeRefusedError, SplitRefusedError } from "../../../src/placement/split/errors.js";
import { FakeRangeAdmin, serveRanges, type ServedRanges } from "./range-service-fake.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array) => new TextDecoder().decode(value);

interface RawCall {
  <O extends DescMessage>(path: string, request: Uint8Array, output: O): Promise<MessageShape<O>>;
}

/** A unary call with the request given as bytes (so malformed ones can be sent too). */
function rawClient(endpoint: string): { call: RawCall; close: () => void } {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  const call: RawCall = (path, request, output) =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        (message: Uint8Array) => Buffer.from(message),
        (answer: Buffer) => fromBinary(output, answer),
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, response) => {
          if (error !== null || response === undefined) reject(error ?? new Error("empty response"));
          else resolve(response);
        },
      );
    });
  return { call, close: () => client.close() };
}

const LIST = "/concordpb.Ranges/List";
const SPLIT = "/concordpb.Ranges/Split";
const MERGE = "/concordpb.Ranges/Merge";
const mergeRequest = (routeId: bigint) =>
  toBinary(MergeRangeRequestSchema, create(MergeRangeRequestSchema, { routeId }));
const listRequest = () => toBinary(ListRangesRequestSchema, create(ListRangesRequestSchema));
const splitRequest = (key: Uint8Array) =>
  toBinary(SplitRangeRequestSchema, create(SplitRangeRequestSchema, { key }));

let served: ServedRanges;
let admin: FakeRangeAdmin;
let client: ReturnType<typeof rawClient>;

before(async () => {
  admin = new FakeRangeAdmin();
  served = await serveRanges(admin);
  client = rawClient(served.endpoint);
});

after(async () => {
  client.close();
  await served.close();
});

async function rejection(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  assert.fail("the call succeeded");
}

function assertRange(actual: RangeInfo | undefined, expected: Partial<Record<string, unknown>>): void {
  assert.ok(actual !== undefined);
  const shown = {
    routeId: actual.routeId,
    groupId: actual.groupId,
    start: text(actual.start),
    end: actual.end.length === 0 ? null : text(actual.end),
    state: actual.state,
  };
  assert.deepEqual(shown, { ...shown, ...expected });
}

test("List answers every range with a truthful header", async () => {
  const response = await client.call(LIST, listRequest(), ListRangesResponseSchema);
  assert.equal(response.ranges.length, 1);
  const [only] = response.ranges;
  assertRange(only, { routeId: 1n, groupId: 1n, start: "", end: null, state: "active" });
  assert.deepEqual(only!.replicas, [1n, 2n, 3n]);
  assert.equal(only!.leader, 2n);
  assert.equal(only!.sizeBytes, 1_500_000n);
  assert.equal(only!.opsPerSecond, 12.25);
  assert.equal(only!.catalogVersion, 7n);
  assert.equal(response.header?.memberId, BigInt(served.member.nodeId));
  assert.ok((response.header?.raftTerm ?? 0n) > 0n);
});

test("Split splits the range holding the key and answers both sides", async () => {
  const response = await client.call(SPLIT, splitRequest(bytes("m")), SplitRangeResponseSchema);
  assertRange(response.left, { routeId: 1n, groupId: 1n, start: "", end: "m" });
  assertRange(response.right, { routeId: 2n, groupId: 2n, start: "m", end: null });
  assert.equal(response.right?.catalogVersion, 8n);
  // The admin gets a plain copy of the key, not a Buffer view into the request.
  assert.deepEqual(admin.splitCalls.at(-1), bytes("m"));
  const listed = await client.call(LIST, listRequest(), ListRangesResponseSchema);
  assert.deepEqual(
    listed.ranges.map((range) => [text(range.start), range.end.length === 0 ? null : text(range.end)]),
    [
      ["", "m"],
      ["m", null],
    ],
  );
});

test("a split key that is already a boundary or in the system span is INVALID_ARGUMENT", async () => {
  const before = admin.ranges.length;
  const boundary = await rejection(client.call(SPLIT, splitRequest(bytes("m")), SplitRangeResponseSchema));
  assert.equal(boundary.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(boundary.details, "concord: split key is already the start of range 2; nothing to split");
  const system = await rejection(
    client.call(SPLIT, splitRequest(bytes("\x00\x00concord/catalog/x")), SplitRangeResponseSchema),
  );
  assert.equal(system.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(system.details, "concord: split key lies in the system span");
  // The split coordinator's own refusals map the same way: INVALID_ARGUMENT, or UNAVAILABLE when retryable.
  for (const [reason, code] of [
    ["key-at-boundary", grpc.status.INVALID_ARGUMENT],
    ["system-span", grpc.status.INVALID_ARGUMENT],
    ["not-active", grpc.status.UNAVAILABLE],
  ] as const) {
    admin.failWith = new SplitRefusedError(reason, 2, "detail");
    try {
      const refused = await rejection(client.call(SPLIT, splitRequest(bytes("t")), SplitRangeResponseSchema));
      assert.equal(refused.code, code, reason);
      assert.equal(refused.details, `split of route 2 refused: ${reason}: detail`);
    } finally {
      admin.failWith = null;
    }
  }
  assert.equal(admin.ranges.length, before);
});

test("a busy or fenced range, and retryable admin errors, are UNAVAILABLE", async () => {
  admin.busy = true;
  try {
    const busy = await rejection(client.call(SPLIT, splitRequest(bytes("t")), SplitRangeResponseSchema));
    assert.equal(busy.code, grpc.status.UNAVAILABLE);
    assert.equal(busy.details, "concord: range 2 is busy; retry");
  } finally {
    admin.busy = false;
  }
  const retryable: [Error, string][] = [
    [new KvError(KvErrorCode.RangeFenced), KV_ERROR_MESSAGES[KvErrorCode.RangeFenced]],
    [new KvError(KvErrorCode.KeyOutsideRange), KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange]],
    [
      new CatalogVersionMismatchError(8, 9),
      "route catalog version mismatch: expected 8, found 9; reload and retry",
    ],
    [new NotLeaderError(1), "etcdserver: no leader"],
  ];
  for (const [error, message] of retryable) {
    admin.failWith = error;
    try {
      const refused = await rejection(client.call(SPLIT, splitRequest(bytes("t")), SplitRangeResponseSchema));
      assert.equal(refused.code, grpc.status.UNAVAILABLE, String(error));
      assert.equal(refused.details, message);
      const listRefused = await rejection(client.call(LIST, listRequest(), ListRangesResponseSchema));
      assert.equal(listRefused.code, grpc.status.UNAVAILABLE, String(error));
    } finally {
      admin.failWith = null;
    }
  }
  assert.equal(admin.ranges.length, 2);
});

test("an unexpected admin failure is INTERNAL with its message", async () => {
  admin.failWith = new Error("disk on fire");
  try {
    const failed = await rejection(client.call(SPLIT, splitRequest(bytes("t")), SplitRangeResponseSchema));
    assert.equal(failed.code, grpc.status.INTERNAL);
    assert.equal(failed.details, "disk on fire");
  } finally {
    admin.failWith = null;
  }
});

test("malformed requests are refused before the admin sees them", async () => {
  const calls = admin.splitCalls.length;
  const empty = await rejection(
    client.call(SPLIT, splitRequest(new Uint8Array(0)), SplitRangeResponseSchema),
  );
  assert.equal(empty.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(empty.details, "concord: split key is not provided");
  // Field 1 declared as bytes with a length running past the end of the message.
  const garbage = await rejection(
    client.call(SPLIT, Uint8Array.of(0x0a, 0x7f, 0x01), SplitRangeResponseSchema),
  );
  assert.equal(garbage.code, grpc.status.INTERNAL);
  assert.equal(admin.splitCalls.length, calls);
  assert.equal(admin.ranges.length, 2);
});

test("the etcd services are served by the same server", async () => {
  const put = toBinary(PutRequestSchema, create(PutRequestSchema, { key: bytes("k"), value: bytes("v") }));
  await client.call("/etcdserverpb.KV/Put", put, PutResponseSchema);
  const get = toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: bytes("k") }));
  const read = await client.call("/etcdserverpb.KV/Range", get, RangeResponseSchema);
  assert.equal(text(read.kvs[0]!.value), "v");
});

test("without a range admin the server has no Ranges service", async () => {
  const bare = await serveRanges(undefined);
  const bareClient = rawClient(bare.endpoint);
  try {
    const missing = await rejection(bareClient.call(LIST, listRequest(), ListRangesResponseSchema));
    assert.equal(missing.code, grpc.status.UNIMPLEMENTED);
  } finally {
    bareClient.close();
    await bare.close();
  }
});

test("a RangeInfo with an id that is not a non-negative integer is refused", () => {
  const good = {
    routeId: 1,
    groupId: 1,
    start: new Uint8Array(0),
    end: null,
    state: "active" as const,
    replicas: [1],
    leader: 0,
    sizeBytes: 10.4,
    opsPerSecond: 0,
    catalogVersion: 1,
  };
  assert.equal(rangeInfoMessage(good).sizeBytes, 10n);
  assert.throws(() => rangeInfoMessage({ ...good, routeId: -1 }), /bad route id: -1/);
  assert.throws(() => rangeInfoMessage({ ...good, replicas: [1.5] }), /bad replica id: 1.5/);
});

test("the wire message round-trips every field", () => {
  const message = rangeInfoMessage({
    routeId: 3,
    groupId: 4,
    start: bytes("a"),
    end: bytes("b"),
    state: "write-fenced",
    replicas: [5, 6],
    leader: 6,
    sizeBytes: 2048,
    opsPerSecond: 0.5,
    catalogVersion: 9,
  });
  const decoded = fromBinary(
    SplitRangeResponseSchema,
    toBinary(SplitRangeResponseSchema, create(SplitRangeResponseSchema, { left: message })),
  );
  assertRange(decoded.left, { routeId: 3n, groupId: 4n, start: "a", end: "b", state: "write-fenced" });
  assert.deepEqual(decoded.left?.replicas, [5n, 6n]);
  assert.equal(decoded.left?.opsPerSecond, 0.5);
});

test("the wire contract: service, methods and field numbers stay put", () => {
  assert.equal(Ranges.typeName, "concordpb.Ranges");
  assert.deepEqual(
    Ranges.methods.map((method) => [
      method.name,
      method.methodKind,
      method.input.typeName,
      method.output.typeName,
    ]),
    [
      ["List", "unary", "concordpb.ListRangesRequest", "concordpb.ListRangesResponse"],
      ["Split", "unary", "concordpb.SplitRangeRequest", "concordpb.SplitRangeResponse"],
      ["Merge", "unary", "concordpb.MergeRangeRequest", "concordpb.MergeRangeResponse"],
    ],
  );
  const numbers = (schema: DescMessage) => schema.fields.map((field) => `${field.name}=${field.number}`);
  assert.deepEqual(numbers(RangeInfoSchema), [
    "route_id=1",
    "group_id=2",
    "start=3",
    "end=4",
    "state=5",
    "replicas=6",
    "leader=7",
    "size_bytes=8",
    "ops_per_second=9",
    "catalog_version=10",
  ]);
  assert.deepEqual(numbers(ListRangesResponseSchema), ["header=1", "ranges=2"]);
  assert.deepEqual(numbers(SplitRangeRequestSchema), ["key=1"]);
  assert.deepEqual(numbers(SplitRangeResponseSchema), ["header=1", "left=2", "right=3"]);
  assert.deepEqual(numbers(MergeRangeRequestSchema), ["route_id=1"]);
  assert.deepEqual(numbers(MergeRangeResponseSchema), ["header=1", "merged=2"]);
});

test("Merge merges a range into its left neighbour and answers the grown range", async () => {
  await client.call(SPLIT, splitRequest(bytes("x")), SplitRangeResponseSchema);
  const before = admin.ranges.map((range) => range.routeId);
  const right = before.at(-1)!;
  const response = await client.call(MERGE, mergeRequest(BigInt(right)), MergeRangeResponseSchema);
  const left = admin.ranges.at(-1)!;
  assertRange(response.merged, { routeId: BigInt(left.routeId), end: null });
  assert.equal(admin.mergeCalls.at(-1), right);
  assert.deepEqual(
    admin.ranges.map((range) => range.routeId),
    before.slice(0, -1),
  );
});

test("Merge refusals: a missing or impossible id never reaches the admin; the coordinator's map by retryable", async () => {
  const calls = admin.mergeCalls.length;
  const missing = await rejection(client.call(MERGE, mergeRequest(0n), MergeRangeResponseSchema));
  assert.equal(missing.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(missing.details, "concord: range id is not provided");
  const huge = await rejection(client.call(MERGE, mergeRequest(1n << 60n), MergeRangeResponseSchema));
  assert.equal(huge.code, grpc.status.INVALID_ARGUMENT);
  assert.match(huge.details, /is not a range id/);
  assert.equal(admin.mergeCalls.length, calls);
  const first = await rejection(client.call(MERGE, mergeRequest(1n), MergeRangeResponseSchema));
  assert.equal(first.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(first.details, "merge of route 1 refused: first-route: no left neighbour");
  const unknown = await rejection(client.call(MERGE, mergeRequest(999n), MergeRangeResponseSchema));
  assert.equal(unknown.code, grpc.status.INVALID_ARGUMENT);
  admin.failWith = new MergeRefusedError("fenced", 2, "detail");
  try {
    const busy = await rejection(client.call(MERGE, mergeRequest(2n), MergeRangeResponseSchema));
    assert.equal(busy.code, grpc.status.UNAVAILABLE);
    assert.equal(busy.details, "merge of route 2 refused: fenced: detail");
  } finally {
    admin.failWith = null;
  }
});
