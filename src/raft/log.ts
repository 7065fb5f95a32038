/**
 * The replicated log as the core sees it: stable entries (read through RaftLogReader) plus the
 * unstable tail, with the commit and applied indexes. Conflict detection, the "up to date" rule
 * of elections, and the commit rule (only entries of the current term commit by counting) live
 * here.
 */
import { invariant } from "./assert.js";
import { LogCompactedError, LogUnavailableError, limitSize, type RaftLogReader } from "./storage.js";
import type { Entry, Snapshot } from "./types.js";
import { UnstableLog } from "./unstable.js";

export class RaftLog {
  readonly storage: RaftLogReader;
  readonly unstable: UnstableLog;
  /** Highest index known to be committed on a quorum. */
  committed: number;
  /** Highest index the application has applied. Invariant: applied <= committed. */
  applied: number;
  private readonly maxCommittedBytesPerReady: number;

  constructor(storage: RaftLogReader, maxCommittedBytesPerReady: number) {
    this.storage = storage;
    this.maxCommittedBytesPerReady = maxCommittedBytesPerReady;
    const firstIndex = storage.firstIndex();
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index whose entry is durable locally (never counts the unstable tail). */
  persistedLastIndex(): number {
    return Math.min(this.lastIndex(), this.unstable.offset - 1);
  }

  /**
   * Term of the entry at `index`, or undefined when it is compacted away or beyond the log.
   * Checked without exceptions: this sits on the hot path of every append and vote.
   */
  maybeTerm(index: number): number | undefined {
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    return this.storage.term(index);
  }

  /** Term of the entry at `index`; throws LogCompactedError / LogUnavailableError. */
  term(index: number): number {
    const term = this.maybeTerm(index);
    if (term !== undefined) return term;
    const first = this.firstIndex();
    if (index < first - 1) throw new LogCompactedError(index, first);
    throw new LogUnavailableError(index, this.lastIndex());
  }

  /** Term at `index`, or 0 when the index is compacted or beyond the log. */
  termOrZero(index: number): number {
    return this.maybeTerm(index) ?? 0;
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(index: number, term: number): boolean {
    return this.maybeTerm(index) === term;
  }

  /** Raft's election restriction: a candidate's log must be at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Append `entries` that follow (index, logTerm) if our log matches there; returns the index of
   * the last new entry, or undefined when the log does not match.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    leaderCommit: number,
    entries: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      invariant(
        conflict > this.committed,
        `entry ${conflict} conflicts with committed entry ${this.committed}`,
      );
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    invariant(after >= this.committed, `cannot append after ${after}: below committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * The index of the first entry that is new or conflicts with ours (different term), or 0 when
   * every entry is already present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: where a leader with a
   * log of `term` at `index` may find agreement (fast backtracking over a whole term at a time).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; ; i--) {
      const t = this.maybeTerm(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    invariant(index <= this.lastIndex(), `commit index ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /**
   * Commit up to `index` if its entry is of `term` (the current term): entries of earlier terms
   * commit only indirectly (Raft §5.4.2). `ignoreTermRule` exists for the simulator's proof
   * that the checks catch this very bug.
   */
  maybeCommit(index: number, term: number, ignoreTermRule = false): boolean {
    if (index > this.committed && (ignoreTermRule || this.termOrZero(index) === term)) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    invariant(
      index <= this.committed && index >= this.applied,
      `applied ${index} out of range [applied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** Unstable entries not yet handed to the caller to write. */
  entriesToWrite(): Entry[] {
    return this.unstable.entriesToWrite();
  }

  /** The caller writes entries up to `index` and reports them persisted later (stableTo). */
  writtenUpTo(index: number): void {
    this.unstable.writtenUpTo(index);
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Committed entries not yet applied, at most maxCommittedBytesPerReady (but at least one). */
  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxCommittedBytesPerReady);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** Entries from `lo` to the end of the log, within `maxBytes`. */
  entriesFrom(lo: number, maxBytes: number): Entry[] {
    if (lo > this.lastIndex()) return [];
    return this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  /** Entries in [lo, hi), stable ones from storage then unstable ones, within `maxBytes`. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(lo <= hi, `invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new LogCompactedError(lo, first);
    invariant(hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) out of bound last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      result = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      // Storage returned fewer entries than asked: the byte limit was reached.
      if (result.length < Math.min(hi, offset) - lo) return result;
    }
    if (hi > offset) {
      const tail = this.unstable.slice(Math.max(lo, offset), hi);
      result = result.length > 0 ? result.concat(tail) : tail;
    }
    return limitSize(result, maxBytes);
  }
}
