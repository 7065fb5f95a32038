// ByteWriter against a plain array encoder: writers started while others are open (as nested
// encoders do), interleaved, grown past their pooled buffer, and finished in any order, must
// each produce exactly their own bytes; a finished writer refuses further writes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ByteWriter } from "../../src/kv/bytes.js";

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
