/**
 * The tail of the log that the core has accepted but the caller has not yet persisted: at most
 * one incoming snapshot plus entries starting at `offset`. Entries move to stable storage when
 * the caller reports them persisted (`stableTo`), which is what lets the core hand out `Ready`
 * values and keep reading its own writes in the meantime. Entries up to `writtenTo` were
 * handed out already and are being made durable (a caller that syncs while the core runs on):
 * they are not handed out again, but stay here until reported persisted.
 */
import { invariant } from "./assert.js";
import type { Entry, Snapshot } from "./types.js";

export class UnstableLog {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0] (or where the next entry would go). */
  offset: number;
  /** The last index handed to the caller to write (at least offset - 1). */
  private writtenTo: number;

  constructor(offset: number) {
    this.offset = offset;
    this.writtenTo = offset - 1;
  }

  /** Entries not yet handed to the caller to write. */
  entriesToWrite(): Entry[] {
    const from = Math.max(this.offset, this.writtenTo + 1);
    return from === this.offset ? this.entries : this.entries.slice(from - this.offset);
  }

  /** Entries up to `index` were handed to the caller, who reports them persisted later. */
  writtenUpTo(index: number): void {
    this.writtenTo = Math.max(this.writtenTo, index);
  }

  /** First index, known only when a snapshot is pending. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries up to `index` (with `term`) are durable: drop them from the unstable tail. */
  stableTo(index: number, term: number): void {
    // A persisted entry that was since replaced (different term) stays unstable.
    if (this.maybeTerm(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
    this.writtenTo = Math.max(this.writtenTo, index);
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.writtenTo = snapshot.metadata.index;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    // Replaced entries must be written again, even if their predecessors were handed out.
    this.writtenTo = Math.min(this.writtenTo, first - 1);
    if (first === this.offset + this.entries.length) {
      this.entries = this.entries.concat(entries);
    } else if (first <= this.offset) {
      // Replaces everything unstable (and shadows stable entries from `first` on).
      this.offset = first;
      this.entries = entries.slice();
    } else {
      this.entries = this.slice(this.offset, first).concat(entries);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(
      this.offset <= lo && lo <= hi && hi <= this.offset + this.entries.length,
      () =>
        `unstable slice [${lo}, ${hi}) out of bounds [${this.offset}, ${this.offset + this.entries.length})`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
