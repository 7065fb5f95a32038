/**
 * One group's storage in the lmdb engine: its state in memory (`GroupState`) and the
 * ReplicaStorage handle over it (`LmdbReplicaStorage`).
 *
 * The metadata (hard state, membership, applied index, log bounds, snapshot metadata) lives
 * in memory and is written through; log entries and snapshot data are read from the store.
 * Writes take effect in memory at once and are queued as store writes for the engine's next
 * sync; until that commit lands, the entries and snapshot they wrote are kept in memory too
 * (tagged with their batch), so reads see every write immediately. Once a batch commits, what
 * it wrote is forgotten and read back from the store.
 */
import { LogCompactedError, LogUnavailableError, entrySize, type InitialState } from "../../raft/storage.js";
import {
  EMPTY_BYTES,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  type SnapshotMetadata,
} from "../../raft/types.js";
import { StorageUsageError, type ReplicaStorage } from "../contracts.js";
import {
  checkAppend,
  checkAppliedIndex,
  checkCompact,
  checkHardState,
  checkSnapshot,
  type ReplicaFacts,
} from "../rules.js";
import {
  RecordKind,
  decodeEntry,
  decodeEntryTerm,
  decodeSnapshot,
  encodeApplied,
  frameEntry,
  encodeHardState,
  encodeLogStart,
  encodeSnapshot,
  entriesEnd,
  entryKey,
  frame,
  groupRecordKey,
  payloadOf,
} from "./layout.js";
import { EMPTY_SNAPSHOT_METADATA, type RecoveredGroup } from "./recovery.js";
import type { DurableStore, StoreWrite } from "./store.js";

/** What a replica handle needs from its engine. */
export interface ReplicaHost {
  readonly store: DurableStore;
  /** Throws unless reads may be served (the engine is open and has not failed). */
  checkReadable(): void;
  /** Throws unless writes may be accepted (open, not failed, disk not full). */
  checkWritable(): void;
  /** Queues `group`'s `writes` for the next sync; returns the id of the batch that will commit them. */
  enqueue(group: GroupState, writes: readonly StoreWrite[]): number;
}

/** Synced entries per group kept in memory for term lookups and re-reads of the log tail. */
const RECENT_ENTRIES_CACHED = 1024;

/** A value written by a batch that has not committed yet. */
interface Unsynced<T> {
  readonly value: T;
  readonly batch: number;
}

function freezeConfState(confState: ConfState): ConfState {
  return Object.freeze({
    voters: Object.freeze([...confState.voters]),
    learners: Object.freeze([...confState.learners]),
    votersOutgoing: Object.freeze([...confState.votersOutgoing]),
    learnersNext: Object.freeze([...confState.learnersNext]),
    autoLeave: confState.autoLeave,
  });
}

function freezeHardState(hardState: HardState): HardState {
  return Object.freeze({ term: hardState.term, vote: hardState.vote, commit: hardState.commit });
}

function freezeSnapshotMetadata(metadata: SnapshotMetadata): SnapshotMetadata {
  return Object.freeze({
    index: metadata.index,
    term: metadata.term,
    confState: freezeConfState(metadata.confState),
  });
}

/** A copy of `bytes`; `slice()` would not copy when a caller hands in a Buffer. */
function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

function freezeEntry(entry: Entry): Entry {
  return Object.freeze({
    term: entry.term,
    index: entry.index,
    type: entry.type,
    data: copyBytes(entry.data),
  });
}

function copyEntryOut(entry: Entry): Entry {
  return { term: entry.term, index: entry.index, type: entry.type, data: copyBytes(entry.data) };
}

function put(key: Uint8Array, payload: Uint8Array): StoreWrite {
  return { kind: "put", key, value: frame(key, payload) };
}

/** One group's state: what reads return and what the contract's rules check writes against. */
export class GroupState implements ReplicaFacts {
  /** Index of the entry just before the first stored one: compacted, snapshot or dummy. */
  offset: number;
  offsetTerm: number;
  last: number;
  hardState: HardState;
  confState: ConfState;
  appliedIndex: number;
  snapshotMetadata: SnapshotMetadata;
  readonly unsyncedEntries = new Map<number, Unsynced<Entry>>();
  /**
   * The newest synced entries, as stored: the leader re-reads its log tail to send appends and
   * Raft asks terms near the tail all the time, and an lmdb read plus decode costs far more
   * than a map lookup. Bounded by RECENT_ENTRIES_CACHED; anything evicted is still in lmdb.
   * A cached entry never answers wrongly: reads are bounds-checked against the log first, and
   * an index that is rewritten goes to `unsyncedEntries` (read first) until its batch commits,
   * when it replaces the cached entry.
   */
  private readonly recentEntries = new Map<number, Entry>();
  unsyncedSnapshot: Unsynced<Snapshot> | null = null;
  /** The engine dropped the group: handles over this state refuse every call. */
  dropped = false;

