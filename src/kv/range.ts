/**
 * Reading MVCC data: which revision a read may use, the version of one key at a revision,
 * the live keys of an interval at a revision, and etcd's Range on top of them (limit, count,
 * more, sorting, the mod/create revision filters, keysOnly, countOnly).
 *
 * Listing an interval does not read every stored version: for each key it seeks straight to
 * the newest version at or below the read revision, then jumps past the key's older versions
 * to the next key. Reading at the current revision costs one seek per key.
 */
import { EMPTY, compareBytes, prefixEnd, subrange } from "./bytes.js";
import { SortOrder, SortTarget, type RangeRequest } from "./commands.js";
import type { KvPair, KvReader } from "./engine.js";
import { KvError, KvErrorCode } from "./errors.js";
import { decodeStoredVersion, isTombstone, type KeyLayout, type StoredVersion } from "./keys.js";
import type { KeyValue, RangeResponse } from "./results.js";

/** The revisions a read can be served at: (compacted..current], plus exactly `compacted`. */
export interface RevisionBounds {
  readonly current: bigint;
  readonly compacted: bigint;
}

/** Why a read at `requested` (0: current) cannot be served, or null when it can. */
export function readRevisionError(requested: bigint, bounds: RevisionBounds): KvErrorCode | null {
  if (requested > bounds.current) return KvErrorCode.FutureRevision;
  if (requested > 0n && requested < bounds.compacted) return KvErrorCode.Compacted;
  return null;
}

/** The revision a read at `requested` uses; throws KvError when it cannot be served. */
export function resolveReadRevision(requested: bigint, bounds: RevisionBounds): bigint {
  const error = readRevisionError(requested, bounds);
  if (error !== null) throw new KvError(error);
  return requested > 0n ? requested : bounds.current;
}

/** A set of user keys in etcd's terms: one key, [start, end), or every key >= start. */
export interface KeyInterval {
  readonly start: Uint8Array;
  /** Exclusive; null means no upper bound. Ignored when `single`. */
  readonly end: Uint8Array | null;
  readonly single: boolean;
}

/** etcd's reading of (key, rangeEnd): empty rangeEnd is the key alone, "\0" is everything from key on. */
export function keyInterval(key: Uint8Array, rangeEnd: Uint8Array): KeyInterval {
  if (rangeEnd.length === 0) return { start: key, end: null, single: true };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start: key, end: null, single: false };
  return { start: key, end: rangeEnd, single: false };
}

function first(pairs: Iterable<KvPair>): KvPair | undefined {
  for (const pair of pairs) return pair;
  return undefined;
}

/** Exclusive end of all versions of the key whose data key is `dataKey`. */
function versionsEnd(dataKey: Uint8Array): Uint8Array {
  const end = prefixEnd(subrange(dataKey, 0, dataKey.length - 8));
  if (end === null)
    throw new Error("invariant violated: an encoded user key ends in 0x01, so it has a successor");
  return end;
}

/** The encoded newest version of `userKey` at or below `revision` (possibly a tombstone). */
export function encodedVersionAt(
  reader: KvReader,
  layout: KeyLayout,
  userKey: Uint8Array,
  revision: bigint,
): Uint8Array | undefined {
  const seek = layout.dataKey(userKey, revision);
  return first(reader.scan(seek, versionsEnd(seek), { limit: 1 }))?.value;
}

/** The newest version of `userKey` at or below `revision`, tombstones included. */
export function versionAt(
  reader: KvReader,
  layout: KeyLayout,
  userKey: Uint8Array,
  revision: bigint,
): StoredVersion | undefined {
  const encoded = encodedVersionAt(reader, layout, userKey, revision);
  return encoded === undefined ? undefined : decodeStoredVersion(encoded);
}

/** The live version of `userKey` at `revision`, or undefined when it does not exist then. */
export function liveVersionAt(
  reader: KvReader,
  layout: KeyLayout,
  userKey: Uint8Array,
  revision: bigint,
): StoredVersion | undefined {
  const version = versionAt(reader, layout, userKey, revision);
  return version === undefined || version.tombstone ? undefined : version;
}

