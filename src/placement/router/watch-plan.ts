/**
 * Where a routed watch's sub-watches go: the user's (key, rangeEnd) as key spans without the
 * system span, each span clipped to the routes that hold it, and the WatchRequest one range
 * watch gets for one clipped span. Pure functions over a route lookup, so a RoutedWatch can
 * plan its first sub-watches and re-plan one sub-span after a split the same way.
 */
import { compareBytes } from "../../kv/bytes.js";
import { spanOfRequest, type KeySpan } from "../../kv/bounds.js";
import { KvError, KvErrorCode } from "../../kv/errors.js";
import type { WatchRequest } from "../../kv/watch.js";
import type { RouteDescriptor } from "../catalog/descriptor.js";
import { SystemKeyError, userSpans } from "./system-keys.js";

/** What planning needs of the route table (RouteTable implements it). */
export interface RouteLookup {
  intersecting(start: Uint8Array, end: Uint8Array | null): readonly RouteDescriptor[];
}

/** One sub-watch: the part of the watched keys that one route holds. */
export interface SubSpan {
  readonly route: RouteDescriptor;
  readonly span: KeySpan;
}

const EMPTY = new Uint8Array(0);
const FROM_KEY_ON = Uint8Array.of(0);

/**
 * The spans a watch request covers, in key order, without system keys. Throws what
 * WatchHub.watch throws for a bad request (KvError(EmptyKey), RangeError for a negative
 * start), and SystemKeyError when every key it names is a system key.
 */
export function watchSpans(request: WatchRequest): KeySpan[] {
  const rangeEnd = request.rangeEnd ?? EMPTY;
  if (request.key.length === 0 && rangeEnd.length === 0) throw new KvError(KvErrorCode.EmptyKey);
  const start = request.startRevision ?? 0n;
  if (start < 0n) throw new RangeError(`startRevision must not be negative, got ${start}`);
  const span = spanOfRequest(request.key, rangeEnd);
  if (span.end !== null && compareBytes(span.start, span.end) >= 0) return [];
  const spans = userSpans(span);
  if (spans.length === 0) throw new SystemKeyError(request.key);
  return spans;
}

/**
 * The parts of `spans` each route holds, in key order. A part that can hold no key (only the
 * empty key, which etcd never stores) is left out, so no sub-watch asks for it.
 */
export function planSubSpans(routes: RouteLookup, spans: readonly KeySpan[]): SubSpan[] {
  const out: SubSpan[] = [];
  for (const span of spans) {
    for (const route of routes.intersecting(span.start, span.end)) {
      const start = compareBytes(route.start, span.start) > 0 ? route.start : span.start;
      const end = minEnd(route.end, span.end);
      if (start.length === 0 && end !== null && compareBytes(end, FROM_KEY_ON) <= 0) continue;
      out.push({ route, span: { start, end } });
    }
  }
  return out;
}

/**
 * The request of the range watch over `span`: the user's options, the given start revision,
 * never fragments (merged responses are whole revisions). A one-key span is asked as that key.
 */
export function subWatchRequest(span: KeySpan, user: WatchRequest, startRevision: bigint): WatchRequest {
  return {
    key: span.start,
    rangeEnd: rangeEndOf(span),
    startRevision,
    prevKv: user.prevKv ?? false,
    filters: user.filters ?? [],
    progressNotify: user.progressNotify ?? false,
    fragment: false,
  };
}

function rangeEndOf(span: KeySpan): Uint8Array {
  if (span.end === null) return FROM_KEY_ON;
  if (isSingleKey(span)) return EMPTY;
  return span.end;
}

/** `[k, k + "\0")` holds the key k alone. */
function isSingleKey(span: KeySpan): boolean {
  const { start, end } = span;
  if (end === null || end.length !== start.length + 1 || end[start.length] !== 0) return false;
  return compareBytes(end.subarray(0, start.length), start) === 0;
}

function minEnd(a: Uint8Array | null, b: Uint8Array | null): Uint8Array | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareBytes(a, b) <= 0 ? a : b;
}
