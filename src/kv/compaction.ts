/**
 * MVCC compaction: dropping history that no read can ask for any more. Compacting at revision
 * R keeps, for every key, all versions above R and the newest version at or below R (a read
 * at R needs it) — unless that version is a tombstone, in which case the key's history at or
 * below R goes entirely. Reads below R then fail with ErrCompacted.
 *
 * A Compact command only moves the store's compacted revision; the versions it removes are
 * removed afterwards, in steps (MvccStore.removalStep).
 */
import { bytesEqual, subrange } from "./bytes.js";
import { KvErrorCode } from "./errors.js";
import { decodeDescendingRevision, isTombstone } from "./keys.js";
import type { RevisionBounds } from "./range.js";

/** etcd's rule: a compaction must move forward and may not pass the current revision. */
export function compactionError(revision: bigint, bounds: RevisionBounds): KvErrorCode | null {
  if (revision <= bounds.compacted) return KvErrorCode.Compacted;
  if (revision > bounds.current) return KvErrorCode.FutureRevision;
  return null;
}

/**
 * Which versions a compaction at `revision` removes, told one version at a time: the versions
 * must come in key order, as a scan of the data area yields them. Versions of one key are
 * contiguous and newest first, so the first one at or below `revision` is the one a read at
 * `revision` sees, and everything after it is older.
 *
 * The removed versions are invisible to every read a compaction at `revision` still allows
 * (at or above it), which is what lets the store remove them later and in steps (see
 * MvccStore.removalStep) and count them out of a hash meanwhile.
 */
export class CompactedVersions {
  private keyPrefix: Uint8Array | null = null;
  private reachedRevision = false;

  constructor(readonly revision: bigint) {}

  /** Whether the compaction removes this version (the next one in key order). */
  removes(key: Uint8Array, value: Uint8Array): boolean {
    const prefix = subrange(key, 0, key.length - 8);
    if (this.keyPrefix === null || !bytesEqual(prefix, this.keyPrefix)) {
      this.keyPrefix = prefix;
      this.reachedRevision = false;
    }
    if (decodeDescendingRevision(key, key.length - 8) > this.revision) return false;
    const newestAtOrBelow = !this.reachedRevision;
    this.reachedRevision = true;
    return !newestAtOrBelow || isTombstone(value);
  }
}
