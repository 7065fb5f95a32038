/**
 * LmdbOrderedKv: the OrderedKv contract over one named database in an lmdb environment of its
 * own, the durable engine of a node's state machines.
 *
 * Writes wait in memory, commits happen in the background. `write` keeps its batch as a layer
 * in memory, visible at once to every view opened after it; one lmdb transaction commits all
 * waiting layers at a time, `commitDelayMs` after the first of them (or at once when
 * `commitAtOps` operations wait), on lmdb-js's write thread, fully synced, while the state
 * machine goes on applying; the layers are dropped once committed. `sync()` commits what waits
 * and resolves when everything written before it is on disk.
 *
 * Why: the state machine applies entry by entry (one write per apply), and an lmdb commit
 * writes a B-tree path, free-list pages and a meta page; a commit per apply cost a follower
 * about a sixth of its main thread per put. Committing once a second costs the same pages once
 * for all the applies in between (etcd batches its backend commits the same way, every 100 ms),
 * and since commits are rare each one can afford its fsync: every commit is synced, so lmdb is
 * consistent after any crash, power loss included (committing with MDB_NOSYNC, as this engine
 * did, risks a corrupt database on power loss: lmdb may then reuse pages the last synced state
 * still needs). The node calls `sync()` where durability matters (before the Raft storage
 * records an applied index or compacts its log); anything later is in the Raft log.
 *
 * A view is an lmdb read transaction (shared by the views opened between two commits) plus the
 * layers waiting at the time, newest on top; the layers never change (a new write is a new
 * layer; layers are merged into new ones), so the view keeps its picture. Each commit also
 * stores its generation under a key outside the keyspace: a shared transaction is checked to
 * include every commit whose layers were dropped, so a stale one fails loudly instead of
 * losing writes.
 *
 * Keys are stored behind a one-byte prefix so that the empty key, which lmdb cannot store, is
 * a key like any other, and scans without bounds become bounded ranges of the database.
 */
import { open, type Database, type RootDatabase, type Transaction } from "lmdb";
import {
  BatchOverlay,
  scanLimit,
  type KvReader,
  type KvPair,
  type OrderedKv,
  type ReadView,
  type ScanOptions,
  type WriteBatch,
} from "./engine.js";
import { readF64, writeF64 } from "./bytes.js";

/** The database name used when none is given. */
export const DEFAULT_STATE_MACHINE_DATABASE = "state-machine";

/** Named databases an environment opened here can hold. */
const MAX_DATABASES = 8;

/** Initial map size for an environment opened here: address space only, lmdb-js grows it. */
const DEFAULT_MAP_SIZE_BYTES = 64 * 2 ** 30;

/**
 * How long written batches wait before a commit by default. A second rather than etcd's 100 ms
 * (its backend batch interval): every commit rewrites each B-tree page it touches, so fewer
 * commits write fewer pages (measured on put c=64: 169 us of server CPU per put at 1 s, 185-199
 * at 100 ms, 175 committing every apply). Nothing waits on it: sync() commits at once.
 */
export const DEFAULT_COMMIT_DELAY_MS = 1000;
/** Waiting operations that start a commit at once by default (bounds the memory the layers hold). */
export const DEFAULT_COMMIT_AT_OPS = 50_000;

/** Every stored key starts with this byte; the next value bounds the whole keyspace. */
const KEY_PREFIX = 0x00;
const KEYSPACE_END = Uint8Array.of(KEY_PREFIX + 1);
/**
 * The longest key lmdb stores (its compile-time maximum in lmdb-js): a longer one would fail a
 * whole commit halfway through queuing it, so commits check every key first.
 */
const MAX_STORED_KEY_BYTES = 1978;
/** Where each commit stores its generation: outside the keyspace, so no scan sees it. */
const GENERATION_KEY = Uint8Array.of(0xff);

type BinaryRoot = RootDatabase<Uint8Array, Uint8Array>;
type BinaryDatabase = Database<Uint8Array, Uint8Array>;

