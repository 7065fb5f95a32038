// The etcd KV service of a one-node Concord, driven by the real `etcd3` client on the member's
// client port: put/get, prefixes, limits, sorting, reads at a revision, deletes, txns,
// compaction and its errors, etcd's error codes and messages (checked with a raw grpc-js
// client built from the generated descriptors), malformed request bytes (a raw HTTP/2 client)
// that must fail without a write, and the native protocol still served on the same port.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http2";
import { connect as connectHttp2 } from "node:http2";
import { connect as connectTcp } from "node:net";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus, type Client, type ServiceError } from "@grpc/grpc-js";
import type { Etcd3 } from "etcd3";
import { Concord } from "../../../src/api/index.js";
import {
  CompareSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
  KV,
  PutRequestSchema,
  RangeRequestSchema,
  RequestOpSchema,
  TxnRequestSchema,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { text, waitFor } from "../helpers.js";
import { EtcdCluster, rawClient, within } from "./harness.js";

let cluster: EtcdCluster;
let etcd: Etcd3;
let raw: Client;

before(async () => {
  cluster = await EtcdCluster.start(1);
  etcd = cluster.client(1);
  raw = rawClient(KV, cluster.endpoint(1));
});

after(async () => {
  raw.close();
  await cluster.close();
});

/** A unary call of the raw client: the response, or the gRPC error. */
function call<I, O>(method: string, request: I): Promise<O> {
  return new Promise((resolve, reject) => {
    const fn = (raw as unknown as Record<string, (r: I, cb: (e: ServiceError | null, o: O) => void) => void>)[
      method
    ];
    assert.ok(fn !== undefined, `the KV client has ${method}`);
    fn.call(raw, request, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}

async function rejectsWith(promise: Promise<unknown>, code: GrpcStatus, message: string): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code, `${error.message} has code ${code}`);
    assert.equal(error.details, message);
    return true;
  });
}

test("put, get, overwrite and versions", async () => {
  const first = await etcd.put("kv/a").value("1").exec();
  const second = await etcd.put("kv/a").value("2").exec();
  assert.ok(BigInt(second.header.revision) > BigInt(first.header.revision));
  const response = await etcd.get("kv/a").exec();
  const kv = response.kvs[0];
  assert.ok(kv !== undefined);
  assert.equal(kv.value.toString(), "2");
  assert.equal(kv.version, "2");
  assert.equal(kv.create_revision, first.header.revision);
  assert.equal(kv.mod_revision, second.header.revision);
  assert.equal(response.header.member_id, "1");
  assert.equal(await etcd.get("kv/missing").string(), null);
  // A read at the first write's revision sees the first value.
  assert.equal(await etcd.get("kv/a").revision(first.header.revision).string(), "1");
});

test("prefix, limit, count, sort, keys only", async () => {
  for (const [key, value] of [
    ["s/b", "2"],
    ["s/a", "3"],
    ["s/c", "1"],
    ["t/x", "9"],
  ] as const) {
    await etcd.put(key).value(value);
  }
  assert.deepEqual(await etcd.getAll().prefix("s/").keys(), ["s/a", "s/b", "s/c"]);
  assert.equal(await etcd.getAll().prefix("s/").count(), 3);
  const limited = await etcd.getAll().prefix("s/").limit(2).exec();
  assert.deepEqual(
    limited.kvs.map((kv) => kv.key.toString()),
    ["s/a", "s/b"],
  );
  assert.equal(limited.more, true);
  assert.equal(limited.count, "3");
  assert.deepEqual(await etcd.getAll().prefix("s/").sort("Value", "Descend").keys(), ["s/a", "s/b", "s/c"]);
  assert.deepEqual(await etcd.getAll().prefix("s/").sort("Key", "Descend").keys(), ["s/c", "s/b", "s/a"]);
  const keysOnly = await call<RangeRequest, RangeResponse>(
    "Range",
    create(RangeRequestSchema, { key: Buffer.from("s/"), rangeEnd: Buffer.from("s0"), keysOnly: true }),
  );
  assert.deepEqual(
    keysOnly.kvs.map((kv) => [text(kv.key), kv.value.length]),
    [
      ["s/a", 0],
      ["s/b", 0],
      ["s/c", 0],
    ],
  );
  // range_end "\0": every key from "s/b" on.
  const fromKey = await call<RangeRequest, RangeResponse>(
    "Range",
    create(RangeRequestSchema, {
      key: Buffer.from("s/b"),
      rangeEnd: new Uint8Array([0]),
      serializable: true,
    }),
  );
  assert.deepEqual(
    fromKey.kvs.map((kv) => text(kv.key)).filter((key) => key?.startsWith("s/") || key?.startsWith("t/")),
    ["s/b", "s/c", "t/x"],
  );
});

