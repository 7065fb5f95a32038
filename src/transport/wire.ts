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
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

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

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
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
    private readonly values: ReadonlyMap<number, FieldValue>,
    /** Where this message sits in the value being decoded, for error reasons. */
    readonly path: string,
  ) {}

  has(field: number): boolean {
    return this.values.has(field);
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
    return this.values.get(field) as Uint8Array | undefined;
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
    return (this.values.get(field) as Uint8Array[] | undefined) ?? [];
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
    return this.values.get(field);
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
  const reader = new BinaryReader(bytes);
  const values = new Map<number, FieldValue>();
  let field = 0;
  try {
    while (reader.pos < reader.len) {
      field = 0;
      const [fieldNo, wireType] = reader.tag();
      field = fieldNo;
      const spec = schema.fields[fieldNo];
      if (spec === undefined) throw new TransportDecodeError(`${path} has unknown field number ${fieldNo}`);
      const where = `${path}.${spec.name}`;
      if (spec.kind === "uintList" && wireType === WireType.Varint) {
        // Unpacked encoding of a repeated integer; proto3 readers must accept both forms.
        appendUints(values, fieldNo, [readUint(reader, where)]);
        continue;
      }
      if (wireType !== expectedWireType(spec.kind)) {
        throw new TransportDecodeError(
          `${where} has wire type ${wireType}, expected ${expectedWireType(spec.kind)}`,
        );
      }
      if (spec.kind === "uintList") {
        appendUints(values, fieldNo, readPackedUints(reader, bytes, where));
        continue;
      }
      if (spec.kind === "message" && spec.repeated === true) {
        const list = (values.get(fieldNo) as Uint8Array[] | undefined) ?? [];
        list.push(readDelimited(reader, bytes, where));
        values.set(fieldNo, list);
        continue;
      }
      if (values.has(fieldNo)) throw new TransportDecodeError(`${where} occurs more than once`);
      values.set(fieldNo, readSingular(reader, bytes, spec.kind, where));
    }
  } catch (error) {
    if (error instanceof TransportDecodeError) throw error;
    const at = field === 0 ? path : `${path}.${schema.fields[field]?.name ?? `#${field}`}`;
    throw new TransportDecodeError(`${at} is malformed (${(error as Error).message})`);
  }
  return new DecodedFields(schema, values, path);
}

function readSingular(reader: BinaryReader, source: Uint8Array, kind: FieldKind, where: string): FieldValue {
  switch (kind) {
    case "uint":
      return readUint(reader, where);
    case "bool": {
      const value = readUint(reader, where);
      if (value > 1) throw new TransportDecodeError(`${where} is a bool with value ${value}`);
      return value === 1;
    }
    case "fixed32":
      if (reader.len - reader.pos < 4) throw new TransportDecodeError(`${where} is truncated`);
      return reader.fixed32();
    case "bytes":
      // A copy, so a decoded value never pins the (possibly large) frame buffer it came from.
      return readDelimited(reader, source, where).slice();
    case "string":
      try {
        return strictUtf8.decode(readDelimited(reader, source, where));
      } catch (error) {
        if (error instanceof TransportDecodeError) throw error;
        throw new TransportDecodeError(`${where} is not valid UTF-8`);
      }
    case "message":
      return readDelimited(reader, source, where);
    case "uintList":
      throw new Error("repeated integers are read by readPackedUints");
  }
}

function readUint(reader: BinaryReader, where: string): number {
  const raw = reader.uint64();
  const value = typeof raw === "bigint" ? raw : BigInt(raw);
  if (value > MAX_SAFE) throw new TransportDecodeError(`${where} is ${value}, above 2^53 - 1`);
  return Number(value);
}

/** A length-delimited value as a view into the input; the length is checked against what is left. */
function readDelimited(reader: BinaryReader, source: Uint8Array, where: string): Uint8Array {
  const length = readUint(reader, `${where} length`);
  const remaining = reader.len - reader.pos;
  if (length > remaining) {
    throw new TransportDecodeError(`${where} is truncated (length ${length}, ${remaining} bytes left)`);
  }
  const start = reader.pos;
  reader.pos += length;
  return source.subarray(start, start + length);
}

function readPackedUints(reader: BinaryReader, source: Uint8Array, where: string): number[] {
  const packed = new BinaryReader(readDelimited(reader, source, where));
  const out: number[] = [];
  while (packed.pos < packed.len) out.push(readUint(packed, `${where}[${out.length}]`));
  return out;
}

function appendUints(values: Map<number, FieldValue>, field: number, more: number[]): void {
  const list = (values.get(field) as number[] | undefined) ?? [];
  list.push(...more);
  values.set(field, list);
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

/** A field holding bytes that are already an encoded message. */
export function writeEncodedMessage(writer: BinaryWriter, field: number, encoded: Uint8Array): void {
  writer.tag(field, WireType.LengthDelimited).bytes(encoded);
}

export { BinaryWriter };
