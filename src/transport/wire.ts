/**
 * Strict protobuf wire-format reading and writing for the transport's hand-written codecs.
 *
 * Each message is described by a small schema (field number → name and kind). Decoding checks
 * every field against it: unknown field numbers, wrong wire types, repeated singular fields,
 * integers above 2^53 - 1, bools other than 0/1, invalid UTF-8 and truncated values are all
 * rejected with a `TransportDecodeError` that names the offending field path. The protocol
 * version in the frame header (not unknown-field skipping) is how this contract evolves.
 * Encoding follows proto3: zero scalars and empty byte strings are omitted.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** Bytes from a peer that do not form a valid value of the expected type. */
export class TransportDecodeError extends Error {
  constructor(readonly reason: string) {
    super(`invalid peer data: ${reason}`);
    this.name = "TransportDecodeError";
  }
}

export type FieldKind = "uint" | "bool" | "bytes" | "string" | "fixed32" | "message" | "uintList";

export interface FieldSpec {
  readonly name: string;
  readonly kind: FieldKind;
  /** Only meaningful for "message": the field may occur any number of times. */
  readonly repeated?: boolean;
}

export interface MessageSchema {
  readonly name: string;
  readonly fields: Readonly<Record<number, FieldSpec>>;
}

const UINT32_MAX = 0xffff_ffff;
const EMPTY = new Uint8Array(0);
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

type FieldValue = number | boolean | Uint8Array | string | Uint8Array[] | number[];

function expectedWireType(kind: FieldKind): WireType {
  switch (kind) {
    case "uint":
    case "bool":
      return WireType.Varint;
    case "fixed32":
      return WireType.Bit32;
    case "bytes":
    case "string":
    case "message":
    case "uintList":
      return WireType.LengthDelimited;
  }
}

/** The decoded fields of one message, read back by field number with proto3 defaults. */
export class DecodedFields {
  constructor(
    private readonly schema: MessageSchema,
    /** By field number; a hole for a field that is absent. */
    private readonly values: readonly (FieldValue | undefined)[],
    /** Where this message sits in the value being decoded, for error reasons. */
    readonly path: string,
  ) {}

  has(field: number): boolean {
    return this.values[field] !== undefined;
  }

  uint(field: number): number {
    return (this.get(field, "uint") as number | undefined) ?? 0;
  }

  bool(field: number): boolean {
    return (this.get(field, "bool") as boolean | undefined) ?? false;
  }

  fixed32(field: number): number {
    return (this.get(field, "fixed32") as number | undefined) ?? 0;
  }

  bytes(field: number): Uint8Array {
    return (this.get(field, "bytes") as Uint8Array | undefined) ?? EMPTY;
  }

  string(field: number): string {
    return (this.get(field, "string") as string | undefined) ?? "";
  }

  uints(field: number): number[] {
    return (this.get(field, "uintList") as number[] | undefined) ?? [];
  }

  /** A singular embedded message's bytes, or undefined when absent. */
  message(field: number): Uint8Array | undefined {
    const spec = this.spec(field, "message");
    if (spec.repeated === true) throw new Error(`${this.schema.name}.${spec.name} is repeated`);
    return this.values[field] as Uint8Array | undefined;
  }

  /** A singular embedded message that must be present. */
  requiredMessage(field: number): Uint8Array {
    const bytes = this.message(field);
    if (bytes === undefined) throw this.fail(field, "is required but missing");
    return bytes;
  }

  messages(field: number): Uint8Array[] {
    const spec = this.spec(field, "message");
    if (spec.repeated !== true) throw new Error(`${this.schema.name}.${spec.name} is not repeated`);
    return (this.values[field] as Uint8Array[] | undefined) ?? [];
  }

  /** The path of a field, e.g. `envelope.messages[2].term`. */
  fieldPath(field: number): string {
    return `${this.path}.${this.schema.fields[field]?.name ?? `#${field}`}`;
  }

  fail(field: number, problem: string): TransportDecodeError {
    return new TransportDecodeError(`${this.fieldPath(field)} ${problem}`);
  }

  private get(field: number, kind: FieldKind): FieldValue | undefined {
    this.spec(field, kind);
    return this.values[field];
  }

  private spec(field: number, kind: FieldKind): FieldSpec {
    const spec = this.schema.fields[field];
    // A mismatch here is a bug in a codec, not bad input.
    if (spec === undefined || spec.kind !== kind) {
      throw new Error(`${this.schema.name} field ${field} is not a ${kind} field`);
    }
    return spec;
  }
}

