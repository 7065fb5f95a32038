/**
 * The in-memory half of the journaled engines (the simulator's MemoryStorageEngine and the
 * durable WalStorageEngine): one replica's state (ReplicaState), the validated, normalized
 * records that change it (JournalRecord), and the ReplicaStorage handle over it
 * (JournaledReplicaStorage). A handle validates each write against the live state with the
 * shared rules of rules.ts and hands the record to its engine, which applies it to the live
 * state and journals it; how the journal becomes durable is the engine's business.
 *
 * Records are frozen and shared by every copy of a state; byte arrays are copied on the way
 * in and on the way out, so no caller can reach stored state.
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
import { StorageUsageError, type ReplicaStorage } from "./contracts.js";
import {
  checkAppend,
  checkAppliedIndex,
  checkCompact,
  checkHardState,
  checkSnapshot,
  logHolds,
  type ReplicaFacts,
} from "./rules.js";

/** One journaled write, already validated and normalized (entries trimmed, values frozen). */
export type JournalRecord =
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

/** Fixed per-record overhead counted in bytesWritten, standing in for keys and headers. */
export const RECORD_OVERHEAD_BYTES = 16;

export function freezeEntry(entry: Entry): Entry {
  return Object.freeze({ term: entry.term, index: entry.index, type: entry.type, data: entry.data.slice() });
}

export function freezeConfState(confState: ConfState): ConfState {
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

/** Approximate encoded size of a record, for counters. */
export function recordSize(write: JournalRecord): number {
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

/** A replica's whole state: its log (entries offset+1.. in order) and its metadata. */
export interface ReplicaImage {
  /** Index of the entry just before the first stored one: compacted, snapshot or dummy. */
  readonly offset: number;
  readonly offsetTerm: number;
  readonly entries: readonly Entry[];
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly appliedIndex: number;
  readonly snapshot: Snapshot;
}

/**
 * One replica's state as of some point of the journal. `prepare*` methods validate a
 * requested write against this state (the shared rules of rules.ts) and return its normalized
 * record (or null when it changes nothing); `apply` performs a record. Records are only ever
 * applied, in journal order, to states that have seen every earlier record, so `apply` needs
 * no validation.
 */
export class ReplicaState implements ReplicaFacts {
  /** Index of the entry just before the first stored one: compacted, snapshot or dummy. */
  private offset = 0;
  private offsetTerm = 0;
  private log: Entry[] = [];
  hardState: HardState = FROZEN_EMPTY_HARD_STATE;
  confState: ConfState = FROZEN_EMPTY_CONF_STATE;
  appliedIndex = 0;
  snapshot: Snapshot = EMPTY_SNAPSHOT;

  /** Everything the state holds (shared, frozen values): for a copy, or a write-ahead log checkpoint. */
  image(): ReplicaImage {
    return {
      offset: this.offset,
      offsetTerm: this.offsetTerm,
      entries: this.log,
      hardState: this.hardState,
      confState: this.confState,
      appliedIndex: this.appliedIndex,
      snapshot: this.snapshot,
    };
  }

  /** The state an image describes; it takes the image's values, which must be frozen. */
  static fromImage(image: ReplicaImage): ReplicaState {
    const state = new ReplicaState();
    state.offset = image.offset;
    state.offsetTerm = image.offsetTerm;
    state.log = [...image.entries];
    state.hardState = image.hardState;
    state.confState = image.confState;
    state.appliedIndex = image.appliedIndex;
    state.snapshot = image.snapshot;
    return state;
  }

  clone(): ReplicaState {
    return ReplicaState.fromImage(this.image());
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

  prepareAppend(groupId: number, entries: readonly Entry[]): JournalRecord | null {
    const kept = checkAppend(this, entries);
    if (kept.length === 0) return null;
    return Object.freeze({ kind: "append", groupId, entries: Object.freeze(kept.map(freezeEntry)) });
  }

  prepareCompact(groupId: number, index: number): JournalRecord | null {
    if (!checkCompact(this, index)) return null;
    return Object.freeze({ kind: "compact", groupId, index });
  }

  prepareHardState(groupId: number, hardState: HardState): JournalRecord {
    checkHardState(this, hardState);
    const frozen = Object.freeze({ term: hardState.term, vote: hardState.vote, commit: hardState.commit });
    return Object.freeze({ kind: "hardState", groupId, hardState: frozen });
  }

  prepareApplied(groupId: number, index: number, confState: ConfState | undefined): JournalRecord {
    checkAppliedIndex(this, index);
    const frozenConf = confState === undefined ? null : freezeConfState(confState);
    return Object.freeze({ kind: "applied", groupId, index, confState: frozenConf });
  }

  prepareSnapshot(groupId: number, snapshot: Snapshot): JournalRecord {
    checkSnapshot(this, snapshot);
    const { index, term } = snapshot.metadata;
    const metadata = Object.freeze({ index, term, confState: freezeConfState(snapshot.metadata.confState) });
    return Object.freeze({
      kind: "snapshot",
      groupId,
      snapshot: Object.freeze({ metadata, data: snapshot.data.slice() }),
    });
  }

  apply(write: JournalRecord): void {
    switch (write.kind) {
      case "append": {
        const first = write.entries[0];
        if (first === undefined) throw new Error("journaled storage: journaled an empty append");
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
        throw new Error("journaled storage: a group drop is applied by the engine, not to the group's state");
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
      throw new Error(`journaled storage: entry ${index} missing or misplaced (offset ${this.offset})`);
    }
    return entry;
  }
}

/** What a replica handle may do to its engine: read the live state, record a write. */
export interface ReplicaAccess {
  /** The live state; throws if the engine crashed since the handle was made. */
  state(): ReplicaState;
  /** Applies a validated write to the live state and journals it. */
  record(write: JournalRecord): void;
}

function copyEntryOut(entry: Entry): Entry {
  return { term: entry.term, index: entry.index, type: entry.type, data: entry.data.slice() };
}

export class JournaledReplicaStorage implements ReplicaStorage {
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

  private recordIfAny(write: JournalRecord | null): void {
    if (write !== null) this.access.record(write);
  }
}