test("delete with previous values, and prefix delete counts", async () => {
  await etcd.put("d/1").value("a");
  await etcd.put("d/2").value("b");
  const previous = await etcd.delete().key("d/1").getPrevious();
  assert.deepEqual(
    previous.map((kv) => [kv.key.toString(), kv.value.toString()]),
    [["d/1", "a"]],
  );
  const deleted = await etcd.delete().prefix("d/").exec();
  assert.equal(deleted.deleted, "1");
  assert.equal(await etcd.getAll().prefix("d/").count(), 0);
});

test("txn: compares, both branches, nested responses", async () => {
  await etcd.put("tx/a").value("1");
  const taken = await etcd
    .if("tx/a", "Value", "==", "1")
    .then(etcd.put("tx/a").value("2"), etcd.get("tx/a"))
    .else(etcd.put("tx/b").value("x"))
    .commit();
  assert.equal(taken.succeeded, true);
  assert.equal(taken.responses.length, 2);
  assert.equal(taken.responses[1]?.response_range?.kvs[0]?.value.toString(), "2");
  const other = await etcd
    .if("tx/a", "Value", "==", "1")
    .then(etcd.put("tx/a").value("3"))
    .else(etcd.get("tx/a"))
    .commit();
  assert.equal(other.succeeded, false);
  assert.equal(other.responses[0]?.response_range?.kvs[0]?.value.toString(), "2");
  // A version compare and a mod revision compare over a range.
  const mod = (await etcd.get("tx/a").exec()).kvs[0]?.mod_revision;
  assert.ok(mod !== undefined);
  const ranged = await call<TxnRequest, { succeeded: boolean }>(
    "Txn",
    create(TxnRequestSchema, {
      compare: [
        create(CompareSchema, {
          key: Buffer.from("tx/"),
          rangeEnd: Buffer.from("tx0"),
          target: Compare_CompareTarget.Mod,
          result: Compare_CompareResult.Less,
          targetUnion: { case: "modRevision", value: BigInt(mod) + 1n },
        }),
        create(CompareSchema, {
          key: Buffer.from("tx/a"),
          target: Compare_CompareTarget.Version,
          result: Compare_CompareResult.Equal,
          targetUnion: { case: "version", value: 2n },
        }),
      ],
    }),
  );
  assert.equal(ranged.succeeded, true);
  // Nested transactions.
  const nested = await call<
    TxnRequest,
    { responses: { response: { case: string; value: { succeeded: boolean } } }[] }
  >(
    "Txn",
    create(TxnRequestSchema, {
      success: [
        create(RequestOpSchema, {
          request: {
            case: "requestTxn",
            value: create(TxnRequestSchema, {
              success: [
                create(RequestOpSchema, {
                  request: {
                    case: "requestPut",
                    value: create(PutRequestSchema, { key: Buffer.from("tx/n"), value: Buffer.from("n") }),
                  },
                }),
              ],
            }),
          },
        }),
      ],
    }),
  );
  assert.equal(nested.responses[0]?.response.case, "responseTxn");
  assert.equal(await etcd.get("tx/n").string(), "n");
});

test("etcd's errors: codes and messages, nothing written", async () => {
  await rejectsWith(
    call("Put", create(PutRequestSchema, { value: Buffer.from("v") })),
    GrpcStatus.INVALID_ARGUMENT,
    "etcdserver: key is not provided",
  );
  await rejectsWith(
    call("Range", create(RangeRequestSchema, {})),
    GrpcStatus.INVALID_ARGUMENT,
    "etcdserver: key is not provided",
  );
  await rejectsWith(
    call(
      "Put",
      create(PutRequestSchema, { key: Buffer.from("e/1"), value: Buffer.from("v"), ignoreValue: true }),
    ),
    GrpcStatus.INVALID_ARGUMENT,
    "etcdserver: value is provided",
  );
  await rejectsWith(
    call("Put", create(PutRequestSchema, { key: Buffer.from("e/1"), lease: 12345n })),
    GrpcStatus.NOT_FOUND,
    "etcdserver: requested lease not found",
  );
  await rejectsWith(
    call("Put", create(PutRequestSchema, { key: Buffer.from("e/missing"), ignoreValue: true })),
    GrpcStatus.INVALID_ARGUMENT,
    "etcdserver: key not found",
  );
  const put = (key: string) =>
    create(RequestOpSchema, {
      request: {
        case: "requestPut",
        value: create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from("v") }),
      },
    });
  await rejectsWith(
    call("Txn", create(TxnRequestSchema, { success: [put("e/dup"), put("e/dup")] })),
    GrpcStatus.INVALID_ARGUMENT,
    "etcdserver: duplicate key given in txn request",
  );
  await rejectsWith(
    call(
      "Txn",
      create(TxnRequestSchema, { success: Array.from({ length: 129 }, (_, i) => put(`e/many/${i}`)) }),
    ),
    GrpcStatus.INVALID_ARGUMENT,
    "etcdserver: too many operations in txn request",
  );
  // An hour ahead: revisions are HLC timestamps (ms << 16), so a small offset is overtaken by
  // the next write of anyone (the placement layer writes the route catalog in the background).
  const future = BigInt((await etcd.get("kv/a").exec()).header.revision) + (3_600_000n << 16n);
  await rejectsWith(
    call("Range", create(RangeRequestSchema, { key: Buffer.from("kv/a"), revision: future })),
    GrpcStatus.OUT_OF_RANGE,
    "etcdserver: mvcc: required revision is a future revision",
  );
  // A key lmdb could not store is refused before it reaches the state machine, which goes on.
  const huge = Buffer.alloc(2500, "e");
  const tooLarge = "concord: key is too large (at most 1,900 bytes, a zero byte counting as two)";
  await rejectsWith(
    call("Put", create(PutRequestSchema, { key: huge, value: Buffer.from("v") })),
    GrpcStatus.INVALID_ARGUMENT,
    tooLarge,
  );
  await rejectsWith(
    call(
      "Txn",
      create(TxnRequestSchema, {
        success: [
          create(RequestOpSchema, {
            request: {
              case: "requestPut",
              value: create(PutRequestSchema, { key: huge, value: Buffer.from("v") }),
            },
          }),
        ],
      }),
    ),
    GrpcStatus.INVALID_ARGUMENT,
    tooLarge,
  );
  assert.equal((await etcd.get(huge.toString()).exec()).kvs.length, 0);
  await etcd.put("e/after-huge").value("v").exec();
  await etcd.delete().key("e/after-huge").exec();
  assert.equal(await etcd.getAll().prefix("e/").count(), 0);
});

