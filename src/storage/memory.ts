/**
 * MemoryStorageEngine: the storage contracts of contracts.ts held in memory, for tests and the
 * deterministic simulator. It models a disk: every write is applied to the visible state and
 * appended to a journal of pending writes; sync makes the journal durable; crash throws the
 * visible state away and restarts from the durable state plus a chosen prefix of the journal,
 * as a power loss would. No timers, no clock: latency is the simulator's business.
 *
 * Each write is validated against the visible state before anything changes, and is stored
 * as a frozen, normalized record (journal.ts) shared by the visible and durable copies.
 */
import { StorageUsageError, type ReplicaStorage, type StorageEngine } from "./contracts.js";
import {
  JournaledReplicaStorage,
  RECORD_OVERHEAD_BYTES,
  ReplicaState,
  recordSize,
  type JournalRecord,
} from "./journal.js";
import { requireCount } from "./rules.js";

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

export class MemoryStorageEngine implements StorageEngine {
  #visible = new Map<number, ReplicaState>();
  readonly #durable = new Map<number, ReplicaState>();
  #pending: JournalRecord[] = [];
  #handles = new Map<number, JournaledReplicaStorage>();
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
    const handle: JournaledReplicaStorage = new JournaledReplicaStorage(groupId, {
      state: () => this.#liveState(groupId, generation, handle),
      record: (write) => {
        this.#liveState(groupId, generation, handle).apply(write);
        this.#pending.push(write);
        this.#writes++;
        this.#bytesWritten += recordSize(write);
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

  /** Makes every pending write durable, now (memory never waits). */
  syncNow(): true {
    if (this.#pending.length === 0) return true;
    for (const write of this.#pending) this.#makeDurable(write);
    this.#pending = [];
    this.#syncs++;
    return true;
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

  #liveState(groupId: number, generation: number, handle: JournaledReplicaStorage): ReplicaState {
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

  #makeDurable(write: JournalRecord): void {
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