/** Told of each commit that landed: the operations it wrote and how long it took. */
export type CommitListener = (operations: number, milliseconds: number) => void;

/** A commit listener and the clock (monotonic milliseconds) commits are timed on. */
interface CommitObserver {
  readonly clock: () => number;
  readonly listener: CommitListener;
}

/** Runs `commit` after `delayMs` (injected: src/kv sets no timer itself); the handle cancels it. */
export type CommitTimer = (commit: () => void, delayMs: number) => { cancel(): void };

export interface LmdbOrderedKvOpenOptions {
  /** Directory of the environment; created when missing. */
  readonly path: string;
  /** Name of the database inside the environment (default DEFAULT_STATE_MACHINE_DATABASE). */
  readonly name?: string;
  /** Initial size of the memory map (default 64 GiB of address space). */
  readonly mapSizeBytes?: number;
  /** How long a written batch may wait in memory before a commit starts (default 1 s). */
  readonly commitDelayMs?: number;
  /** A write that leaves at least this many operations waiting starts a commit at once (default 50,000). */
  readonly commitAtOps?: number;
  /** Runs the delayed commits. */
  readonly commitTimer: CommitTimer;
}

function storedKey(key: Uint8Array): Uint8Array {
  const stored = new Uint8Array(key.length + 1);
  stored[0] = KEY_PREFIX;
  stored.set(key, 1);
  return stored;
}

/**
 * lmdb-js's bytes from `from` on, as a plain Uint8Array over the same memory. With the binary
 * encoding of both keys and values, lmdb-js hands out a fresh copy on every get and every
 * scan step (it copies out of its shared read buffer, or out of the memory map), so the bytes
 * are this caller's alone and no second copy is needed (test/kv/lmdb-engine.test.ts holds
 * lmdb-js to it); only its node-specific subclass, whose `slice` does not copy, is kept out
 * of the store. Scanning 200,000 stored versions (59 MB) took 540-1,070 ms on the development
 * VM instead of 860-1,150 when each key and value was copied a second time here.
 */
function plainBytes(bytes: Uint8Array, from = 0): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + from, bytes.byteLength - from);
}

/**
 * One lmdb read transaction that every view opened between two commits shares. Only this
 * engine writes to its environment, so what lmdb shows changes only when a commit lands; a
 * transaction per view would cost lmdb-js a renewal, a generation read and a timer that resets
 * it a millisecond later (an event-loop wake-up per applied entry on every member). It ends
 * once it is retired (a commit landed) and the last view using it is released.
 */
class SharedReadTransaction {
  private views = 0;
  private retired = false;

  constructor(readonly transaction: Transaction) {}

  acquire(): void {
    if (this.retired) throw new Error("invariant violated: a view of a retired read transaction");
    this.views++;
  }

  release(): void {
    if (this.views <= 0)
      throw new Error("invariant violated: a read transaction released more than acquired");
    this.views--;
    this.endIfUnused();
  }

  retire(): void {
    this.retired = true;
    this.endIfUnused();
  }

  private endIfUnused(): void {
    if (this.retired && this.views === 0) this.transaction.done();
  }
}

class LmdbReadView implements ReadView {
  private released = false;