  constructor(
    readonly groupId: number,
    private readonly store: DurableStore,
    recovered: RecoveredGroup | null,
  ) {
    this.offset = recovered?.logStart.index ?? 0;
    this.offsetTerm = recovered?.logStart.term ?? 0;
    this.last = recovered?.lastIndex ?? 0;
    this.hardState = freezeHardState(recovered?.hardState ?? EMPTY_HARD_STATE);
    this.confState = freezeConfState(recovered?.applied.confState ?? EMPTY_CONF_STATE);
    this.appliedIndex = recovered?.applied.index ?? 0;
    this.snapshotMetadata = freezeSnapshotMetadata(recovered?.snapshotMetadata ?? EMPTY_SNAPSHOT_METADATA);
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  snapshotIndex(): number {
    return this.snapshotMetadata.index;
  }

  term(index: number): number {
    if (index < this.offset) throw new LogCompactedError(index, this.firstIndex());
    if (index > this.last) throw new LogUnavailableError(index, this.last);
    if (index === this.offset) return this.offsetTerm;
    const held = this.unsyncedEntries.get(index)?.value ?? this.recentEntries.get(index);
    return held !== undefined ? held.term : decodeEntryTerm(this.storedPayload(index));
  }

  /** The entry at `index` (within the log's bounds), as a copy the caller owns. */
  readEntry(index: number): Entry {
    const held = this.unsyncedEntries.get(index)?.value ?? this.recentEntries.get(index);
    return held !== undefined ? copyEntryOut(held) : decodeEntry(index, this.storedPayload(index));
  }

  /** The latest snapshot, as a copy the caller owns. */
  readSnapshot(): Snapshot {
    if (this.unsyncedSnapshot !== null) {
      const { metadata, data } = this.unsyncedSnapshot.value;
      return { metadata, data: copyBytes(data) };
    }
    if (this.snapshotMetadata.index === 0)
      return { metadata: this.snapshotMetadata, data: copyBytes(EMPTY_BYTES) };
    const value = this.store.get(groupRecordKey(this.groupId, RecordKind.Snapshot));
    if (value === undefined) {
      throw new Error(
        `lmdb storage: snapshot ${this.snapshotMetadata.index} of group ${this.groupId} is missing`,
      );
    }
    return { metadata: this.snapshotMetadata, data: decodeSnapshot(payloadOf(value)).data };
  }

  /** Batches up to `batch` have committed: read what they wrote from the store from now on. */
  forgetSynced(batch: number): void {
    for (const [index, unsynced] of this.unsyncedEntries) {
      if (unsynced.batch > batch) continue;
      this.unsyncedEntries.delete(index);
      this.recentEntries.set(index, unsynced.value);
    }
    // Oldest first: a Map iterates in insertion order, and entries are appended in index order.
    for (const cached of this.recentEntries.keys()) {
      if (this.recentEntries.size <= RECENT_ENTRIES_CACHED) break;
      this.recentEntries.delete(cached);
    }
    if (this.unsyncedSnapshot !== null && this.unsyncedSnapshot.batch <= batch) this.unsyncedSnapshot = null;
  }

  private storedPayload(index: number): Uint8Array {
    const value = this.store.get(entryKey(this.groupId, index));
    if (value === undefined) {
      throw new Error(
        `lmdb storage: entry ${index} of group ${this.groupId} is missing (log ${this.firstIndex()}..${this.last})`,
      );
    }
    return payloadOf(value);
  }
}

export class LmdbReplicaStorage implements ReplicaStorage {
  readonly groupId: number;

  constructor(
    private readonly host: ReplicaHost,
    private readonly state: GroupState,
  ) {
    this.groupId = state.groupId;
  }

