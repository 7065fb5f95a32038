/**
 * WalStorageEngine: the node's durable StorageEngine as a write-ahead log. Every group's
 * state lives in memory (journal.ts, as in the simulator's engine); the log on disk is the
 * durable copy, replayed when the engine opens (recovery.ts).
 *
 * Why a log rather than a B-tree: a Raft log is append-only, and a sync must make a batch of
 * appends durable. One sequential write of one frame, with O_DSYNC, costs the device one
 * write and one flush; a B-tree commit rewrites a dozen scattered pages and its meta page,
 * which measured about 13 page writes and two flushes per sync (session note 2026-11-23).
 *
 * Group commit: writes of every replica are applied to memory at once (reads see them) and
 * queued as journal records. `sync()` encodes the queue as ONE frame and appends it; while an
 * append is in flight, later syncs share a single follow-up append of everything queued by the
 * time it starts. Frames are appended strictly one after another, so a crash loses a suffix of
 * the unsynced writes, in write order across groups, and at most the last frame is torn.
 *
 * Space: segments roll over at `segmentBytes`. Once the live segments hold `checkpointBytes`
 * (or twice the last checkpoint, if larger), the next sync writes a checkpoint instead of its
 * records: an image of every group, as the first frame of a new segment flagged as a replay
 * start. Once it is durable the older segments are deleted. A file grows in zeroed chunks
 * written ahead of the data, so most appends do not change the file's size (which would cost
 * the filesystem a journal commit on top of the data flush).
 *
 * Memory: every group's log since its last compaction stays in memory, as etcd's raft log
 * does; the node compacts each group's log every `snapshotEntries` applied entries, or
 * sooner once they hold `snapshotBytes` (src/node/options.ts).
 *
 * Failures: as the lmdb engine (errors.ts): a failed append poisons the engine and is never
 * retried; a full disk refuses writes and keeps serving reads.
 */
import { resolve } from "node:path";
import { StorageUsageError, type ReplicaStorage, type StorageEngine } from "../contracts.js";
import { EngineHealth } from "../engine-health.js";
import type { StorageLogger } from "../errors.js";
import { JournaledReplicaStorage, ReplicaState, type JournalRecord } from "../journal.js";
import { requireCount, requirePositive } from "../rules.js";
import { SerialCommits } from "../serial-commits.js";
import { NodeWalDirectory, createDirectoryDurably, type SegmentFile, type WalDirectory } from "./files.js";
import { recoverWal } from "./recovery.js";
import { SEGMENT_HEADER_BYTES, encodeFrame, segmentHeader, type WalRecord } from "./records.js";

export const DEFAULT_SEGMENT_BYTES = 64 * 2 ** 20;
export const DEFAULT_CHECKPOINT_BYTES = 128 * 2 ** 20;
/** Zeroed space a file grows by ahead of its data: doubling from 64 KiB up to 1 MiB. */
const MIN_GROWTH_BYTES = 64 * 2 ** 10;
const MAX_GROWTH_BYTES = 2 ** 20;

export interface WalStorageOptions {
  /** Directory of the log; created when missing. */
  readonly path: string;
  /** Receives warnings about what opening repaired (default: console.warn). */
  readonly logger?: StorageLogger;
  /** A segment takes no more frames once it would pass this size (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Live log size that triggers a checkpoint (default 128 MiB). */
  readonly checkpointBytes?: number;
  /** The directory's files (default: the real ones at `path`); tests inject faults here. */
  readonly directory?: WalDirectory;
}

export interface WalStorageStats {
  /** Frames appended by sync (each one device flush for all groups). */
  readonly commits: number;
  /** Bytes those frames held. */
  readonly bytesCommitted: number;
  readonly checkpoints: number;
  /** Segments replay would read now. */
  readonly liveSegments: number;
}

/** Told of each frame appended (see WalStorageEngine.observeAppends). */
export type WalAppendListener = (bytes: number, milliseconds: number) => void;

const CONSOLE_LOGGER: StorageLogger = { warn: (message) => console.warn(message) };

/** Directories with an engine open in this process: two engines on one directory would diverge. */
const openPaths = new Set<string>();

/**
 * What to write for `frame` at `offset` in a file of `size` bytes: the frame, followed by
 * zeros when the file must grow to hold it; and the file's size once that is written.
 */
function withGrowth(
  frame: Uint8Array,
  offset: number,
  size: number,
): { bytes: Uint8Array; allocated: number } {
  const end = offset + frame.byteLength;
  if (end <= size) return { bytes: frame, allocated: size };
  const allocated = grownSize(size, end);
  const grown = new Uint8Array(allocated - offset);
  grown.set(frame);
  return { bytes: grown, allocated };
}