/** A key that exists at the read revision, with its version still encoded (counting needs no decoding). */
export interface LiveKey {
  readonly userKey: Uint8Array;
  readonly encoded: Uint8Array;
}

/**
 * A faster way to a key's newest stored version (encoded, tombstones too) than a seek of the
 * reader: the store's NewestVersions index. Only valid for reads at the reader's newest revision.
 */
export type NewestEncodedVersion = (userKey: Uint8Array) => Uint8Array | undefined;

/**
 * The keys of `interval` that exist at `revision`, in key order (descending when `reverse`).
 * `newest`, when given, must answer for `revision` (the reader's newest state).
 */
export function* liveKeysAt(
  reader: KvReader,
  layout: KeyLayout,
  interval: KeyInterval,
  revision: bigint,
  reverse = false,
  newest?: NewestEncodedVersion,
): Generator<LiveKey> {
  if (interval.single) {
    const encoded =
      newest === undefined
        ? encodedVersionAt(reader, layout, interval.start, revision)
        : newest(interval.start);
    if (encoded !== undefined && !isTombstone(encoded)) yield { userKey: interval.start, encoded };
    return;
  }
  const lower = layout.versionsPrefix(interval.start);
  let upper = interval.end === null ? layout.dataEnd : layout.versionsPrefix(interval.end);
  let from = lower;
  while (compareBytes(from, upper) < 0) {
    // Forward: the first pair is the newest version of the next key. Reverse: the last pair
    // below `upper` is the oldest version of the previous key.
    const found = first(reader.scan(from, upper, { reverse, limit: 1 }));
    if (found === undefined) return;
    const { userKey, revision: foundRevision } = layout.parseDataKey(found.key);
    const encoded =
      !reverse && foundRevision <= revision
        ? found.value
        : encodedVersionAt(reader, layout, userKey, revision);
    if (encoded !== undefined && !isTombstone(encoded)) yield { userKey, encoded };
    if (reverse) upper = found.key.slice(0, found.key.length - 8);
    else from = versionsEnd(found.key);
  }
}

export function toKeyValue(userKey: Uint8Array, version: StoredVersion): KeyValue {
  return {
    key: userKey,
    value: version.value,
    createRevision: version.createRevision,
    modRevision: version.modRevision,
    version: version.version,
    lease: version.lease,
  };
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The order etcd sorts a Range's results by for `target` (ties are left to a stable sort). */
export function sortKey(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.Key:
      return (a, b) => compareBytes(a.key, b.key);
    case SortTarget.Version:
      return (a, b) => compareBigints(a.version, b.version);
    case SortTarget.Create:
      return (a, b) => compareBigints(a.createRevision, b.createRevision);
    case SortTarget.Mod:
      return (a, b) => compareBigints(a.modRevision, b.modRevision);
    case SortTarget.Value:
      return (a, b) => compareBytes(a.value, b.value);
  }
}

/** etcd's effective sort order: non-key targets default to ascending; ascending by key is the natural order. */
function effectiveSortOrder(request: RangeRequest): SortOrder {
  if (request.sortTarget !== SortTarget.Key && request.sortOrder === SortOrder.None) return SortOrder.Ascend;
  if (request.sortTarget === SortTarget.Key && request.sortOrder === SortOrder.Ascend) return SortOrder.None;
  return request.sortOrder;
}

/**
 * How a Range's results are produced: its effective order, whether revision filters apply,
 * and whether the results come in key order (ascending, or descending by key), so a scan in
 * that direction can stop at the limit.
 */