  initialState(): InitialState {
    this.checkReadable();
    return { hardState: this.state.hardState, confState: this.state.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.checkReadable();
    const state = this.state;
    if (lo > hi) throw new StorageUsageError(`entries(${lo}, ${hi}): lo > hi`);
    if (lo < state.firstIndex()) throw new LogCompactedError(lo, state.firstIndex());
    if (hi > state.lastIndex() + 1) throw new LogUnavailableError(hi - 1, state.lastIndex());
    const found: Entry[] = [];
    let size = 0;
    for (let index = lo; index < hi; index++) {
      const entry = state.readEntry(index);
      size += entrySize(entry);
      if (found.length > 0 && size > maxBytes) break;
      found.push(entry);
    }
    return found;
  }

  term(index: number): number {
    this.checkReadable();
    return this.state.term(index);
  }

  firstIndex(): number {
    this.checkReadable();
    return this.state.firstIndex();
  }

  lastIndex(): number {
    this.checkReadable();
    return this.state.lastIndex();
  }

  hardState(): HardState {
    this.checkReadable();
    return this.state.hardState;
  }

  confState(): ConfState {
    this.checkReadable();
    return this.state.confState;
  }

  appliedIndex(): number {
    this.checkReadable();
    return this.state.appliedIndex;
  }

  snapshot(): Snapshot {
    this.checkReadable();
    return this.state.readSnapshot();
  }

  append(entries: readonly Entry[]): void {
    this.checkWritable();
    const state = this.state;
    const kept = checkAppend(state, entries).map(freezeEntry);
    const first = kept[0];
    if (first === undefined) return;
    const newLast = first.index + kept.length - 1;
    const writes: StoreWrite[] = [];
    if (state.last > newLast) {
      writes.push({
        kind: "deleteRange",
        start: entryKey(this.groupId, newLast + 1),
        end: entriesEnd(this.groupId),
      });
    }
    for (const entry of kept) {
      const key = entryKey(this.groupId, entry.index);
      writes.push({ kind: "put", key, value: frameEntry(key, entry) });
    }
    const batch = this.host.enqueue(this.state, writes);
    for (const entry of kept) state.unsyncedEntries.set(entry.index, { value: entry, batch });
    state.last = newLast;
  }

  compact(index: number): void {
    this.checkWritable();
    const state = this.state;
    if (!checkCompact(state, index)) return;
    const term = state.term(index);
    this.host.enqueue(this.state, [this.dropEntriesThrough(index), this.logStartWrite(index, term)]);
    state.offset = index;
    state.offsetTerm = term;
  }

  setHardState(hardState: HardState): void {
    this.checkWritable();
    checkHardState(this.state, hardState);
    const frozen = freezeHardState(hardState);
    this.host.enqueue(this.state, [
      put(groupRecordKey(this.groupId, RecordKind.HardState), encodeHardState(frozen)),
    ]);
    this.state.hardState = frozen;
  }

  setConfState(confState: ConfState): void {
    this.checkWritable();
    const frozen = freezeConfState(confState);
    this.host.enqueue(this.state, [this.appliedWrite(this.state.appliedIndex, frozen)]);
    this.state.confState = frozen;
  }

  setAppliedIndex(index: number, confState?: ConfState): void {
    this.checkWritable();
    checkAppliedIndex(this.state, index);
    const frozen = confState === undefined ? this.state.confState : freezeConfState(confState);
    this.host.enqueue(this.state, [this.appliedWrite(index, frozen)]);
    this.state.appliedIndex = index;
    this.state.confState = frozen;
  }

  saveSnapshot(snapshot: Snapshot): void {
    this.checkWritable();
    const state = this.state;
    const logAgrees = checkSnapshot(state, snapshot);
    const metadata = freezeSnapshotMetadata(snapshot.metadata);
    const frozen: Snapshot = Object.freeze({ metadata, data: copyBytes(snapshot.data) });
    const { index, term } = metadata;
    const writes: StoreWrite[] = [];
    if (!logAgrees) {
      writes.push({ kind: "deleteRange", start: entryKey(this.groupId, 0), end: entriesEnd(this.groupId) });
    } else if (index > state.offset) {
      writes.push(this.dropEntriesThrough(index));
    }
    const movesLogStart = !logAgrees || index > state.offset;
    if (movesLogStart) writes.push(this.logStartWrite(index, term));
    writes.push(put(groupRecordKey(this.groupId, RecordKind.Snapshot), encodeSnapshot(frozen)));
    const advancesApplied = index > state.appliedIndex;
    if (advancesApplied) writes.push(this.appliedWrite(index, metadata.confState));
    const batch = this.host.enqueue(this.state, writes);
    if (movesLogStart) {
      state.offset = index;
      state.offsetTerm = term;
    }
    if (!logAgrees) state.last = index;
    state.snapshotMetadata = metadata;
    state.unsyncedSnapshot = { value: frozen, batch };
    if (advancesApplied) {
      state.appliedIndex = index;
      state.confState = metadata.confState;
    }
  }

  private checkReadable(): void {
    this.host.checkReadable();
    this.checkNotDropped();
  }

  private checkWritable(): void {
    this.host.checkWritable();
    this.checkNotDropped();
  }

  private checkNotDropped(): void {
    if (this.state.dropped)
      throw new StorageUsageError(`storage of group ${this.groupId} was dropped; open it again`);
  }

  private dropEntriesThrough(index: number): StoreWrite {
    return { kind: "deleteRange", start: entryKey(this.groupId, 0), end: entryKey(this.groupId, index + 1) };
  }

  private logStartWrite(index: number, term: number): StoreWrite {
    return put(groupRecordKey(this.groupId, RecordKind.LogStart), encodeLogStart({ index, term }));
  }

  private appliedWrite(index: number, confState: ConfState): StoreWrite {
    return put(groupRecordKey(this.groupId, RecordKind.Applied), encodeApplied({ index, confState }));
  }
}
