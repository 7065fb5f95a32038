/**
 * Binary encoding of Raft state shared by the durable engines (the lmdb layout and the
 * write-ahead log): a sized writer, a bounds-checked reader, and the encodings of hard
 * states, memberships, snapshots and log entries. Integers are big-endian: u64 holds safe
 * integers only, counts are u32.
 */
import {
  EntryType,
  type ConfState,
  type Entry,
  type HardState,
  type SnapshotMetadata,
} from "../raft/types.js";

const TWO_TO_THE_32 = 0x1_0000_0000;

/** Stored bytes that passed their checksum but do not decode: a format bug or a foreign file. */
export class MalformedRecordError extends Error {
  constructor(message: string) {
    super(`malformed record: ${message}`);
    this.name = "MalformedRecordError";
  }
}

/** Writes a payload of a size known up front; `done()` checks that every byte was written. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private position = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(value: number): void {
    this.view.setUint8(this.position, value);
    this.position += 1;
  }

  u32(value: number): void {
    this.view.setUint32(this.position, value);
    this.position += 4;
  }

  u64(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new Error(`storage codec: ${value} is not a non-negative safe integer`);
    }
    this.view.setUint32(this.position, Math.floor(value / TWO_TO_THE_32));
    this.view.setUint32(this.position + 4, value % TWO_TO_THE_32);
    this.position += 8;
  }

  raw(bytes: Uint8Array): void {
    this.bytes.set(bytes, this.position);
    this.position += bytes.byteLength;
  }

  done(): Uint8Array {
    if (this.position !== this.bytes.byteLength) {
      throw new Error(`storage codec: wrote ${this.position} of ${this.bytes.byteLength} bytes`);
    }
    return this.bytes;
  }
}

/** Reads a payload, throwing MalformedRecordError on any overrun or out-of-range value. */
export class ByteReader {
  private readonly view: DataView;
  private position = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(count: number): void {
    if (this.position + count > this.bytes.byteLength) {
      throw new MalformedRecordError(
        `needs ${count} more bytes at ${this.position} of ${this.bytes.byteLength}`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.position++);
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.position);
    this.position += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const value = this.view.getUint32(this.position) * TWO_TO_THE_32 + this.view.getUint32(this.position + 4);
    if (!Number.isSafeInteger(value)) throw new MalformedRecordError(`u64 at ${this.position} is not safe`);
    this.position += 8;
    return value;
  }

  /** A copy of the next `count` bytes (`new Uint8Array`, as a Buffer's slice() would not copy). */
  copy(count: number): Uint8Array {
    this.need(count);
    const bytes = new Uint8Array(this.bytes.subarray(this.position, this.position + count));
    this.position += count;
    return bytes;
  }

  /** A copy of everything not read yet. */
  rest(): Uint8Array {
    return this.copy(this.bytes.byteLength - this.position);
  }

  /** Whether every byte has been read. */
  atEnd(): boolean {
    return this.position === this.bytes.byteLength;
  }

  end(): void {
    if (!this.atEnd()) {
      throw new MalformedRecordError(`${this.bytes.byteLength - this.position} trailing bytes`);
    }
  }
}

export const HARD_STATE_BYTES = 24;

export function writeHardState(writer: ByteWriter, hardState: HardState): void {
  writer.u64(hardState.term);
  writer.u64(hardState.vote);
  writer.u64(hardState.commit);
}

export function readHardState(reader: ByteReader): HardState {
  return { term: reader.u64(), vote: reader.u64(), commit: reader.u64() };
}

const CONF_LISTS = ["voters", "learners", "votersOutgoing", "learnersNext"] as const;

export function confStateSize(confState: ConfState): number {
  return 1 + CONF_LISTS.reduce((size, list) => size + 4 + 8 * confState[list].length, 0);
}

export function writeConfState(writer: ByteWriter, confState: ConfState): void {
  writer.u8(confState.autoLeave ? 1 : 0);
  for (const list of CONF_LISTS) {
    writer.u32(confState[list].length);
    for (const id of confState[list]) writer.u64(id);
  }
}

export function readConfState(reader: ByteReader): ConfState {
  const autoLeave = reader.u8();
  if (autoLeave > 1) throw new MalformedRecordError(`autoLeave flag ${autoLeave}`);
  const lists = CONF_LISTS.map(() => Array.from({ length: reader.u32() }, () => reader.u64()));
  const [voters = [], learners = [], votersOutgoing = [], learnersNext = []] = lists;
  return { voters, learners, votersOutgoing, learnersNext, autoLeave: autoLeave === 1 };
}

export function snapshotMetadataSize(metadata: SnapshotMetadata): number {
  return 16 + confStateSize(metadata.confState);
}

export function writeSnapshotMetadata(writer: ByteWriter, metadata: SnapshotMetadata): void {
  writer.u64(metadata.index);
  writer.u64(metadata.term);
  writeConfState(writer, metadata.confState);
}

export function readSnapshotMetadata(reader: ByteReader): SnapshotMetadata {
  return { index: reader.u64(), term: reader.u64(), confState: readConfState(reader) };
}

/** Term (u64) and type (u8) before an entry's data. */
export const ENTRY_HEADER_BYTES = 9;

/** An entry without its index: term, type, then its data to the end of what holds it. */
export function writeEntryBody(writer: ByteWriter, entry: Entry): void {
  writer.u64(entry.term);
  writer.u8(entry.type);
  writer.raw(entry.data);
}

const ENTRY_TYPES: ReadonlySet<number> = new Set<number>([EntryType.Normal, EntryType.ConfChange]);

export function readEntryType(reader: ByteReader): EntryType {
  const type = reader.u8();
  if (!ENTRY_TYPES.has(type)) throw new MalformedRecordError(`entry type ${type}`);
  return type;
}
