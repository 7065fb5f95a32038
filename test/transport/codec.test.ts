// The peer wire codecs: round trips over arbitrary Raft values and control payloads, and
// rejection of every kind of invalid input with a TransportDecodeError that says why.
import { strict as assert } from "node:assert";
import { describe, test } from "node:test";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { EMPTY_CONF_STATE, EntryType, MessageType, message, type Message } from "../../src/raft/types.js";
import {
  decodeEnvelope,
  decodeMessage,
  decodeRaftBatch,
  encodeEnvelope,
  encodeMessage,
  encodeRaftBatch,
  TransportDecodeError,
} from "../../src/transport/codec.js";
import {
  decodeGoodbye,
  decodeHandshake,
  decodeSnapshotChunk,
  decodeSnapshotStatus,
  encodeGoodbye,
  encodeHandshake,
  encodeSnapshotChunk,
  encodeSnapshotStatus,
  SnapshotOutcome,
  type SnapshotChunk,
} from "../../src/transport/control-codec.js";
import { envelopeArb, messageArb } from "./helpers.js";

function rejects(bytes: Uint8Array, decode: (b: Uint8Array) => unknown, reason: RegExp): void {
  assert.throws(
    () => decode(bytes),
    (error: unknown) => error instanceof TransportDecodeError && reason.test(error.reason),
    `expected a TransportDecodeError matching ${reason}`,
  );
}

/** A message encoded field by field, for inputs the encoder would never produce. */
function rawMessage(write: (w: BinaryWriter) => void, base = true): Uint8Array {
  const w = new BinaryWriter();
  if (base) {
    w.tag(1, WireType.Varint).uint32(MessageType.App);
    w.tag(2, WireType.Varint).uint32(2);
    w.tag(3, WireType.Varint).uint32(1);
  }
  write(w);
  return w.finish();
}

const APP: Message = message({ type: MessageType.App, to: 2, from: 1, term: 3, index: 7 });

describe("codec round trips", () => {
  test("encodes share one kept writer: one that throws halfway, or a large one, leaves the next whole", () => {
    const small = { groupId: 4, from: 1, to: 2, messages: [APP] };
    const expected = encodeEnvelope(small);
    const broken = { groupId: 4, from: 1, to: 2, messages: [APP, { ...APP, to: 0 }] };
    assert.throws(() => encodeEnvelope(broken), /node id 0/);
    assert.deepEqual(encodeEnvelope(small), expected);
    const entry = { term: 3, index: 8, type: EntryType.Normal, data: new Uint8Array(3 << 20).fill(7) };
    const large = { ...small, messages: [{ ...APP, entries: [entry] }] };
    assert.deepEqual(decodeEnvelope(encodeEnvelope(large)), large);
    assert.deepEqual(encodeEnvelope(small), expected);
    assert.deepEqual(decodeRaftBatch(encodeRaftBatch([expected, expected])), [small, small]);
  });

  test("any envelope survives encode → decode", () => {
    fc.assert(
      fc.property(envelopeArb, (envelope) => {
        assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
      }),
      { numRuns: 300 },
    );
  });

  test("any message survives encode → decode", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        assert.deepEqual(decodeMessage(encodeMessage(m)), m);
      }),
      { numRuns: 300 },
    );
  });

  test("a batch keeps its envelopes and their order", () => {
    fc.assert(
      fc.property(fc.array(envelopeArb, { minLength: 1, maxLength: 4 }), (envelopes) => {
        assert.deepEqual(decodeRaftBatch(encodeRaftBatch(envelopes.map(encodeEnvelope))), envelopes);
      }),
      { numRuns: 100 },
    );
  });

  test("the largest safe integers round-trip", () => {
    const max = Number.MAX_SAFE_INTEGER;
    const m = message({
      type: MessageType.AppResp,
      to: max,
      from: max,
      term: max,
      index: max,
      rejectHint: max,
    });
    assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  });

  test("decoded bytes are copies, not views of the input buffer", () => {
    const m = message({ ...APP, context: new Uint8Array([1, 2, 3]) });
    const bytes = encodeMessage(m);
    const decoded = decodeMessage(bytes);
    bytes.fill(0);
    assert.deepEqual(decoded.context, new Uint8Array([1, 2, 3]));
  });

  test("control payloads round-trip", () => {
    const handshake = { clusterId: "prod-é", nodeId: 3, peerNodeId: 9, protocolVersion: 1 };
    assert.deepEqual(decodeHandshake(encodeHandshake(handshake)), handshake);
    assert.deepEqual(decodeGoodbye(encodeGoodbye({ reason: "bye" })), { reason: "bye" });
    const status = { transferId: 4, outcome: SnapshotOutcome.Rejected, reason: "crc" };
    assert.deepEqual(decodeSnapshotStatus(encodeSnapshotStatus(status)), status);
    const snap = message({
      type: MessageType.Snap,
      to: 2,
      from: 1,
      snapshot: { metadata: { index: 5, term: 2, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) },
    });
    const first: SnapshotChunk = {
      transferId: 1,
      seq: 0,
      header: { groupId: 7, from: 1, to: 2, messages: [snap] },
      data: new Uint8Array([9, 9]),
      crc32: 0xdeadbeef,
      last: false,
      totalBytes: 0,
      totalCrc32: 0,
    };
    assert.deepEqual(decodeSnapshotChunk(encodeSnapshotChunk(first)), first);
    const last: SnapshotChunk = {
      ...first,
      seq: 3,
      header: null,
      last: true,
      totalBytes: 99,
      totalCrc32: 0xffffffff,
    };
    assert.deepEqual(decodeSnapshotChunk(encodeSnapshotChunk(last)), last);
  });
});

