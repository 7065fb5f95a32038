// The etcd port's own gRPC-over-HTTP/2 server (src/api/etcd/http2/ and grpc-server.ts), piece
// by piece: HPACK decoding against RFC 7541's examples and the table rules; one connection fed
// bytes in any chunking through an in-memory socket (unary, server-streaming and bidi calls,
// flow control in both directions, PING and SETTINGS, every connection and stream error it
// answers, gRPC errors for bad requests); random frames never escaping the connection; and end to
// end on a member's client port with node:http2's client (etcdctl's URL-shaped :authority,
// padded and CONTINUATION header blocks), a grpc-go-like client and a native-protocol client.
import assert from "node:assert/strict";
import {
  connect as connectHttp2,
  constants,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
} from "node:http2";
import { connect as connectTcp, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import fc from "fast-check";
import { ClientPort } from "../../../src/api/etcd/client-port.js";
import {
  KV,
  Lease,
  LeaseKeepAliveRequestSchema,
  LeaseKeepAliveResponseSchema,
  Maintenance,
  PutRequestSchema,
  PutResponseSchema,
  SnapshotResponseSchema,
  type LeaseKeepAliveRequest,
  type PutRequest,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { GrpcServer, type GrpcCall } from "../../../src/api/etcd/grpc-server.js";
import { Http2ServerConnection } from "../../../src/api/etcd/http2/connection.js";
import { grpcServiceDefinition } from "../../../src/api/etcd/grpc-service.js";
import {
  decodeHuffman,
  encodeInteger,
  HpackDecoder,
  HpackError,
  readInteger,
  type HeaderField,
} from "../../../src/api/etcd/http2/hpack.js";
import { EtcdServer } from "../../../src/api/etcd/server.js";
import { NativeServer } from "../../../src/api/native/server.js";
import { waitFor } from "../helpers.js";
import { EtcdCluster, within } from "./harness.js";

const hex = (text: string) => Buffer.from(text.replace(/\s/g, ""), "hex");
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const MAX_MESSAGE = 1024;

function frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** A literal header field without indexing, new name, no Huffman. */
function literal(name: string, value: string): Buffer {
  const text = (s: string) =>
    Buffer.concat([Buffer.from(encodeInteger(s.length, 7, 0)), Buffer.from(s, "latin1")]);
  return Buffer.concat([hex("00"), text(name), text(value)]);
}

function requestBlock(path: string, contentType = "application/grpc"): Buffer {
  return Buffer.concat([
    hex("83 86"), // :method POST, :scheme http
    literal(":path", path),
    literal(":authority", "localhost"),
    literal("content-type", contentType),
    literal("te", "trailers"),
  ]);
}

function grpcMessage(bytes: Uint8Array, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

const putBytes = (value: string) =>
  toBinary(PutRequestSchema, create(PutRequestSchema, { key: Buffer.from("k"), value: Buffer.from(value) }));

interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
  /** HEADERS: the decoded fields. */
  readonly fields?: HeaderField[];
}

/** An in-memory socket: what the test pushes is what the server reads; what it writes is parsed into frames. */
class FakeSocket extends Duplex {
  readonly frames: ReceivedFrame[] = [];
  writes = 0;
  ended = false;
  /** While set, writes do not complete (a client that stops reading): `release` completes them. */
  hold = false;
  private readonly held: (() => void)[] = [];
  private received = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder(4096);

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.writes++;
    this.parse(chunk);
    this.complete(callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: () => void): void {
    this.writes++;
    for (const { chunk } of chunks) this.parse(chunk);
    this.complete(callback);
  }

  /** Completes the writes held so far. */
  release(): void {
    for (const callback of this.held.splice(0)) callback();
  }

  private complete(callback: () => void): void {
    if (this.hold) this.held.push(callback);
    else callback();
  }

  override _final(callback: () => void): void {
    this.ended = true;
    callback();
  }

  /** Client bytes, in pieces of `pieceLength`. */
  send(bytes: Buffer, pieceLength = bytes.length): void {
    for (let offset = 0; offset < bytes.length; offset += pieceLength) {
      this.push(bytes.subarray(offset, offset + pieceLength));
    }
  }

  /** The frames of `type` on `streamId` (any stream when undefined). */
  of(type: number, streamId?: number): ReceivedFrame[] {
    return this.frames.filter((f) => f.type === type && (streamId === undefined || f.streamId === streamId));
  }

  goAwayCode(): number | undefined {
    return this.of(0x7)[0]?.payload.readUInt32BE(4);
  }

  private parse(chunk: Buffer): void {
    this.received = Buffer.concat([this.received, chunk]);
    while (this.received.length >= 9 && this.received.length >= 9 + this.received.readUIntBE(0, 3)) {
      const length = this.received.readUIntBE(0, 3);
      const type = this.received[3]!;
      const flags = this.received[4]!;
      const streamId = this.received.readUInt32BE(5) & 0x7fffffff;
      const payload = Buffer.from(this.received.subarray(9, 9 + length));
      this.received = this.received.subarray(9 + length);
      const fields = type === 0x1 ? this.decoder.decode(payload, 1 << 20).fields : undefined;
      this.frames.push({ type, flags, streamId, payload, ...(fields === undefined ? {} : { fields }) });
    }
  }
}

const field = (f: ReceivedFrame | undefined, name: string) => f?.fields?.find((x) => x.name === name)?.value;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A server with an echoing Put, a Snapshot writing `chunks` messages, and an echoing LeaseKeepAlive. */
function testServer(log: { cancelled: number; requests: number } = { cancelled: 0, requests: 0 }) {
  const server = new GrpcServer({ maxReceiveMessageBytes: MAX_MESSAGE });
  server.addService(grpcServiceDefinition(KV), {
    Put: async (request: PutRequest, call: GrpcCall) => {
      log.requests++;
      call.on("cancelled", () => log.cancelled++);
      if (Buffer.from(request.value).toString() === "hang") return new Promise(() => undefined);
      if (Buffer.from(request.value).toString() === "fail") {
        throw Object.assign(new Error("refusé: 100%"), { code: GrpcStatus.FAILED_PRECONDITION });
      }
      return create(PutResponseSchema, { prevKv: { key: request.key, value: request.value } });
    },
  });
  server.addService(grpcServiceDefinition(Maintenance), {
    Snapshot: (call: GrpcCall) => {
      for (let i = 0; i < 3; i++)
        call.write(create(SnapshotResponseSchema, { remainingBytes: BigInt(2 - i) }));
      call.end();
    },
  });
  server.addService(grpcServiceDefinition(Lease), {
    LeaseKeepAlive: (call: GrpcCall) => {
      call.on("data", (request: LeaseKeepAliveRequest) =>
        call.write(create(LeaseKeepAliveResponseSchema, { ID: request.ID, TTL: 5n })),
      );
      call.on("end", () => call.end());
    },
  });
  return server;
}

function connected(server: GrpcServer, clientSettings = Buffer.alloc(0)): FakeSocket {
  const socket = new FakeSocket();
  server.injectConnection(socket);
  socket.send(Buffer.concat([PREFACE, frame(0x4, 0, 0, clientSettings)]));
  return socket;
}

const putCall = (streamId: number, value: string) =>
  Buffer.concat([
    frame(0x1, 0x4, streamId, requestBlock("/etcdserverpb.KV/Put")),
    frame(0x0, 0x1, streamId, grpcMessage(putBytes(value))),
  ]);

describe("HPACK decoding", () => {
  test("integers: RFC 7541 C.1 examples, both ways", () => {
    assert.deepEqual(readInteger(hex("0a"), 0, 5), { value: 10, next: 1 });
    assert.deepEqual(readInteger(hex("1f9a0a"), 0, 5), { value: 1337, next: 3 });
    assert.deepEqual(readInteger(hex("2a"), 0, 8), { value: 42, next: 1 });
    assert.deepEqual(encodeInteger(1337, 5, 0), [0x1f, 0x9a, 0x0a]);
    assert.deepEqual(encodeInteger(10, 5, 0xe0), [0xea]);
    assert.throws(() => readInteger(hex("1f9a"), 0, 5), HpackError);
    assert.throws(() => readInteger(hex("1fffffffff7f"), 0, 5), HpackError);
  });

  test("Huffman strings: RFC 7541 C.4 and C.6 examples; bad padding and EOS are refused", () => {
    const vectors: [string, string][] = [
      ["f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"],
      ["a8eb 1064 9cbf", "no-cache"],
      ["25a8 49e9 5ba9 7d7f", "custom-key"],
      ["25a8 49e9 5bb8 e8b4 bf", "custom-value"],
      ["6402", "302"],
      ["aec3 771a 4b", "private"],
      ["d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3", "https://www.example.com"],
      ["", ""],
    ];
    for (const [coded, text] of vectors) assert.equal(decodeHuffman(hex(coded)), text);
    assert.throws(() => decodeHuffman(hex("6402 ff")), HpackError);
    assert.throws(() => decodeHuffman(hex("a8eb 1064 9cbe")), HpackError);
    assert.throws(() => decodeHuffman(hex("ffff ffff")), HpackError);
  });

  const pairs = (fields: HeaderField[]) => fields.map((f) => `${f.name}: ${f.value}`);
  const requests = [
    ":method: GET|:scheme: http|:path: /|:authority: www.example.com",
    ":method: GET|:scheme: http|:path: /|:authority: www.example.com|cache-control: no-cache",
    ":method: GET|:scheme: https|:path: /index.html|:authority: www.example.com|custom-key: custom-value",
  ].map((text) => text.split("|"));

  const rfcExamples: [string, string[]][] = [
    [
      "C.3, without Huffman",
      [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      ],
    ],
    [
      "C.4, with Huffman",
      [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      ],
    ],
  ];
  for (const [example, blocks] of rfcExamples) {
    test(`RFC 7541 ${example}: three requests sharing the dynamic table`, () => {
      const decoder = new HpackDecoder(4096);
      blocks.forEach((block, i) =>
        assert.deepEqual(pairs(decoder.decode(hex(block), 4096).fields), requests[i]),
      );
    });
  }

  test("a size update evicts; entries above the table size empty it; bad indexes and updates are refused", () => {
    const decoder = new HpackDecoder(4096);
    const entry = (name: string, value: string) =>
      Buffer.concat([hex("40"), literal(name, value).subarray(1)]); // with incremental indexing
    // Table of 100 bytes: one 32 + 1 + 60 = 93-byte entry fits, a second evicts the first.
    decoder.decode(Buffer.concat([hex("3f45"), entry("a", "x".repeat(60))]), 4096);
    assert.deepEqual(pairs(decoder.decode(hex("be"), 4096).fields), [`a: ${"x".repeat(60)}`]);
    decoder.decode(entry("b", "y".repeat(60)), 4096);
    assert.deepEqual(pairs(decoder.decode(hex("be"), 4096).fields), [`b: ${"y".repeat(60)}`]);
    assert.throws(() => decoder.decode(hex("bf"), 4096), HpackError);
    // An entry larger than the table empties it.
    decoder.decode(entry("c", "z".repeat(100)), 4096);
    assert.throws(() => decoder.decode(hex("be"), 4096), HpackError);
    assert.throws(() => decoder.decode(hex("80"), 4096), HpackError, "index 0");
    assert.throws(() => decoder.decode(hex("3fe21f"), 4096), HpackError, "update above SETTINGS");
    assert.throws(() => decoder.decode(hex("82 20"), 4096), HpackError, "update after a field");
    assert.throws(() => decoder.decode(hex("0003 6162"), 4096), HpackError, "truncated literal");
  });

  test("a header list above the limit is decoded for the table but reported, not returned", () => {
    const decoder = new HpackDecoder(4096);
    const big = Buffer.concat([hex("40"), literal("big", "v".repeat(200)).subarray(1)]);
    const { fields, overflow } = decoder.decode(Buffer.concat([hex("82"), big]), 100);
    assert.equal(overflow, true);
    assert.deepEqual(pairs(fields), [":method: GET"]);
    assert.deepEqual(pairs(decoder.decode(hex("be"), 4096).fields), [`big: ${"v".repeat(200)}`]);
  });
});

describe("one HTTP/2 connection of the gRPC server", () => {
  test("the server's preface: SETTINGS, then a connection WINDOW_UPDATE; the client's SETTINGS and PINGs are acknowledged", async () => {
    const socket = connected(testServer());
    socket.send(frame(0x6, 0, 0, hex("0102030405060708")));
    await tick();
    assert.equal(socket.frames[0]?.type, 0x4);
    assert.equal(socket.frames[1]?.type, 0x8);
    assert.equal(socket.of(0x4).filter((f) => f.flags === 0x1).length, 1, "one SETTINGS ACK");
    assert.deepEqual(socket.of(0x6)[0]?.payload, hex("0102030405060708"));
    assert.equal(socket.of(0x6)[0]?.flags, 0x1);
  });

  for (const pieceLength of [1, 7, 64, 100_000]) {
    test(`a unary call fed in pieces of ${pieceLength} bytes is answered: HEADERS, DATA, trailers`, async () => {
      const socket = connected(testServer());
      socket.send(putCall(1, "hello"), pieceLength);
      await tick();
      const [headers, trailers] = socket.of(0x1, 1);
      assert.equal(field(headers, ":status"), "200");
      assert.equal(field(headers, "content-type"), "application/grpc");
      assert.equal(field(trailers, "grpc-status"), "0");
      assert.equal((trailers?.flags ?? 0) & 0x5, 0x5, "END_STREAM and END_HEADERS");
      const data = Buffer.concat(socket.of(0x0, 1).map((f) => f.payload));
      assert.equal(data.readUInt32BE(1), data.length - 5);
      const response = fromBinary(PutResponseSchema, data.subarray(5));
      assert.equal(Buffer.from(response.prevKv?.value ?? []).toString(), "hello");
    });
  }

  test("calls answered in one turn leave in one socket write", async () => {
    const socket = connected(testServer());
    await tick();
    const before = socket.writes;
    socket.send(Buffer.concat([1, 3, 5, 7].map((id) => putCall(id, `v${id}`))));
    await tick();
    assert.equal(socket.of(0x1).filter((f) => field(f, "grpc-status") === "0").length, 4);
    assert.equal(socket.writes - before, 1);
  });

  test("an error status is a trailers-only response, its message percent-encoded", async () => {
    const socket = connected(testServer());
    socket.send(putCall(1, "fail"));
    await tick();
    const [only] = socket.of(0x1, 1);
    assert.equal(field(only, ":status"), "200");
    assert.equal(field(only, "grpc-status"), String(GrpcStatus.FAILED_PRECONDITION));
    assert.equal(field(only, "grpc-message"), "refus%C3%A9: 100%25");
    assert.equal(socket.of(0x0, 1).length, 0);
  });

  test("server streaming and bidi streaming calls", async () => {
    const socket = connected(testServer());
    socket.send(
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.Maintenance/Snapshot")),
        frame(0x0, 0x1, 1, grpcMessage(new Uint8Array(0))),
        frame(0x1, 0x4, 3, requestBlock("/etcdserverpb.Lease/LeaseKeepAlive")),
        frame(
          0x0,
          0,
          3,
          Buffer.concat(
            [7n, 8n].map((ID) =>
              grpcMessage(toBinary(LeaseKeepAliveRequestSchema, create(LeaseKeepAliveRequestSchema, { ID }))),
            ),
          ),
        ),
      ]),
      5,
    );
    await tick();
    assert.equal(socket.of(0x0, 1).length, 3);
    assert.equal(field(socket.of(0x1, 1)[1], "grpc-status"), "0");
    const ids = socket
      .of(0x0, 3)
      .map((f) => fromBinary(LeaseKeepAliveResponseSchema, f.payload.subarray(5)).ID);
    assert.deepEqual(ids, [7n, 8n]);
    assert.equal(socket.of(0x1, 3).length, 1, "no trailers before the client ends");
    socket.send(frame(0x0, 0x1, 3));
    await tick();
    assert.equal(field(socket.of(0x1, 3)[1], "grpc-status"), "0");
  });

  test("response DATA waits for the client's windows and goes as they open", async () => {
    // SETTINGS_INITIAL_WINDOW_SIZE = 16.
    const socket = connected(testServer(), hex("0004 0000 0010"));
    const value = "v".repeat(100);
    socket.send(putCall(1, value));
    await tick();
    const sent = () => socket.of(0x0, 1).reduce((sum, f) => sum + f.payload.length, 0);
    assert.equal(sent(), 16);
    assert.equal(socket.of(0x1, 1).length, 1, "trailers wait for the data");
    socket.send(frame(0x8, 0, 1, hex("0000 0032")));
    await tick();
    assert.equal(sent(), 66);
    socket.send(frame(0x8, 0, 1, hex("0000 1000")));
    await tick();
    const data = Buffer.concat(socket.of(0x0, 1).map((f) => f.payload));
    assert.equal(
      Buffer.from(fromBinary(PutResponseSchema, data.subarray(5)).prevKv?.value ?? []).toString(),
      value,
    );
    assert.equal(field(socket.of(0x1, 1)[1], "grpc-status"), "0");
  });

  test("a SETTINGS change of the initial window applies to open streams", async () => {
    const socket = connected(testServer(), hex("0004 0000 0000"));
    socket.send(putCall(1, "abc"));
    await tick();
    assert.equal(socket.of(0x0, 1).length, 0);
    socket.send(frame(0x4, 0, 0, hex("0004 0000 ffff")));
    await tick();
    assert.equal(field(socket.of(0x1, 1)[1], "grpc-status"), "0");
  });

  test("the client resetting a stream cancels its call; the connection goes on", async () => {
    const log = { cancelled: 0, requests: 0 };
    const socket = connected(testServer(log));
    socket.send(putCall(1, "hang"));
    await tick();
    socket.send(frame(0x3, 0, 1, hex("0000 0008")));
    socket.send(putCall(3, "after"));
    await tick();
    assert.equal(log.cancelled, 1);
    assert.equal(field(socket.of(0x1, 3)[1], "grpc-status"), "0");
  });

  test("a closed connection cancels the calls in flight", async () => {
    const log = { cancelled: 0, requests: 0 };
    const socket = connected(testServer(log));
    socket.send(putCall(1, "hang"));
    await tick();
    socket.destroy();
    await tick();
    assert.equal(log.cancelled, 1);
  });

  test("calls are counted by method as they start and end, by status code; paths nothing serves are not", async () => {
    const server = testServer();
    const socket = connected(server);
    socket.send(putCall(1, "ok"));
    socket.send(putCall(3, "fail"));
    socket.send(putCall(5, "hang"));
    socket.send(
      Buffer.concat([
        frame(0x1, 0x4, 7, requestBlock("/etcdserverpb.Maintenance/Snapshot")),
        frame(0x0, 0x1, 7, grpcMessage(Buffer.alloc(0))),
      ]),
    );
    socket.send(frame(0x1, 0x5, 9, requestBlock("/etcdserverpb.Auth/Authenticate")));
    await tick();
    socket.send(frame(0x3, 0, 5, hex("0000 0008")));
    await tick();
    const counted = server
      .methodCalls()
      .filter((calls) => calls.started > 0)
      .map(({ service, method, type, started, handled }) => ({
        service,
        method,
        type,
        started,
        handled: Object.fromEntries(handled.flatMap((count, code) => (count > 0 ? [[code, count]] : []))),
      }));
    assert.deepEqual(counted, [
      {
        service: "etcdserverpb.KV",
        method: "Put",
        type: "unary",
        started: 3,
        handled: { [GrpcStatus.OK]: 1, [GrpcStatus.CANCELLED]: 1, [GrpcStatus.FAILED_PRECONDITION]: 1 },
      },
      {
        service: "etcdserverpb.Maintenance",
        method: "Snapshot",
        type: "server_stream",
        started: 1,
        handled: { 0: 1 },
      },
    ]);
    assert.deepEqual(
      server.methodCalls().map(({ service, method }) => `${service}/${method}`),
      ["etcdserverpb.KV/Put", "etcdserverpb.Maintenance/Snapshot", "etcdserverpb.Lease/LeaseKeepAlive"],
      "the unknown path added nothing",
    );
  });

  const grpcErrors: [string, Buffer, number][] = [
    [
      "an unknown method",
      frame(0x1, 0x5, 1, requestBlock("/etcdserverpb.Auth/Authenticate")),
      GrpcStatus.UNIMPLEMENTED,
    ],
    [
      "a message above the limit",
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.KV/Put")),
        frame(0x0, 0, 1, grpcMessage(Buffer.alloc(MAX_MESSAGE + 1))),
      ]),
      GrpcStatus.RESOURCE_EXHAUSTED,
    ],
    [
      "bytes that are not a PutRequest",
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.KV/Put")),
        frame(0x0, 0x1, 1, grpcMessage(hex("0a ff"))),
      ]),
      GrpcStatus.INTERNAL,
    ],
    [
      "a compressed message",
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.KV/Put")),
        frame(0x0, 0x1, 1, grpcMessage(putBytes("x"), true)),
      ]),
      GrpcStatus.UNIMPLEMENTED,
    ],
    [
      "two messages on a unary method",
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.KV/Put")),
        frame(0x0, 0x1, 1, Buffer.concat([grpcMessage(putBytes("a")), grpcMessage(putBytes("b"))])),
      ]),
      GrpcStatus.UNIMPLEMENTED,
    ],
    [
      "no message on a unary method",
      frame(0x1, 0x5, 1, requestBlock("/etcdserverpb.KV/Put")),
      GrpcStatus.UNIMPLEMENTED,
    ],
    [
      "a request ending inside a message",
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.KV/Put")),
        frame(0x0, 0x1, 1, grpcMessage(putBytes("a")).subarray(0, 7)),
      ]),
      GrpcStatus.INTERNAL,
    ],
  ];
  for (const [what, bytes, code] of grpcErrors) {
    test(`${what}: gRPC status ${code}, the handler not called, the connection still serving`, async () => {
      const log = { cancelled: 0, requests: 0 };
      const socket = connected(testServer(log));
      socket.send(bytes);
      socket.send(putCall(3, "next"));
      await tick();
      const statuses = socket.of(0x1, 1).map((f) => field(f, "grpc-status"));
      assert.deepEqual(
        statuses.filter((s) => s !== undefined),
        [String(code)],
      );
      assert.equal(log.requests, 1, "only the next call reached the handler");
      assert.equal(field(socket.of(0x1, 3)[1], "grpc-status"), "0");
      assert.equal(socket.goAwayCode(), undefined);
    });
  }

  test("a request that is not gRPC gets HTTP 415", async () => {
    const socket = connected(testServer());
    socket.send(frame(0x1, 0x5, 1, requestBlock("/etcdserverpb.KV/Put", "text/plain")));
    await tick();
    assert.equal(field(socket.of(0x1, 1)[0], ":status"), "415");
  });

  test("streams beyond the concurrency limit are refused", async () => {
    const socket = connected(testServer());
    const hanging = Array.from({ length: 1001 }, (_, i) => putCall(2 * i + 1, "hang"));
    socket.send(Buffer.concat(hanging));
    await tick();
    const resets = socket.of(0x3);
    assert.deepEqual(
      resets.map((f) => [f.streamId, f.payload.readUInt32BE(0)]),
      [[2001, 0x7]],
    );
  });

  test("HEADERS on a stream both sides ended is a connection error (STREAM_CLOSED)", async () => {
    const socket = connected(testServer());
    socket.send(putCall(1, "x"));
    await tick();
    assert.equal(field(socket.of(0x1, 1)[1], "grpc-status"), "0");
    socket.send(frame(0x1, 0x5, 1, requestBlock("/etcdserverpb.KV/Put")));
    await tick();
    assert.equal(socket.goAwayCode(), 0x5);
  });

  test("a response ended on the request's last frame is not followed by RST_STREAM", async () => {
    const socket = connected(testServer());
    socket.send(frame(0x1, 0x5, 1, requestBlock("/etcdserverpb.Auth/Authenticate")));
    socket.send(
      Buffer.concat([
        frame(0x1, 0x4, 3, requestBlock("/etcdserverpb.KV/Put")),
        frame(0x0, 0x1, 3, grpcMessage(hex("0a ff"))),
      ]),
    );
    await tick();
    assert.equal(socket.of(0x1, 1).length, 1);
    assert.equal(socket.of(0x1, 3).length, 1);
    assert.deepEqual(socket.of(0x3), [], "no RST_STREAM on a stream both sides ended");
  });

  test("many large requests at once on one connection are all answered", async () => {
    const server = new GrpcServer({ maxReceiveMessageBytes: 2 * 1024 * 1024 });
    server.addService(grpcServiceDefinition(KV), {
      Put: (request: PutRequest) =>
        Promise.resolve(create(PutResponseSchema, { header: { revision: BigInt(request.value.length) } })),
    });
    const socket = connected(server);
    const streams = Array.from({ length: 40 }, (_, i) => 2 * i + 1);
    const message = grpcMessage(putBytes("v".repeat(1_900_000)));
    for (const id of streams) socket.send(frame(0x1, 0x4, id, requestBlock("/etcdserverpb.KV/Put")));
    // Interleaved 16 KiB frames, as a client's writer sends them: 76 MB held at once at the end.
    for (let offset = 0; offset < message.length; offset += 16_384) {
      const last = offset + 16_384 >= message.length;
      for (const id of streams)
        socket.send(frame(0x0, last ? 0x1 : 0, id, message.subarray(offset, offset + 16_384)));
    }
    await tick();
    assert.equal(socket.goAwayCode(), undefined);
    const ok = streams.filter((id) => field(socket.of(0x1, id)[1], "grpc-status") === "0");
    assert.equal(ok.length, streams.length);
  });

  test("complete unary requests the client never ends count as held bytes: GOAWAY past the limit", async () => {
    const server = new GrpcServer({ maxReceiveMessageBytes: 4096, maxBufferedRequestBytes: 10_000 });
    server.addService(grpcServiceDefinition(KV), { Put: () => Promise.resolve(create(PutResponseSchema)) });
    const socket = connected(server);
    for (let id = 1; id <= 9; id += 2) {
      socket.send(
        Buffer.concat([
          frame(0x1, 0x4, id, requestBlock("/etcdserverpb.KV/Put")),
          frame(0x0, 0, id, grpcMessage(putBytes("v".repeat(3000)))),
        ]),
      );
    }
    await tick();
    assert.equal(socket.goAwayCode(), 0xb);
  });

  test("resetting streams faster than the limit ends the connection (rapid reset)", async () => {
    const log = { cancelled: 0, requests: 0 };
    const socket = connected(testServer(log));
    const rounds = (from: number, count: number) =>
      Buffer.concat(
        Array.from({ length: count }, (_, i) => {
          const id = 2 * (from + i) + 1;
          return Buffer.concat([putCall(id, "hang"), frame(0x3, 0, id, hex("0000 0008"))]);
        }),
      );
    socket.send(rounds(0, 900));
    await tick();
    assert.equal(socket.goAwayCode(), undefined, "a burst below the limit is fine");
    assert.equal(log.cancelled, 900);
    socket.send(rounds(900, 200));
    await tick();
    assert.equal(socket.goAwayCode(), 0xb);
  });

  test("a client that does not read stops being read; reading resumes once it catches up", async () => {
    const socket = connected(testServer());
    await tick();
    socket.hold = true;
    const pings = Buffer.concat(
      Array.from({ length: 70_000 }, () => frame(0x6, 0, 0, hex("0102030405060708"))),
    );
    socket.send(pings);
    await tick();
    assert.equal(socket.isPaused(), true);
    socket.hold = false;
    socket.release();
    await tick();
    assert.equal(socket.isPaused(), false);
    assert.equal(socket.of(0x6).length, 70_000);
  });

  test("a writer that writes again on every drain is told to wait again while the socket is full", async () => {
    const server = new GrpcServer({ maxReceiveMessageBytes: 1024 });
    let written = 0;
    const blob = new Uint8Array(8 * 1024);
    server.addService(grpcServiceDefinition(Maintenance), {
      Snapshot: (call: GrpcCall) => {
        const pump = () => {
          while (written < 400) {
            written++;
            if (!call.write(create(SnapshotResponseSchema, { blob }))) return;
          }
          call.end();
        };
        call.on("drain", pump);
        pump();
      },
    });
    // Windows as large as allowed, so only the socket holds the writer back.
    const socket = connected(server, hex("0004 7fff ffff"));
    socket.send(frame(0x8, 0, 0, hex("7fff 0000")));
    await tick();
    socket.hold = true;
    socket.send(
      Buffer.concat([
        frame(0x1, 0x4, 1, requestBlock("/etcdserverpb.Maintenance/Snapshot")),
        frame(0x0, 0x1, 1, grpcMessage(new Uint8Array(0))),
      ]),
    );
    await tick();
    const before = written;
    socket.release();
    await tick();
    // One drain lets the writer fill the socket once more, not write everything.
    assert.ok(written - before <= 8, `${written - before} messages after one drain`);
    socket.hold = false;
    socket.release();
    for (let i = 0; i < 100 && written < 400; i++) await tick();
    assert.equal(written, 400);
  });

  test("a connection that sends no preface in time is closed with GOAWAY", async () => {
    const socket = new FakeSocket();
    new Http2ServerConnection(socket, { onRequest: () => undefined, prefaceTimeoutMs: 20 });
    socket.send(Buffer.from("PRI * HTTP/2.0"));
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(socket.goAwayCode(), 0x1);
    assert.equal(socket.ended, true);
  });

  const connectionErrors: [string, Buffer, number][] = [
    ["a bad preface", Buffer.from("PRI * HTTP/1.1\r\n\r\n"), 0x1],
    ["a frame above 16 KiB", frame(0x0, 0, 1, Buffer.alloc(16_385)), 0x6],
    ["HPACK that does not decode", frame(0x1, 0x5, 1, hex("ff ff ff ff ff ff")), 0x9],
    [
      "a header block interrupted",
      Buffer.concat([frame(0x1, 0x0, 1, hex("83")), frame(0x0, 0, 1, hex("00"))]),
      0x1,
    ],
    ["a stream id that is even", frame(0x1, 0x5, 2, requestBlock("/etcdserverpb.KV/Put")), 0x1],
    ["DATA on an idle stream", frame(0x0, 0x1, 9, hex("00")), 0x1],
    ["a PING of 7 bytes", frame(0x6, 0, 0, hex("01020304050607")), 0x6],
    ["SETTINGS with an initial window above 2^31 - 1", frame(0x4, 0, 0, hex("0004 8000 0000")), 0x3],
    ["a connection WINDOW_UPDATE overflowing", frame(0x8, 0, 0, hex("7fff ffff")), 0x3],
    ["PUSH_PROMISE", frame(0x5, 0x4, 1, hex("0000 0002")), 0x1],
    ["padding longer than the frame", frame(0x1, 0x8 | 0x4, 1, hex("05 83")), 0x1],
  ];
  for (const [what, bytes, code] of connectionErrors) {
    test(`${what}: GOAWAY with code ${code}, the socket ended, no call made`, async () => {
      const log = { cancelled: 0, requests: 0 };
      const socket = new FakeSocket();
      testServer(log).injectConnection(socket);
      socket.send(what === "a bad preface" ? bytes : Buffer.concat([PREFACE, frame(0x4, 0, 0), bytes]));
      await tick();
      assert.equal(socket.goAwayCode(), code);
      assert.equal(socket.ended, true);
      assert.equal(log.requests, 0);
    });
  }

  test("random frames never escape the connection: it answers or says GOAWAY", async () => {
    const frameArbitrary = fc
      .record({
        type: fc.integer({ min: 0, max: 10 }),
        flags: fc.integer({ min: 0, max: 255 }),
        streamId: fc.integer({ min: 0, max: 9 }),
        payload: fc.uint8Array({ maxLength: 40 }),
      })
      .map(({ type, flags, streamId, payload }) => frame(type, flags, streamId, payload));
    await fc.assert(
      fc.asyncProperty(
        fc.array(frameArbitrary, { maxLength: 12 }),
        fc.integer({ min: 1, max: 50 }),
        async (frames, piece) => {
          const socket = new FakeSocket();
          testServer().injectConnection(socket);
          socket.send(Buffer.concat([PREFACE, frame(0x4, 0, 0), ...frames]), piece);
          await tick();
          const goAways = socket.of(0x7);
          assert.ok(goAways.length <= 1);
          if (goAways.length === 1) assert.equal(socket.frames.at(-1)?.type, 0x7, "nothing after GOAWAY");
        },
      ),
      { numRuns: 300 },
    );
  });
});

