/**
 * NewestVersions: an in-memory index of the newest committed version of recently written (or
 * looked up) keys, so that a write finds the version it replaces without an engine seek. That
 * lookup is the most frequent read of the apply path: every put makes one, on every replica.
 *
 * Entries are keyed by a key's versions prefix (its data key without the 8 revision bytes) and
 * hold the newest data pair, or null when the key has no stored version. They are kept right
 * by the store: `committed` is told of every batch it writes (a put of a data key is always at
 * a revision above every stored one, so it becomes the newest; a delete — compaction — makes
 * the entry unknown again), and `clear` of a restore. The index is bounded by entries and by
 * bytes; the oldest entries go first.
 *
 * `newestVersion` answers for a reader that has pending batches on top of the committed state
 * (the store's batch of entries, the command's own writes): their puts are newer than anything
 * committed, so the first pending put in the key's versions range is the newest; without one,
 * the committed newest comes from this index.
 *
 * It also keeps the set of keys that may have a stored version: the first apply (after the
 * index is made, or `reset`) loads it with one scan of the data keys, `committed` adds every
 * key put, deletes leave it (so it only ever holds too many). An apply's look for a key outside
 * the set skips the engine: the key has no version. Why: a new key is the usual write, and its
 * engine seek for nothing cost a follower 60-80 us (median) at `etcdctl check perf`'s 150
 * writes/s, against about 5 us for an lmdb get, because lmdb-js's range scan runs a lot of code
 * that is cold at that rate. Only applies use the set: a store applies only once its engine
 * holds exactly what it wrote or restored (a split's right-hand side is written before its
 * store opens, or the store is caught up by a snapshot), while a read may come to a store
 * opened on an empty namespace that a split then filled. A range with more than `maxKnownKeys`
 * keys, or more than KNOWN_KEYS_SCAN_FACTOR times as many versions, goes without the set until
 * the next reset.
 */
import { compareBytes, latin1, prefixEnd, subrange } from "./bytes.js";
import { BatchOverlay, type KvPair, type KvReader, type WriteBatch } from "./engine.js";

/** Revision bytes at the end of every data key. */
const REVISION_BYTES = 8;

export interface NewestVersionsLimits {
  readonly maxEntries: number;
  /** Keys and values together. */
  readonly maxBytes: number;
  /** Most keys the set of keys that may have a stored version holds (tens of bytes each). */
  readonly maxKnownKeys: number;
}

export const DEFAULT_NEWEST_VERSIONS_LIMITS: NewestVersionsLimits = {
  maxEntries: 100_000,
  maxBytes: 32 * 1024 * 1024,
  maxKnownKeys: 250_000,
};

/** Versions per known key the load may scan before it gives the set up (history is long). */
const KNOWN_KEYS_SCAN_FACTOR = 4;

function pairBytes(pair: KvPair | null): number {
  return pair === null ? 0 : pair.key.length + pair.value.length;
}

export class NewestVersions {
  private readonly entries = new Map<string, KvPair | null>();
  private bytes = 0;
  /** Versions prefixes (latin1) of every key that may have a stored version; null: unknown. */
  private knownKeys: Set<string> | null = null;
  /** Whether the set was loaded (or given up) since the last reset. */
  private knownKeysLoaded = false;

  constructor(
    private readonly dataStart: Uint8Array,
    private readonly dataEnd: Uint8Array,
    private readonly limits: NewestVersionsLimits = DEFAULT_NEWEST_VERSIONS_LIMITS,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The newest data pair under `prefix` (a key's versions prefix) as `committed` (the store's
   * committed state) with `pending` batches on top (newest first) shows it; undefined when
   * the key has no version. `forApply`: the caller is an apply, which may trust the set of
   * keys with a version (see the header).
   */
  newestVersion(
    committed: KvReader,
    pending: readonly WriteBatch[],
    prefix: Uint8Array,
    forApply = false,
  ): KvPair | undefined {
    const end = prefixEnd(prefix);
    if (end === null) throw new Error("invariant violated: a versions prefix has no successor");
    for (const batch of pending) {
      const op = batch.firstOpIn(prefix, end);
      if (op === undefined) continue;
      if (op.value !== null) return { key: op.key, value: op.value };
      // A pending delete (compaction) of some version: read through the batches the slow way.
      return this.scanThrough(committed, pending, prefix, end);
    }
    const name = latin1(prefix);
    const known = this.entries.get(name);
    if (known !== undefined) return known ?? undefined;
    if (forApply) {
      if (!this.knownKeysLoaded) this.loadKnownKeys(committed);
      if (this.knownKeys !== null && !this.knownKeys.has(name)) return undefined;
    }
    let found: KvPair | undefined;
    for (const pair of committed.scan(prefix, end, { limit: 1 })) found = pair;
    this.remember(name, found ?? null);
    return found;
  }

  /** `batch` was written: its data puts are the newest versions of their keys; deletes unknown. */
  committed(batch: WriteBatch): void {
    let previous: string | null = null;
    for (const op of batch.sortedOps()) {
      if (compareBytes(op.key, this.dataStart) < 0 || compareBytes(op.key, this.dataEnd) >= 0) continue;
      const name = latin1(subrange(op.key, 0, op.key.length - REVISION_BYTES));
      if (op.value === null) {
        this.forget(name);
        previous = name;
        continue;
      }
      // Ops come in key order, newest version of a key first: only the first one counts.
      if (name === previous) continue;
      previous = name;
      this.forget(name);
      this.remember(name, { key: op.key, value: op.value });
      this.addKnownKey(name);
    }
  }

  /** Forgets every cached version; the set of keys that may have one stays (keys only left). */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  /** Forgets everything: the engine's keys changed under the index (a restore or a merge). */
  reset(): void {
    this.clear();
    this.knownKeys = null;
    this.knownKeysLoaded = false;
  }

  private loadKnownKeys(committed: KvReader): void {
    this.knownKeysLoaded = true;
    this.knownKeys = new Set();
    let previous: string | null = null;
    let versions = 0;
    for (const { key } of committed.scan(this.dataStart, this.dataEnd)) {
      if (++versions > KNOWN_KEYS_SCAN_FACTOR * this.limits.maxKnownKeys) {
        this.knownKeys = null;
        return;
      }
      const name = latin1(subrange(key, 0, key.length - REVISION_BYTES));
      if (name === previous) continue;
      previous = name;
      this.addKnownKey(name);
      if (this.knownKeys === null) return;
    }
  }

  private addKnownKey(name: string): void {
    if (this.knownKeys === null) return;
    this.knownKeys.add(name);
    if (this.knownKeys.size > this.limits.maxKnownKeys) this.knownKeys = null;
  }

  private scanThrough(
    committed: KvReader,
    pending: readonly WriteBatch[],
    prefix: Uint8Array,
    end: Uint8Array,
  ): KvPair | undefined {
    // Pending batches are newest first; overlay them oldest first on the committed state.
    const visible = [...pending]
      .reverse()
      .reduce<KvReader>((reader, batch) => new BatchOverlay(reader, batch), committed);
    for (const pair of visible.scan(prefix, end, { limit: 1 })) return pair;
    return undefined;
  }

  private remember(name: string, pair: KvPair | null): void {
    const size = pairBytes(pair);
    if (size > this.limits.maxBytes) return;
    this.entries.set(name, pair);
    this.bytes += size;
    for (const [oldest, value] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= pairBytes(value);
    }
  }

  private forget(name: string): void {
    const known = this.entries.get(name);
    if (known === undefined) return;
    this.entries.delete(name);
    this.bytes -= pairBytes(known);
  }
}
