/**
 * The storage contracts: what one replica's log, metadata and snapshot storage promise
 * (LogStore, MetaStore, SnapshotStore, together ReplicaStorage), and what a node's storage
 * engine promises about durability across all the replicas it hosts (StorageEngine).
 *
 * Durability in one paragraph: every write is visible to reads as soon as the call returns,
 * but it is *durable* only once a later `StorageEngine.sync()` has resolved. Writes reach the
 * disk in the order they were made, across all replicas of one engine, so a crash loses at
 * most a suffix of the unsynced writes and never leaves a gap or a reordering. After each Raft
 * `Ready` the caller writes the snapshot (if any), then the entries, then the hard state; when
 * `ready.mustSync` it awaits `sync()` before it sends the Ready's messages or tells the core the
 * state is persisted (`advance`), because those messages promise votes and log entries that a
 * crash must not take back.
 */
import type { RaftLogReader } from "../raft/storage.js";
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.js";

/**
 * The caller broke the storage contract: a gap in the log, a batch that is not contiguous, a
 * write that would undo durable Raft promises (committed entries, a vote, a term), or a handle
 * used after its engine crashed. Nothing was written. This is a bug in the caller, not a
 * condition to recover from.
 */
export class StorageUsageError extends Error {
  constructor(message: string) {
    super(`storage contract violated: ${message}`);
    this.name = "StorageUsageError";
  }
}

/**
 * One replica's Raft log. The log holds entries firstIndex()..lastIndex(); the entry just
 * before firstIndex() has been compacted (or is the dummy entry at index 0 of a fresh log)
 * but its term is remembered, so term(firstIndex() - 1) is always answerable.
 */
export interface LogStore {
  /**
   * Entries in [lo, hi), at most `maxBytes` of payload (see `entrySize` in raft/storage.ts)
   * but always at least one entry when lo < hi. Throws LogCompactedError when lo <
   * firstIndex(), LogUnavailableError when hi > lastIndex() + 1, StorageUsageError when
   * lo > hi. The returned array and entries are the caller's: changing them changes nothing
   * stored.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of the entry at `index`, for firstIndex() - 1 ..= lastIndex(). Throws
   * LogCompactedError below that range and LogUnavailableError above it.
   */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /**
   * Appends `entries`, which must have consecutive indexes and non-decreasing terms, none
   * lower than the term of the entry they follow. Let i be the first new index:
   * - i > lastIndex() + 1 is a gap: StorageUsageError.
   * - i <= lastIndex(): the stored entries from i on are replaced (the conflicting suffix is
   *   truncated), even where terms agree; the log ends at the last new entry.
   * - Entries below firstIndex() are already covered by compaction or a snapshot; they are
   *   committed and therefore unchanged, so they are skipped (the one at firstIndex() - 1 must
   *   still carry the remembered term).
   * - Committed entries (index <= hardState().commit) are never replaced by a different term
   *   or truncated away: StorageUsageError.
   * An empty batch, or one wholly below firstIndex(), writes nothing. The entries are copied.
   */
  append(entries: readonly Entry[]): void;
  /**
   * Drops the entries up to and including `index`, remembering the term of `index`, so that
   * firstIndex() becomes index + 1. Compacting at or below firstIndex() - 1 is a no-op
   * (already compacted; this makes replay after a crash harmless); compacting past
   * lastIndex() is a StorageUsageError. The caller compacts only applied entries and keeps a
   * snapshot (or the means to produce one) at or beyond the compaction point, since a
   * follower that needs a compacted entry can only be caught up by a snapshot.
   */
  compact(index: number): void;
}

/**
 * One replica's Raft metadata: the hard state, and where application resumes after a restart
 * together with the membership as of that point.
 *
 * Why an applied index here: on restart the core must be told which entries were already
 * applied (so it does not hand them out again), and the membership it starts with
 * (`initialState().confState`) must be the one in force at exactly that index; otherwise a
 * configuration change would be applied twice or not at all. A runtime whose state machine
 * does not survive a restart by itself rebuilds it from `snapshot()` and leaves both values to
 * `saveSnapshot`; a runtime whose state machine is durable records its progress with
 * `setAppliedIndex`, passing the new membership in the same call when the applied entry was a
 * configuration change so that a crash cannot separate the two.
 */
