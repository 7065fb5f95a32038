/**
 * Reading what changed: the events of every write to a key interval from a revision on,
 * rebuilt from the stored versions — a put event per version, a delete event per tombstone,
 * prevKv from the version before — in revision order and, within a revision, in key order.
 * A watcher that starts in the past catches up this way before it follows live events, and
 * the rebuilt events equal the ones apply returned (within a revision, sorted by key).
 *
 * A range read at every revision would cost a read per revision and key; instead each key's
 * versions are read newest first down to the start revision (one seek per key, then only the
 * versions that are reported plus the one before them), and the events are sorted once.
 */
import { EMPTY, compareBytes, prefixEnd, subrange } from "./bytes.js";
import type { KvReader } from "./engine.js";
import { decodeDescendingRevision, decodeStoredVersion, type KeyLayout, type StoredVersion } from "./keys.js";
import { toKeyValue, type KeyInterval } from "./range.js";
import type { KeyValue, KvEvent } from "./results.js";

/** The events of one revision, in key order. */
export interface RevisionChanges {
  readonly revision: bigint;
  readonly events: readonly KvEvent[];
}

export interface HistoryPage {
  /** Ascending by revision; only revisions with events in the interval appear. */
  readonly changes: readonly RevisionChanges[];
  /** Every event of the interval from the start revision up to this revision is in `changes`. */
  readonly through: bigint;
  /** `through` is the revision the history was read at: there is nothing newer. */
  readonly complete: boolean;
}

interface TimedEvent {
  readonly revision: bigint;
  readonly event: KvEvent;
}

function eventOf(
  key: Uint8Array,
  revision: bigint,
  version: StoredVersion,
  before: KeyValue | null,
): KvEvent {
  if (!version.tombstone) return { type: "put", kv: toKeyValue(key, version), prevKv: before };
  const kv = { key, value: EMPTY, createRevision: 0n, modRevision: revision, version: 0n, lease: 0n };
  return { type: "delete", kv, prevKv: before };
}

/** Adds to `out` the events of one key at `from` and later, newest first; its versions begin at `versionsStart`. */
function keyEvents(
  reader: KvReader,
  layout: KeyLayout,
  versionsStart: Uint8Array,
  from: bigint,
  out: TimedEvent[],
): void {
  const { userKey } = layout.parseDataKey(versionsStart);
  let newer: { revision: bigint; version: StoredVersion } | null = null;
  const end = prefixEnd(subrange(versionsStart, 0, versionsStart.length - 8));
  for (const { key, value } of reader.scan(versionsStart, end)) {
    const revision = decodeDescendingRevision(key, key.length - 8);
    const version = decodeStoredVersion(value);
    if (newer !== null) {
      const before = version.tombstone ? null : toKeyValue(userKey, version);
      out.push({ revision: newer.revision, event: eventOf(userKey, newer.revision, newer.version, before) });
    }
    if (revision < from) return;
    newer = { revision, version };
  }
  // The oldest version left: either the key's first, or compaction removed the ones before.
  if (newer !== null) {
    out.push({ revision: newer.revision, event: eventOf(userKey, newer.revision, newer.version, null) });
  }
}

/**
 * The events of `interval` at revisions >= `from`, read at `current` (the reader's revision;
 * `from` must be above the compacted revision, or events of compacted revisions are missing).
 * At most about `maxEvents` are returned — never part of a revision, so a page may exceed it
 * by the rest of its last revision — and `through` says how far the page reaches.
 */
export function readHistory(
  reader: KvReader,
  layout: KeyLayout,
  interval: KeyInterval,
  from: bigint,
  current: bigint,
  maxEvents: number,
): HistoryPage {
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
    throw new RangeError(`maxEvents must be a positive integer, got ${maxEvents}`);
  }
  const found: TimedEvent[] = [];
  if (interval.single) {
    keyEvents(reader, layout, layout.dataKey(interval.start, current), from, found);
  } else {
    const upper = interval.end === null ? layout.dataEnd : layout.versionsPrefix(interval.end);
    let at = layout.versionsPrefix(interval.start);
    for (;;) {
      let first: Uint8Array | undefined;
      for (const { key } of reader.scan(at, upper, { limit: 1 })) first = key;
      if (first === undefined) break;
      keyEvents(reader, layout, first, from, found);
      const next = prefixEnd(subrange(first, 0, first.length - 8));
      if (next === null)
        throw new Error("invariant violated: an encoded user key ends in 0x01, so it has a successor");
      at = next;
    }
  }
  found.sort((a, b) =>
    a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : compareBytes(a.event.kv.key, b.event.kv.key),
  );
  let taken = found.length;
  if (found.length > maxEvents) {
    const last = found[maxEvents - 1]!.revision;
    taken = maxEvents;
    while (taken < found.length && found[taken]!.revision === last) taken += 1;
  }
  const changes: { revision: bigint; events: KvEvent[] }[] = [];
  for (const { revision, event } of found.slice(0, taken)) {
    const group = changes[changes.length - 1];
    if (group !== undefined && group.revision === revision) group.events.push(event);
    else changes.push({ revision, events: [event] });
  }
  const complete = taken === found.length;
  const through = complete ? current : changes[changes.length - 1]!.revision;
  return { changes, through, complete };
}
