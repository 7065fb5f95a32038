/**
 * MemoryStorageEngine: the storage contracts of contracts.ts held in memory, for tests and the
 * deterministic simulator. It models a disk: every write is applied to the visible state and
 * appended to a journal of pending writes; sync makes the journal durable; crash throws the
 * visible state away and restarts from the durable state plus a chosen prefix of the journal,
 * as a power loss would. No timers, no clock: latency is the simulator's business.
 *
 * Each write is validated against the visible state before anything changes, and is stored
 * as a frozen, normalized record shared by the visible and durable copies. Byte arrays are
 * copied on the way in and on the way out, so no caller can reach stored state.
 */
import {
  LogCompactedError,
  LogUnavailableError,
  entriesSize,
  limitSize,
  type InitialState,
} from "../raft/storage.js";
import {
  EMPTY_BYTES,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
} from "../raft/types.js";
import { StorageUsageError, type ReplicaStorage, type StorageEngine } from "./contracts.js";
import {
  checkAppend,
  checkAppliedIndex,
  checkCompact,
  checkHardState,
  checkSnapshot,
  logHolds,
  requireCount,
  type ReplicaFacts,
} from "./rules.js";

/** One journaled write, already validated and normalized (entries trimmed, values frozen). */
type Write =
  | { readonly kind: "append"; readonly groupId: number; readonly entries: readonly Entry[] }
  | { readonly kind: "compact"; readonly groupId: number; readonly index: number }
  | { readonly kind: "hardState"; readonly groupId: number; readonly hardState: HardState }
  | { readonly kind: "confState"; readonly groupId: number; readonly confState: ConfState }
  | {
      readonly kind: "applied";
      readonly groupId: number;
      readonly index: number;
      readonly confState: ConfState | null;
    }
  | { readonly kind: "snapshot"; readonly groupId: number; readonly snapshot: Snapshot }
  /** Every record of the group goes (StorageEngine.dropGroup). */
  | { readonly kind: "drop"; readonly groupId: number };

/** Counters for metrics; they describe the simulated disk, so they survive crashes. */
export interface MemoryStorageStats {
  /** Writes accepted (rejected calls and no-ops are not counted). */
  readonly writes: number;
  /** Approximate encoded size of the accepted writes. */
  readonly bytesWritten: number;
  /** Syncs that had pending writes to make durable (what a disk would fsync). */
  readonly syncs: number;
  readonly crashes: number;
}

/** Fixed per-record overhead counted in bytesWritten, standing in for keys and headers. */
const RECORD_OVERHEAD_BYTES = 16;

function freezeEntry(entry: Entry): Entry {
  return Object.freeze({ term: entry.term, index: entry.index, type: entry.type, data: entry.data.slice() });
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

const FROZEN_EMPTY_HARD_STATE: HardState = Object.freeze({ ...EMPTY_HARD_STATE });
const FROZEN_EMPTY_CONF_STATE: ConfState = freezeConfState(EMPTY_CONF_STATE);
const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, confState: FROZEN_EMPTY_CONF_STATE }),
  data: EMPTY_BYTES,
});

function confStateIdCount(confState: ConfState): number {
  return (
    confState.voters.length +
    confState.learners.length +
    confState.votersOutgoing.length +
    confState.learnersNext.length
  );
}

function writeSize(write: Write): number {
  switch (write.kind) {
    case "append":
      return entriesSize(write.entries);
    case "compact":
    case "drop":
      return RECORD_OVERHEAD_BYTES;
    case "hardState":
      return RECORD_OVERHEAD_BYTES + 24;
    case "confState":
      return RECORD_OVERHEAD_BYTES + 8 * confStateIdCount(write.confState);
    case "applied":
      return RECORD_OVERHEAD_BYTES + 8 + (write.confState ? 8 * confStateIdCount(write.confState) : 0);
    case "snapshot":
      return (
        RECORD_OVERHEAD_BYTES +
        16 +
        8 * confStateIdCount(write.snapshot.metadata.confState) +
        write.snapshot.data.byteLength
      );
  }
}

