// Framing: whole frames out of arbitrarily split chunks, and every rejection (bad version,
// unknown kind, over the size limit) raised from the header alone and kept forever after.
import { strict as assert } from "node:assert";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
  FrameKind,
  PROTOCOL_VERSION,
  type Frame,
} from "../../src/transport/frame.js";

const KINDS = Object.values(FrameKind).filter((v): v is FrameKind => typeof v === "number");

const frameArb: fc.Arbitrary<Frame> = fc.record(
  { kind: fc.constantFrom(...KINDS), payload: fc.uint8Array({ maxLength: 300 }) },
  { noNullPrototype: true },
);

/** Cuts `bytes` at the given points (taken modulo its length), in order. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function header(length: number, version: number, kind: number): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(bytes.buffer).setUint32(0, length, false);
  bytes[4] = version;
  bytes[5] = kind;
  return bytes;
}

function rejects(decoder: FrameDecoder, chunk: Uint8Array, reason: RegExp): void {
  assert.throws(
    () => decoder.push(chunk),
    (e: unknown) => e instanceof FrameError && reason.test(e.reason),
  );
}

describe("FrameDecoder", () => {
  test("yields the frames sent, whatever the chunking", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, cuts) => {
          const stream = concat(frames.map((f) => encodeFrame(f.kind, f.payload)));
          const decoder = new FrameDecoder();
          const out = split(stream, cuts).flatMap((chunk) => decoder.push(chunk));
          assert.deepEqual(out, frames);
          assert.equal(decoder.bufferedBytes, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("fed one byte at a time, each frame appears exactly at its last byte", () => {
    const frames: Frame[] = [
      { kind: FrameKind.Heartbeat, payload: new Uint8Array(0) },
      { kind: FrameKind.RaftBatch, payload: new Uint8Array([1, 2, 3]) },
    ];
    const encoded = frames.map((f) => encodeFrame(f.kind, f.payload));
    const decoder = new FrameDecoder();
    const completedAt: number[] = [];
    const out: Frame[] = [];
    concat(encoded).forEach((byte, i) => {
      const got = decoder.push(new Uint8Array([byte]));
      if (got.length > 0) completedAt.push(i);
      out.push(...got);
    });
    assert.deepEqual(out, frames);
    assert.deepEqual(completedAt, [FRAME_HEADER_BYTES - 1, 2 * FRAME_HEADER_BYTES + 3 - 1]);
  });

  test("the header layout: big-endian payload length, version, kind", () => {
    const frame = encodeFrame(FrameKind.SnapshotChunk, new Uint8Array([7, 8]));
    assert.deepEqual([...frame], [0, 0, 0, 2, PROTOCOL_VERSION, FrameKind.SnapshotChunk, 7, 8]);
  });

  test("an unsupported protocol version is rejected", () => {
    rejects(new FrameDecoder(), header(0, 2, FrameKind.Heartbeat), /unsupported protocol version 2/);
    rejects(new FrameDecoder(), header(0, 0, FrameKind.Heartbeat), /unsupported protocol version 0/);
  });

  test("an unknown frame kind is rejected", () => {
    rejects(new FrameDecoder(), header(0, PROTOCOL_VERSION, 0), /unknown frame kind 0/);
    rejects(new FrameDecoder(), header(0, PROTOCOL_VERSION, 77), /unknown frame kind 77/);
  });

  test("a frame over the limit is rejected from its header, before any payload arrives", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1000 });
    assert.deepEqual(decoder.push(encodeFrame(FrameKind.RaftBatch, new Uint8Array(1000))).length, 1);
    rejects(
      decoder,
      header(1001, PROTOCOL_VERSION, FrameKind.RaftBatch),
      /1001 bytes exceeds the limit of 1000/,
    );
    const huge = new FrameDecoder();
    rejects(
      huge,
      header(DEFAULT_MAX_FRAME_BYTES + 1, PROTOCOL_VERSION, FrameKind.SnapshotChunk),
      /exceeds the limit/,
    );
    rejects(
      new FrameDecoder(),
      header(0xffffffff, PROTOCOL_VERSION, FrameKind.RaftBatch),
      /exceeds the limit/,
    );
  });

  test("a header split across chunks is judged once complete", () => {
    const decoder = new FrameDecoder();
    const bad = header(1, 9, FrameKind.Heartbeat);
    assert.deepEqual(decoder.push(bad.subarray(0, 5)), []);
    rejects(decoder, bad.subarray(5), /unsupported protocol version 9/);
  });

  test("frames before a bad one in the same chunk are not returned; the decoder stays failed", () => {
    const decoder = new FrameDecoder();
    const stream = concat([
      encodeFrame(FrameKind.Heartbeat, new Uint8Array(0)),
      header(0, PROTOCOL_VERSION, 99),
    ]);
    rejects(decoder, stream, /unknown frame kind 99/);
    rejects(decoder, encodeFrame(FrameKind.Heartbeat, new Uint8Array(0)), /unknown frame kind 99/);
  });

  test("random garbage either decodes or fails with FrameError, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const decoder = new FrameDecoder({ maxFrameBytes: 64 });
        try {
          decoder.push(bytes);
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
        }
      }),
    );
  });

  test("the size limit itself is validated", () => {
    assert.throws(() => new FrameDecoder({ maxFrameBytes: -1 }), /maxFrameBytes/);
    assert.throws(() => new FrameDecoder({ maxFrameBytes: 2 ** 32 }), /maxFrameBytes/);
  });
});