interface CallOutcome {
  readonly grpcStatus: string | undefined;
  readonly responseBytes: number;
}

/** One Maintenance.Status call on `session` with the given :authority and extra headers. */
async function statusCall(
  session: ClientHttp2Session,
  authority: string,
  extraHeaders: Record<string, string> = {},
): Promise<CallOutcome> {
  const stream = session.request({
    ":method": "POST",
    ":path": "/etcdserverpb.Maintenance/Status",
    ":authority": authority,
    "content-type": "application/grpc",
    te: "trailers",
    ...extraHeaders,
  });
  stream.end(Buffer.alloc(5));
  return within(
    new Promise<CallOutcome>((resolve) => {
      let grpcStatus: string | undefined;
      let responseBytes = 0;
      stream.on("response", (headers) => (grpcStatus ??= headers["grpc-status"] as string | undefined));
      stream.on(
        "trailers",
        (headers: IncomingHttpHeaders) => (grpcStatus ??= headers["grpc-status"] as string | undefined),
      );
      stream.on("data", (chunk: Buffer) => (responseBytes += chunk.length));
      stream.on("error", () => undefined);
      stream.on("close", () => resolve({ grpcStatus, responseBytes }));
    }),
    `a Status call with :authority ${authority}`,
  );
}

/**
 * One Maintenance.Status call the way grpc-go makes it: the preface and SETTINGS, then nothing
 * until the server's SETTINGS has arrived (acknowledged), then the request with a URL-shaped
 * :authority as etcdctl --cluster sends it.
 */