  constructor(
    private readonly db: BinaryDatabase,
    private readonly shared: SharedReadTransaction,
  ) {
    shared.acquire();
  }

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    const stored = storedKey(key);
    // lmdb refuses to look up a key it could not store; no such key is there.
    if (stored.byteLength > MAX_STORED_KEY_BYTES) return undefined;
    const value = this.db.get(stored, { transaction: this.shared.transaction });
    return value === undefined ? undefined : plainBytes(value);
  }

  scan(start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}): Iterable<KvPair> {
    this.checkOpen();
    const limit = scanLimit(options);
    // A bound longer than lmdb's longest key becomes its first MAX_STORED_KEY_BYTES bytes, P:
    // for every key K short enough to be stored, K >= bound exactly when K > P, and K < bound
    // exactly when K <= P. So a long lower bound turns exclusive and a long upper one inclusive.
    let low = storedKey(start);
    const lowIncluded = low.byteLength <= MAX_STORED_KEY_BYTES;
    if (!lowIncluded) low = low.subarray(0, MAX_STORED_KEY_BYTES);
    let high = end === null ? KEYSPACE_END : storedKey(end);
    const highIncluded = high.byteLength > MAX_STORED_KEY_BYTES;
    if (highIncluded) high = high.subarray(0, MAX_STORED_KEY_BYTES);
    const range =
      options.reverse === true
        ? // lmdb-js walks a reverse range from `start` down to `end`.
          { start: high, end: low, reverse: true, exclusiveStart: !highIncluded, inclusiveEnd: lowIncluded }
        : { start: low, end: high, exclusiveStart: !lowIncluded, inclusiveEnd: highIncluded };
    const entries = this.db.getRange({
      ...range,
      ...(limit === Infinity ? {} : { limit }),
      transaction: this.shared.transaction,
    });
    return entries.map(({ key, value }) => ({ key: plainBytes(key, 1), value: plainBytes(value) }));
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.shared.release();
  }

  /** Throws once the view is released. */
  checkOpen(): void {
    if (this.released) throw new Error("read view used after release");
  }
}

/** An lmdb read view with the layers that waited when it was opened on top, newest last. */
class LayeredView implements ReadView {
  private readonly reader: KvReader;

  constructor(
    private readonly base: LmdbReadView,
    layers: readonly WriteBatch[],
  ) {
    let reader: KvReader = base;
    for (const layer of layers) reader = new BatchOverlay(reader, layer);
    this.reader = reader;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    this.base.checkOpen();
    return this.reader.get(key);
  }

  scan(start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}): Iterable<KvPair> {
    this.base.checkOpen();
    scanLimit(options);
    return this.reader.scan(start, end, options);
  }

  release(): void {
    this.base.release();
  }
}

function commitFailure(error: unknown): Error {
  return error instanceof Error ? error : new Error("lmdb commit failed", { cause: error });
}

function encodeGeneration(generation: number): Uint8Array {
  const bytes = new Uint8Array(8);
  writeF64(bytes, 0, generation);
  return bytes;
}

function decodeGeneration(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 0;
  if (bytes.byteLength !== 8)
    throw new Error(`lmdb ordered kv: a commit generation of ${bytes.byteLength} bytes`);
  return readF64(bytes, 0);
}

export class LmdbOrderedKv implements OrderedKv {
  /** Written batches not yet known committed, oldest first; none of them ever changes. */
  private layers: WriteBatch[] = [];
  /** How many of the oldest layers the commit in flight is writing. */
  private committingLayers = 0;
  /** Operations in the layers no commit has taken yet. */
  private waitingOps = 0;
  /** The generation of the newest commit started, and of the newest one whose layers were dropped. */
  private generation: number;
  private droppedGeneration: number;
  private inFlight: Promise<void> | null = null;
  private cancelTimer: { cancel(): void } | null = null;
  /** Why a commit failed: the engine then keeps its layers in memory and refuses to write or sync. */
  private failure: Error | null = null;
  private closed = false;
  /** Shared by the views opened since the last commit landed (null until the next view). */
  private sharedRead: SharedReadTransaction | null = null;
  private readonly commitDelayMs: number;
  private readonly commitAtOps: number;
  private readonly commitTimer: CommitTimer;
  private commitObserver: CommitObserver | null = null;

  private constructor(
    private readonly root: BinaryRoot,
    private readonly db: BinaryDatabase,
    options: LmdbOrderedKvOpenOptions,
  ) {
    this.commitDelayMs = options.commitDelayMs ?? DEFAULT_COMMIT_DELAY_MS;
    this.commitAtOps = options.commitAtOps ?? DEFAULT_COMMIT_AT_OPS;
    this.commitTimer = options.commitTimer;
    if (!Number.isFinite(this.commitDelayMs) || this.commitDelayMs < 0) {
      throw new RangeError(`commitDelayMs must be a non-negative number, got ${this.commitDelayMs}`);
    }
    if (!Number.isSafeInteger(this.commitAtOps) || this.commitAtOps < 1) {
      throw new RangeError(`commitAtOps must be a positive integer, got ${this.commitAtOps}`);
    }
    this.generation = decodeGeneration(db.get(GENERATION_KEY));
    this.droppedGeneration = this.generation;
  }

