/**
 * Hand-written protobuf output for the responses the etcd API sends most (watch-encoding.ts,
 * kv-encoding.ts): a byte writer with the primitives they need, the sizes of what it writes
 * (so that a message's length prefix is known before its body is written), and the two
 * messages both carry: etcdserverpb.ResponseHeader and mvccpb.KeyValue. Every writer here produces what protobuf-es `toBinary`
 * produces: fields in number order, implicit-presence fields left out when zero or empty,
 * negative int64s as ten-byte varints.
 */
import { WireType } from "@bufbuild/protobuf/wire";

export const WIRE_VARINT = WireType.Varint;
export const WIRE_LENGTH_DELIMITED = WireType.LengthDelimited;

const SAFE_INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** VARINT_BYTE_LIMITS[n - 1]: the least value whose varint takes more than n bytes (2^(7n)). */
const VARINT_BYTE_LIMITS: readonly bigint[] = Array.from({ length: 9 }, (_, n) => 1n << BigInt(7 * (n + 1)));

export function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

/**
 * A growable byte buffer with the protobuf primitives. Varints of 64-bit values are written
 * from two 32-bit halves, as protobuf does, to keep bigint arithmetic to one split per value.
 */
export class ProtoWriter {
  // Buffer.allocUnsafe (pooled, not zeroed): several times cheaper than a new Uint8Array for
  // the small buffers written here; every byte handed out is written first.
  private bytes: Uint8Array;
  private length = 0;