/** Splits `bytes` into the fields of `schema`, validating each one; see the file header. */
export function decodeFields(bytes: Uint8Array, schema: MessageSchema, path: string): DecodedFields {
  const reader = new FieldReader(bytes);
  const values: FieldValue[] = [];
  let field = 0;
  try {
    while (reader.pos < bytes.length) {
      field = 0;
      const tag = reader.varint();
      const fieldNo = Math.floor(tag / 8);
      const wireType = (tag % 8) as WireType;
      if (fieldNo === 0 || fieldNo > MAX_FIELD_NUMBER || wireType > WireType.Bit32) {
        throw new Error(`illegal tag: field no ${fieldNo} wire type ${wireType}`);
      }
      field = fieldNo;
      const spec = schema.fields[fieldNo];
      if (spec === undefined) throw new TransportDecodeError(`${path} has unknown field number ${fieldNo}`);
      const name = spec.name;
      if (spec.kind === "uintList" && wireType === WireType.Varint) {
        // Unpacked encoding of a repeated integer; proto3 readers must accept both forms.
        appendUints(values, fieldNo, [readUint(reader, path, name)]);
        continue;
      }
      if (wireType !== expectedWireType(spec.kind)) {
        throw new TransportDecodeError(
          `${describe(path, name)} has wire type ${wireType}, expected ${expectedWireType(spec.kind)}`,
        );
      }
      if (spec.kind === "uintList") {
        appendUints(values, fieldNo, readPackedUints(reader, path, name));
        continue;
      }
      if (spec.kind === "message" && spec.repeated === true) {
        const list = values[fieldNo] as Uint8Array[] | undefined;
        if (list === undefined) values[fieldNo] = [readDelimited(reader, path, name)];
        else list.push(readDelimited(reader, path, name));
        continue;
      }
      if (values[fieldNo] !== undefined)
        throw new TransportDecodeError(`${describe(path, name)} occurs more than once`);
      values[fieldNo] = readSingular(reader, spec.kind, path, name);
    }
  } catch (error) {
    if (error instanceof TransportDecodeError) throw error;
    const at = field === 0 ? path : `${path}.${schema.fields[field]?.name ?? `#${field}`}`;
    throw new TransportDecodeError(`${at} is malformed (${(error as Error).message})`);
  }
  return new DecodedFields(schema, values, path);
}

/** Field numbers are 29 bits (protobuf's limit). */
const MAX_FIELD_NUMBER = 2 ** 29 - 1;
/** The longest varint: 64 bits in groups of 7. */
const MAX_VARINT_BYTES = 10;

/**
 * A field's place for error reasons: the decoders carry the message's path and the field's
 * name apart and join them only when a reason is written, so that decoding a valid message
 * builds no strings or objects per field (the transport decodes every Raft message).
 */
function describe(path: string, name: string, suffix = ""): string {
  return `${path}.${name}${suffix}`;
}

/** A read position in one message's bytes. */
class FieldReader {
  pos = 0;

  constructor(readonly bytes: Uint8Array) {}

  /**
   * An unsigned varint as a number; exact up to 2^53 - 1, and at least 2^53 for anything
   * larger (each 7-bit group is added as a float). Throws a plain Error when the input ends
   * inside it or it is longer than 10 bytes.
   */
  varint(): number {
    const bytes = this.bytes;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= bytes.length) throw new Error("premature EOF");
      const byte = bytes[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new Error("invalid varint");
  }

  /** The exact value of the varint that ends at `end` and began at `start` (error text only). */
  exactVarint(start: number, end: number): bigint {
    let value = 0n;
    for (let i = end - 1; i >= start; i--) value = (value << 7n) | BigInt(this.bytes[i]! & 0x7f);
    return value;
  }
}

function readSingular(reader: FieldReader, kind: FieldKind, path: string, name: string): FieldValue {
  switch (kind) {
    case "uint":
      return readUint(reader, path, name);
    case "bool": {
      const value = readUint(reader, path, name);
      if (value > 1) throw new TransportDecodeError(`${describe(path, name)} is a bool with value ${value}`);
      return value === 1;
    }
    case "fixed32": {
      const bytes = reader.bytes;
      const start = reader.pos;
      if (bytes.length - start < 4) throw new TransportDecodeError(`${describe(path, name)} is truncated`);
      reader.pos += 4;
      return (
        (bytes[start]! | (bytes[start + 1]! << 8) | (bytes[start + 2]! << 16) | (bytes[start + 3]! << 24)) >>>
        0
      );
    }
    case "bytes":
      // A copy, so a decoded value never pins the (possibly large) frame buffer it came from.
      return readDelimited(reader, path, name).slice();
    case "string":
      try {
        return strictUtf8.decode(readDelimited(reader, path, name));
      } catch (error) {
        if (error instanceof TransportDecodeError) throw error;
        throw new TransportDecodeError(`${describe(path, name)} is not valid UTF-8`);
      }
    case "message":
      return readDelimited(reader, path, name);
    case "uintList":
      throw new Error("repeated integers are read by readPackedUints");
  }
}

