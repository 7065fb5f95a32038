/**
 * How the lmdb engine lays Raft state out as binary keys and values.
 *
 * Keys are fixed-width big-endian, so lmdb's byte order (memcmp) is the order of
 * (group id, record kind, entry index): each group's records are contiguous, its log entries
 * follow its metadata, and the entries sort by index.
 *   group record  groupId:u64 | kind:u8                    (hard state, log start, applied, snapshot)
 *   log entry     groupId:u64 | 0x10 | index:u64
 *   format        0xff | "concord/raft-log"                (first byte above any group id's)
 * Group ids and indexes are safe integers (< 2^53), so a group key's first byte is at most 0x1f.
 *
 * Every value is framed as crc32(key ++ payload):u32 | payload. Covering the key means a value
 * that lands under the wrong key fails its check too. Payload integers are u64 big-endian
 * (safe integers only), counts u32.
 */
import { crc32 } from "node:zlib";
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata } from "../../raft/types.js";
import {
  ByteReader,
  ByteWriter,
  ENTRY_HEADER_BYTES,
  HARD_STATE_BYTES,
  MalformedRecordError,
  readEntryType,
  readHardState,
  readSnapshotMetadata,
  snapshotMetadataSize,
  readConfState,
  confStateSize,
  writeConfState,
  writeEntryBody,
  writeHardState,
  writeSnapshotMetadata,
} from "../codec.js";

export { MalformedRecordError } from "../codec.js";

/** Bumped whenever keys or payloads change meaning; an engine opens only its own version. */
export const LAYOUT_VERSION = 1;

export const RecordKind = {
  HardState: 0x01,
  /** The index and term of the entry just before the first stored one (offset, offsetTerm). */
  LogStart: 0x02,
  /** The applied index and the membership as of it. */
  Applied: 0x03,
  Snapshot: 0x04,
  Entry: 0x10,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const GROUP_RECORD_KEY_BYTES = 9;
const ENTRY_KEY_BYTES = 17;
const CHECKSUM_BYTES = 4;

export const FORMAT_KEY: Uint8Array = Uint8Array.from([
  0xff,
  ...new TextEncoder().encode("concord/raft-log"),
]);

function writeGroupPrefix(writer: ByteWriter, groupId: number, kind: RecordKind): void {
  writer.u64(groupId);
  writer.u8(kind);
}

export function groupRecordKey(groupId: number, kind: RecordKind): Uint8Array {
  const writer = new ByteWriter(GROUP_RECORD_KEY_BYTES);
  writeGroupPrefix(writer, groupId, kind);
  return writer.done();
}

export function entryKey(groupId: number, index: number): Uint8Array {
  const writer = new ByteWriter(ENTRY_KEY_BYTES);
  writeGroupPrefix(writer, groupId, RecordKind.Entry);
  writer.u64(index);
  return writer.done();
}

/** The first key after every entry of `groupId`: the exclusive end of its log's key range. */
export function entriesEnd(groupId: number): Uint8Array {
  const writer = new ByteWriter(GROUP_RECORD_KEY_BYTES);
  writer.u64(groupId);
  writer.u8(RecordKind.Entry + 1);
  return writer.done();
}

/**
 * The key range `[start, end)` of every record of `groupId`: its group records and its log
 * entries (every kind lies between 0x00 and 0xff).
 */
export function groupKeyRange(groupId: number): { readonly start: Uint8Array; readonly end: Uint8Array } {
  const start = new ByteWriter(GROUP_RECORD_KEY_BYTES);
  start.u64(groupId);
  start.u8(0x00);
  const end = new ByteWriter(GROUP_RECORD_KEY_BYTES);
  end.u64(groupId);
  end.u8(0xff);
  return { start: start.done(), end: end.done() };
}

export type ParsedKey =
  | { readonly type: "format" }
  | { readonly type: "record"; readonly groupId: number; readonly kind: RecordKind }
  | { readonly type: "entry"; readonly groupId: number; readonly index: number };

const RECORD_KINDS: ReadonlySet<number> = new Set<number>(Object.values(RecordKind));

/** What a stored key addresses, or null for a key this layout never writes. */
export function parseKey(key: Uint8Array): ParsedKey | null {
  if (key.byteLength === FORMAT_KEY.byteLength && key.every((byte, i) => byte === FORMAT_KEY[i])) {
    return { type: "format" };
  }
  if (key.byteLength !== GROUP_RECORD_KEY_BYTES && key.byteLength !== ENTRY_KEY_BYTES) return null;
  try {
    const reader = new ByteReader(key);
    const groupId = reader.u64();
    const kind = reader.u8();
    if (kind === RecordKind.Entry && key.byteLength === ENTRY_KEY_BYTES) {
      return { type: "entry", groupId, index: reader.u64() };
    }
    if (kind !== RecordKind.Entry && RECORD_KINDS.has(kind) && key.byteLength === GROUP_RECORD_KEY_BYTES) {
      return { type: "record", groupId, kind: kind as RecordKind };
    }
    return null;
  } catch (error) {
    if (error instanceof MalformedRecordError) return null;
    throw error;
  }
}

/** The stored value for `payload` under `key`: its checksum, then the payload. */
export function frame(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const value = new Uint8Array(CHECKSUM_BYTES + payload.byteLength);
  new DataView(value.buffer).setUint32(0, recordChecksum(key, payload));
  value.set(payload, CHECKSUM_BYTES);
  return value;
}

/** The payload of a stored value (a view into it), or null when the checksum does not match. */
export function unframe(key: Uint8Array, value: Uint8Array): Uint8Array | null {
  if (value.byteLength < CHECKSUM_BYTES) return null;
  const payload = value.subarray(CHECKSUM_BYTES);
  const stored = new DataView(value.buffer, value.byteOffset, CHECKSUM_BYTES).getUint32(0);
  return stored === recordChecksum(key, payload) ? payload : null;
}

/** The checksum of a stored record: CRC-32 over its key, then its payload. */
function recordChecksum(key: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(key));
}

