// Test support for the durable engines' tests: temporary directories, a logger that records
// warnings, a store wrapper that injects disk failures in front of a real lmdb store, and the
// timing printout of many small syncs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_LIMIT, entriesFrom, plainEntries } from "../../src/storage/conformance-model.js";
import type { StorageEngine } from "../../src/storage/contracts.js";
import type { StorageLogger } from "../../src/storage/errors.js";
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

/**
 * Prints how long 1,000 syncs of 10 entries x 3 groups take on `engine` (a disk figure, so
 * printed, not asserted) and checks that every entry landed.
 */
export async function reportSmallSyncs(label: string, engine: StorageEngine): Promise<void> {
  const groups = [1, 2, 3].map((groupId) => engine.replica(groupId));
  const started = performance.now();
  for (let round = 0; round < 1000; round++) {
    for (const replica of groups) replica.append(entriesFrom(round * 10 + 1, Array<number>(10).fill(1), 100));
    await engine.sync();
  }
  const elapsedMs = performance.now() - started;
  console.log(
    `${label}: 1,000 syncs of 10 entries x 3 groups took ${elapsedMs.toFixed(0)} ms ` +
      `(${(elapsedMs / 1000).toFixed(2)} ms per sync)`,
  );
  assert.deepEqual(
    plainEntries(groups[2]!.entries(10_000, 10_001, NO_LIMIT)),
    plainEntries(entriesFrom(10_000, [1], 100)),
  );
}
