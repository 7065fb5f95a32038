/**
 * Where a range may be split: strictly inside its bounds and above the system span. Range 1
 * always holds the system span (the keys under SYSTEM_PREFIX, where the route catalog lives;
 * router/system-keys.ts), so no split key is at or below the end of that span.
 * The policy and the coordinator both ask `splitKeyRefusal` so they agree on every key.
 */
import { compareBytes } from "../../kv/bytes.js";
import type { RangeBounds } from "../../kv/bounds.js";
import { SYSTEM_SPAN } from "../router/system-keys.js";
import type { SplitRefusal } from "./errors.js";

/** The end of the system span, prefixEnd(SYSTEM_PREFIX): split keys must be strictly greater. */
export const SYSTEM_SPAN_END: Uint8Array = SYSTEM_SPAN.end!;

/**
 * Why `key` cannot split `bounds` (null: it can). `minSplitKey`: keys at or below it are refused
 * (default the end of the system span).
 */
export function splitKeyRefusal(
  bounds: RangeBounds,
  key: Uint8Array,
  minSplitKey: Uint8Array = SYSTEM_SPAN_END,
): Exclude<SplitRefusal, "unknown-route" | "not-active"> | null {
  const fromStart = compareBytes(key, bounds.start);
  if (fromStart < 0 || (bounds.end !== null && compareBytes(key, bounds.end) >= 0))
    return "key-outside-route";
  if (fromStart === 0) return "key-at-boundary";
  if (compareBytes(key, minSplitKey) <= 0) return "system-span";
  return null;
}
