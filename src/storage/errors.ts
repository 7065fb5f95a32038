/**
 * The durable engines' failure modes (lmdb/ and wal/), how a failed commit is classified, and
 * where an engine reports what opening repaired (StorageLogger):
 * - StorageFatalError: a write or fsync failed. The engine is poisoned for good; the node
 *   must stop. Never retried: after a failed fsync the kernel may have dropped the dirty
 *   pages, so a later "successful" fsync would prove nothing.
 * - DiskFullError: the disk (or lmdb's map) is full. New writes are refused, reads are still
 *   served; the node stops accepting work and restarts once space is freed.
 * - StorageCorruptionError: the directory holds data the engine cannot trust (a committed
 *   entry or a metadata record that fails its checksum, an unknown layout); opening refuses.
 */

/** Receives warnings about what opening an engine repaired. */
export interface StorageLogger {
  warn(message: string): void;
}

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = errorCode(cause);
  return typeof code === "string" || typeof code === "number"
    ? `${cause.message} (code ${code})`
    : cause.message;
}

export class StorageFatalError extends Error {
  constructor(cause: unknown) {
    super(
      `storage engine stopped after a failed write or fsync (the failed batch is never retried); ` +
        `stop the node and fix the disk before restarting it: ${describe(cause)}`,
      { cause },
    );
    this.name = "StorageFatalError";
  }
}

export class DiskFullError extends Error {
  constructor(cause: unknown) {
    super(
      `disk full: the storage engine refuses new writes and still serves reads; free space and ` +
        `restart the node: ${describe(cause)}`,
      { cause },
    );
    this.name = "DiskFullError";
  }
}

export class StorageCorruptionError extends Error {
  constructor(path: string, problem: string) {
    super(`refusing to open the storage at ${path}: ${problem}`);
    this.name = "StorageCorruptionError";
  }
}

/** errno ENOSPC: no space left on the device. */
const ENOSPC = 28;
/** errno EIO: LMDB also reports a short write (a disk that filled up mid-write) as EIO. */
const EIO = 5;
/** MDB_MAP_FULL: the environment's map size limit was reached. */
const MDB_MAP_FULL = -30792;
/** Free space below which a failed write is blamed on a full disk (besides the batch itself). */
const LOW_SPACE_MARGIN_BYTES = 1 << 20;

function errorCode(cause: unknown): unknown {
  return typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined;
}

/**
 * Whether a failed commit of `batchBytes` bytes is a full disk rather than an I/O failure.
 * ENOSPC and MDB_MAP_FULL say so directly; an EIO counts when the filesystem has no room left
 * for the batch (LMDB turns a short pwrite into EIO; twice the batch allows for the B-tree pages
 * it rewrites). `freeBytes` is asked only for an EIO; if it fails, the error stays fatal.
 */
export function isDiskFull(cause: unknown, batchBytes: number, freeBytes: () => number): boolean {
  const code = errorCode(cause);
  if (code === ENOSPC || code === "ENOSPC" || code === MDB_MAP_FULL) return true;
  if (code !== EIO && code !== "EIO") return false;
  let free: number;
  try {
    free = freeBytes();
  } catch {
    return false;
  }
  return free < 2 * batchBytes + LOW_SPACE_MARGIN_BYTES;
}