  /** Opens (creating if needed) the environment at `options.path`; close() closes it. */
  static open(options: LmdbOrderedKvOpenOptions): LmdbOrderedKv {
    const root = open<Uint8Array, Uint8Array>({
      path: options.path,
      noSubdir: false,
      mapSize: options.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES,
      maxDbs: MAX_DATABASES,
      // Every commit is synced before its promise resolves (no overlapping flush to track), and
      // a commit holds exactly the operations of one explicit batch.
      overlappingSync: false,
      eventTurnBatching: false,
    });
    try {
      const db = root.openDB<Uint8Array, Uint8Array>({
        name: options.name ?? DEFAULT_STATE_MACHINE_DATABASE,
        keyEncoding: "binary",
        encoding: "binary",
      });
      return new LmdbOrderedKv(root, db, options);
    } catch (error) {
      void root.close();
      throw error;
    }
  }

  view(): ReadView {
    this.checkOpen();
    const base = new LmdbReadView(this.db, this.sharedReadTransaction());
    return this.layers.length === 0 ? base : new LayeredView(base, this.layers.slice());
  }

  /** The read transaction of the newest landed commit, begun (and checked) on first use after it. */
  private sharedReadTransaction(): SharedReadTransaction {
    if (this.sharedRead !== null) return this.sharedRead;
    const transaction = this.db.useReadTransaction();
    try {
      const committed = decodeGeneration(this.db.get(GENERATION_KEY, { transaction }));
      if (committed < this.droppedGeneration) {
        throw new Error(
          `lmdb ordered kv: a read transaction at commit ${committed} misses commit ${this.droppedGeneration}, whose writes left memory`,
        );
      }
    } catch (error) {
      transaction.done();
      throw error;
    }
    this.sharedRead = new SharedReadTransaction(transaction);
    return this.sharedRead;
  }

  /** Views opened from now on read what landed since: the shared transaction ends with its last view. */
  private retireSharedRead(): void {
    this.sharedRead?.retire();
    this.sharedRead = null;
  }

  write(batch: WriteBatch): void {
    this.checkOpen();
    if (this.failure !== null) throw this.failure;
    const count = batch.sortedOps().length;
    if (count === 0) return;
    this.layers.push(batch);
    this.waitingOps += count;
    this.mergeNewestLayers();
    this.scheduleCommit();
  }

  /** Resolves once every write made before the call is committed and on disk. */
  async sync(): Promise<void> {
    this.checkOpen();
    // The commit that will hold the last write so far: the newest one started (in flight or
    // done) when nothing waits, else the next. Writes made meanwhile do not hold the caller up.
    const target = this.generation + (this.waitingOps > 0 ? 1 : 0);
    while (this.droppedGeneration < target) {
      if (this.failure !== null) throw this.failure;
      if (this.inFlight !== null) {
        await this.inFlight;
        continue;
      }
      if (this.waitingOps === 0) throw new Error(`lmdb ordered kv: commit ${target} awaited, none waits`);
      this.commitWaiting();
    }
    if (this.failure !== null) throw this.failure;
  }

  /**
   * Tells `listener` of every commit that lands from now on: its operations (the generation
   * record included) and its duration on `clock` (milliseconds), from the start of the
   * commit to its end on lmdb-js's write thread, fsync included. A failed commit is not told.
   * One observer at a time (an Error for a second); the function returned removes it.
   */
  observeCommits(clock: () => number, listener: CommitListener): () => void {
    if (this.commitObserver !== null) throw new Error("lmdb ordered kv: its commits are observed already");
    const observer: CommitObserver = { clock, listener };
    this.commitObserver = observer;
    return () => {
      if (this.commitObserver === observer) this.commitObserver = null;
    };
  }

