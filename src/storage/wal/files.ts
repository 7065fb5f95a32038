/**
 * The write-ahead log's directory on disk: the only code of the engine that touches files, so
 * tests can put faults in front of it (WalDirectory is the injected disk).
 *
 * Why each write is durable when it resolves: segments are opened with O_DSYNC, so a write
 * returns once its data, and the file size when it grew, are on stable storage (one device
 * flush, no separate fdatasync round trip through the thread pool). A new segment's directory
 * entry is made durable by an fsync of the directory before the segment is written to.
 *
 * Small writes are made inline (`writeSync`, blocking the event loop until the device has
 * flushed) while the process's InlineWriteBudget allows, and on libuv's thread pool otherwise:
 * inline-write-budget.ts says why and how much.
 */
import {
  close,
  closeSync,
  constants,
  fsync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  open,
  openSync,
  readFileSync,
  readdirSync,
  statfsSync,
  unlink,
  write,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { InlineWriteBudget } from "./inline-write-budget.js";

/** Segment files are named by their sequence number, 16 hex digits, so names sort in order. */
const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;

export function segmentName(sequence: number): string {
  return `${sequence.toString(16).padStart(16, "0")}.wal`;
}

/** The sequence number of a segment file's name, or null for any other file. */
export function segmentSequence(name: string): number | null {
  const match = SEGMENT_NAME.exec(name);
  return match?.[1] === undefined ? null : Number.parseInt(match[1], 16);
}

/**
 * Creates `path` (and missing parents) so that it survives a power loss: the directory entry
 * of each directory created is made durable by an fsync of its parent, as a new segment's is.
 */
export function createDirectoryDurably(path: string): void {
  const first = mkdirSync(path, { recursive: true });
  if (first === undefined) return;
  for (let created = path; ; created = dirname(created)) {
    syncDirectorySync(dirname(created));
    if (created === first) return;
  }
}

function syncDirectorySync(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** One segment open for writing. */
export interface SegmentFile {
  /** Writes `bytes` at `position`; resolves once they are durable. */
  write(bytes: Uint8Array, position: number): Promise<void>;
  /**
   * Writes `bytes` at `position` before returning, durably, and returns true when that can be
   * done now (a small write within the event loop's inline budget); otherwise writes nothing
   * and returns false.
   */
  writeNow(bytes: Uint8Array, position: number): boolean;
  close(): Promise<void>;
}

/** The directory of one log. Synchronous calls are made only while the engine opens. */
export interface WalDirectory {
  readonly path: string;
  /** Sequence numbers of the segments present, ascending. */
  segments(): number[];
  /** A whole segment's bytes. */
  read(sequence: number): Uint8Array;
  /** Cuts a segment to `length` bytes, durably. */
  truncate(sequence: number, length: number): void;
  /** Opens an existing segment for writing. */
  openSegment(sequence: number): SegmentFile;
  /** Creates a new, empty segment and makes its directory entry durable. */
  createSegment(sequence: number): Promise<SegmentFile>;
  /** Deletes segments and makes that durable. */
  removeSegments(sequences: readonly number[]): Promise<void>;
  /** Free bytes on the filesystem, to tell a full disk from a broken one. */
  freeBytes(): number;
}

function callback<T>(
  run: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    run((error, value) => (error === null ? resolve(value as T) : reject(error)));
  });
}

const SEGMENT_OPEN_FLAGS = constants.O_RDWR | constants.O_DSYNC;

/**
 * The event loop's budget of inline writes, shared by every log the process writes (one loop,
 * one budget).
 */
const PROCESS_INLINE_WRITE_BUDGET = new InlineWriteBudget({ now: () => performance.now() });

class NodeSegmentFile implements SegmentFile {
  constructor(
    private readonly fd: number,
    private readonly budget: InlineWriteBudget,
  ) {}

  async write(bytes: Uint8Array, position: number): Promise<void> {
    if (!this.writeNow(bytes, position)) await this.writeInPool(bytes, position);
  }

  writeNow(bytes: Uint8Array, position: number): boolean {
    return this.budget.tryInline(bytes.byteLength, () => this.writeInline(bytes, position));
  }

  private writeInline(bytes: Uint8Array, position: number): void {
    let done = 0;
    while (done < bytes.byteLength) {
      done += writeSync(this.fd, bytes, done, bytes.byteLength - done, position + done);
    }
  }

  private async writeInPool(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const written = await callback<number>((cb) =>
        write(this.fd, bytes, done, bytes.byteLength - done, position + done, cb),
      );
      done += written;
    }
  }

  close(): Promise<void> {
    return callback((cb) => close(this.fd, cb));
  }
}

export class NodeWalDirectory implements WalDirectory {
  constructor(
    readonly path: string,
    /** When writes may block the event loop (default: the process's budget). */
    private readonly inlineWrites: InlineWriteBudget = PROCESS_INLINE_WRITE_BUDGET,
  ) {}

  segments(): number[] {
    const sequences: number[] = [];
    for (const name of readdirSync(this.path)) {
      const sequence = segmentSequence(name);
      if (sequence !== null) sequences.push(sequence);
    }
    return sequences.sort((a, b) => a - b);
  }

  read(sequence: number): Uint8Array {
    return readFileSync(join(this.path, segmentName(sequence)));
  }

  truncate(sequence: number, length: number): void {
    const fd = openSync(join(this.path, segmentName(sequence)), constants.O_RDWR);
    try {
      ftruncateSync(fd, length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  openSegment(sequence: number): SegmentFile {
    return new NodeSegmentFile(
      openSync(join(this.path, segmentName(sequence)), SEGMENT_OPEN_FLAGS),
      this.inlineWrites,
    );
  }

  async createSegment(sequence: number): Promise<SegmentFile> {
    const path = join(this.path, segmentName(sequence));
    const fd = await callback<number>((cb) =>
      open(path, SEGMENT_OPEN_FLAGS | constants.O_CREAT | constants.O_EXCL, 0o644, cb),
    );
    try {
      await this.#syncDirectory();
    } catch (error) {
      await callback((cb) => close(fd, cb));
      throw error;
    }
    return new NodeSegmentFile(fd, this.inlineWrites);
  }

  async removeSegments(sequences: readonly number[]): Promise<void> {
    for (const sequence of sequences) {
      await callback((cb) => unlink(join(this.path, segmentName(sequence)), cb));
    }
    await this.#syncDirectory();
  }

  freeBytes(): number {
    const stats = statfsSync(this.path);
    return stats.bavail * stats.bsize;
  }

  async #syncDirectory(): Promise<void> {
    const fd = await callback<number>((cb) => open(this.path, constants.O_RDONLY, cb));
    try {
      await callback((cb) => fsync(fd, cb));
    } finally {
      await callback((cb) => close(fd, cb));
    }
  }
}
