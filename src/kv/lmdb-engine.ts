/**
 * LmdbOrderedKv: the OrderedKv contract over one named lmdb database, the durable engine of a
 * node's state machines. A view is an lmdb read transaction (a consistent snapshot until
 * released); `write` is one synchronous write transaction, atomic and visible on return; and
 * `sync()` makes every committed write durable with one fsync of the environment.
 *
 * Why write transactions skip their own fsync (lmdb's per-transaction MDB_NOSYNC): the state
 * machine applies entry by entry, and an fsync per entry would bound apply throughput by the
 * disk. The node calls `sync()` exactly where durability matters (before the Raft storage
 * records an applied index or compacts its log), so one fsync covers many applied entries.
 * A process crash loses nothing (the page cache keeps every commit), and a crash losing a
 * suffix of unsynced transactions never loses part of one: lmdb commits by switching meta
 * pages, and an unsynced meta page that did not land leaves the previous one. Not covered: a
 * system crash (power loss, kernel panic) between syncs. LMDB documents that with MDB_NOSYNC
 * the database may then be corrupt, not only behind, unless the filesystem keeps write order
 * (pages freed by an unsynced commit may be reused and written before its meta page lands);
 * ext4 does not promise that order. Open question, noted in the session note of 2026-11-23.
 *
 * Keys are stored behind a one-byte prefix so that the empty key, which lmdb cannot store, is
 * a key like any other, and scans without bounds become bounded ranges of the database.
 *
 * The environment is either opened here from a path (and then owned and closed here) or
 * handed in already open, so that a node can keep its state machines and its Raft log in one
 * environment; the database gets its own name beside the Raft log's.
 */
import { open, type Database, type RootDatabase, type Transaction } from "lmdb";
import {
  scanLimit,
  type KvPair,
  type OrderedKv,
  type ReadView,
  type ScanOptions,
  type WriteBatch,
} from "./engine.js";

/** The database name used when none is given. */
export const DEFAULT_STATE_MACHINE_DATABASE = "state-machine";

/** Named databases an environment opened here can hold (the Raft log engine uses the same bound). */
const MAX_DATABASES = 8;

/** Initial map size for an environment opened here: address space only, lmdb-js grows it. */
const DEFAULT_MAP_SIZE_BYTES = 64 * 2 ** 30;

/** Every stored key starts with this byte; the next value bounds the whole keyspace. */
const KEY_PREFIX = 0x00;
const KEYSPACE_END = Uint8Array.of(KEY_PREFIX + 1);

/**
 * lmdb-js transaction flags: abortable (a throw rolls everything back), committed before
 * `transactionSync` returns, and MDB_NOSYNC for this transaction only (sync() flushes later).
 */
const TXN_ABORTABLE = 0x1;
const TXN_SYNCHRONOUS_COMMIT = 0x2;
const TXN_NO_SYNC_FLUSH = 0x10000;
const WRITE_FLAGS = TXN_ABORTABLE | TXN_SYNCHRONOUS_COMMIT | TXN_NO_SYNC_FLUSH;

type BinaryRoot = RootDatabase<Uint8Array, Uint8Array>;
type BinaryDatabase = Database<Uint8Array, Uint8Array>;

/** lmdb-js's environment flush (`mdb_env_sync(env, force)` on a worker thread), missing from its typings. */
interface EnvironmentSync {
  sync(callback: (error: unknown) => void): void;
}

export interface LmdbOrderedKvOptions {
  /** Name of the database inside the environment (default DEFAULT_STATE_MACHINE_DATABASE). */
  readonly name?: string;
}

export interface LmdbOrderedKvOpenOptions extends LmdbOrderedKvOptions {
  /** Directory of the environment; created when missing. */
  readonly path: string;
  /** Initial size of the memory map (default 64 GiB of address space). */
  readonly mapSizeBytes?: number;
}

function storedKey(key: Uint8Array): Uint8Array {
  const stored = new Uint8Array(key.length + 1);
  stored[0] = KEY_PREFIX;
  stored.set(key, 1);
  return stored;
}

/**
 * A plain Uint8Array copy of lmdb-js's bytes: it may hand out a shared buffer that later reads
 * overwrite, and its node-specific subclass should not leak into the store.
 */
function owned(bytes: Uint8Array, from = 0): Uint8Array {
  return new Uint8Array(bytes.subarray(from));
}