/**
 * One replica's state as of some point of the journal. `prepare*` methods validate a
 * requested write against this state (the shared rules of rules.ts) and return its normalized
 * record (or null when it changes nothing); `apply` performs a record. Records are only ever
 * applied, in journal order, to states that have seen every earlier record, so `apply` needs
 * no validation.
 */
class ReplicaState implements ReplicaFacts {
  /** Index of the entry just before the first stored one: compacted, snapshot or dummy. */
  private offset = 0;
  private offsetTerm = 0;
  private log: Entry[] = [];
  hardState: HardState = FROZEN_EMPTY_HARD_STATE;
  confState: ConfState = FROZEN_EMPTY_CONF_STATE;
  appliedIndex = 0;
  snapshot: Snapshot = EMPTY_SNAPSHOT;

  clone(): ReplicaState {
    const copy = new ReplicaState();
    copy.offset = this.offset;
    copy.offsetTerm = this.offsetTerm;
    copy.log = [...this.log];
    copy.hardState = this.hardState;
    copy.confState = this.confState;
    copy.appliedIndex = this.appliedIndex;
    copy.snapshot = this.snapshot;
    return copy;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.log.length;
  }

  snapshotIndex(): number {
    return this.snapshot.metadata.index;
  }

  term(index: number): number {
    if (index < this.offset) throw new LogCompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new LogUnavailableError(index, this.lastIndex());
    if (index === this.offset) return this.offsetTerm;
    return this.storedEntry(index).term;
  }

  /** The stored (frozen, internal) entries in [lo, hi) within the byte limit. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo > hi) throw new StorageUsageError(`entries(${lo}, ${hi}): lo > hi`);
    if (lo < this.firstIndex()) throw new LogCompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.lastIndex());
    return limitSize(this.log.slice(lo - this.firstIndex(), hi - this.firstIndex()), maxBytes);
  }

  prepareAppend(groupId: number, entries: readonly Entry[]): Write | null {
    const kept = checkAppend(this, entries);
    if (kept.length === 0) return null;
    return Object.freeze({ kind: "append", groupId, entries: Object.freeze(kept.map(freezeEntry)) });
  }

  prepareCompact(groupId: number, index: number): Write | null {
    if (!checkCompact(this, index)) return null;
    return Object.freeze({ kind: "compact", groupId, index });
  }

  prepareHardState(groupId: number, hardState: HardState): Write {
    checkHardState(this, hardState);
    const frozen = Object.freeze({ term: hardState.term, vote: hardState.vote, commit: hardState.commit });
    return Object.freeze({ kind: "hardState", groupId, hardState: frozen });
  }

  prepareApplied(groupId: number, index: number, confState: ConfState | undefined): Write {
    checkAppliedIndex(this, index);
    const frozenConf = confState === undefined ? null : freezeConfState(confState);
    return Object.freeze({ kind: "applied", groupId, index, confState: frozenConf });
  }

  prepareSnapshot(groupId: number, snapshot: Snapshot): Write {
    checkSnapshot(this, snapshot);
    const { index, term } = snapshot.metadata;
    const metadata = Object.freeze({ index, term, confState: freezeConfState(snapshot.metadata.confState) });
    return Object.freeze({
      kind: "snapshot",
      groupId,
      snapshot: Object.freeze({ metadata, data: snapshot.data.slice() }),
    });
  }

  apply(write: Write): void {
    switch (write.kind) {
      case "append": {
        const first = write.entries[0];
        if (first === undefined) throw new Error("memory storage: journaled an empty append");
        this.log.length = first.index - this.firstIndex();
        for (const entry of write.entries) this.log.push(entry);
        return;
      }
      case "compact":
        this.compactTo(write.index);
        return;
      case "hardState":
        this.hardState = write.hardState;
        return;
      case "confState":
        this.confState = write.confState;
        return;
      case "applied":
        this.appliedIndex = write.index;
        if (write.confState !== null) this.confState = write.confState;
        return;
      case "snapshot":
        this.installSnapshot(write.snapshot);
        return;
      case "drop":
        throw new Error("memory storage: a group drop is applied by the engine, not to the group's state");
    }
  }

  private installSnapshot(snapshot: Snapshot): void {
    const { index, term, confState } = snapshot.metadata;
    if (logHolds(this, index, term)) {
      this.compactTo(index);
    } else {
      this.offset = index;
      this.offsetTerm = term;
      this.log = [];
    }
    this.snapshot = snapshot;
    if (index > this.appliedIndex) {
      this.appliedIndex = index;
      this.confState = confState;
    }
  }

  private compactTo(index: number): void {
    if (index <= this.offset) return;
    this.offsetTerm = this.storedEntry(index).term;
    this.log = this.log.slice(index - this.offset);
    this.offset = index;
  }

  private storedEntry(index: number): Entry {
    const entry = this.log[index - this.firstIndex()];
    if (entry === undefined || entry.index !== index) {
      throw new Error(`memory storage: entry ${index} missing or misplaced (offset ${this.offset})`);
    }
    return entry;
  }
}

/** What a replica handle may do to its engine: read the live state, record a write. */
interface ReplicaAccess {
  /** The live state; throws if the engine crashed since the handle was made. */
  state(): ReplicaState;
  /** Applies a validated write to the live state and journals it. */
  record(write: Write): void;
}

function copyEntryOut(entry: Entry): Entry {
  return { term: entry.term, index: entry.index, type: entry.type, data: entry.data.slice() };
}

class MemoryReplicaStorage implements ReplicaStorage {
  readonly groupId: number;
  private readonly access: ReplicaAccess;

