/**
 * Concord's reserved system keyspace: every key starting with SYSTEM_PREFIX (0x00 0x00 then
 * "concord/") belongs to Concord itself (the route catalog lives under it, in range 1). User
 * requests never see or write it: routers refuse user writes naming a system key
 * (SystemKeyError) and clip it out of user reads and deletes (`userSpans`). Range 1 always
 * holds the whole system span, so no split key may fall at or below its end (`minSplitKey`).
 */
import { compareBytes, concatBytes, prefixEnd, utf8 } from "../../kv/bytes.js";
import type { KeySpan } from "../../kv/bounds.js";
import { CatalogKeys } from "../catalog/codec.js";

/** The first bytes of every system key. */
export const SYSTEM_PREFIX: Uint8Array = concatBytes(Uint8Array.of(0, 0), utf8("concord/"));

const SYSTEM_END: Uint8Array = prefixEnd(SYSTEM_PREFIX)!;

/** Every system key: `[SYSTEM_PREFIX, prefixEnd(SYSTEM_PREFIX))`. */
export const SYSTEM_SPAN: KeySpan = Object.freeze({ start: SYSTEM_PREFIX, end: SYSTEM_END });

/**
 * The smallest key a range may be split at: the first key above the end of the system span
 * (split keys must be strictly greater than it, so range 1 keeps the whole system span).
 */
export const minSplitKey: Uint8Array = concatBytes(SYSTEM_END, Uint8Array.of(0));

/** Whether `key` may be a split key (it lies above the system span's end). */
export function isAllowedSplitKey(key: Uint8Array): boolean {
  return compareBytes(key, minSplitKey) >= 0;
}

/** The route catalog's keys, under `SYSTEM_PREFIX + "catalog/"`. */
export function catalogKeys(): CatalogKeys {
  return new CatalogKeys(concatBytes(SYSTEM_PREFIX, utf8("catalog/")));
}

export function isSystemKey(key: Uint8Array): boolean {
  if (key.length < SYSTEM_PREFIX.length) return false;
  for (let i = 0; i < SYSTEM_PREFIX.length; i++) if (key[i] !== SYSTEM_PREFIX[i]) return false;
  return true;
}

/** Whether the span `[start, end)` (end null: +infinity) holds at least one system key. */
export function spanMeetsSystem(span: KeySpan): boolean {
  if (compareBytes(span.start, SYSTEM_END) >= 0) return false;
  return span.end === null || compareBytes(span.end, SYSTEM_PREFIX) > 0;
}

/**
 * `span` without the system span, in key order: the span itself when it holds no system key,
 * the part below and / or above the system span otherwise (none when it is all system keys).
 */
export function userSpans(span: KeySpan): KeySpan[] {
  if (span.end !== null && compareBytes(span.start, span.end) >= 0) return [];
  if (!spanMeetsSystem(span)) return [span];
  const out: KeySpan[] = [];
  if (compareBytes(span.start, SYSTEM_PREFIX) < 0) out.push({ start: span.start, end: SYSTEM_PREFIX });
  if (span.end === null || compareBytes(span.end, SYSTEM_END) > 0) {
    out.push({ start: SYSTEM_END, end: span.end });
  }
  return out;
}

/** A user request named a system key (or a span of system keys only); nothing was done. */
export class SystemKeyError extends Error {
  readonly retryable = false;
  constructor(readonly key: Uint8Array) {
    super(
      `key is reserved for Concord's system data (keys starting with 0x00 0x00 "concord/"): ${Buffer.from(key).toString("hex")}`,
    );
    this.name = "SystemKeyError";
  }
}
