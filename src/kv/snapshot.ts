/**
 * The snapshot format of an MVCC store: every key-value of its namespace (data, meta, dedup
 * table), read from one consistent view, as a stream of chunks. Keys are stored relative to
 * the namespace, so a snapshot can be restored under another one (a replica of the same
 * range on another node).
 *
 *   header   "CONCORD-KV" (10 bytes) | format u8
 *   pair     0x01 | u32 key length | key | u32 value length | value      (keys ascending)
 *   trailer  0x00 | u64 pair count | u32 CRC-32 of every byte before the CRC
 *
 * Chunk boundaries carry no meaning. The decoder is incremental (records may span chunks)
 * and rejects a bad header, out-of-order keys, a wrong count or checksum, a missing trailer
 * and bytes after it.
 */
import { crc32 } from "node:zlib";
import { DecodeError, compareBytes, concatBytes, type DecodeFailure } from "./bytes.js";
import type { RangeBounds } from "./bounds.js";
import type { KvPair, KvReader } from "./engine.js";
import type { KeyLayout } from "./keys.js";

const MAGIC = new TextEncoder().encode("CONCORD-KV");
const FORMAT = 1;
const TAG_PAIR = 0x01;
const TAG_END = 0x00;
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/**
 * Every pair of `layout`'s namespace in `reader`, in key order, with keys relative to it, but
 * the versions of keys outside `bounds` (a split moved them out; they wait for removal).
 */
export function* namespacePairs(reader: KvReader, layout: KeyLayout, bounds: RangeBounds): Generator<KvPair> {
  const strip = layout.namespace.length;
  const inside = layout.dataSpan(bounds.start, bounds.end);
  const parts: [Uint8Array, Uint8Array | null][] = [
    [layout.start, layout.dataStart],
    [inside.start, inside.end],
    [layout.dataEnd, layout.end],
  ];
  for (const [start, end] of parts) {
    for (const { key, value } of reader.scan(start, end)) yield { key: key.subarray(strip), value };
  }
}

/**
 * Encodes `pairs` (relative keys, ascending) as chunks of about `chunkBytes` (a pair larger
 * than that makes a larger chunk).
 */
export function* encodeSnapshot(
  pairs: Iterable<KvPair>,
  chunkBytes = DEFAULT_SNAPSHOT_CHUNK_BYTES,
): Generator<Uint8Array> {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1)
    throw new RangeError(`bad chunk size ${chunkBytes}`);
  let crc = 0;
  let parts: Uint8Array[] = [];
  let buffered = 0;
  const add = (bytes: Uint8Array) => {
    crc = crc32(bytes, crc);
    parts.push(bytes);
    buffered += bytes.length;
  };
  const flush = () => {
    const chunk = concatBytes(...parts);
    parts = [];
    buffered = 0;
    return chunk;
  };
  add(concatBytes(MAGIC, Uint8Array.of(FORMAT)));
  let count = 0n;
  for (const { key, value } of pairs) {
    add(concatBytes(Uint8Array.of(TAG_PAIR), u32(key.length), key, u32(value.length), value));
    count += 1n;
    if (buffered >= chunkBytes) yield flush();
  }
  const end = new Uint8Array(9);
  end[0] = TAG_END;
  new DataView(end.buffer).setBigUint64(1, count);
  add(end);
  parts.push(u32(crc));
  yield flush();
}

/** How many bytes encodeSnapshot produces for `pairs` (nothing copied). */
export function encodedSnapshotBytes(pairs: Iterable<KvPair>): number {
  // Header, then per pair: tag, two lengths, key, value; then the trailer: tag, count, CRC.
  let total = MAGIC.length + 1;
  for (const { key, value } of pairs) total += 9 + key.length + value.length;
  return total + 1 + 8 + 4;
}

/**
 * A consistent image read out as chunks. Iterate it once; iterating to the end (or stopping
 * early) releases its read view(s), and release() does so without iterating.
 */
export interface MvccSnapshot extends AsyncIterable<Uint8Array> {
  readonly appliedIndex: number;
  readonly revision: bigint;
  /** The image's encoded size in bytes (one more scan of the same views; call before they are released). */
  byteLength(): number;
  release(): void;
}

/**
 * An MvccSnapshot of the pairs `pairs()` lists (relative keys, ascending; read anew on each
 * call, from read views that `release` ends, once).
 */
