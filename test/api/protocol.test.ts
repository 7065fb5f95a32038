// The native protocol's codec: frames out of arbitrarily split chunks and every header
// rejection; each request and response shape round-trips; malformed messages are refused
// with NativeProtocolError (the server closes the connection on it, never crashes).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { NativeProtocolError } from "../../src/api/native/errors.js";
import {
  decodeRequest,
  decodeResponse,
  encodeNativeFrame,
  encodeRequest,
  encodeResponse,
  Method,
  NATIVE_FRAME_HEADER_BYTES,
  NativeFrameDecoder,
  NativeFrameKind,
  ResponseCode,
  type NativeFrame,
  type NativeRequest,
  type NativeResponse,
} from "../../src/api/native/protocol.js";
import {
  CompareResult,
  CompareTarget,
  deleteRangeRequest,
  encodeCommand,
  leaseGrantRequest,
  putRequest,
  rangeRequest,
  txnRequest,
} from "../../src/kv/commands.js";
import { KvErrorCode } from "../../src/kv/errors.js";
import type { KeyValue } from "../../src/kv/results.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const MAX_I64 = (1n << 63n) - 1n;

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

describe("native framing", () => {
  const kinds = [NativeFrameKind.Request, NativeFrameKind.Response, NativeFrameKind.Goodbye];
  const frameArb: fc.Arbitrary<NativeFrame> = fc.record(
    { kind: fc.constantFrom(...kinds), payload: fc.uint8Array({ maxLength: 200 }) },
    { noNullPrototype: true },
  );

  test("whole frames come out of a stream cut anywhere", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, cuts) => {
          const stream = concat(frames.map((f) => encodeNativeFrame(f.kind, f.payload)));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const decoder = new NativeFrameDecoder();
          const out: NativeFrame[] = [];
          let start = 0;
          for (const point of [...points, stream.length]) {
            out.push(...decoder.push(stream.subarray(start, point)));
            start = point;
          }
          assert.deepEqual(
            out.map((f) => ({ kind: f.kind, payload: [...f.payload] })),
            frames.map((f) => ({ kind: f.kind, payload: [...f.payload] })),
          );
        },
      ),
    );
  });

  test("a bad header fails the decoder for good, before its payload arrives", () => {
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.of(0, 0, 0, 0, 2, 1), /unsupported protocol version 2/],
      [Uint8Array.of(0, 0, 0, 0, 1, 0), /unknown frame kind 0/],
      [Uint8Array.of(0, 0, 1, 1, 1, 1), /exceeds the limit of 256/],
    ];
    for (const [header, reason] of cases) {
      const decoder = new NativeFrameDecoder(256);
      assert.equal(header.length, NATIVE_FRAME_HEADER_BYTES);
      assert.throws(
        () => decoder.push(header),
        (e: unknown) => e instanceof NativeProtocolError && reason.test(e.reason),
      );
      // A valid frame afterwards is refused too: the stream cannot be resynchronised.
      assert.throws(
        () => decoder.push(encodeNativeFrame(NativeFrameKind.Request, new Uint8Array(0))),
        NativeProtocolError,
      );
    }
  });
});

const kv: KeyValue = {
  key: bytes("k"),
  value: bytes("v"),
  createRevision: 5n,
  modRevision: MAX_I64,
  version: 2n,
  lease: 7n,
};