describe("codec rejections", () => {
  test("every strict prefix of an envelope is rejected or decodes to something else", () => {
    fc.assert(
      fc.property(envelopeArb, fc.nat(), (envelope, cut) => {
        const bytes = encodeEnvelope(envelope);
        fc.pre(bytes.length > 0);
        const prefix = bytes.subarray(0, cut % bytes.length);
        try {
          assert.notDeepEqual(decodeEnvelope(prefix), envelope);
        } catch (error) {
          if (!(error instanceof TransportDecodeError)) throw error;
        }
      }),
      { numRuns: 300 },
    );
  });

  test("a value cut in the middle is rejected as truncated", () => {
    const bytes = encodeMessage(message({ ...APP, context: new Uint8Array(10) }));
    rejects(bytes.subarray(0, bytes.length - 3), decodeMessage, /message\.context is truncated/);
    const varintCut = rawMessage((w) => w.tag(4, WireType.Varint).uint64(2 ** 40)).subarray(0, 9);
    rejects(varintCut, decodeMessage, /message\.term is malformed/);
  });

  test("arbitrary bytes never throw anything but TransportDecodeError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const decode of [decodeEnvelope, decodeRaftBatch, decodeHandshake, decodeSnapshotChunk]) {
          try {
            decode(bytes);
          } catch (error) {
            if (!(error instanceof TransportDecodeError)) throw error;
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  test("unknown and missing enum values", () => {
    rejects(
      rawMessage((w) => w.tag(1, WireType.Varint).uint32(15), false),
      decodeMessage,
      /type has unknown value 15/,
    );
    rejects(
      rawMessage((w) => w.tag(2, WireType.Varint).uint32(2), false),
      decodeMessage,
      /message\.type has unknown value 0/,
    );
    const badEntry = rawMessage((w) =>
      w.tag(7, WireType.LengthDelimited).fork().tag(3, WireType.Varint).uint32(2).join(),
    );
    rejects(badEntry, decodeMessage, /message\.entries\[0\]\.type has unknown value 2/);
    const status = new BinaryWriter()
      .tag(1, WireType.Varint)
      .uint32(1)
      .tag(2, WireType.Varint)
      .uint32(9)
      .finish();
    rejects(status, decodeSnapshotStatus, /status\.outcome has unknown value 9/);
  });

  test("integers above 2^53 - 1 are rejected, 2^53 - 1 is accepted", () => {
    rejects(
      rawMessage((w) => w.tag(4, WireType.Varint).uint64(2n ** 53n)),
      decodeMessage,
      /message\.term is 9007199254740992/,
    );
    rejects(
      rawMessage((w) => w.tag(6, WireType.Varint).uint64(2n ** 64n - 1n)),
      decodeMessage,
      /message\.index is .*above 2\^53/,
    );
    const env = new BinaryWriter()
      .tag(1, WireType.Varint)
      .uint64(2n ** 60n)
      .finish();
    rejects(env, decodeEnvelope, /envelope\.groupId/);
    const ok = decodeMessage(rawMessage((w) => w.tag(4, WireType.Varint).uint64(2n ** 53n - 1n)));
    assert.equal(ok.term, Number.MAX_SAFE_INTEGER);
  });

  test("a varint padded with empty 7-bit groups (up to 10 bytes) reads as its value", () => {
    const w = rawMessage(() => undefined);
    const padded = new Uint8Array([...w, 4 << 3, 0x85, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert.equal(decodeMessage(padded).term, 5);
  });

  test("a varint longer than 10 bytes is rejected", () => {
    const w = rawMessage(() => undefined);
    const bytes = new Uint8Array([...w, 4 << 3, ...new Array<number>(11).fill(0xff), 0x01]);
    rejects(bytes, decodeMessage, /message\.term is malformed/);
  });

  test("unknown fields, wrong wire types and repeated singular fields", () => {
    rejects(
      rawMessage((w) => w.tag(13, WireType.Varint).uint32(1)),
      decodeMessage,
      /unknown field number 13/,
    );
    rejects(
      rawMessage((w) => w.tag(4, WireType.LengthDelimited).bytes(new Uint8Array(1))),
      decodeMessage,
      /term has wire type 2/,
    );
    rejects(
      rawMessage((w) => w.tag(4, WireType.Varint).uint32(1).tag(4, WireType.Varint).uint32(2)),
      decodeMessage,
      /term occurs more than once/,
    );
    rejects(
      rawMessage((w) => w.tag(10, WireType.Varint).uint32(2)),
      decodeMessage,
      /reject is a bool with value 2/,
    );
  });

  test("trailing garbage after a valid message is rejected", () => {
    const valid = encodeMessage(APP);
    rejects(new Uint8Array([...valid, 0xff]), decodeMessage, /message/);
    rejects(new Uint8Array([...valid, 0x00]), decodeMessage, /message/);
    const env = encodeEnvelope({ groupId: 1, from: 1, to: 2, messages: [APP] });
    rejects(new Uint8Array([...env, 0x0a]), decodeEnvelope, /envelope/);
  });

  test("required fields", () => {
    rejects(new Uint8Array(0), decodeMessage, /message\.type has unknown value 0/);
    const noTo = new BinaryWriter()
      .tag(1, WireType.Varint)
      .uint32(MessageType.App)
      .tag(3, WireType.Varint)
      .uint32(1)
      .finish();
    rejects(noTo, decodeMessage, /message\.to is missing/);
    const snap = new BinaryWriter()
      .tag(1, WireType.Varint)
      .uint32(MessageType.Snap)
      .tag(2, WireType.Varint)
      .uint32(2);
    snap.tag(3, WireType.Varint).uint32(1);
    rejects(snap.finish(), decodeMessage, /message\.snapshot is required in a Snap message/);
    const noMetadata = rawMessage((inner) => inner.tag(9, WireType.LengthDelimited).fork().join());
    rejects(noMetadata, decodeMessage, /message\.snapshot\.metadata is required/);
    const noConfState = rawMessage((inner) =>
      inner.tag(9, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).fork().join().join(),
    );
    rejects(noConfState, decodeMessage, /metadata\.confState is required/);
    rejects(
      new BinaryWriter().tag(1, WireType.Varint).uint32(1).finish(),
      decodeEnvelope,
      /envelope\.from is missing/,
    );
    rejects(new Uint8Array(0), decodeRaftBatch, /batch holds no envelopes/);
  });

  test("node id 0 in a membership list is rejected", () => {
    const cs = rawMessage((w) =>
      w
        .tag(9, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .fork()
        .tag(3, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .fork()
        .uint32(4)
        .uint32(0)
        .join()
        .join()
        .join()
        .join(),
    );
    rejects(cs, decodeMessage, /confState\.voters contains node id 0/);
  });

  test("membership lists are read packed and unpacked alike", () => {
    const unpacked = rawMessage((w) =>
      w
        .tag(9, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .fork()
        .tag(3, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.Varint)
        .uint32(4)
        .tag(1, WireType.Varint)
        .uint32(5)
        .join()
        .join()
        .join(),
    );
    const snapshot = decodeMessage(unpacked).snapshot;
    assert.deepEqual(snapshot?.metadata.confState.voters, [4, 5]);
  });

  test("control payloads: missing fields, invalid UTF-8, header placement", () => {
    rejects(
      encodeHandshake({ clusterId: "", nodeId: 1, peerNodeId: 2, protocolVersion: 1 }),
      decodeHandshake,
      /clusterId is missing/,
    );
    rejects(
      encodeHandshake({ clusterId: "c", nodeId: 0, peerNodeId: 2, protocolVersion: 1 }),
      decodeHandshake,
      /nodeId is missing/,
    );
    const badUtf8 = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .bytes(new Uint8Array([0xc3, 0x28]))
      .finish();
    rejects(badUtf8, decodeHandshake, /clusterId is not valid UTF-8/);
    const chunkWithoutHeader = new BinaryWriter().tag(1, WireType.Varint).uint32(1).finish();
    rejects(chunkWithoutHeader, decodeSnapshotChunk, /chunk\.header is required in chunk 0/);
    const env = encodeEnvelope({ groupId: 0, from: 1, to: 2, messages: [] });
    const lateHeader = new BinaryWriter().tag(1, WireType.Varint).uint32(1).tag(2, WireType.Varint).uint32(3);
    lateHeader.tag(3, WireType.LengthDelimited).bytes(env);
    rejects(lateHeader.finish(), decodeSnapshotChunk, /chunk\.header is not allowed in chunk 3/);
    const totalsEarly = new BinaryWriter()
      .tag(1, WireType.Varint)
      .uint32(1)
      .tag(2, WireType.Varint)
      .uint32(1);
    totalsEarly.tag(7, WireType.Varint).uint32(10);
    rejects(totalsEarly.finish(), decodeSnapshotChunk, /only allowed in the last chunk/);
  });

  test("the encoder refuses values the contract forbids", () => {
    assert.throws(() => encodeMessage({ ...APP, term: -1 }), /message\.term: -1/);
    assert.throws(() => encodeMessage({ ...APP, index: 2 ** 53 }), /message\.index/);
    assert.throws(() => encodeMessage({ ...APP, commit: 1.5 }), /message\.commit/);
    assert.throws(() => encodeMessage({ ...APP, to: 0 }), /message\.to: node id 0/);
    assert.throws(() => encodeMessage({ ...APP, type: 99 as MessageType }), /message\.type: 99/);
    assert.throws(() => encodeEnvelope({ groupId: 1, from: 1, to: 0, messages: [] }), /envelope\.to/);
  });
});