async function grpcGoLikeStatusCall(
  address: string,
): Promise<{ data: number; grpcStatus: string | undefined }> {
  const [host, port] = address.split(":");
  const socket: Socket = connectTcp(Number(port), host);
  const decoder = new HpackDecoder(4096);
  try {
    return await within(
      new Promise((resolve, reject) => {
        let received = Buffer.alloc(0);
        let requestSent = false;
        let data = 0;
        socket.on("error", reject);
        socket.on("close", () => reject(new Error("the server closed the connection")));
        socket.write(Buffer.concat([PREFACE, frame(0x4, 0, 0)]));
        socket.on("data", (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          while (received.length >= 9 && received.length >= 9 + received.readUIntBE(0, 3)) {
            const length = received.readUIntBE(0, 3);
            const [type, flags] = [received[3] ?? 0, received[4] ?? 0];
            const payload = received.subarray(9, 9 + length);
            received = received.subarray(9 + length);
            if (type === 0x4 && (flags & 0x1) === 0 && !requestSent) {
              requestSent = true;
              socket.write(frame(0x4, 0x1, 0));
              socket.write(
                frame(
                  0x1,
                  0x4,
                  1,
                  Buffer.concat([
                    hex("83 86"),
                    literal(":path", "/etcdserverpb.Maintenance/Status"),
                    literal(":authority", `http://${address}`),
                    literal("content-type", "application/grpc"),
                  ]),
                ),
              );
              socket.write(frame(0x0, 0x1, 1, Buffer.alloc(5)));
            } else if (type === 0x0) {
              data += length;
            } else if (type === 0x1 && (flags & 0x1) !== 0) {
              resolve({
                data,
                grpcStatus: decoder.decode(payload, 1 << 16).fields.find((f) => f.name === "grpc-status")
                  ?.value,
              });
            } else if (type === 0x1) {
              decoder.decode(payload, 1 << 16);
            }
          }
        });
      }),
      "a grpc-go-like Status call",
    );
  } finally {
    socket.destroy();
  }
}