export function snapshotOfPairs(image: {
  readonly appliedIndex: number;
  readonly revision: bigint;
  readonly pairs: () => Iterable<KvPair>;
  readonly release: () => void;
  readonly chunkBytes?: number;
}): MvccSnapshot {
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      image.release();
    }
  };
  return {
    appliedIndex: image.appliedIndex,
    revision: image.revision,
    release,
    byteLength: () => {
      if (released) throw new Error("the snapshot's read view was released");
      return encodedSnapshotBytes(image.pairs());
    },
    [Symbol.asyncIterator]: () => {
      const chunks = encodeSnapshot(image.pairs(), image.chunkBytes);
      const finish = (): Promise<IteratorResult<Uint8Array>> => {
        release();
        return Promise.resolve({ done: true, value: undefined });
      };
      return {
        next: () =>
          new Promise<IteratorResult<Uint8Array>>((resolve) => {
            const step = chunks.next();
            if (step.done === true) release();
            resolve(step.done === true ? { done: true, value: undefined } : step);
          }).catch((error: unknown) => {
            release();
            throw error;
          }),
        return: finish,
      };
    },
  };
}

function fail(failure: DecodeFailure, detail: string): never {
  throw new DecodeError("snapshot", failure, detail);
}

/** Decodes a snapshot chunk by chunk; pairs come back with namespace-relative keys. */
export class SnapshotDecoder {
  private pending: Uint8Array = new Uint8Array(0);
  private crc = 0;
  private headerRead = false;
  private finished = false;
  private count = 0n;
  private lastKey: Uint8Array | null = null;

  /** Feeds the next chunk; returns the pairs completed by it. */
  push(chunk: Uint8Array): KvPair[] {
    if (this.finished) {
      if (chunk.length > 0) fail("trailing-bytes", "data after the trailer");
      return [];
    }
    this.pending = this.pending.length === 0 ? chunk : concatBytes(this.pending, chunk);
    const pairs: KvPair[] = [];
    let at = 0;
    const view = new DataView(this.pending.buffer, this.pending.byteOffset, this.pending.byteLength);
    const available = (n: number) => this.pending.length - at >= n;
    const consume = (n: number) => {
      this.crc = crc32(this.pending.subarray(at, at + n), this.crc);
      at += n;
    };
    if (!this.headerRead) {
      if (!available(MAGIC.length + 1)) return pairs;
      if (compareBytes(this.pending.subarray(0, MAGIC.length), MAGIC) !== 0)
        fail("invalid-field", "bad magic");
      const format = this.pending[MAGIC.length]!;
      if (format !== FORMAT) fail("unknown-version", `snapshot format ${format}`);
      consume(MAGIC.length + 1);
      this.headerRead = true;
    }
    while (available(1)) {
      const tag = this.pending[at]!;
      if (tag === TAG_END) {
        if (!available(1 + 8 + 4)) break;
        const count = view.getBigUint64(at + 1);
        consume(9);
        const expected = view.getUint32(at);
        at += 4;
        if (count !== this.count) fail("invalid-field", `trailer counts ${count} pairs, found ${this.count}`);
        if (expected !== this.crc) fail("checksum-mismatch", "CRC-32 does not match");
        if (at !== this.pending.length) fail("trailing-bytes", "data after the trailer");
        this.finished = true;
        break;
      }
      if (tag !== TAG_PAIR) fail("invalid-field", `record tag ${tag}`);
      if (!available(5)) break;
      const keyLength = view.getUint32(at + 1);
      if (!available(5 + keyLength + 4)) break;
      const valueLength = view.getUint32(at + 5 + keyLength);
      if (!available(9 + keyLength + valueLength)) break;
      const key = this.pending.slice(at + 5, at + 5 + keyLength);
      const value = this.pending.slice(at + 9 + keyLength, at + 9 + keyLength + valueLength);
      consume(9 + keyLength + valueLength);
      if (this.lastKey !== null && compareBytes(this.lastKey, key) >= 0)
        fail("invalid-field", "keys out of order");
      this.lastKey = key;
      this.count += 1n;
      pairs.push({ key, value });
    }
    this.pending = this.pending.slice(at);
    return pairs;
  }

  /** Asserts the whole snapshot, trailer included, has been pushed. */
  finish(): void {
    if (!this.finished) fail("truncated", "the snapshot ended before its trailer");
  }
}