function environmentSync(root: BinaryRoot): EnvironmentSync {
  const candidate = root as unknown as Partial<EnvironmentSync>;
  if (typeof candidate.sync !== "function") {
    throw new Error("this lmdb-js version has no environment sync: durability cannot be guaranteed");
  }
  return candidate as EnvironmentSync;
}

class LmdbReadView implements ReadView {
  private released = false;

  constructor(
    private readonly db: BinaryDatabase,
    private readonly transaction: Transaction,
  ) {}

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    const value = this.db.get(storedKey(key), { transaction: this.transaction });
    return value === undefined ? undefined : owned(value);
  }

  scan(start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}): Iterable<KvPair> {
    this.checkOpen();
    const limit = scanLimit(options);
    const low = storedKey(start);
    const high = end === null ? KEYSPACE_END : storedKey(end);
    const range =
      options.reverse === true
        ? // lmdb-js walks a reverse range from `start` down to `end`: exclude the upper bound, include the lower.
          { start: high, end: low, reverse: true, exclusiveStart: true, inclusiveEnd: true }
        : { start: low, end: high };
    const entries = this.db.getRange({
      ...range,
      ...(limit === Infinity ? {} : { limit }),
      transaction: this.transaction,
    });
    return entries.map(({ key, value }) => ({ key: owned(key, 1), value: owned(value) }));
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.transaction.done();
  }

  private checkOpen(): void {
    if (this.released) throw new Error("read view used after release");
  }
}

export class LmdbOrderedKv implements OrderedKv {
  private closed = false;

  private constructor(
    private readonly root: BinaryRoot,
    private readonly db: BinaryDatabase,
    private readonly ownsRoot: boolean,
  ) {}

  /** Opens (creating if needed) an environment of its own at `options.path`; close() closes it. */
  static open(options: LmdbOrderedKvOpenOptions): LmdbOrderedKv {
    const root = open<Uint8Array, Uint8Array>({
      path: options.path,
      noSubdir: false,
      mapSize: options.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES,
      maxDbs: MAX_DATABASES,
      // As in src/storage/lmdb/store.ts: no commit may report success before its fsync, and no
      // write may go through an unawaited per-turn promise.
      overlappingSync: false,
      eventTurnBatching: false,
    });
    try {
      return new LmdbOrderedKv(root, LmdbOrderedKv.database(root, options), true);
    } catch (error) {
      void root.close();
      throw error;
    }
  }

  /**
   * Uses a database in an environment its caller opened and keeps open (e.g. the one the Raft
   * log engine runs in); close() then leaves the environment open.
   */
  static onRoot(root: BinaryRoot, options: LmdbOrderedKvOptions = {}): LmdbOrderedKv {
    return new LmdbOrderedKv(root, LmdbOrderedKv.database(root, options), false);
  }

  private static database(root: BinaryRoot, options: LmdbOrderedKvOptions): BinaryDatabase {
    return root.openDB<Uint8Array, Uint8Array>({
      name: options.name ?? DEFAULT_STATE_MACHINE_DATABASE,
      keyEncoding: "binary",
      encoding: "binary",
    });
  }

  view(): ReadView {
    this.checkOpen();
    return new LmdbReadView(this.db, this.db.useReadTransaction());
  }

  write(batch: WriteBatch): void {
    this.checkOpen();
    const ops = batch.sortedOps();
    this.db.transactionSync(() => {
      for (const op of ops) {
        const key = storedKey(op.key);
        if (op.value === null) this.db.removeSync(key);
        else this.db.putSync(key, op.value);
      }
    }, WRITE_FLAGS);
  }

  /** Resolves once every write committed before the call is on disk (one fsync of the environment). */
  sync(): Promise<void> {
    this.checkOpen();
    const env = environmentSync(this.root);
    return new Promise((resolve, reject) => {
      env.sync((error) => {
        if (error === null || error === undefined) resolve();
        else
          reject(
            error instanceof Error ? error : new Error("lmdb environment sync failed", { cause: error }),
          );
      });
    });
  }

  /**
   * Makes everything durable and, when the environment was opened here, closes it. Views must
   * have been released.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync();
    this.closed = true;
    if (this.ownsRoot) await this.root.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("the lmdb ordered kv is closed");
  }
}