test("compaction: old revisions refused afterwards, compacting backwards refused", async () => {
  const old = await etcd.put("c/k").value("old").exec();
  const latest = await etcd.put("c/k").value("new").exec();
  await etcd.kv.compact({ revision: latest.header.revision, physical: true });
  await rejectsWith(
    call(
      "Range",
      create(RangeRequestSchema, { key: Buffer.from("c/k"), revision: BigInt(old.header.revision) }),
    ),
    GrpcStatus.OUT_OF_RANGE,
    "etcdserver: mvcc: required revision has been compacted",
  );
  await assert.rejects(
    etcd.kv.compact({ revision: old.header.revision }),
    /required revision has been compacted/,
  );
  assert.equal(await etcd.get("c/k").string(), "new");
});

test("malformed request bytes get a gRPC error and write nothing", async () => {
  const before = await etcd.getAll().count();
  const session = connectHttp2(`http://${cluster.endpoint(1)}`);
  try {
    // A length-delimited field claiming far more bytes than follow: not a valid message.
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
    const frame = Buffer.alloc(5 + garbage.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(garbage.length, 1);
    garbage.copy(frame, 5);
    const answered = new Promise<string | undefined>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/etcdserverpb.KV/Put",
        "content-type": "application/grpc",
        te: "trailers",
      });
      let grpcStatus: string | undefined;
      stream.on("response", (headers) => (grpcStatus ??= headers["grpc-status"] as string | undefined));
      stream.on(
        "trailers",
        (trailers: IncomingHttpHeaders) => (grpcStatus = trailers["grpc-status"] as string | undefined),
      );
      stream.on("data", () => {});
      stream.on("end", () => resolve(grpcStatus));
      stream.on("error", reject);
      stream.end(frame);
    });
    const status = await within(answered, "the answer to a malformed request");
    assert.ok(status !== undefined && status !== "0", `grpc-status ${status}`);
  } finally {
    session.close();
  }
  assert.equal(await etcd.getAll().count(), before);
  // The server is still serving.
  await etcd.put("m/after").value("ok");
  assert.equal(await etcd.get("m/after").string(), "ok");
});

test("a connection that is neither HTTP/2 nor native is closed; the port keeps serving", async () => {
  const [host, port] = cluster.endpoint(1).split(":");
  const socket = connectTcp(Number(port), host);
  let closed = false;
  socket.on("close", () => (closed = true));
  socket.on("error", () => {});
  socket.on("data", () => {});
  socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await waitFor(() => closed, "the server to close the connection");
  await etcd.put("g/after").value("ok");
  assert.equal(await etcd.get("g/after").string(), "ok");
});

test("the native protocol is served on the same port", async () => {
  await etcd.put("n/shared").value("from etcd");
  const native = Concord.connect({ endpoints: [cluster.endpoint(1)] });
  try {
    assert.equal(text((await native.get("n/shared"))?.value), "from etcd");
    await native.put("n/native", "from native");
  } finally {
    await native.close();
  }
  assert.equal(await etcd.get("n/native").string(), "from native");
});
