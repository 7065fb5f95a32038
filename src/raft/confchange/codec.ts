/**
 * The binary form of a ConfChange inside a log entry's payload (EntryType.ConfChange).
 *
 * Layout: version byte (1) | transition byte | varint change count |
 * (change type byte | varint node id) per change | varint context length | context bytes.
 * Varints are unsigned LEB128 (7 bits per byte, low group first, high bit = more follows), in
 * their shortest form, for values up to Number.MAX_SAFE_INTEGER. They are computed with
 * arithmetic rather than bitwise operators, which would truncate ids to 32 bits.
 *
 * Decoding is strict: the encoding of a value is unique, and anything else is rejected.
 */
import type { ConfChange, ConfChangeSingle } from "../types.js";
import { invariant } from "../assert.js";
import { ConfChangeTransition, ConfChangeType } from "../types.js";

const VERSION = 1;
/** 2^53 - 1 needs 53 bits, i.e. 8 groups of 7. */
const MAX_VARINT_BYTES = 8;

/** The payload is not a ConfChange this code can read. */
export class ConfChangeDecodeError extends Error {
  constructor(message: string) {
    super(`cannot decode conf change: ${message}`);
    this.name = "ConfChangeDecodeError";
  }
}

/** Every known value, looked up by its wire byte. */
function byWireValue<T extends number>(values: readonly T[]): ReadonlyMap<number, T> {
  return new Map(values.map((value) => [value, value]));
}

const TRANSITIONS = byWireValue([
  ConfChangeTransition.Auto,
  ConfChangeTransition.Implicit,
  ConfChangeTransition.Explicit,
]);

const CHANGE_TYPES = byWireValue([
  ConfChangeType.AddVoter,
  ConfChangeType.AddLearner,
  ConfChangeType.RemoveNode,
]);

function varintSize(value: number): number {
  let size = 1;
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) size++;
  return size;
}

function checkVarintValue(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `cannot encode conf change: ${what} must be a safe non-negative integer, got ${value}`,
    );
  }
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  if (TRANSITIONS.get(cc.transition) === undefined) {
    throw new RangeError(`cannot encode conf change: unknown transition ${String(cc.transition)}`);
  }
  let size = 2 + varintSize(cc.changes.length);
  for (const change of cc.changes) {
    if (CHANGE_TYPES.get(change.type) === undefined) {
      throw new RangeError(`cannot encode conf change: unknown change type ${String(change.type)}`);
    }
    checkVarintValue(change.nodeId, "node id");
    size += 1 + varintSize(change.nodeId);
  }
  size += varintSize(cc.context.byteLength) + cc.context.byteLength;

  const out = new Uint8Array(size);
  let pos = 0;
  const writeVarint = (value: number): void => {
    let rest = value;
    while (rest >= 128) {
      out[pos++] = (rest % 128) + 128;
      rest = Math.floor(rest / 128);
    }
    out[pos++] = rest;
  };
  out[pos++] = VERSION;
  out[pos++] = cc.transition;
  writeVarint(cc.changes.length);
  for (const change of cc.changes) {
    out[pos++] = change.type;
    writeVarint(change.nodeId);
  }
  writeVarint(cc.context.byteLength);
  out.set(cc.context, pos);
  pos += cc.context.byteLength;
  invariant(pos === size, () => `conf change encoder wrote ${pos} bytes, expected ${size}`);
  return out;
}

/** Throws ConfChangeDecodeError unless `data` is exactly one well-formed encoded ConfChange. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let pos = 0;
  const readByte = (what: string): number => {
    const byte = data[pos];
    if (byte === undefined)
      throw new ConfChangeDecodeError(`truncated input: missing ${what} at offset ${pos}`);
    pos++;
    return byte;
  };
  const readVarint = (what: string): number => {
    const start = pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const byte = readByte(what);
      value += (byte % 128) * scale;
      if (byte < 128) {
        if (byte === 0 && i > 0) {
          throw new ConfChangeDecodeError(`${what} at offset ${start} is not in its shortest form`);
        }
        if (!Number.isSafeInteger(value)) {
          throw new ConfChangeDecodeError(`${what} at offset ${start} exceeds the largest safe integer`);
        }
        return value;
      }
      scale *= 128;
    }
    throw new ConfChangeDecodeError(`${what} at offset ${start} is longer than ${MAX_VARINT_BYTES} bytes`);
  };

  const version = readByte("version");
  if (version !== VERSION) throw new ConfChangeDecodeError(`unknown version ${version}`);
  const transitionByte = readByte("transition");
  const transition = TRANSITIONS.get(transitionByte);
  if (transition === undefined) throw new ConfChangeDecodeError(`unknown transition ${transitionByte}`);
  const count = readVarint("change count");
  const changes: ConfChangeSingle[] = [];
  for (let i = 0; i < count; i++) {
    const typeByte = readByte(`type of change ${i}`);
    const type = CHANGE_TYPES.get(typeByte);
    if (type === undefined) throw new ConfChangeDecodeError(`unknown change type ${typeByte} in change ${i}`);
    changes.push({ type, nodeId: readVarint(`node id of change ${i}`) });
  }
  const contextLength = readVarint("context length");
  if (contextLength > data.byteLength - pos) {
    throw new ConfChangeDecodeError(
      `truncated input: context of ${contextLength} bytes, only ${data.byteLength - pos} left`,
    );
  }
  // A copy, so the decoded change does not pin or alias the entry's buffer.
  const context = data.slice(pos, pos + contextLength);
  pos += contextLength;
  if (pos !== data.byteLength) {
    throw new ConfChangeDecodeError(`${data.byteLength - pos} trailing bytes after the context`);
  }
  return { transition, changes, context };
}