function readUint(reader: FieldReader, path: string, name: string, suffix?: string): number {
  const start = reader.pos;
  const value = reader.varint();
  if (value > Number.MAX_SAFE_INTEGER) {
    const exact = reader.exactVarint(start, reader.pos);
    throw new TransportDecodeError(`${describe(path, name, suffix)} is ${exact}, above 2^53 - 1`);
  }
  return value;
}

/** A length-delimited value as a view into the input; the length is checked against what is left. */
function readDelimited(reader: FieldReader, path: string, name: string): Uint8Array {
  const length = readUint(reader, path, name, " length");
  const remaining = reader.bytes.length - reader.pos;
  if (length > remaining) {
    throw new TransportDecodeError(
      `${describe(path, name)} is truncated (length ${length}, ${remaining} bytes left)`,
    );
  }
  const start = reader.pos;
  reader.pos += length;
  return reader.bytes.subarray(start, start + length);
}

function readPackedUints(reader: FieldReader, path: string, name: string): number[] {
  const packed = new FieldReader(readDelimited(reader, path, name));
  const out: number[] = [];
  while (packed.pos < packed.bytes.length) out.push(readUint(packed, path, name, `[${out.length}]`));
  return out;
}

function appendUints(values: FieldValue[], field: number, more: number[]): void {
  const list = values[field] as number[] | undefined;
  if (list === undefined) values[field] = more;
  else list.push(...more);
}

// ---------------------------------------------------------------------------------- writing

/** Throws (a caller bug, not bad input) unless `value` is a non-negative safe integer. */
export function checkUint(value: number, path: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`cannot encode ${path}: ${value} is not a non-negative safe integer`);
  }
}

function writeVarint(writer: BinaryWriter, value: number): void {
  // uint32 writes the same varint bytes without uint64's detour through BigInt.
  if (value <= UINT32_MAX) writer.uint32(value);
  else writer.uint64(value);
}

export function writeUint(writer: BinaryWriter, field: number, value: number, path: string): void {
  checkUint(value, path);
  if (value !== 0) writeVarint(writer.tag(field, WireType.Varint), value);
}

export function writeBool(writer: BinaryWriter, field: number, value: boolean): void {
  if (value) writer.tag(field, WireType.Varint).bool(true);
}

export function writeFixed32(writer: BinaryWriter, field: number, value: number, path: string): void {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new Error(`cannot encode ${path}: ${value} is not an unsigned 32-bit integer`);
  }
  if (value !== 0) writer.tag(field, WireType.Bit32).fixed32(value);
}

export function writeBytes(writer: BinaryWriter, field: number, value: Uint8Array): void {
  if (value.byteLength > 0) writer.tag(field, WireType.LengthDelimited).bytes(value);
}

export function writeString(writer: BinaryWriter, field: number, value: string): void {
  if (value.length > 0) writer.tag(field, WireType.LengthDelimited).string(value);
}

export function writeUintList(
  writer: BinaryWriter,
  field: number,
  values: readonly number[],
  path: string,
): void {
  if (values.length === 0) return;
  writer.tag(field, WireType.LengthDelimited).fork();
  values.forEach((value, i) => {
    checkUint(value, `${path}[${i}]`);
    writeVarint(writer, value);
  });
  writer.join();
}

/** An embedded message; written even when empty, so its presence survives the round trip. */
export function writeMessage(
  writer: BinaryWriter,
  field: number,
  encodeBody: (writer: BinaryWriter) => void,
): void {
  writer.tag(field, WireType.LengthDelimited).fork();
  encodeBody(writer);
  writer.join();
}

/** A writer whose buffer grew past this during an encode is not kept (a snapshot image would stay). */
const KEPT_WRITER_MAX_BYTES = 1 << 20;
let keptWriter = new BinaryWriter();
let keptWriterInUse = false;

/**
 * The bytes `encodeBody` writes, through one writer kept between calls. A fresh writer starts
 * at 128 bytes and doubles, copying, up to each message's size (six copies for an append of
 * 16 puts); a kept one has grown already, and `finish()` copies the bytes out once. A throw
 * (a caller bug) drops the writer, so no half-written message reaches the next call; encodes
 * must not nest.
 */
export function encodeWithKeptWriter(encodeBody: (writer: BinaryWriter) => void): Uint8Array {
  if (keptWriterInUse) throw new Error("invariant violated: nested encodes share the kept writer");
  keptWriterInUse = true;
  try {
    encodeBody(keptWriter);
    const bytes = keptWriter.finish();
    if (bytes.byteLength > KEPT_WRITER_MAX_BYTES) keptWriter = new BinaryWriter();
    return bytes;
  } catch (error) {
    keptWriter = new BinaryWriter();
    throw error;
  } finally {
    keptWriterInUse = false;
  }
}

/** A field holding bytes that are already an encoded message. */
export function writeEncodedMessage(writer: BinaryWriter, field: number, encoded: Uint8Array): void {
  writer.tag(field, WireType.LengthDelimited).bytes(encoded);
}

export { BinaryWriter };
