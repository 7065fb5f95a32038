/**
 * What the core reads from durable storage. The caller writes (after each Ready); the core only
 * reads, synchronously, through this interface. Implementations live in src/storage.
 *
 * Index conventions (as in etcd's raft): the log holds entries firstIndex()..lastIndex(); the
 * entry just before firstIndex() is represented by the last snapshot (or a dummy at index 0),
 * so term(firstIndex() - 1) is always answerable.
 */
import type { ConfState, Entry, HardState, Snapshot } from "./types.js";

/** The requested index is older than the first entry still stored (compacted away). */
export class LogCompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`requested index ${index} is unavailable due to compaction (first index ${firstIndex})`);
    this.name = "LogCompactedError";
  }
}

/** The requested index is past the last entry stored. */
export class LogUnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`requested entry at index ${index} is unavailable (last index ${lastIndex})`);
    this.name = "LogUnavailableError";
  }
}

/** A snapshot is being produced; the core will ask again later. */
export class SnapshotTemporarilyUnavailableError extends Error {
  constructor() {
    super("snapshot is temporarily unavailable");
    this.name = "SnapshotTemporarilyUnavailableError";
  }
}

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

export interface RaftLogReader {
  /** The persisted hard state and the membership as of the last snapshot or applied conf change. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at most `maxBytes` of payload in total but always at least one entry
   * when lo < hi. Throws LogCompactedError / LogUnavailableError.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of the entry at `index`, valid for firstIndex()-1 ..= lastIndex(). */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot; may throw SnapshotTemporarilyUnavailableError. */
  snapshot(): Snapshot;
}

/** Payload size counted against byte limits (data plus a fixed per-entry overhead). */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 16;
}

export function entriesSize(entries: readonly Entry[]): number {
  let total = 0;
  for (const e of entries) total += entrySize(e);
  return total;
}

/** Keep a prefix of `entries` within `maxBytes`, but never fewer than one entry. */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entrySize(entries[0]!);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entrySize(entries[n]!);
    if (size > maxBytes) break;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}
