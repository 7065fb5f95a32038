/**
 * Byte-level helpers for the kv layer: lexicographic ordering, prefix bounds, UTF-8, and the
 * bounds-checked writer/reader that every versioned binary encoding in src/kv is built from
 * (commands, results, the value header, the dedup table, snapshots).
 *
 * Decoders never trust their input: a short buffer, a length that runs past the end, an
 * unknown format version or kind, an out-of-range field or bytes left over all raise a
 * DecodeError naming what was being decoded and why.
 */

export type DecodeFailure =
  "truncated" | "trailing-bytes" | "unknown-version" | "unknown-kind" | "invalid-field" | "checksum-mismatch";

/** Input bytes are not a valid encoding of the thing being decoded. Nothing was applied. */
export class DecodeError extends Error {
  constructor(
    readonly what: string,
    readonly failure: DecodeFailure,
    detail: string,
  ) {
    super(`cannot decode ${what}: ${failure}: ${detail}`);
    this.name = "DecodeError";
  }
}

export const EMPTY: Uint8Array = new Uint8Array(0);

/** Lexicographic byte order (shorter wins on a common prefix), like memcmp-then-length. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Typed arrays of up to this many bytes live on V8's heap (typed_array_max_size_in_heap). A
 * view of one (`subarray`, `.buffer`) first moves it out into an ArrayBuffer of its own, about
 * 1 µs; a copy of its few bytes costs a twentieth of that.
 */
const ON_HEAP_BYTES = 64;

/**
 * `bytes[start, end)` for reading only: a view of `bytes` when it lives outside V8's heap (a
 * view is free there, a copy is not), a copy of a small array (where a view is the costly
 * one). Callers must neither change the result nor rely on it sharing `bytes`.
 */
export function subrange(bytes: Uint8Array, start: number, end: number = bytes.length): Uint8Array {
  return bytes.byteLength <= ON_HEAP_BYTES ? bytes.slice(start, end) : bytes.subarray(start, end);
}

/** Whether `a` and `b` hold the same first `length` bytes (both hold at least that many). */
export function samePrefix(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The smallest byte string greater than every string that starts with `prefix`, or null when
 * there is none (the prefix is empty or all 0xFF): the exclusive end of a prefix scan.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i] = prefix[i]! + 1;
      return end;
    }
  }
  return null;
}

/**
 * etcd's range end for a prefix: prefixEnd, or "\0" (every key from the prefix on) when there
 * is none.
 */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  return prefixEnd(prefix) ?? Uint8Array.of(0);
}

/**
 * Bytes as a string of char codes 0..255. JavaScript compares such strings code unit by code
 * unit, so their order is exactly the byte order: usable as Map keys and for sorting.
 */
export function latin1(bytes: Uint8Array): string {
  // fromCharCode takes a typed array as its argument list; chunks keep under the argument limit.
  if (bytes.length <= 4096) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new DecodeError(what, "invalid-field", "text is not valid UTF-8");
  }
}

/**
 * Fixed-width big-endian integers read and written in place through one module-level
 * DataView. A DataView over the array itself would cost more than the whole encoding: arrays
 * of up to 64 bytes (keys, revisions, meta values) live on V8's heap, and asking one for its
 * `.buffer` moves it out of the heap into a new ArrayBuffer (about 1 µs, measured against
 * about 0.1 µs this way).
 */
const scratchView = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratchView.buffer);

/** The scratch view's 8 bytes, copied to `out[at..at+8)`. */
function scratchTo(out: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++) out[at + i] = scratchBytes[i]!;
}

/** `bytes[at..at+8)` (the caller checked they exist), copied into the scratch view. */
function scratchFrom(bytes: Uint8Array, at: number): DataView {
  for (let i = 0; i < 8; i++) scratchBytes[i] = bytes[at + i]!;
  return scratchView;
}

/** `value` (0..2^64-1, unchecked) as 8 big-endian bytes at `out[at..at+8)`. */
export function writeU64(out: Uint8Array, at: number, value: bigint): void {
  scratchView.setBigUint64(0, value);
  scratchTo(out, at);
}

/** The 8 big-endian bytes at `bytes[at..at+8)` (the caller checked they exist) as a u64. */
export function readU64(bytes: Uint8Array, at: number): bigint {
  return scratchFrom(bytes, at).getBigUint64(0);
}

/** `value` (0..2^64-1, unchecked) as 8 big-endian bytes of their own. */
export function u64Bytes(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  writeU64(out, 0, value);
  return out;
}

/** `value` as an 8-byte big-endian float at `out[at..at+8)`. */
export function writeF64(out: Uint8Array, at: number, value: number): void {
  scratchView.setFloat64(0, value);
  scratchTo(out, at);
}

/** The 8-byte big-endian float at `bytes[at..at+8)` (the caller checked they exist). */
export function readF64(bytes: Uint8Array, at: number): number {
  return scratchFrom(bytes, at).getFloat64(0);
}

/** The 4 big-endian bytes at `bytes[at..at+4)` (the caller checked they exist) as a u32. */
export function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

const U64_MAX = (1n << 64n) - 1n;
export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;
const U32_MAX = 0xffff_ffff;

/** A buffer a ByteWriter writes into, with its DataView. */
interface Scratch {
  readonly buffer: Uint8Array;
  readonly view: DataView;
}

