/**
 * A durable engine's state of health (errors.ts has the failure modes): open; closed, by
 * `close()` or `abandon()`; poisoned for good by a failed commit; or refusing writes on a full
 * disk while it still serves reads. Both durable engines keep one and consult it on every call.
 */
import { StorageUsageError } from "./contracts.js";
import { DiskFullError, StorageFatalError, isDiskFull } from "./errors.js";

export class EngineHealth {
  #closed = false;
  #abandoned = false;
  #failure: { readonly cause: unknown } | null = null;
  #diskFull: { readonly cause: unknown } | null = null;

  /** `path` names the engine in errors. */
  constructor(private readonly path: string) {}

  /** Closed without its unsynced writes (a simulated process death). */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** Whether writes still queued may be committed: no commit failed and the disk is not full. */
  get committable(): boolean {
    return this.#failure === null && this.#diskFull === null;
  }

  /** Marks the engine closed; false if it already was. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Marks the engine closed without its unsynced writes; false if it already was closed. */
  abandon(): boolean {
    if (!this.close()) return false;
    this.#abandoned = true;
    return true;
  }

  checkReadable(): void {
    if (this.#closed) throw new StorageUsageError(`the storage engine at ${this.path} is closed`);
    if (this.#failure !== null) throw new StorageFatalError(this.#failure.cause);
  }

  checkWritable(): void {
    this.checkReadable();
    if (this.#diskFull !== null) throw new DiskFullError(this.#diskFull.cause);
  }

  /**
   * Records why a commit of `batchBytes` failed and returns the error its sync rejects with:
   * DiskFullError for a full disk (`freeBytes` tells an EIO apart), else StorageFatalError.
   */
  fail(cause: unknown, batchBytes: number, freeBytes: () => number): Error {
    if (isDiskFull(cause, batchBytes, freeBytes)) {
      this.#diskFull = { cause };
      return new DiskFullError(cause);
    }
    this.#failure = { cause };
    return new StorageFatalError(cause);
  }
}