describe("the gRPC server on a member's client port", () => {
  let cluster: EtcdCluster;
  let port: ClientPort;
  let endpoint: string;
  const sessions: ClientHttp2Session[] = [];
  const open = (options: { paddingStrategy?: number } = {}) => {
    const session = connectHttp2(`http://${endpoint}`, options);
    session.on("error", () => undefined);
    sessions.push(session);
    return session;
  };
  const answered = (outcome: CallOutcome) => {
    assert.equal(outcome.grpcStatus, "0", JSON.stringify(outcome));
    assert.ok(outcome.responseBytes > 5, "an empty response");
  };

  before(async () => {
    cluster = await EtcdCluster.start(1);
    const host = cluster.member(1).host;
    const logger = { warn: () => undefined, info: () => undefined };
    // A port of its own on the member, to read its connection counts.
    port = new ClientPort({
      listen: { host: "127.0.0.1", port: 0 },
      etcd: new EtcdServer({ host, clusterId: 1n }),
      native: new NativeServer({ host, logger }),
      logger,
    });
    await port.start();
    endpoint = `${port.address().host}:${port.address().port}`;
  });

  after(async () => {
    for (const session of sessions) session.destroy();
    await port.close();
    await cluster.close();
  });

  test("node:http2's client with a URL as :authority (etcdctl --cluster), on first and later requests", async () => {
    const session = open();
    // The first request sends the value as a Huffman-coded literal the client indexes; the next
    // ones send only that entry's index.
    for (let call = 0; call < 3; call++) answered(await statusCall(session, `http://${endpoint}`));
    answered(await statusCall(session, endpoint));
    answered(await statusCall(session, "no such host"));
  });

  test("padded HEADERS frames and a header block split over CONTINUATION frames", async () => {
    answered(await statusCall(open({ paddingStrategy: constants.PADDING_STRATEGY_MAX }), endpoint));
    // Random bytes as hex do not compress, so the block exceeds one 16 KiB frame.
    const filler = Buffer.from(Array.from({ length: 14_000 }, (_, i) => (i * 7919) % 256)).toString("hex");
    answered(await statusCall(open(), endpoint, { "x-filler": filler }));
  });

  test("a grpc-go-like client (its request only after the server's SETTINGS) is served", async () => {
    const outcome = await grpcGoLikeStatusCall(endpoint);
    assert.equal(outcome.grpcStatus, "0");
    assert.ok(outcome.data > 5);
  });

  test("a native-protocol client reaches the native server, gRPC clients the gRPC server", async () => {
    const before = port.connectionCounts();
    const [host, portNumber] = endpoint.split(":");
    const socket = connectTcp(Number(portNumber), host);
    socket.on("error", () => undefined);
    // A frame length prefix (first byte 0x00); the count changes as soon as it is handed on.
    socket.write(Buffer.from([0, 0, 0, 1]));
    await waitFor(() => port.connectionCounts().native > before.native, "the native hand-over");
    socket.destroy();
    answered(await statusCall(open(), endpoint));
    const after = port.connectionCounts();
    assert.deepEqual(
      { native: after.native - before.native, grpc: after.grpc - before.grpc },
      { native: 1, grpc: 1 },
    );
  });

  test("etcd's HTTP /health and /version; another path is 404, a request that is not a GET line 400", async () => {
    const health = await fetch(`http://${endpoint}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { health: "true", reason: "" });
    const version = await fetch(`http://${endpoint}/version`);
    assert.deepEqual(await version.json(), { etcdserver: "3.4.23", etcdcluster: "3.4.0" });
    assert.equal((await fetch(`http://${endpoint}/v3/nothing`)).status, 404);
    const [host, portNumber] = endpoint.split(":");
    const socket = connectTcp(Number(portNumber), host);
    socket.on("error", () => undefined);
    const reply = await new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
      socket.on("close", () => resolve(text));
      socket.write("GARBAGE / SMTP\r\n\r\n");
    });
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.ok(port.connectionCounts().http >= 4);
  });
});