export interface MetaStore {
  /** The last hard state written; EMPTY_HARD_STATE for a fresh replica. */
  hardState(): HardState;
  /**
   * Records the hard state. Raft never takes a durable promise back, so it is a
   * StorageUsageError to lower the term or the commit index, to change an existing vote
   * within the same term, or to set a commit index beyond lastIndex() (entries are written
   * before the hard state that commits them).
   */
  setHardState(hardState: HardState): void;
  /** Membership as of appliedIndex(); EMPTY_CONF_STATE for a fresh replica. */
  confState(): ConfState;
  /** Records the membership without moving the applied index, e.g. when bootstrapping a group. */
  setConfState(confState: ConfState): void;
  /** Entries up to this index have been applied; 0 for a fresh replica. */
  appliedIndex(): number;
  /**
   * Records that entries up to `index` are applied, and if given, the membership that
   * resulted, in one write. The applied index never moves backwards and never passes what
   * is known to be committed (hardState().commit or the snapshot's index): StorageUsageError.
   */
  setAppliedIndex(index: number, confState?: ConfState): void;
}

/** One replica's latest snapshot: the state machine image as of some index. */
export interface SnapshotStore {
  /**
   * The latest saved snapshot (a copy); before any, an empty one at index 0, term 0.
   * The in-memory engine never throws SnapshotTemporarilyUnavailableError, but the core
   * must be prepared for engines that do.
   */
  snapshot(): Snapshot;
  /**
   * Installs `snapshot` (copied). Its index must exceed the current snapshot's index and must
   * not be older than firstIndex() - 1: StorageUsageError otherwise. Then:
   * - if the log holds the snapshot's index with the snapshot's term (a snapshot taken
   *   locally, or one that agrees with the log), only the prefix up to that index is dropped,
   *   exactly like compact(index), and the entries after it stay;
   * - otherwise the whole log is discarded: firstIndex() = index + 1, lastIndex() = index,
   *   term(index) = the snapshot's term. Discarding committed entries this way is a
   *   StorageUsageError (a snapshot cannot disagree with a committed entry).
   * If the snapshot is ahead of appliedIndex(), the applied index becomes its index and the
   * membership its confState (the snapshot's image is the state as of that index). The hard
   * state is not touched: the core supplies a new one (commit >= index) in the same Ready.
   */
  saveSnapshot(snapshot: Snapshot): void;
}

/**
 * Everything one replica hands to its Raft core (as RaftLogReader) and writes through after
 * each Ready. `initialState()` returns hardState() and confState().
 */
export interface ReplicaStorage extends LogStore, MetaStore, SnapshotStore, RaftLogReader {
  readonly groupId: number;
}

/**
 * One per node: the storage of every replica the node hosts, keyed by Raft group id (any
 * non-negative safe integer; nothing may assume there is only one group).
 */
export interface StorageEngine {
  /**
   * The storage of group `groupId`, created empty on first use. Calling it again returns
   * storage over the same data. A group's data becomes durable like any other write.
   */
  replica(groupId: number): ReplicaStorage;
  /**
   * Ids of the groups this engine has storage for, ascending: those opened since the engine
   * was (re)opened and those holding data that survived the last crash or restart.
   */
  groups(): number[];
  /**
   * Deletes every record of group `groupId` (log, hard state, membership, applied index,
   * snapshot) in one write that becomes durable like any other, at the next `sync()`: a crash
   * keeps the group whole or drops it whole. Afterwards `groups()` does not list it, handles
   * obtained before throw StorageUsageError, and a later `replica(groupId)` starts empty.
   * Dropping a group the engine does not hold writes nothing. For a replica the node destroys
   * (its range merged away); the caller makes sure nothing writes the group meanwhile.
   */
  dropGroup(groupId: number): void;
  /**
   * Makes every write made before the call durable, for all replicas at once (group commit:
   * one sync covers many groups' writes). Writes made while the sync is in flight may or may
   * not be covered; they are covered by the next sync.
   */
  sync(): Promise<void>;
  /**
   * Makes every write made before the call durable before returning, and returns true, when
   * that needs no waiting (nothing in flight, a write small enough to make at once); otherwise
   * makes nothing durable and returns false, and `sync()` is the way. Lets the caller send what
   * waited for durability in the same synchronous stretch. Throws where `sync()` would reject.
   */
  syncNow(): boolean;
}