  /** Commits everything and closes the environment. Views must have been released. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync();
    this.closed = true;
    this.cancelTimer?.cancel();
    this.cancelTimer = null;
    this.retireSharedRead();
    await this.root.close();
  }

  /**
   * Keeps the number of layers logarithmic in the operations waiting: the newest two merge
   * while the newest is at least half the size of the one below it (a binary counter). Layers
   * a commit is writing stay as they are: they are dropped whole once it commits.
   */
  private mergeNewestLayers(): void {
    while (this.layers.length - this.committingLayers >= 2) {
      const newer = this.layers[this.layers.length - 1]!;
      const older = this.layers[this.layers.length - 2]!;
      if (newer.size * 2 < older.size) return;
      const merged = older.copy();
      merged.absorb(newer);
      merged.sortedOps();
      this.layers.splice(this.layers.length - 2, 2, merged);
    }
  }

  /**
   * What waits is committed at once when it is `commitAtOps` operations or more, else after
   * `commitDelayMs`; not while a commit is in flight (its end schedules the next).
   */
  private scheduleCommit(): void {
    if (this.inFlight !== null || this.waitingOps === 0 || this.closed) return;
    if (this.waitingOps >= this.commitAtOps) {
      this.commitWaiting();
      return;
    }
    this.cancelTimer ??= this.commitTimer(() => {
      this.cancelTimer = null;
      this.commitWaiting();
    }, this.commitDelayMs);
  }

  /** Starts one commit of every waiting layer, unless one is in flight (its end starts the next). */
  private commitWaiting(): void {
    this.cancelTimer?.cancel();
    this.cancelTimer = null;
    if (this.inFlight !== null || this.waitingOps === 0 || this.failure !== null) return;
    const taken = this.layers.slice(this.committingLayers);
    this.committingLayers = this.layers.length;
    this.waitingOps = 0;
    const generation = ++this.generation;
    for (const layer of taken) {
      for (const op of layer.sortedOps()) {
        if (op.key.byteLength + 1 > MAX_STORED_KEY_BYTES) {
          this.failure = new Error(
            `lmdb ordered kv: a key of ${op.key.byteLength} bytes is over the maximum key size (${MAX_STORED_KEY_BYTES - 1})`,
          );
          return;
        }
      }
    }
    let committed: Promise<boolean>;
    const observer = this.commitObserver;
    const started = observer?.clock() ?? 0;
    let operations = 1;
    try {
      committed = this.db.batch(() => {
        for (const layer of taken) {
          for (const op of layer.sortedOps()) {
            const key = storedKey(op.key);
            operations++;
            if (op.value === null) void this.db.remove(key);
            else void this.db.put(key, op.value);
          }
        }
        void this.db.put(GENERATION_KEY, encodeGeneration(generation));
      });
    } catch (error) {
      // lmdb-js may have queued part of the batch already: nothing more is written.
      this.failure = commitFailure(error);
      return;
    }
    this.inFlight = committed.then(
      () => {
        // lmdb-js renews its read transaction before resolving a commit: views opened from now
        // on read it from lmdb, through a new shared transaction (view() checks that they do).
        this.layers.splice(0, taken.length);
        this.committingLayers = 0;
        this.droppedGeneration = generation;
        this.retireSharedRead();
        this.inFlight = null;
        this.tellCommitted(observer, operations, started);
        this.scheduleCommit();
      },
      (error: unknown) => {
        this.failure = commitFailure(error);
        this.inFlight = null;
      },
    );
  }

  /** An observer that throws does not fail the engine: the commit landed all the same. */
  private tellCommitted(observer: CommitObserver | null, operations: number, started: number): void {
    if (observer === null) return;
    try {
      observer.listener(operations, observer.clock() - started);
    } catch {
      // Metrics only: nothing to undo, and no logger here to tell.
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("the lmdb ordered kv is closed");
  }
}
