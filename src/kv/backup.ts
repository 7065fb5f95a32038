/**
 * The backup image of a keyspace split into ranges: the pairs of every range's store merged
 * into the pairs of ONE store holding the whole keyspace, in the snapshot format — what
 * Maintenance.Snapshot streams and `concord snapshot restore` writes into a new cluster's
 * first (and only) range.
 *
 * The ranges come in key order, the first range (the one starting at the empty key, which
 * holds the member table and is where leases are granted) first. Areas of the namespace
 * (keys.ts, leases.ts, members.ts), merged:
 *
 * - meta: the first range's fields, except the revision and the compacted revision (the
 *   highest of any range), what only a split keyspace has (bounds, range state, last split
 *   and merge: absent, the store holds everything and is active) and how far its compacted
 *   versions are removed (absent: the restored store goes over all of them);
 * - dedup table and member table: the first range's (its dedup count describes its table; a
 *   client's dedup records in other ranges are left out, so a retry after a restore of a
 *   request made before the backup may apply again there);
 * - data: every range's versions (disjoint, as the ranges are), but none of the keys under
 *   `skipPrefix` (the system keyspace, whose route catalog describes the old split);
 * - leases and attached keys, and anything else: every range's, the first range's pair
 *   where ranges share a key (a lease's copies in other ranges carry the same TTL).
 */
import { ByteReader, ByteWriter, EMPTY, compareBytes, concatBytes } from "./bytes.js";
import type { KvPair } from "./engine.js";
import { KeyLayout, MetaField, encodeUserKey } from "./keys.js";
import { MEMBER_TAG } from "./members.js";
import { namespacePairs, snapshotOfPairs, type MvccSnapshot } from "./snapshot.js";
import type { StoreImageView } from "./store.js";

const RELATIVE = new KeyLayout(EMPTY);
const META_TAG = RELATIVE.metaKey(MetaField.LayoutVersion)[0]!;
const DATA_TAG = RELATIVE.dataStart[0]!;
/** Areas kept from the first range only: its dedup table (and the rows of its old eviction order, 0x03) and the member table. */
const FIRST_RANGE_ONLY_TAGS = new Set([RELATIVE.dedupClientsStart[0]!, 0x03, MEMBER_TAG]);
/**
 * Meta fields the image leaves out: what a store of the whole, unsplit keyspace does not have,
 * and the first range's progress in removing compacted versions (the other ranges' versions
 * may hold some its compaction has not removed yet: the restored store removes them).
 */
const DROPPED_FIELDS = [
  MetaField.Bounds,
  MetaField.RangeState,
  MetaField.LastSplit,
  MetaField.LastMerge,
  MetaField.PhysicallyCompacted,
  MetaField.HighestRangeId,
];
const HIGHEST_OF_ALL_FIELDS = [MetaField.Revision, MetaField.CompactedRevision];

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function metaU64(view: StoreImageView, field: MetaField): bigint {
  const bytes = view.view.get(view.layout.metaKey(field));
  return bytes === undefined ? 0n : new ByteReader(bytes, "store meta").u64();
}

/** The merged meta pairs, in key order. */
function metaPairs(ranges: readonly StoreImageView[]): KvPair[] {
  const first = ranges[0]!;
  const dropped = DROPPED_FIELDS.map((field) => RELATIVE.metaKey(field));
  const highest = HIGHEST_OF_ALL_FIELDS.flatMap((field) => {
    const value = ranges.reduce((max, range) => {
      const candidate = metaU64(range, field);
      return candidate > max ? candidate : max;
    }, 0n);
    return value === 0n
      ? []
      : [{ key: RELATIVE.metaKey(field), value: new ByteWriter().u64(value).finish() }];
  });
  const namespace = first.layout.namespace;
  const out: KvPair[] = [];
  const area = first.view.scan(
    concatBytes(namespace, Uint8Array.of(META_TAG)),
    concatBytes(namespace, Uint8Array.of(META_TAG + 1)),
  );
  const replaced = (key: Uint8Array) =>
    [...dropped, ...highest.map((pair) => pair.key)].some((candidate) => compareBytes(candidate, key) === 0);
  for (const { key, value } of area) {
    const relative = key.subarray(namespace.length);
    if (!replaced(relative)) out.push({ key: relative, value });
  }
  return [...out, ...highest].sort((a, b) => compareBytes(a.key, b.key));
}

/**
 * The pairs of one store holding what `ranges` hold (see the file comment), in key order,
 * with keys relative to a namespace. `skipPrefix`: user keys left out (null: none).
 */
export function* backupPairs(
  ranges: readonly StoreImageView[],
  skipPrefix: Uint8Array | null,
): Generator<KvPair> {
  if (ranges.length === 0) throw new RangeError("a backup needs at least one range");
  const meta = metaPairs(ranges);
  const skippedData =
    skipPrefix === null ? null : Uint8Array.of(DATA_TAG, ...encodeUserKey(skipPrefix).subarray(0, -2));
  const streams = ranges.map((range) =>
    namespacePairs(range.view, range.layout, range.bounds)[Symbol.iterator](),
  );
  const heads = streams.map((stream) => stream.next());
  let metaEmitted = false;
  for (;;) {
    let least = -1;
    for (let i = 0; i < heads.length; i++) {
      const head = heads[i]!;
      if (head.done === true) continue;
      if (least < 0 || compareBytes(head.value.key, (heads[least]!.value as KvPair).key) < 0) least = i;
    }
    if (least < 0) break;
    const pair = heads[least]!.value as KvPair;
    // Every range holding this key moves past it; the first range's pair is the one kept.
    for (let i = least; i < heads.length; i++) {
      const head = heads[i]!;
      if (head.done !== true && compareBytes(head.value.key, pair.key) === 0) heads[i] = streams[i]!.next();
    }
    const tag = pair.key[0]!;
    if (tag === META_TAG) {
      if (!metaEmitted) yield* meta;
      metaEmitted = true;
      continue;
    }
    if (FIRST_RANGE_ONLY_TAGS.has(tag) && least !== 0) continue;
    if (tag === DATA_TAG && skippedData !== null && startsWith(pair.key, skippedData)) continue;
    yield pair;
  }
  if (!metaEmitted) yield* meta;
}

/**
 * A backup image (backupPairs) of `ranges`, whose read views it releases. Its revision is the
 * newest range's, its applied index the first range's (a restore drops it).
 */
export function backupSnapshot(
  ranges: readonly StoreImageView[],
  skipPrefix: Uint8Array | null,
): MvccSnapshot {
  if (ranges.length === 0) throw new RangeError("a backup needs at least one range");
  return snapshotOfPairs({
    appliedIndex: ranges[0]!.appliedIndex,
    revision: ranges.reduce((max, range) => (range.revision > max ? range.revision : max), 0n),
    pairs: () => backupPairs(ranges, skipPrefix),
    release: () => {
      for (const range of ranges) range.view.release();
    },
  });
}