  constructor(capacity = 256) {
    this.bytes = Buffer.allocUnsafe(capacity);
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    let size = Math.max(16, this.bytes.length * 2);
    while (size < this.length + extra) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** A varint of a non-negative number below 2^32. */
  uint32(value: number): this {
    this.ensure(5);
    while (value > 0x7f) {
      this.bytes[this.length++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    this.bytes[this.length++] = value;
    return this;
  }

  /** A varint of an int64 or uint64: negative values as their 64-bit two's complement. */
  int64(value: bigint): this {
    let low: number;
    let high: number;
    if (value >= 0n && value <= SAFE_INTEGER_MAX) {
      // Exact as a double: split with number arithmetic, no intermediate bigints.
      const whole = Number(value);
      high = Math.floor(whole / 2 ** 32);
      low = whole >>> 0;
    } else {
      const unsigned = BigInt.asUintN(64, value);
      low = Number(unsigned & 0xffffffffn);
      high = Number(unsigned >> 32n);
    }
    this.ensure(10);
    while (high !== 0 || low > 0x7f) {
      this.bytes[this.length++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.bytes[this.length++] = low;
    return this;
  }

  raw(data: Uint8Array): this {
    this.ensure(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
    return this;
  }

  /** The tag and length of a length-delimited field whose `length` bytes follow. */
  lengthPrefix(field: number, length: number): this {
    return this.uint32(tag(field, WIRE_LENGTH_DELIMITED)).uint32(length);
  }

  /** A length-delimited field: tag, length, bytes. */
  bytesField(field: number, data: Uint8Array): this {
    return this.lengthPrefix(field, data.length).raw(data);
  }

  /** A bytes field, left out when empty (implicit presence). */
  optionalBytesField(field: number, data: Uint8Array): this {
    return data.length === 0 ? this : this.bytesField(field, data);
  }

  /** An int64 / uint64 field, left out when zero (implicit presence). */
  int64Field(field: number, value: bigint): this {
    return value === 0n ? this : this.uint32(tag(field, WIRE_VARINT)).int64(value);
  }

  /** A bool field, left out when false. */
  boolField(field: number, value: boolean): this {
    return value ? this.uint32(tag(field, WIRE_VARINT)).uint32(1) : this;
  }

  /** A copy of what was written in memory of its own (for bytes that are kept: no pooled slab held). */
  finish(): Uint8Array {
    const copy = new Uint8Array(this.length);
    copy.set(this.bytes.subarray(0, this.length));
    return copy;
  }

  /** What was written, without a copy (for bytes that are used once). */
  view(): Uint8Array {
    return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.length);
  }
}

/** Bytes of a varint of a non-negative number below 2^32. */
export function uint32Size(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value >>>= 7;
    size++;
  }
  return size;
}

/** Bytes of an int64 / uint64 varint (ProtoWriter.int64): seven bits a byte, negatives take ten. */
export function int64Size(value: bigint): number {
  if (value < 0n) return 10;
  let size = 1;
  while (size < 10 && value >= VARINT_BYTE_LIMITS[size - 1]!) size++;
  return size;
}

/** Fields numbered below 16 have one-byte tags: the only ones written here. */
const TAG_BYTES = 1;

/** Bytes of a length-delimited field (tag, length, body) with a body of `length` bytes. */
export function lengthDelimitedSize(length: number): number {
  return TAG_BYTES + uint32Size(length) + length;
}

/** Bytes of ProtoWriter.int64Field. */
export function int64FieldSize(value: bigint): number {
  return value === 0n ? 0 : TAG_BYTES + int64Size(value);
}

/** Bytes of ProtoWriter.optionalBytesField. */
export function optionalBytesFieldSize(data: Uint8Array): number {
  return data.length === 0 ? 0 : lengthDelimitedSize(data.length);
}

/** Bytes of ProtoWriter.boolField. */
export function boolFieldSize(value: boolean): number {
  return value ? TAG_BYTES + 1 : 0;
}

/** mvccpb.KeyValue's fields, as Concord's results and protobuf-es messages both name them. */
export interface KeyValueFields {
  readonly key: Uint8Array;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  readonly value: Uint8Array;
  readonly lease: bigint;
}

/** mvccpb.KeyValue: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6. */
export function writeKeyValue(writer: ProtoWriter, kv: KeyValueFields): ProtoWriter {
  return writer
    .optionalBytesField(1, kv.key)
    .int64Field(2, kv.createRevision)
    .int64Field(3, kv.modRevision)
    .int64Field(4, kv.version)
    .optionalBytesField(5, kv.value)
    .int64Field(6, kv.lease);
}

/** Bytes of writeKeyValue's output. */
export function keyValueSize(kv: KeyValueFields): number {
  return (
    optionalBytesFieldSize(kv.key) +
    int64FieldSize(kv.createRevision) +
    int64FieldSize(kv.modRevision) +
    int64FieldSize(kv.version) +
    optionalBytesFieldSize(kv.value) +
    int64FieldSize(kv.lease)
  );
}

/** etcdserverpb.ResponseHeader's fields. */
export interface HeaderFields {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly revision: bigint;
  readonly raftTerm: bigint;
}

/** Every etcd response starts with its header, field 1. */
const HEADER_FIELD = 1;

/** ResponseHeader: cluster_id 1, member_id 2, revision 3, raft_term 4. */
function headerSize(header: HeaderFields): number {
  return (
    int64FieldSize(header.clusterId) +
    int64FieldSize(header.memberId) +
    int64FieldSize(header.revision) +
    int64FieldSize(header.raftTerm)
  );
}

/** Bytes of writeHeaderField's output (nothing for an absent header). */
export function headerFieldSize(header: HeaderFields | undefined): number {
  return header === undefined ? 0 : lengthDelimitedSize(headerSize(header));
}

/** A response's header field: tag, length, ResponseHeader (nothing for an absent header). */
export function writeHeaderField(writer: ProtoWriter, header: HeaderFields | undefined): ProtoWriter {
  if (header === undefined) return writer;
  return writer
    .lengthPrefix(HEADER_FIELD, headerSize(header))
    .int64Field(1, header.clusterId)
    .int64Field(2, header.memberId)
    .int64Field(3, header.revision)
    .int64Field(4, header.raftTerm);
}
