/**
 * Rendering primitives shared by the printers, shaped after etcdctl's output: JSON as Go's
 * encoding/json writes etcd's structs (proto field names, zero values omitted, bytes as
 * base64, 64-bit integers as plain numbers — never rounded through a double), bordered
 * tables as etcdctl's tablewriter draws them, byte sizes as go-humanize does, and ids in hex.
 */
import type { DescField, DescMessage, DescOneof, Message } from "@bufbuild/protobuf";

/** A JSON value whose 64-bit integers stay bigints until written. */
export type JsonLike =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | readonly JsonLike[]
  | { readonly [key: string]: JsonLike | undefined };

/** JSON text of `value`: bigints as bare digits, bytes as base64, undefined members left out. */
export function jsonText(value: JsonLike): string {
  if (value === null) return "null";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString("base64"));
  if (Array.isArray(value)) return `[${(value as readonly JsonLike[]).map(jsonText).join(",")}]`;
  const members = Object.entries(value as { readonly [key: string]: JsonLike | undefined })
    .filter((entry): entry is [string, JsonLike] => entry[1] !== undefined)
    .map(([key, member]) => `${JSON.stringify(key)}:${jsonText(member)}`);
  return `{${members.join(",")}}`;
}

/** "response_put" → "ResponsePut": the Go name of a field or oneof. */
function goName(protoName: string): string {
  return protoName
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

function isZero(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (value === 0 || value === 0n || value === "" || value === false) return true;
  if (value instanceof Uint8Array || Array.isArray(value)) return value.length === 0;
  return false;
}

function fieldValue(field: DescField, value: unknown): JsonLike {
  if (field.fieldKind === "message") return goJson(field.message, value as Message);
  if (field.fieldKind === "list") {
    const items = value as readonly unknown[];
    if (field.listKind === "message") return items.map((item) => goJson(field.message, item as Message));
    return items as readonly JsonLike[];
  }
  return value as JsonLike;
}

/**
 * A protobuf-es message as etcd's Go structs marshal to JSON: each field under its proto
 * name, zero values omitted (omitempty), a oneof as {"<Oneof>": {"<Field>": value}}.
 */
export function goJson(schema: DescMessage, message: Message): { [key: string]: JsonLike } {
  const out: { [key: string]: JsonLike } = {};
  const record = message as unknown as Record<string, unknown>;
  const oneofsDone = new Set<DescOneof>();
  for (const field of schema.fields) {
    const oneof = field.oneof;
    if (oneof !== undefined) {
      if (oneofsDone.has(oneof)) continue;
      oneofsDone.add(oneof);
      const chosen = record[oneof.localName] as { case?: string; value?: unknown };
      const member = oneof.fields.find((candidate) => candidate.localName === chosen.case);
      if (member !== undefined) {
        out[goName(oneof.name)] = { [goName(member.name)]: fieldValue(member, chosen.value) };
      }
      continue;
    }
    const value = record[field.localName];
    if (isZero(value)) continue;
    out[field.name] = fieldValue(field, value);
  }
  return out;
}

/** A 64-bit id as etcdctl prints member ids (`%x`). */
export function hexId(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16);
}

/** A lease id as etcdctl prints it (`%016x`). */
export function leaseHex(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16).padStart(16, "0");
}

/** Go's %.0f rounds an exact half to even (20.5 → 20); JavaScript's toFixed rounds it up. */
function roundHalfEven(value: number): number {
  const whole = Math.trunc(value);
  if (value - whole !== 0.5) return Math.round(value);
  return whole % 2 === 0 ? whole : whole + 1;
}

const SIZE_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/** Bytes in SI units, as go-humanize's Bytes: "20 kB", "1.5 MB", "512 B". */
export function humanBytes(size: bigint | number): string {
  const bytes = Number(size);
  if (bytes < 10) return `${bytes} B`;
  const exponent = Math.floor(Math.log(bytes) / Math.log(1000));
  const value = Math.floor((bytes / 1000 ** exponent) * 10 + 0.5) / 10;
  const unit = SIZE_UNITS[exponent] ?? "EB";
  return value < 10 ? `${value.toFixed(1)} ${unit}` : `${roundHalfEven(value)} ${unit}`;
}

function center(text: string, width: number): string {
  const space = width - text.length;
  const left = Math.floor(space / 2);
  return " ".repeat(left) + text + " ".repeat(space - left);
}

/** A bordered table with centred headers and right-aligned cells, as etcdctl draws them. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const border = `+${widths.map((width) => "-".repeat(width + 2)).join("+")}+`;
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  const lines = [border, line(headers.map((header, i) => center(header, widths[i]!))), border];
  for (const row of rows) lines.push(line(widths.map((width, i) => (row[i] ?? "").padStart(width))));
  lines.push(border);
  return `${lines.join("\n")}\n`;
}

/** Bytes as text for the simple format (etcd keys and values are almost always UTF-8). */
export function text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}