describe("native messages", () => {
  const requests: NativeRequest[] = [
    {
      id: 1,
      method: Method.Write,
      rangeId: 1,
      command: putRequest({ key: bytes("a"), value: bytes("b"), lease: 3n, prevKv: true }),
      clientId: "client",
      sequence: 2 ** 40,
    },
    {
      id: 2,
      method: Method.Write,
      rangeId: 7,
      command: txnRequest({
        compares: [
          {
            target: CompareTarget.Version,
            result: CompareResult.Greater,
            key: bytes("a"),
            rangeEnd: new Uint8Array(0),
            operand: 0n,
          },
        ],
        success: [deleteRangeRequest({ key: bytes("a"), rangeEnd: bytes("b") })],
        failure: [rangeRequest({ key: bytes("a") })],
      }),
      clientId: "c",
      sequence: 1,
    },
    {
      id: 3,
      method: Method.Write,
      rangeId: 1,
      command: leaseGrantRequest(10, MAX_I64),
      clientId: "c",
      sequence: 9,
    },
    {
      id: 4,
      method: Method.Range,
      rangeId: 1,
      range: rangeRequest({ key: bytes("a"), limit: 3, revision: 99n }),
      serializable: true,
    },
    { id: 5, method: Method.Status, rangeId: 1 },
    { id: 6, method: Method.Leases, rangeId: 1 },
    { id: 7, method: Method.LeaseKeepAlive, rangeId: 1, leaseId: MAX_I64 },
    { id: 8, method: Method.LeaseTimeToLive, rangeId: 1, leaseId: 12n, withKeys: true },
    {
      id: 9,
      method: Method.Watch,
      rangeId: 1,
      watch: {
        key: bytes("p/"),
        rangeEnd: bytes("p0"),
        startRevision: 40n,
        prevKv: true,
        filters: ["noPut", "noDelete"],
        progressNotify: true,
      },
    },
    { id: 2 ** 53 - 1, method: Method.WatchCancel, rangeId: 1, targetId: 9 },
  ];

  test("every request shape round-trips", () => {
    for (const request of requests) assert.deepEqual(decodeRequest(encodeRequest(request)), request);
  });

  const responses: NativeResponse[] = [
    { id: 1, body: { kind: "write", result: { revision: 10n, response: { kind: "put", prevKv: kv } } } },
    {
      id: 2,
      body: {
        kind: "write",
        result: {
          revision: 3n,
          response: {
            kind: "error",
            code: KvErrorCode.DuplicateKey,
            message: "etcdserver: duplicate key given in txn request",
          },
        },
      },
    },
    {
      id: 3,
      body: {
        kind: "range",
        result: { kind: "range", kvs: [kv, { ...kv, key: bytes("l") }], more: true, count: 5, revision: 12n },
      },
    },
    {
      id: 4,
      body: {
        kind: "status",
        status: {
          rangeId: 1,
          nodeId: 2,
          leader: 3,
          term: 4,
          role: "follower",
          commit: 5,
          applied: 5,
          revision: MAX_I64,
          voters: [1, 2, 3],
        },
      },
    },
    { id: 5, body: { kind: "lease", method: Method.LeaseKeepAlive, lease: null } },
    {
      id: 6,
      body: {
        kind: "lease",
        method: Method.LeaseTimeToLive,
        lease: {
          id: 9n,
          grantedTtlSeconds: 60,
          remainingTtlSeconds: 59,
          keys: [bytes("a"), new Uint8Array(0)],
        },
      },
    },
    {
      id: 7,
      body: {
        kind: "leases",
        leases: [
          { id: 1n, ttlSeconds: 5 },
          { id: MAX_I64, ttlSeconds: 9 },
        ],
      },
    },
    {
      id: 8,
      body: {
        kind: "watch",
        response: {
          watchId: 3,
          events: [
            { type: "put", kv, prevKv: null },
            {
              type: "delete",
              kv: { ...kv, value: new Uint8Array(0), version: 0n, createRevision: 0n, lease: 0n },
              prevKv: kv,
            },
          ],
          revision: 44n,
          compactRevision: 0n,
          canceled: false,
          cancelReason: "",
          fragment: false,
        },
      },
    },
    {
      id: 9,
      body: {
        kind: "watch",
        response: {
          watchId: 3,
          events: [],
          revision: 50n,
          compactRevision: 41n,
          canceled: true,
          cancelReason: "compacted",
          fragment: false,
        },
      },
    },
    { id: 10, body: { kind: "watchCancelled" } },
    {
      id: 11,
      body: {
        kind: "failure",
        code: ResponseCode.KvError,
        message: "mvcc: required revision has been compacted",
        kvErrorCode: KvErrorCode.Compacted,
      },
    },
    { id: 12, body: { kind: "failure", code: ResponseCode.NotLeader, message: "no leader", kvErrorCode: 0 } },
  ];

  test("every response shape round-trips", () => {
    for (const response of responses) assert.deepEqual(decodeResponse(encodeResponse(response)), response);
  });

  test("malformed requests are refused with a reason", () => {
    const refused = (payload: Uint8Array, reason: RegExp): void => {
      assert.throws(
        () => decodeRequest(payload),
        (e: unknown) => e instanceof NativeProtocolError && reason.test(e.reason),
      );
    };
    refused(Uint8Array.of(0x10, 0x01, 0x18, 0x05), /id must be non-zero/);
    refused(Uint8Array.of(0x08, 0x01, 0x18, 0x05), /range_id must be non-zero/);
    refused(Uint8Array.of(0x08, 0x01, 0x10, 0x01, 0x18, 0x63), /method 99 is unknown/);
    refused(Uint8Array.of(0x08, 0x01, 0x10, 0x01, 0x18, 0x07), /watch is required/);
    refused(Uint8Array.of(0x08, 0x01, 0x10, 0x01, 0x18, 0x08), /needs target_id/);
    // A Range request whose command is a put rather than a one-op txn.
    const put = encodeCommand(putRequest({ key: bytes("a") }));
    const range = encodeRequest({
      id: 1,
      method: Method.Range,
      rangeId: 1,
      range: rangeRequest({ key: bytes("a") }),
      serializable: false,
    });
    const withPut = concat([range.subarray(0, 6), Uint8Array.of(0x22, put.length), put]);
    refused(withPut, /must be a txn holding one range op/);
    // A lease id that is not a decimal number; a truncated command.
    refused(
      concat([
        encodeRequest({ id: 1, method: Method.LeaseKeepAlive, rangeId: 1, leaseId: 0n }),
        Uint8Array.of(0x42, 2, 0x2d, 0x31),
      ]),
      /lease_id "-1"/,
    );
    refused(
      concat([
        Uint8Array.of(0x08, 0x01, 0x10, 0x01, 0x18, 0x01, 0x2a, 0x01, 0x63, 0x30, 0x01, 0x22, 0x01),
        Uint8Array.of(1),
      ]),
      /Request/,
    );
  });
});