export function rangeShape(request: RangeRequest): {
  readonly order: SortOrder;
  readonly filtered: boolean;
  readonly keyOrdered: boolean;
} {
  const order = effectiveSortOrder(request);
  const filtered =
    request.minModRevision !== 0n ||
    request.maxModRevision !== 0n ||
    request.minCreateRevision !== 0n ||
    request.maxCreateRevision !== 0n;
  const keyOrdered =
    order === SortOrder.None || (request.sortTarget === SortTarget.Key && order === SortOrder.Descend);
  return { order, filtered, keyOrdered };
}

function passesFilters(kv: KeyValue, r: RangeRequest): boolean {
  return (
    (r.maxModRevision === 0n || kv.modRevision <= r.maxModRevision) &&
    (r.minModRevision === 0n || kv.modRevision >= r.minModRevision) &&
    (r.maxCreateRevision === 0n || kv.createRevision <= r.maxCreateRevision) &&
    (r.minCreateRevision === 0n || kv.createRevision >= r.minCreateRevision)
  );
}

/**
 * etcd's Range over `reader`. `count` is the number of keys in the range at the read revision
 * before the revision filters and the limit, as in etcd. Ties in a sort keep key order.
 * Throws KvError for an empty key and for revisions outside `bounds`. `newestAtCurrent`, when
 * given, answers single-key reads at `bounds.current` (the reader's newest state).
 */
export function executeRange(
  reader: KvReader,
  layout: KeyLayout,
  request: RangeRequest,
  bounds: RevisionBounds,
  newestAtCurrent?: NewestEncodedVersion,
): RangeResponse {
  if (request.key.length === 0) throw new KvError(KvErrorCode.EmptyKey);
  const revision = resolveReadRevision(request.revision, bounds);
  const newest = revision === bounds.current ? newestAtCurrent : undefined;
  const interval = keyInterval(request.key, request.rangeEnd);
  const limit = request.limit > 0 ? request.limit : Infinity;
  const present = (live: LiveKey): KeyValue => {
    const kv = toKeyValue(live.userKey, decodeStoredVersion(live.encoded));
    return request.keysOnly ? { ...kv, value: EMPTY } : kv;
  };

  if (request.countOnly) {
    let count = 0;
    for (const _ of liveKeysAt(reader, layout, interval, revision, false, newest)) count += 1;
    return { kind: "range", kvs: [], more: false, count };
  }

  const { order, filtered, keyOrdered: scanOrdered } = rangeShape(request);
  if (scanOrdered && !filtered) {
    // Results come out of the scan in the requested order: stop materializing at the limit
    // but keep counting.
    const reverse = order === SortOrder.Descend;
    const kvs: KeyValue[] = [];
    let count = 0;
    for (const live of liveKeysAt(reader, layout, interval, revision, reverse, newest)) {
      count += 1;
      if (kvs.length < limit) kvs.push(present(live));
    }
    return { kind: "range", kvs, more: count > kvs.length, count };
  }

  let count = 0;
  const kvs: KeyValue[] = [];
  for (const live of liveKeysAt(reader, layout, interval, revision, false, newest)) {
    count += 1;
    const kv = toKeyValue(live.userKey, decodeStoredVersion(live.encoded));
    if (passesFilters(kv, request)) kvs.push(kv);
  }
  return sortedRangeResponse(kvs, request, order, limit, count);
}

/**
 * A Range's answer from every matching key-value, gathered in key order: sorted as `order`
 * says (ties keep key order), cut at `limit` (`more` says whether it cut), values dropped for
 * keysOnly. Shared by a store's Range and the cross-range read.
 */
export function sortedRangeResponse(
  gathered: KeyValue[],
  request: RangeRequest,
  order: SortOrder,
  limit: number,
  count: number,
): { kind: "range"; kvs: KeyValue[]; more: boolean; count: number } {
  let kvs = gathered;
  if (order !== SortOrder.None) {
    const compare = sortKey(request.sortTarget);
    kvs.sort(order === SortOrder.Descend ? (a, b) => compare(b, a) : compare);
  }
  const more = kvs.length > limit;
  if (more) kvs = kvs.slice(0, limit);
  if (request.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
  return { kind: "range", kvs, more, count };
}
