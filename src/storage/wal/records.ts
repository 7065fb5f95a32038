/**
 * The write-ahead log's bytes: segment headers, frames, and the journal records inside them.
 *
 *   segment   header (20 bytes: "concord-wal\n" | version u32 | flags u32) | frame | ... | zeros
 *   frame     length u32 | crc32(length ++ payload) u32 | payload
 *   payload   record | record | ...          (every record of one sync, in write order)
 *   record    kind u8 | groupId u64 | body
 *
 * One frame per sync, so a sync's records reach the disk together or not at all. A frame of
 * length 0 (the zeros after the last frame) ends a segment. The checksum covers the length, so
 * a torn length is caught like a torn payload. Bodies by kind:
 *   append      count u32 | first index u64 | count x (term u64 | type u8 | length u32 | data)
 *   compact     index u64
 *   hardState   term u64 | vote u64 | commit u64
 *   confState   membership
 *   applied     index u64 | has membership u8 | membership?
 *   snapshot    index u64 | term u64 | membership | length u32 | data
 *   drop        (nothing: every record of the group goes)
 *   image       offset u64 | offset term u64 | hard state | membership | applied u64 |
 *               snapshot (as above) | count u32 | count x entry (as in append)
 * A membership is autoLeave u8 and four id lists (count u32 | ids u64), as codec.ts writes it.
 * An image holds a group's whole state; checkpoints are made of them.
 */
import { crc32 } from "node:zlib";
import type { Entry, Snapshot } from "../../raft/types.js";
import {
  ByteReader,
  ByteWriter,
  ENTRY_HEADER_BYTES,
  HARD_STATE_BYTES,
  MalformedRecordError,
  confStateSize,
  readConfState,
  readEntryType,
  readHardState,
  readSnapshotMetadata,
  snapshotMetadataSize,
  writeConfState,
  writeHardState,
  writeSnapshotMetadata,
} from "../codec.js";
import { freezeConfState, type JournalRecord, type ReplicaImage } from "../journal.js";

/** Bumped whenever the bytes change meaning; an engine opens only its own version. */
export const WAL_FORMAT_VERSION = 1;

const MAGIC = new TextEncoder().encode("concord-wal\n");
export const SEGMENT_HEADER_BYTES = MAGIC.byteLength + 8;

/**
 * Header flag of a segment where replay may start: the first segment of a log, or one whose
 * first frame is a checkpoint (an image of every group), so nothing before it is needed.
 */
const REPLAY_START_FLAG = 1;
export const FRAME_HEADER_BYTES = 8;

const RecordKind = {
  append: 1,
  compact: 2,
  hardState: 3,
  confState: 4,
  applied: 5,
  snapshot: 6,
  drop: 7,
  image: 8,
} as const;

/** What a frame holds once decoded: journal records, and images of whole groups. */
export type WalRecord =
  JournalRecord | { readonly kind: "image"; readonly groupId: number; readonly image: ReplicaImage };

/** Kind and group id before every body. */
const RECORD_HEADER_BYTES = 9;
/** An entry's length prefix, after its term and type. */
const ENTRY_LENGTH_BYTES = 4;

export function segmentHeader(replayStart: boolean): Uint8Array {
  const writer = new ByteWriter(SEGMENT_HEADER_BYTES);
  writer.raw(MAGIC);
  writer.u32(WAL_FORMAT_VERSION);
  writer.u32(replayStart ? REPLAY_START_FLAG : 0);
  return writer.done();
}

/** A segment's header: whether replay may start there, or why it is not this engine's. */
export function readSegmentHeader(
  bytes: Uint8Array,
): { readonly replayStart: boolean } | { readonly problem: string } {
  if (bytes.byteLength < SEGMENT_HEADER_BYTES) return { problem: `it is ${bytes.byteLength} bytes long` };
  if (!MAGIC.every((byte, i) => bytes[i] === byte)) {
    return { problem: "it is not a Concord write-ahead log segment" };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + MAGIC.byteLength, 8);
  const version = view.getUint32(0);
  if (version !== WAL_FORMAT_VERSION) {
    return { problem: `its format version is ${version}, this build reads ${WAL_FORMAT_VERSION}` };
  }
  const flags = view.getUint32(4);
  if ((flags & ~REPLAY_START_FLAG) !== 0) return { problem: `unknown header flags ${flags}` };
  return { replayStart: flags === REPLAY_START_FLAG };
}