  constructor(groupId: number, access: ReplicaAccess) {
    this.groupId = groupId;
    this.access = access;
  }

  initialState(): InitialState {
    const state = this.access.state();
    return { hardState: state.hardState, confState: state.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.access.state().entries(lo, hi, maxBytes).map(copyEntryOut);
  }

  term(index: number): number {
    return this.access.state().term(index);
  }

  firstIndex(): number {
    return this.access.state().firstIndex();
  }

  lastIndex(): number {
    return this.access.state().lastIndex();
  }

  append(entries: readonly Entry[]): void {
    this.recordIfAny(this.access.state().prepareAppend(this.groupId, entries));
  }

  compact(index: number): void {
    this.recordIfAny(this.access.state().prepareCompact(this.groupId, index));
  }

  hardState(): HardState {
    return this.access.state().hardState;
  }

  setHardState(hardState: HardState): void {
    this.access.record(this.access.state().prepareHardState(this.groupId, hardState));
  }

  confState(): ConfState {
    return this.access.state().confState;
  }

  setConfState(confState: ConfState): void {
    this.access.record(
      Object.freeze({ kind: "confState", groupId: this.groupId, confState: freezeConfState(confState) }),
    );
  }

  appliedIndex(): number {
    return this.access.state().appliedIndex;
  }

  setAppliedIndex(index: number, confState?: ConfState): void {
    this.access.record(this.access.state().prepareApplied(this.groupId, index, confState));
  }

  snapshot(): Snapshot {
    const stored = this.access.state().snapshot;
    return { metadata: stored.metadata, data: stored.data.slice() };
  }

  saveSnapshot(snapshot: Snapshot): void {
    this.access.record(this.access.state().prepareSnapshot(this.groupId, snapshot));
  }

  private recordIfAny(write: Write | null): void {
    if (write !== null) this.access.record(write);
  }
}

export class MemoryStorageEngine implements StorageEngine {
  #visible = new Map<number, ReplicaState>();
  readonly #durable = new Map<number, ReplicaState>();
  #pending: Write[] = [];
  #handles = new Map<number, MemoryReplicaStorage>();
  /** Bumped by every crash; handles from an earlier generation belong to a dead process. */
  #generation = 0;
  #writes = 0;
  #bytesWritten = 0;
  #syncs = 0;
  #crashes = 0;

