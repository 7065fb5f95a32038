// Test support for the lmdb engine's tests: temporary directories, a logger that records
// warnings, and a store wrapper that injects disk failures in front of a real lmdb store.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StorageLogger } from "../../src/storage/lmdb/engine.js";
import type { DurableStore, KvPair, StoreWrite } from "../../src/storage/lmdb/store.js";

/** A fresh empty directory under the system temp dir. */
export function freshDir(): string {
  return mkdtempSync(join(tmpdir(), "concord-lmdb-"));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs `body` with a fresh directory and removes it afterwards. */
export async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = freshDir();
  try {
    await body(dir);
  } finally {
    removeDir(dir);
  }
}

export class RecordingLogger implements StorageLogger {
  readonly warnings: string[] = [];

  warn(message: string): void {
    this.warnings.push(message);
  }
}

/** An Error shaped like the ones lmdb-js and Node report for a failed system call. */
export function systemError(message: string, code: number): Error {
  return Object.assign(new Error(message), { code });
}

/** Delegates to a real store, but fails commits on demand and counts the ones attempted. */
export class FaultyStore implements DurableStore {
  commitsAttempted = 0;
  /** The next commit rejects with this instead of reaching the disk. */
  failNextCommit: Error | null = null;
  /** What freeBytes() reports; the real figure when null. */
  reportedFreeBytes: number | null = null;

  constructor(private readonly inner: DurableStore) {}

  get path(): string {
    return this.inner.path;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.inner.get(key);
  }

  scan(start?: Uint8Array, end?: Uint8Array): Iterable<KvPair> {
    return this.inner.scan(start, end);
  }

  commit(writes: readonly StoreWrite[]): Promise<void> {
    this.commitsAttempted++;
    const failure = this.failNextCommit;
    if (failure === null) return this.inner.commit(writes);
    this.failNextCommit = null;
    return Promise.reject(failure);
  }

  freeBytes(): number {
    return this.reportedFreeBytes ?? this.inner.freeBytes();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