function entriesBytes(entries: readonly Entry[]): number {
  let size = 0;
  for (const entry of entries) size += ENTRY_HEADER_BYTES + ENTRY_LENGTH_BYTES + entry.data.byteLength;
  return size;
}

function snapshotBytes(snapshot: Snapshot): number {
  return snapshotMetadataSize(snapshot.metadata) + 4 + snapshot.data.byteLength;
}

function bodyBytes(record: WalRecord): number {
  switch (record.kind) {
    case "append":
      return 4 + 8 + entriesBytes(record.entries);
    case "compact":
      return 8;
    case "hardState":
      return HARD_STATE_BYTES;
    case "confState":
      return confStateSize(record.confState);
    case "applied":
      return 8 + 1 + (record.confState === null ? 0 : confStateSize(record.confState));
    case "snapshot":
      return snapshotBytes(record.snapshot);
    case "drop":
      return 0;
    case "image": {
      const { image } = record;
      return (
        16 +
        HARD_STATE_BYTES +
        confStateSize(image.confState) +
        8 +
        snapshotBytes(image.snapshot) +
        4 +
        entriesBytes(image.entries)
      );
    }
  }
}

function writeEntries(writer: ByteWriter, entries: readonly Entry[]): void {
  for (const entry of entries) {
    writer.u64(entry.term);
    writer.u8(entry.type);
    writer.u32(entry.data.byteLength);
    writer.raw(entry.data);
  }
}

function readEntries(reader: ByteReader, count: number, firstIndex: number): Entry[] {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const term = reader.u64();
    const type = readEntryType(reader);
    const data = reader.copy(reader.u32());
    entries.push(Object.freeze({ index: firstIndex + i, term, type, data }));
  }
  return entries;
}

function writeSnapshot(writer: ByteWriter, snapshot: Snapshot): void {
  writeSnapshotMetadata(writer, snapshot.metadata);
  writer.u32(snapshot.data.byteLength);
  writer.raw(snapshot.data);
}

function readSnapshot(reader: ByteReader): Snapshot {
  const { index, term, confState } = readSnapshotMetadata(reader);
  const metadata = Object.freeze({ index, term, confState: freezeConfState(confState) });
  return Object.freeze({ metadata, data: reader.copy(reader.u32()) });
}

function writeBody(writer: ByteWriter, record: WalRecord): void {
  switch (record.kind) {
    case "append": {
      const first = record.entries[0];
      if (first === undefined) throw new Error("write-ahead log: an empty append was journaled");
      writer.u32(record.entries.length);
      writer.u64(first.index);
      writeEntries(writer, record.entries);
      return;
    }
    case "compact":
      writer.u64(record.index);
      return;
    case "hardState":
      writeHardState(writer, record.hardState);
      return;
    case "confState":
      writeConfState(writer, record.confState);
      return;
    case "applied":
      writer.u64(record.index);
      writer.u8(record.confState === null ? 0 : 1);
      if (record.confState !== null) writeConfState(writer, record.confState);
      return;
    case "snapshot":
      writeSnapshot(writer, record.snapshot);
      return;
    case "drop":
      return;
    case "image": {
      const { image } = record;
      writer.u64(image.offset);
      writer.u64(image.offsetTerm);
      writeHardState(writer, image.hardState);
      writeConfState(writer, image.confState);
      writer.u64(image.appliedIndex);
      writeSnapshot(writer, image.snapshot);
      writer.u32(image.entries.length);
      writeEntries(writer, image.entries);
      return;
    }
  }
}