  replica(groupId: number): ReplicaStorage {
    requireCount(groupId, "group id");
    const existing = this.#handles.get(groupId);
    if (existing !== undefined) return existing;
    if (!this.#visible.has(groupId)) this.#visible.set(groupId, new ReplicaState());
    const generation = this.#generation;
    const handle: MemoryReplicaStorage = new MemoryReplicaStorage(groupId, {
      state: () => this.#liveState(groupId, generation, handle),
      record: (write) => {
        this.#liveState(groupId, generation, handle).apply(write);
        this.#pending.push(write);
        this.#writes++;
        this.#bytesWritten += writeSize(write);
      },
    });
    this.#handles.set(groupId, handle);
    return handle;
  }

  groups(): number[] {
    return [...this.#visible.keys()].sort((a, b) => a - b);
  }

  /**
   * Forgets group `groupId`: its log, hard state, membership, applied index and snapshot, as
   * one journaled write (durable after the next sync, like any other). Handles obtained before
   * stop working; a later `replica(groupId)` starts empty. Dropping a group the engine does not
   * hold writes nothing.
   */
  dropGroup(groupId: number): void {
    requireCount(groupId, "group id");
    if (!this.#visible.has(groupId)) return;
    this.#visible.delete(groupId);
    this.#handles.delete(groupId);
    this.#pending.push(Object.freeze({ kind: "drop", groupId }));
    this.#writes++;
    this.#bytesWritten += RECORD_OVERHEAD_BYTES;
  }

  /** Resolves at once: the journal is made durable synchronously (see syncNow). */
  sync(): Promise<void> {
    this.syncNow();
    return Promise.resolve();
  }

  /** Makes every pending write durable, now. */
  syncNow(): void {
    if (this.#pending.length === 0) return;
    for (const write of this.#pending) this.#makeDurable(write);
    this.#pending = [];
    this.#syncs++;
  }

  /** Writes made since the last sync: the ones a crash may lose. */
  pendingWriteCount(): number {
    return this.#pending.length;
  }

  /**
   * Power loss and restart: the first `keepPendingPrefix` pending writes reach the disk (writes
   * land in order), the rest are lost, and the engine reopens on what the disk holds. Handles
   * obtained before the crash stop working; ask `replica()` again.
   */
  crash(keepPendingPrefix = 0): void {
    requireCount(keepPendingPrefix, "kept pending writes");
    if (keepPendingPrefix > this.#pending.length) {
      throw new StorageUsageError(
        `cannot keep ${keepPendingPrefix} of ${this.#pending.length} pending writes`,
      );
    }
    for (const write of this.#pending.slice(0, keepPendingPrefix)) this.#makeDurable(write);
    this.#pending = [];
    this.#visible = new Map([...this.#durable].map(([groupId, state]) => [groupId, state.clone()]));
    this.#handles = new Map();
    this.#generation++;
    this.#crashes++;
  }

  stats(): MemoryStorageStats {
    return {
      writes: this.#writes,
      bytesWritten: this.#bytesWritten,
      syncs: this.#syncs,
      crashes: this.#crashes,
    };
  }

  #liveState(groupId: number, generation: number, handle: MemoryReplicaStorage): ReplicaState {
    if (generation !== this.#generation) {
      throw new StorageUsageError(`storage of group ${groupId} was opened before a crash; open it again`);
    }
    if (this.#handles.get(groupId) !== handle) {
      throw new StorageUsageError(`storage of group ${groupId} was dropped; open it again`);
    }
    const state = this.#visible.get(groupId);
    if (state === undefined) throw new Error(`memory storage: no live state for open group ${groupId}`);
    return state;
  }

  #makeDurable(write: Write): void {
    if (write.kind === "drop") this.#durable.delete(write.groupId);
    else this.#durableState(write.groupId).apply(write);
  }

  #durableState(groupId: number): ReplicaState {
    let state = this.#durable.get(groupId);
    if (state === undefined) {
      state = new ReplicaState();
      this.#durable.set(groupId, state);
    }
    return state;
  }
}