/** The payload of a stored value without checking it (reads after open; open checked it). */
export function payloadOf(value: Uint8Array): Uint8Array {
  if (value.byteLength < CHECKSUM_BYTES) throw new MalformedRecordError(`value of ${value.byteLength} bytes`);
  return value.subarray(CHECKSUM_BYTES);
}

export function encodeFormat(): Uint8Array {
  const writer = new ByteWriter(4);
  writer.u32(LAYOUT_VERSION);
  return writer.done();
}

export function decodeFormat(payload: Uint8Array): number {
  const reader = new ByteReader(payload);
  const version = reader.u32();
  reader.end();
  return version;
}

export function encodeHardState(hardState: HardState): Uint8Array {
  const writer = new ByteWriter(HARD_STATE_BYTES);
  writeHardState(writer, hardState);
  return writer.done();
}

export function decodeHardState(payload: Uint8Array): HardState {
  const reader = new ByteReader(payload);
  const hardState = readHardState(reader);
  reader.end();
  return hardState;
}

export interface LogStart {
  /** Index of the entry just before the first stored one. */
  readonly index: number;
  readonly term: number;
}

export function encodeLogStart(start: LogStart): Uint8Array {
  const writer = new ByteWriter(16);
  writer.u64(start.index);
  writer.u64(start.term);
  return writer.done();
}

export function decodeLogStart(payload: Uint8Array): LogStart {
  const reader = new ByteReader(payload);
  const start = { index: reader.u64(), term: reader.u64() };
  reader.end();
  return start;
}

export interface Applied {
  readonly index: number;
  readonly confState: ConfState;
}

export function encodeApplied(applied: Applied): Uint8Array {
  const writer = new ByteWriter(8 + confStateSize(applied.confState));
  writer.u64(applied.index);
  writeConfState(writer, applied.confState);
  return writer.done();
}

export function decodeApplied(payload: Uint8Array): Applied {
  const reader = new ByteReader(payload);
  const applied = { index: reader.u64(), confState: readConfState(reader) };
  reader.end();
  return applied;
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { metadata, data } = snapshot;
  const writer = new ByteWriter(snapshotMetadataSize(metadata) + data.byteLength);
  writeSnapshotMetadata(writer, metadata);
  writer.raw(data);
  return writer.done();
}

/** The snapshot's metadata alone, without copying its data. */
export function decodeSnapshotMetadata(payload: Uint8Array): SnapshotMetadata {
  return readSnapshotMetadata(new ByteReader(payload));
}

export function decodeSnapshot(payload: Uint8Array): Snapshot {
  const reader = new ByteReader(payload);
  const metadata = readSnapshotMetadata(reader);
  return { metadata, data: reader.rest() };
}

/**
 * The stored value of log entry `entry` under `key` (see frame): checksum, term (u64), type
 * (u8), data, built in one buffer.
 */
export function frameEntry(key: Uint8Array, entry: Entry): Uint8Array {
  const writer = new ByteWriter(CHECKSUM_BYTES + ENTRY_HEADER_BYTES + entry.data.byteLength);
  writer.u32(0);
  writeEntryBody(writer, entry);
  const value = writer.done();
  new DataView(value.buffer).setUint32(0, recordChecksum(key, value.subarray(CHECKSUM_BYTES)));
  return value;
}

/** The entry stored at `index`; its data is a copy the caller owns. */
export function decodeEntry(index: number, payload: Uint8Array): Entry {
  const reader = new ByteReader(payload);
  const term = reader.u64();
  const type = readEntryType(reader);
  return { index, term, type, data: reader.rest() };
}

/** Just the term of a stored entry (its type checked too), without copying its data. */
export function decodeEntryTerm(payload: Uint8Array): number {
  const reader = new ByteReader(payload);
  const term = reader.u64();
  readEntryType(reader);
  return term;
}