/**
 * Buffers of finished ByteWriters, for the next writers to start from. Allocating a buffer per
 * encoding and doubling it as it grew (a 256-byte value took four arrays, three of them outside
 * the heap) was a fifth of the CPU time of applying puts; a writer now takes a buffer from here
 * and gives it back in finish(), so an encoding allocates only its result. A writer that never
 * finishes (its encoder threw) just keeps its buffer, and the garbage collector takes it.
 */
const scratchPool: Scratch[] = [];
const SCRATCH_BYTES = 1024;
const SCRATCH_POOL_SIZE = 16;
/** A buffer that grew beyond this goes to the garbage collector rather than back to the pool. */
const SCRATCH_KEPT_BYTES = 64 * 1024;

function scratch(bytes: number): Scratch {
  const buffer = new Uint8Array(bytes);
  return { buffer, view: new DataView(buffer.buffer) };
}

/** An append-only buffer for building encodings; grows by doubling. Unusable after finish(). */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;
  private finished = false;

  constructor(initialCapacity = 64) {
    const { buffer, view } =
      initialCapacity <= SCRATCH_BYTES
        ? (scratchPool.pop() ?? scratch(SCRATCH_BYTES))
        : scratch(initialCapacity);
    this.buffer = buffer;
    this.view = view;
  }

  get size(): number {
    return this.length;
  }

  u8(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new Error(`u8 out of range: ${value}`);
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > U32_MAX)
      throw new Error(`u32 out of range: ${value}`);
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
    return this;
  }

  u64(value: bigint): this {
    if (value < 0n || value > U64_MAX) throw new Error(`u64 out of range: ${value}`);
    this.reserve(8);
    this.view.setBigUint64(this.length, value);
    this.length += 8;
    return this;
  }

  i64(value: bigint): this {
    if (value < I64_MIN || value > I64_MAX) throw new Error(`i64 out of range: ${value}`);
    this.reserve(8);
    this.view.setBigInt64(this.length, value);
    this.length += 8;
    return this;
  }

  /** A non-negative safe integer, as a u64. */
  count(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`count out of range: ${value}`);
    return this.u64(BigInt(value));
  }

  /** Raw bytes, no length prefix. */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** Length-prefixed (u32) bytes. */
  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }

  string(text: string): this {
    return this.bytes(utf8(text));
  }

  /** A copy of what was written; the writer's buffer goes back to the pool. */
  finish(): Uint8Array {
    this.reserve(0);
    const out = this.buffer.slice(0, this.length);
    this.finished = true;
    if (this.buffer.length <= SCRATCH_KEPT_BYTES && scratchPool.length < SCRATCH_POOL_SIZE) {
      scratchPool.push({ buffer: this.buffer, view: this.view });
    }
    return out;
  }

  private reserve(extra: number): void {
    // The buffer may be another writer's by now.
    if (this.finished) throw new Error("ByteWriter used after finish()");
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }
}

/** Reads an encoding front to back, throwing DecodeError on anything malformed. */
export class ByteReader {
  private offset = 0;

  constructor(
    private readonly input: Uint8Array,
    readonly what: string,
  ) {}

  get remaining(): number {
    return this.input.length - this.offset;
  }

  fail(failure: DecodeFailure, detail: string): never {
    throw new DecodeError(this.what, failure, `${detail} (at byte ${this.offset})`);
  }

  u8(): number {
    this.need(1, "u8");
    return this.input[this.offset++]!;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) this.fail("invalid-field", `boolean byte ${b}`);
    return b === 1;
  }

  u32(): number {
    this.need(4, "u32");
    const v = readU32(this.input, this.offset);
    this.offset += 4;
    return v;
  }

  u64(): bigint {
    this.need(8, "u64");
    const v = readU64(this.input, this.offset);
    this.offset += 8;
    return v;
  }

  i64(): bigint {
    this.need(8, "i64");
    const v = BigInt.asIntN(64, readU64(this.input, this.offset));
    this.offset += 8;
    return v;
  }

  count(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail("invalid-field", `count ${v} is not a safe integer`);
    return Number(v);
  }

  /** `length` raw bytes (copied). */
  raw(length: number): Uint8Array {
    this.need(length, "bytes");
    const out = this.input.slice(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /**
   * `length` raw bytes as a view of the input (subrange: a copy if the input is small): for
   * decoders whose input is an array of its own that nobody changes (a log entry's data),
   * where a copy of a large value would cost more than the rest of the decoding (a view keeps
   * the whole input alive).
   */
  rawView(length: number): Uint8Array {
    this.need(length, "bytes");
    const out = subrange(this.input, this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  bytes(): Uint8Array {
    return this.raw(this.u32());
  }

  /** Length-prefixed (u32) bytes as a view of the input (see rawView). */
  bytesView(): Uint8Array {
    return this.rawView(this.u32());
  }

  string(): string {
    return fromUtf8(this.bytes(), this.what);
  }

  /** Everything not read yet (copied). */
  rest(): Uint8Array {
    return this.raw(this.remaining);
  }

  /** Everything not read yet, as a view of the input (see rawView). */
  restView(): Uint8Array {
    return this.rawView(this.remaining);
  }

  /** Asserts the input was consumed exactly. */
  end(): void {
    if (this.remaining !== 0) this.fail("trailing-bytes", `${this.remaining} unread bytes`);
  }

  private need(n: number, field: string): void {
    if (this.remaining < n) this.fail("truncated", `${field} needs ${n} bytes, ${this.remaining} left`);
  }
}
