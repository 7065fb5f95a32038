// ByteWriter against a plain array encoder: writers started while others are open (as nested
// encoders do), interleaved, grown past their pooled buffer, and finished in any order, must
// each produce exactly their own bytes; a finished writer refuses further writes. The
// fixed-width helpers against DataView; ByteReader's views against its copies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ByteReader,
  ByteWriter,
  readF64,
  readU32,
  readU64,
  samePrefix,
  subrange,
  u64Bytes,
  writeF64,
  writeU64,
} from "../../src/kv/bytes.js";

type Write = { u8: number } | { u32: number } | { u64: bigint } | { raw: Uint8Array };

const write: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ u8: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ u32: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ u64: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  // Up to 3 KB: past a pooled buffer, so writers grow.
  fc.record({ raw: fc.uint8Array({ maxLength: 3000 }) }),
);

function expectedBytes(writes: readonly Write[]): Uint8Array {
  const out: number[] = [];
  for (const w of writes) {
    if ("u8" in w) out.push(w.u8);
    else if ("u32" in w) for (let shift = 24; shift >= 0; shift -= 8) out.push((w.u32 >>> shift) & 0xff);
    else if ("u64" in w)
      for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((w.u64 >> shift) & 0xffn));
    else out.push(...w.raw);
  }
  return Uint8Array.from(out);
}

function apply(writer: ByteWriter, w: Write): void {
  if ("u8" in w) writer.u8(w.u8);
  else if ("u32" in w) writer.u32(w.u32);
  else if ("u64" in w) writer.u64(w.u64);
  else writer.raw(w.raw);
}

describe("ByteWriter", () => {
  it("gives every writer its own bytes however writers interleave and nest", () => {
    // A script: each step writes to one of several open writers, or finishes one and starts a
    // fresh writer in its place (its buffer goes back to the pool for the next writer).
    const step = fc.record({ writer: fc.integer({ min: 0, max: 3 }), write, finish: fc.boolean() });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const writers = [0, 1, 2, 3].map(() => ({ writer: new ByteWriter(), writes: [] as Write[] }));
        const check = (i: number): void => {
          const open = writers[i]!;
          assert.deepEqual(open.writer.finish(), expectedBytes(open.writes));
          writers[i] = { writer: new ByteWriter(), writes: [] };
        };
        for (const s of steps) {
          const open = writers[s.writer]!;
          apply(open.writer, s.write);
          open.writes.push(s.write);
          if (s.finish) check(s.writer);
        }
        for (let i = 0; i < writers.length; i++) check(i);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses writes and a second finish once finished", () => {
    const writer = new ByteWriter().u8(1);
    assert.deepEqual(writer.finish(), Uint8Array.of(1));
    assert.throws(() => writer.u8(2), /used after finish/);
    assert.throws(() => writer.finish(), /used after finish/);
    // The buffer it gave back serves the next writer, whose bytes are its own.
    assert.deepEqual(new ByteWriter().u8(3).finish(), Uint8Array.of(3));
  });
});

describe("fixed-width integers in place", () => {
  // The helpers read and write through one shared scratch view; a DataView over each array
  // is the reference.
  it("write and read what a DataView does, at any offset", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 24 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.double({ noNaN: true }),
        (at, u64, u32, f64) => {
          const bytes = new Uint8Array(at + 8);
          const view = new DataView(bytes.buffer);
          writeU64(bytes, at, u64);
          assert.equal(view.getBigUint64(at), u64);
          assert.equal(readU64(bytes, at), u64);
          view.setUint32(at, u32);
          assert.equal(readU32(bytes, at), u32);
          writeF64(bytes, at, f64);
          assert.equal(view.getFloat64(at), f64);
          assert.equal(readF64(bytes, at), f64);
        },
      ),
    );
  });

  it("u64Bytes is writeU64 into 8 bytes of its own", () => {
    assert.deepEqual([...u64Bytes(0x0102_0304_0506_0708n)], [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("leave the bytes around what they write alone", () => {
    const bytes = new Uint8Array(12).fill(0xaa);
    writeU64(bytes, 2, 0n);
    assert.deepEqual([...bytes], [0xaa, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa]);
    writeF64(bytes, 2, 0);
    assert.deepEqual([...bytes], [0xaa, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa]);
  });
});

describe("samePrefix", () => {
  it("compares the first n bytes only", () => {
    const a = Uint8Array.of(1, 2, 3, 9);
    const b = Uint8Array.of(1, 2, 3, 7, 7);
    assert.equal(samePrefix(a, b, 3), true);
    assert.equal(samePrefix(a, b, 4), false);
    assert.equal(samePrefix(a, Uint8Array.of(0, 2, 3), 3), false);
    assert.equal(samePrefix(a, b, 0), true);
  });
});

describe("ByteReader views", () => {
  it("share a large input's bytes where raw() copies them", () => {
    const input = new Uint8Array(200).map((_, i) => i);
    input.set([0, 0, 0, 100]);
    const reader = new ByteReader(input, "test");
    const view = reader.bytesView();
    assert.deepEqual([...view], [...input.subarray(4, 104)]);
    assert.equal(view.buffer, input.buffer);
    assert.deepEqual([...reader.restView()], [...input.subarray(104)]);
    reader.end();
    const copy = new ByteReader(input, "test").rest();
    copy[0] = 1;
    assert.equal(input[0], 0);
  });

  it("copy a small input's bytes: a view of an array on V8's heap costs more than a copy", () => {
    const input = Uint8Array.of(0, 0, 0, 2, 7, 8, 9);
    const reader = new ByteReader(input, "test");
    assert.deepEqual([...reader.bytesView()], [7, 8]);
    assert.deepEqual([...reader.restView()], [9]);
    assert.deepEqual([...subrange(input, 4, 6)], [7, 8]);
    assert.deepEqual([...subrange(input, 6)], [9]);
  });

  it("refuse a length past the end", () => {
    assert.throws(() => new ByteReader(Uint8Array.of(0, 0, 0, 5, 1), "test").bytesView(), {
      name: "DecodeError",
      failure: "truncated",
    });
  });
});
