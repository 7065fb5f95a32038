/**
 * MVCC compaction: dropping history that no read can ask for any more. Compacting at revision
 * R keeps, for every key, all versions above R and the newest version at or below R (a read
 * at R needs it) — unless that version is a tombstone, in which case the key's history at or
 * below R goes entirely. Reads below R then fail with ErrCompacted.
 */
import { bytesEqual } from "./bytes.js";
import type { KvReader, WriteBatch } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { decodeDescendingRevision, isTombstone, type KeyLayout } from "./keys.js";
import type { RevisionBounds } from "./range.js";

/** etcd's rule: a compaction must move forward and may not pass the current revision. */
export function compactionError(revision: bigint, bounds: RevisionBounds): KvErrorCode | null {
  if (revision <= bounds.compacted) return KvErrorCode.Compacted;
  if (revision > bounds.current) return KvErrorCode.FutureRevision;
  return null;
}

/** Stages in `batch` the deletion of every version a compaction at `revision` removes; returns their number. */
export function stageCompaction(
  reader: KvReader,
  layout: KeyLayout,
  batch: WriteBatch,
  revision: bigint,
): number {
  let removed = 0;
  let keyPrefix: Uint8Array | null = null;
  let reachedRevision = false;
  // Versions of one key are contiguous and newest first: the first one at or below `revision`
  // is the one a read at `revision` sees; everything after it is older.
  for (const { key, value } of reader.scan(layout.dataStart, layout.dataEnd)) {
    const prefix = key.subarray(0, key.length - 8);
    if (keyPrefix === null || !bytesEqual(prefix, keyPrefix)) {
      keyPrefix = prefix;
      reachedRevision = false;
    }
    if (decodeDescendingRevision(key, key.length - 8) > revision) continue;
    const newestAtOrBelow = !reachedRevision;
    reachedRevision = true;
    if (newestAtOrBelow && !isTombstone(value)) continue;
    batch.delete(key);
    removed += 1;
  }
  return removed;
}
