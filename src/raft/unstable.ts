/**
 * The tail of the log that the core has accepted but the caller has not yet persisted: at most
 * one incoming snapshot plus entries starting at `offset`. Entries move to stable storage when
 * the caller reports them persisted (`stableTo`), which is what lets the core hand out `Ready`
 * values and keep reading its own writes in the meantime.
 */
import { invariant } from "./assert.js";
import type { Entry, Snapshot } from "./types.js";

export class UnstableLog {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0] (or where the next entry would go). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
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
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
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