/** The size a file of `allocated` bytes grows to so that `end` bytes fit. */
function grownSize(allocated: number, end: number): number {
  const step = Math.min(MAX_GROWTH_BYTES, Math.max(MIN_GROWTH_BYTES, allocated));
  return Math.ceil(end / step) * step;
}

export class WalStorageEngine implements StorageEngine {
  readonly #directory: WalDirectory;
  readonly #logger: StorageLogger;
  readonly #health: EngineHealth;
  readonly #segmentBytes: number;
  readonly #checkpointBytes: number;
  readonly #release: () => void;
  readonly #states: Map<number, ReplicaState>;
  readonly #handles = new Map<number, JournaledReplicaStorage>();
  #pending: JournalRecord[] = [];
  /**
   * The frame syncNow encoded for `records` (the queue then, `count` long) and could not write
   * at once: the sync that follows appends it without encoding it again.
   */
  #refusedFrame: {
    readonly records: JournalRecord[];
    readonly count: number;
    readonly frame: Uint8Array;
  } | null = null;
  /** Segments from the replay start on; the last one takes the appends. */
  #liveSegments: number[];
  #segment: SegmentFile | null = null;
  /** Where the next frame goes in the last segment, and how far the file is allocated. */
  #writeOffset: number;
  #allocated: number;
  #liveBytes: number;
  #lastCheckpointBytes = 0;
  readonly #appends = new SerialCommits(
    () => this.#appendPending(),
    () => this.#pending.length > 0,
  );
  #removal: Promise<void> = Promise.resolve();
  #commits = 0;
  #bytesCommitted = 0;
  #checkpoints = 0;
  #appendObserver: { readonly clock: () => number; readonly listener: WalAppendListener } | null = null;

  private constructor(
    options: WalStorageOptions,
    directory: WalDirectory,
    logger: StorageLogger,
    release: () => void,
  ) {
    this.#directory = directory;
    this.#health = new EngineHealth(directory.path);
    this.#logger = logger;
    this.#release = release;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#checkpointBytes = options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES;
    requirePositive(this.#segmentBytes, "segment size");
    requirePositive(this.#checkpointBytes, "checkpoint size");
    const recovered = recoverWal(directory, logger);
    this.#states = recovered.states;
    this.#liveSegments = recovered.liveSegments;
    this.#writeOffset = recovered.writeOffset;
    this.#allocated = recovered.writeOffset;
    this.#liveBytes = recovered.liveBytes;
    const last = this.#liveSegments.at(-1);
    if (last !== undefined) this.#segment = directory.openSegment(last);
    if (recovered.staleSegments.length > 0) this.#removeStale(recovered.staleSegments);
  }

  /** Opens (creating if needed) the log at `options.path`, replaying and repairing it first. */
  static async open(options: WalStorageOptions): Promise<WalStorageEngine> {
    const path = resolve(options.path);
    if (openPaths.has(path)) throw new StorageUsageError(`${path} is already open in this process`);
    createDirectoryDurably(path);
    openPaths.add(path);
    const release = () => openPaths.delete(path);
    try {
      const engine = new WalStorageEngine(
        options,
        options.directory ?? new NodeWalDirectory(path),
        options.logger ?? CONSOLE_LOGGER,
        release,
      );
      await engine.#removal;
      return engine;
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * Opens the log in `directory` at once, replaying it synchronously; segments to delete go in
   * the background. For the simulator, whose disk is in memory and owned by its caller (no
   * check against a second engine on the same directory).
   */
  static openDirectory(
    directory: WalDirectory,
    options: Omit<WalStorageOptions, "path" | "directory"> = {},
  ): WalStorageEngine {
    return new WalStorageEngine(
      { ...options, path: directory.path },
      directory,
      options.logger ?? CONSOLE_LOGGER,
      () => undefined,
    );
  }

  replica(groupId: number): ReplicaStorage {
    this.#health.checkReadable();
    requireCount(groupId, "group id");
    const existing = this.#handles.get(groupId);
    if (existing !== undefined) return existing;
    if (!this.#states.has(groupId)) this.#states.set(groupId, new ReplicaState());
    const handle: JournaledReplicaStorage = new JournaledReplicaStorage(groupId, {
      state: () => this.#liveState(groupId, handle),
      record: (record) => {
        this.#health.checkWritable();
        this.#liveState(groupId, handle).apply(record);
        this.#pending.push(record);
      },
    });
    this.#handles.set(groupId, handle);
    return handle;
  }

  groups(): number[] {
    this.#health.checkReadable();
    return [...this.#states.keys()].sort((a, b) => a - b);
  }

  /**
   * Forgets every record of `groupId` with one journal record, durable at the next sync.
   * Handles obtained before stop working; a later `replica(groupId)` starts empty. A group
   * the engine does not hold writes nothing.
   */
  dropGroup(groupId: number): void {
    this.#health.checkWritable();
    requireCount(groupId, "group id");
    if (!this.#states.has(groupId)) return;
    this.#states.delete(groupId);
    this.#handles.delete(groupId);
    this.#pending.push(Object.freeze({ kind: "drop", groupId }));
  }

  async sync(): Promise<void> {
    if (this.syncNow()) return;
    return this.#appends.sync();
  }

  /**
   * Appends the queued records before returning, when that needs no waiting: no append in
   * flight (frames go one after another), no checkpoint or new segment due, and the segment
   * file can write the frame at once (SegmentFile.writeNow). Lets a caller act on durability
   * within the same synchronous stretch (a follower acknowledges before it applies) instead of
   * a few promise hops later. A failed write fails the engine and throws, as a failed sync rejects.
   */
  syncNow(): boolean {
    this.#health.checkWritable();
    if (!this.#appends.idle()) return false;
    if (this.#pending.length === 0) return true;
    const segment = this.#segment;
    if (segment === null || this.#checkpointDue()) return false;
    const frame = encodeFrame(this.#pending);
    const observer = this.#appendObserver;
    const started = observer === null ? 0 : observer.clock();
    const { bytes, allocated } = withGrowth(frame, this.#writeOffset, this.#allocated);
    let written: boolean;
    try {
      const fits = this.#writeOffset + frame.byteLength <= this.#segmentBytes;
      written = fits && segment.writeNow(bytes, this.#writeOffset);
    } catch (cause) {
      throw this.#health.fail(cause, frame.byteLength, () => this.#directory.freeBytes());
    }
    if (!written) {
      this.#refusedFrame = { records: this.#pending, count: this.#pending.length, frame };
      return false;
    }
    this.#pending = [];
    this.#appended(frame.byteLength, allocated);
    if (observer !== null) this.#tellAppended(observer, frame.byteLength, started);
    return true;
  }

  /** Makes every write so far durable (unless the engine has failed) and closes the files. */
  async close(): Promise<void> {
    if (!this.#health.close()) return;
    try {
      await this.#appends.settle();
      if (this.#health.committable && this.#pending.length > 0) {
        await this.#appends.commitNow();
      }
    } finally {
      await this.#shutDown();
    }
  }

  /**
   * Closes the files without appending the unsynced writes: what a process death leaves on
   * disk (an append already in flight may or may not land). For crash tests.
   */
  async abandon(): Promise<void> {
    if (!this.#health.abandon()) return;
    this.#pending = [];
    await this.#appends.settle();
    await this.#shutDown();
  }

  stats(): WalStorageStats {
    return {
      commits: this.#commits,
      bytesCommitted: this.#bytesCommitted,
      checkpoints: this.#checkpoints,
      liveSegments: this.#liveSegments.length,
    };
  }

  /**
   * Times every later append of a frame (a sync's records or a checkpoint: one write with
   * O_DSYNC, the device flush included) on `clock`, milliseconds that never go backwards, and
   * tells `listener` its bytes and duration once it is durable; a failed append is not told.
   * One observer at a time (StorageUsageError for a second); the function returned removes it.
   */
  observeAppends(clock: () => number, listener: WalAppendListener): () => void {
    if (this.#appendObserver !== null) {
      throw new StorageUsageError(
        `write-ahead log ${this.#directory.path}: its appends are observed already`,
      );
    }
    const observer = { clock, listener };
    this.#appendObserver = observer;
    return () => {
      if (this.#appendObserver === observer) this.#appendObserver = null;
    };
  }

  #liveState(groupId: number, handle: JournaledReplicaStorage): ReplicaState {
    this.#health.checkReadable();
    if (this.#handles.get(groupId) !== handle) {
      throw new StorageUsageError(`storage of group ${groupId} was dropped; open it again`);
    }
    const state = this.#states.get(groupId);
    if (state === undefined) throw new Error(`write-ahead log: no state for open group ${groupId}`);
    return state;
  }

  /** Appends everything queued as one frame, or a checkpoint of every group when one is due. */
  #appendPending(): Promise<void> {
    if (this.#health.abandoned) {
      return Promise.reject(new StorageUsageError("the engine was abandoned before this sync could run"));
    }
    const records = this.#pending;
    this.#pending = [];
    const checkpoint = this.#checkpointDue();
    const refused = this.#takeRefusedFrame(records);
    const frame = checkpoint ? encodeFrame(this.#images()) : (refused ?? encodeFrame(records));
    const observer = this.#appendObserver;
    const started = observer === null ? 0 : observer.clock();
    return this.#append(frame, checkpoint).then(
      () => {
        if (observer !== null) this.#tellAppended(observer, frame.byteLength, started);
      },
      (cause: unknown) => {
        throw this.#health.fail(cause, frame.byteLength, () => this.#directory.freeBytes());
      },
    );
  }

  /** An observer that throws is warned about: the append it was told of is durable all the same. */
  #tellAppended(
    observer: { readonly clock: () => number; readonly listener: WalAppendListener },
    bytes: number,
    started: number,
  ): void {
    try {
      observer.listener(bytes, observer.clock() - started);
    } catch (error) {
      this.#logger.warn(
        `write-ahead log ${this.#directory.path}: an append observer failed: ${String(error)}`,
      );
    }
  }

  /** Every group's whole state; the current state includes every queued record. */
  #images(): WalRecord[] {
    return [...this.#states].map(([groupId, state]) => ({ kind: "image", groupId, image: state.image() }));
  }

  /** The frame a refused syncNow encoded, if it holds exactly `records`; forgets it either way. */
  #takeRefusedFrame(records: JournalRecord[]): Uint8Array | null {
    const refused = this.#refusedFrame;
    this.#refusedFrame = null;
    return refused !== null && refused.records === records && refused.count === records.length
      ? refused.frame
      : null;
  }

  #checkpointDue(): boolean {
    return this.#liveBytes >= Math.max(this.#checkpointBytes, 2 * this.#lastCheckpointBytes);
  }

  async #append(frame: Uint8Array, checkpoint: boolean): Promise<void> {
    const segment = this.#segment;
    const fits = this.#writeOffset + frame.byteLength <= this.#segmentBytes;
    if (segment === null || checkpoint || !fits) {
      await this.#startSegment(frame, checkpoint);
    } else {
      const { bytes, allocated } = withGrowth(frame, this.#writeOffset, this.#allocated);
      await segment.write(bytes, this.#writeOffset);
      this.#appended(frame.byteLength, allocated);
    }
  }

  /** A frame of `frameBytes` is durable at the write offset; the file now spans `allocated`. */
  #appended(frameBytes: number, allocated: number): void {
    this.#allocated = allocated;
    this.#writeOffset += frameBytes;
    this.#liveBytes += frameBytes;
    this.#commits++;
    this.#bytesCommitted += frameBytes;
  }

  /** A new segment whose first frame is `frame`; after a checkpoint, the older ones go. */
  async #startSegment(frame: Uint8Array, checkpoint: boolean): Promise<void> {
    const sequence = (this.#liveSegments.at(-1) ?? 0) + 1;
    const file = await this.#directory.createSegment(sequence);
    const header = segmentHeader(checkpoint || sequence === 1);
    const first = new Uint8Array(header.byteLength + frame.byteLength);
    first.set(header);
    first.set(frame, header.byteLength);
    const { bytes, allocated } = withGrowth(first, 0, 0);
    await file.write(bytes, 0);
    const previous = this.#segment;
    this.#segment = file;
    this.#writeOffset = SEGMENT_HEADER_BYTES;
    // A checkpoint is all the live log holds from now on.
    if (checkpoint) this.#liveBytes = 0;
    this.#appended(frame.byteLength, allocated);
    await previous?.close();
    if (checkpoint) {
      const stale = this.#liveSegments;
      this.#liveSegments = [sequence];
      this.#lastCheckpointBytes = frame.byteLength;
      this.#checkpoints++;
      this.#removeStale(stale);
    } else {
      this.#liveSegments.push(sequence);
    }
  }

  /**
   * Deletes segments a checkpoint made unnecessary (or a torn one). A failure leaves them for
   * the next open, which deletes them again; it only warns.
   */
  #removeStale(stale: readonly number[]): void {
    this.#removal = this.#removal
      .then(() => this.#directory.removeSegments(stale))
      .catch((error: unknown) => {
        this.#logger.warn(
          `write-ahead log ${this.#directory.path}: could not delete segments before a checkpoint ` +
            `(they are deleted when the log next opens): ${String(error)}`,
        );
      });
  }

  async #shutDown(): Promise<void> {
    try {
      await this.#removal;
      await this.#segment?.close();
    } finally {
      this.#segment = null;
      this.#release();
    }
  }
}
