/**
 * LmdbStorageEngine: the node's durable StorageEngine, one lmdb environment for every Raft
 * group the node hosts (layout.ts has the keys, store.ts the lmdb settings, recovery.ts what
 * opening checks, replica.ts one group's storage).
 *
 * Group commit: every write, from any replica, is applied to memory at once (reads see it)
 * and appended to one queue of store writes. `sync()` commits the whole queue as ONE lmdb
 * transaction — one fsync for all groups — and resolves once it is durable. While a commit is
 * in flight, later `sync()` calls share a single follow-up commit that takes everything queued
 * by the time it starts. A crash therefore loses a suffix of the unsynced writes, in write
 * order across groups: transactions are atomic and commit in order.
 *
 * Failures: a failed commit poisons the engine (StorageFatalError from every later call, the
 * cause attached) and is never retried; a full disk refuses writes with DiskFullError but keeps
 * serving reads. Either way the node is expected to stop; a restart recovers the durable state.
 */
import { resolve } from "node:path";
import { StorageUsageError, type ReplicaStorage, type StorageEngine } from "../contracts.js";
import { requireCount, requirePositive } from "../rules.js";
import { EngineHealth } from "../engine-health.js";
import { StorageFatalError, type StorageLogger } from "../errors.js";
import { recover } from "./recovery.js";
import { SerialCommits } from "../serial-commits.js";
import { groupKeyRange } from "./layout.js";
import { GroupState, LmdbReplicaStorage, type ReplicaHost } from "./replica.js";
import { openLmdbStore, type DurableStore, type StoreWrite } from "./store.js";

export type { StorageLogger } from "../errors.js";

/** Initial map size: address space only (the file grows with the data), and lmdb-js grows the map past it. */
export const DEFAULT_MAP_SIZE_BYTES = 64 * 2 ** 30;

export interface LmdbStorageOptions {
  /** Directory of the node's lmdb environment; created when missing. */
  readonly path: string;
  /** Initial size of the memory map (default DEFAULT_MAP_SIZE_BYTES). */
  readonly mapSizeBytes?: number;
  /** Receives warnings about what opening repaired (default: console.warn). */
  readonly logger?: StorageLogger;
}

export interface LmdbStorageStats {
  /** Transactions committed by sync (each one fsync for all groups). */
  readonly commits: number;
  /** Key and value bytes those transactions wrote. */
  readonly bytesCommitted: number;
}

const CONSOLE_LOGGER: StorageLogger = { warn: (message) => console.warn(message) };

/** Directories with an engine open in this process: two engines on one directory would diverge. */
const openPaths = new Set<string>();

function writeBytes(write: StoreWrite): number {
  return write.kind === "put"
    ? write.key.byteLength + write.value.byteLength
    : write.start.byteLength + write.end.byteLength;
}

