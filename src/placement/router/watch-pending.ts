/**
 * The events a routed watch has received from its range watches but may not deliver yet,
 * grouped by revision: one revision's events (one command of one range, or commands of
 * several ranges that happen to share the HLC timestamp) leave together, in key order, once
 * every sub-watch has shown it has nothing more at or below that revision.
 */
import { compareBytes } from "../../kv/bytes.js";
import type { KvEvent } from "../../kv/results.js";

export interface RevisionEvents {
  readonly revision: bigint;
  readonly events: readonly KvEvent[];
}

export class PendingEvents {
  /** By increasing revision. */
  private readonly entries: { revision: bigint; events: KvEvent[] }[] = [];
  private events = 0;

  /** Events held. */
  get size(): number {
    return this.events;
  }

  /** The lowest revision held, or undefined when empty. */
  get lowest(): bigint | undefined {
    return this.entries[0]?.revision;
  }

  /** The highest revision held, or undefined when empty. */
  get highest(): bigint | undefined {
    return this.entries[this.entries.length - 1]?.revision;
  }

  /** Adds each event under its own mod revision. */
  add(events: readonly KvEvent[]): void {
    for (const event of events) {
      const revision = event.kv.modRevision;
      const index = this.search(revision);
      const entry = this.entries[index];
      if (entry !== undefined && entry.revision === revision) entry.events.push(event);
      else this.entries.splice(index, 0, { revision, events: [event] });
      this.events += 1;
    }
  }

  /** Removes and returns every revision at or below `through`, in order, each in key order. */
  takeThrough(through: bigint): RevisionEvents[] {
    let count = 0;
    while (count < this.entries.length && this.entries[count]!.revision <= through) count += 1;
    const taken = this.entries.splice(0, count);
    return taken.map(({ revision, events }) => {
      this.events -= events.length;
      return { revision, events: events.sort((a, b) => compareBytes(a.kv.key, b.kv.key)) };
    });
  }

  clear(): void {
    this.entries.length = 0;
    this.events = 0;
  }

  /** The index of the first entry at or above `revision`. */
  private search(revision: bigint): number {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.entries[mid]!.revision < revision) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