function readRecord(reader: ByteReader): WalRecord {
  const kind = reader.u8();
  const groupId = reader.u64();
  switch (kind) {
    case RecordKind.append: {
      const count = reader.u32();
      const firstIndex = reader.u64();
      if (count === 0) throw new MalformedRecordError("an append of no entries");
      return { kind: "append", groupId, entries: readEntries(reader, count, firstIndex) };
    }
    case RecordKind.compact:
      return { kind: "compact", groupId, index: reader.u64() };
    case RecordKind.hardState:
      return { kind: "hardState", groupId, hardState: Object.freeze(readHardState(reader)) };
    case RecordKind.confState:
      return { kind: "confState", groupId, confState: freezeConfState(readConfState(reader)) };
    case RecordKind.applied: {
      const index = reader.u64();
      const hasConfState = reader.u8();
      if (hasConfState > 1) throw new MalformedRecordError(`membership flag ${hasConfState}`);
      const confState = hasConfState === 1 ? freezeConfState(readConfState(reader)) : null;
      return { kind: "applied", groupId, index, confState };
    }
    case RecordKind.snapshot:
      return { kind: "snapshot", groupId, snapshot: readSnapshot(reader) };
    case RecordKind.drop:
      return { kind: "drop", groupId };
    case RecordKind.image: {
      const offset = reader.u64();
      const offsetTerm = reader.u64();
      const hardState = Object.freeze(readHardState(reader));
      const confState = freezeConfState(readConfState(reader));
      const appliedIndex = reader.u64();
      const snapshot = readSnapshot(reader);
      const entries = readEntries(reader, reader.u32(), offset + 1);
      const image = { offset, offsetTerm, entries, hardState, confState, appliedIndex, snapshot };
      return { kind: "image", groupId, image };
    }
    default:
      throw new MalformedRecordError(`record kind ${kind}`);
  }
}

function frameChecksum(frame: Uint8Array): number {
  const length = frame.subarray(0, 4);
  return crc32(frame.subarray(FRAME_HEADER_BYTES), crc32(length));
}

/** One frame holding `records` in order: what one sync appends to the log. */
export function encodeFrame(records: readonly WalRecord[]): Uint8Array {
  let size = FRAME_HEADER_BYTES;
  for (const record of records) size += RECORD_HEADER_BYTES + bodyBytes(record);
  const writer = new ByteWriter(size);
  writer.u32(size - FRAME_HEADER_BYTES);
  writer.u32(0);
  for (const record of records) {
    writer.u8(RecordKind[record.kind]);
    writer.u64(record.groupId);
    writeBody(writer, record);
  }
  const frame = writer.done();
  new DataView(frame.buffer).setUint32(4, frameChecksum(frame));
  return frame;
}

/** What lies at some offset of a segment. */
export type FrameRead =
  /** A whole frame whose checksum matches: its records, and where the next frame starts. */
  | { readonly type: "frame"; readonly payload: Uint8Array; readonly next: number }
  /** Zeros, or the end of the file: no frame was ever written here. */
  | { readonly type: "end" }
  /** Bytes that are not a whole, intact frame: a torn write, or corruption. */
  | { readonly type: "damaged"; readonly reason: string };

/** Reads the frame at `offset` of `segment` (a whole segment file's bytes). */
export function readFrame(segment: Uint8Array, offset: number): FrameRead {
  const available = segment.byteLength - offset;
  if (available < FRAME_HEADER_BYTES) {
    return segment.subarray(offset).every((byte) => byte === 0)
      ? { type: "end" }
      : { type: "damaged", reason: `${available} stray bytes at the end of the file` };
  }
  const view = new DataView(segment.buffer, segment.byteOffset + offset, FRAME_HEADER_BYTES);
  const length = view.getUint32(0);
  const checksum = view.getUint32(4);
  if (length === 0 && checksum === 0) return { type: "end" };
  if (length > available - FRAME_HEADER_BYTES) {
    return { type: "damaged", reason: `a frame of ${length} bytes runs past the end of the file` };
  }
  const frame = segment.subarray(offset, offset + FRAME_HEADER_BYTES + length);
  if (frameChecksum(frame) !== checksum) return { type: "damaged", reason: "a frame fails its checksum" };
  return { type: "frame", payload: frame.subarray(FRAME_HEADER_BYTES), next: offset + frame.byteLength };
}

/** The records of a frame's payload; MalformedRecordError when they do not decode. */
export function decodeRecords(payload: Uint8Array): WalRecord[] {
  const reader = new ByteReader(payload);
  const records: WalRecord[] = [];
  while (!reader.atEnd()) records.push(readRecord(reader));
  return records;
}