export class LmdbStorageEngine implements StorageEngine {
  readonly #store: DurableStore;
  readonly #release: () => void;
  readonly #states = new Map<number, GroupState>();
  readonly #handles = new Map<number, LmdbReplicaStorage>();
  readonly #host: ReplicaHost;
  readonly #health: EngineHealth;
  #pending: StoreWrite[] = [];
  #pendingBytes = 0;
  /** Id of the batch that writes made now belong to; the next commit takes it. */
  #openBatch = 1;
  /** The groups written to in the open batch: the ones to tell when it commits. */
  #openBatchGroups = new Set<GroupState>();
  readonly #commits = new SerialCommits(
    () => this.#commitPending(),
    () => this.#pending.length > 0,
  );
  #commitCount = 0;
  #bytesCommitted = 0;

  private constructor(store: DurableStore, states: readonly GroupState[], release: () => void) {
    this.#store = store;
    this.#release = release;
    this.#health = new EngineHealth(store.path);
    for (const state of states) this.#states.set(state.groupId, state);
    this.#host = {
      store,
      checkReadable: () => this.#health.checkReadable(),
      checkWritable: () => this.#health.checkWritable(),
      enqueue: (group, writes) => this.#enqueue(group, writes),
    };
  }

  /** Opens (creating if needed) the environment at `options.path`, checking and repairing it first. */
  static async open(options: LmdbStorageOptions): Promise<LmdbStorageEngine> {
    const path = resolve(options.path);
    if (openPaths.has(path)) throw new StorageUsageError(`${path} is already open in this process`);
    const mapSizeBytes = options.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES;
    requirePositive(mapSizeBytes, "map size");
    const store = openLmdbStore({ path, mapSizeBytes });
    openPaths.add(path);
    return LmdbStorageEngine.#start(store, options.logger ?? CONSOLE_LOGGER, () => openPaths.delete(path));
  }

  /**
   * Opens an engine over an already-open store, which it then owns (closes on failure and on
   * close). For tests that put a fault-injecting store in front of lmdb.
   */
  static openOn(store: DurableStore, logger: StorageLogger = CONSOLE_LOGGER): Promise<LmdbStorageEngine> {
    return LmdbStorageEngine.#start(store, logger, () => undefined);
  }

  static async #start(
    store: DurableStore,
    logger: StorageLogger,
    release: () => void,
  ): Promise<LmdbStorageEngine> {
    try {
      const { groups, repairs } = recover(store, logger);
      if (repairs.length > 0) {
        await store.commit(repairs).catch((cause: unknown) => {
          throw new StorageFatalError(cause);
        });
      }
      const states = groups.map((group) => new GroupState(group.groupId, store, group));
      return new LmdbStorageEngine(store, states, release);
    } catch (error) {
      release();
      await store.close();
      throw error;
    }
  }

  replica(groupId: number): ReplicaStorage {
    this.#health.checkReadable();
    requireCount(groupId, "group id");
    const existing = this.#handles.get(groupId);
    if (existing !== undefined) return existing;
    let state = this.#states.get(groupId);
    if (state === undefined) {
      state = new GroupState(groupId, this.#store, null);
      this.#states.set(groupId, state);
    }
    const handle = new LmdbReplicaStorage(this.#host, state);
    this.#handles.set(groupId, handle);
    return handle;
  }

  groups(): number[] {
    this.#health.checkReadable();
    return [...this.#states.keys()].sort((a, b) => a - b);
  }

  /**
   * Deletes every record of `groupId` with one range delete queued like any write (durable
   * at the next sync). Handles obtained before stop working; a later `replica(groupId)`
   * starts empty. A group the engine does not hold writes nothing.
   */
  dropGroup(groupId: number): void {
    this.#health.checkWritable();
    requireCount(groupId, "group id");
    const state = this.#states.get(groupId);
    if (state === undefined) return;
    const { start, end } = groupKeyRange(groupId);
    this.#enqueue(state, [{ kind: "deleteRange", start, end }]);
    state.dropped = true;
    this.#states.delete(groupId);
    this.#handles.delete(groupId);
  }

  async sync(): Promise<void> {
    this.#health.checkWritable();
    return this.#commits.sync();
  }

  /** True only when nothing is left to commit: an lmdb commit runs on lmdb-js's own thread. */
  syncNow(): boolean {
    this.#health.checkWritable();
    return this.#pending.length === 0 && this.#commits.idle();
  }

  /**
   * Makes every write so far durable (unless the engine has failed) and closes the
   * environment. Handles stop working.
   */
  async close(): Promise<void> {
    if (!this.#health.close()) return;
    try {
      await this.#commits.settle();
      if (this.#health.committable && this.#pending.length > 0) {
        await this.#commits.commitNow();
      }
    } finally {
      await this.#shutDown();
    }
  }

  /**
   * Closes the environment without committing the unsynced writes: what a process death
   * leaves on disk (a commit already in flight may or may not land). For crash tests.
   */
  async abandon(): Promise<void> {
    if (!this.#health.abandon()) return;
    this.#pending = [];
    await this.#commits.settle();
    await this.#shutDown();
  }

  stats(): LmdbStorageStats {
    return { commits: this.#commitCount, bytesCommitted: this.#bytesCommitted };
  }

  #enqueue(group: GroupState, writes: readonly StoreWrite[]): number {
    this.#openBatchGroups.add(group);
    for (const write of writes) {
      this.#pending.push(write);
      this.#pendingBytes += writeBytes(write);
    }
    return this.#openBatch;
  }

  /** Commits everything queued as one transaction. */
  #commitPending(): Promise<void> {
    if (this.#health.abandoned) {
      return Promise.reject(new StorageUsageError("the engine was abandoned before this sync could run"));
    }
    const writes = this.#pending;
    const bytes = this.#pendingBytes;
    const batch = this.#openBatch;
    const written = this.#openBatchGroups;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#openBatch++;
    this.#openBatchGroups = new Set();
    return this.#store.commit(writes).then(
      () => {
        this.#commitCount++;
        this.#bytesCommitted += bytes;
        for (const state of written) state.forgetSynced(batch);
      },
      (cause: unknown) => {
        throw this.#health.fail(cause, bytes, () => this.#store.freeBytes());
      },
    );
  }

  async #shutDown(): Promise<void> {
    this.#release();
    await this.#store.close();
  }
}
