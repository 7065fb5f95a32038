// What crash-child.ts writes, and how it opens its engine, shared with the test that checks
// what survived.
import { EntryType, type Entry } from "../../src/raft/types.js";
import type { StorageLogger } from "../../src/storage/errors.js";
import { LmdbStorageEngine } from "../../src/storage/lmdb/engine.js";
import { WalStorageEngine } from "../../src/storage/wal/engine.js";

export type CrashEngineKind = "lmdb" | "wal";

export function openCrashEngine(
  kind: CrashEngineKind,
  path: string,
  logger?: StorageLogger,
): Promise<LmdbStorageEngine | WalStorageEngine> {
  const options = logger === undefined ? { path } : { path, logger };
  return kind === "lmdb" ? LmdbStorageEngine.open(options) : WalStorageEngine.open(options);
}

export const CRASH_GROUPS = [1, 2, 3] as const;

/** Entry `round` of `groupId`: its payload names both, so a misplaced entry cannot pass. */
export function crashEntry(groupId: number, round: number): Entry {
  const data = new TextEncoder().encode(`group ${groupId} round ${round} `.padEnd(64, "."));
  return { index: round, term: 1, type: EntryType.Normal, data };
}
