// The versioned binary encodings of commands, envelopes and results: exact round trips, and
// typed rejection of unknown versions and kinds, invalid fields, truncation and trailing bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DecodeError } from "../../src/kv/bytes.js";
import {
  ENCODING_VERSION,
  MAX_TXN_DEPTH,
  compactRequest,
  decodeCommand,
  decodeEnvelope,
  encodeCommand,
  encodeEnvelope,
  putRequest,
  txnRequest,
  type TxnRequest,
} from "../../src/kv/commands.js";
import { decodeCommandResult, encodeCommandResult } from "../../src/kv/results.js";
import { WIDE_KEYS, commandArb, commandResultArb, envelopeArb } from "./arbitraries.js";

function decodeFailure(decode: () => unknown): string {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof DecodeError, `expected a DecodeError, got ${String(error)}`);
    return error.failure;
  }
  assert.fail("decoding succeeded");
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe("command encoding", () => {
  it("round-trips every command exactly", () => {
    fc.assert(
      fc.property(commandArb(WIDE_KEYS), (command) => {
        assert.deepEqual(decodeCommand(encodeCommand(command)), command);
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips envelopes", () => {
    fc.assert(
      fc.property(envelopeArb, (envelope) => {
        assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects every truncation of a valid encoding", () => {
    fc.assert(
      fc.property(envelopeArb, (envelope) => {
        const encoded = encodeEnvelope(envelope);
        for (let n = 0; n < encoded.length; n++) {
          assert.throws(() => decodeEnvelope(encoded.subarray(0, n)), DecodeError, `prefix of ${n} bytes`);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("rejects trailing bytes", () => {
    fc.assert(
      fc.property(commandArb(WIDE_KEYS), fc.uint8Array({ minLength: 1, maxLength: 3 }), (command, extra) => {
        const encoded = encodeCommand(command);
        const failure = decodeFailure(() => decodeCommand(Uint8Array.from([...encoded, ...extra])));
        assert.equal(failure, "trailing-bytes");
      }),
    );
  });

  it("rejects an unknown encoding version", () => {
    const encoded = encodeCommand(putRequest({ key: bytes("k") }));
    assert.equal(encoded[0], ENCODING_VERSION);
    encoded[0] = ENCODING_VERSION + 1;
    assert.equal(
      decodeFailure(() => decodeCommand(encoded)),
      "unknown-version",
    );
  });

  it("rejects an unknown command kind", () => {
    const encoded = encodeCommand(putRequest({ key: bytes("k") }));
    encoded[1] = 0x7f;
    assert.equal(
      decodeFailure(() => decodeCommand(encoded)),
      "unknown-kind",
    );
  });

  it("rejects unknown flag bits", () => {
    const encoded = encodeCommand(putRequest({ key: bytes("k") }));
    encoded[encoded.length - 1] = 0x80;
    assert.equal(
      decodeFailure(() => decodeCommand(encoded)),
      "invalid-field",
    );
  });

  it("rejects a revision above int64 and transactions nested too deep", () => {
    const encoded = encodeCommand(compactRequest(5n));
    encoded[2] = 0x80;
    assert.equal(
      decodeFailure(() => decodeCommand(encoded)),
      "invalid-field",
    );
    assert.throws(() => encodeCommand(compactRequest(1n << 63n)), RangeError);

    let deep: TxnRequest = txnRequest({});
    for (let i = 0; i < MAX_TXN_DEPTH; i++) deep = txnRequest({ success: [deep] });
    assert.throws(() => encodeCommand(deep), RangeError);
  });

  it("refuses malformed envelopes on both sides", () => {
    const command = putRequest({ key: bytes("k") });
    assert.throws(() => encodeEnvelope({ clientId: "c", sequence: 0, timestamp: 0n, command }), RangeError);
    assert.throws(() => encodeEnvelope({ clientId: "", sequence: 3, timestamp: 0n, command }), RangeError);
    assert.throws(() => encodeEnvelope({ clientId: "c", sequence: 1, timestamp: -1n, command }), RangeError);
    const valid = encodeEnvelope({ clientId: "c", sequence: 1, timestamp: 0n, command });
    // Byte layout: version, u32 length of "c", "c", u64 sequence: zero the sequence.
    valid.fill(0, 6, 14);
    assert.equal(
      decodeFailure(() => decodeEnvelope(valid)),
      "invalid-field",
    );
  });

  it("does not allocate for a list length the input cannot hold", () => {
    const encoded = encodeCommand(txnRequest({}));
    // Byte layout: version, kind, u32 compare count: claim four billion compares.
    encoded.fill(0xff, 2, 6);
    assert.equal(
      decodeFailure(() => decodeCommand(encoded)),
      "truncated",
    );
  });
});

describe("result encoding", () => {
  it("round-trips every result", () => {
    fc.assert(
      fc.property(commandResultArb, (result) => {
        assert.deepEqual(decodeCommandResult(encodeCommandResult(result)), result);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects truncation, trailing bytes and unknown versions", () => {
    fc.assert(
      fc.property(commandResultArb, (result) => {
        const encoded = encodeCommandResult(result);
        for (let n = 0; n < encoded.length; n++) {
          assert.throws(() => decodeCommandResult(encoded.subarray(0, n)), DecodeError);
        }
        assert.equal(
          decodeFailure(() => decodeCommandResult(Uint8Array.from([...encoded, 0]))),
          "trailing-bytes",
        );
        const otherVersion = encoded.slice();
        otherVersion[0] = 99;
        assert.equal(
          decodeFailure(() => decodeCommandResult(otherVersion)),
          "unknown-version",
        );
      }),
      { numRuns: 100 },
    );
  });
});
