/**
 * The write rules of the storage contract (contracts.ts), shared by every engine so that they
 * agree on what is accepted: each check looks at a requested write and the replica's current
 * state and throws StorageUsageError, before anything changes, when the write would break the
 * contract. The checks never change state; they tell the engine what to store.
 */
import { NONE, type Entry, type HardState, type Snapshot } from "../raft/types.js";
import { StorageUsageError } from "./contracts.js";

/** What the rules need to know about a replica's current (visible) state. */
export interface ReplicaFacts {
  firstIndex(): number;
  lastIndex(): number;
  /** Term of the entry at `index`, for firstIndex() - 1 ..= lastIndex(). */
  term(index: number): number;
  readonly hardState: HardState;
  readonly appliedIndex: number;
  /** Index of the latest saved snapshot; 0 before any. */
  snapshotIndex(): number;
}

export function requireCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new StorageUsageError(`${what} must be a non-negative safe integer, got ${value}`);
  }
}

export function requirePositive(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new StorageUsageError(`${what} must be a positive safe integer, got ${value}`);
  }
}

/** Whether the log (including the entry just before the first stored one) holds `index` with `term`. */
export function logHolds(facts: ReplicaFacts, index: number, term: number): boolean {
  return index >= facts.firstIndex() - 1 && index <= facts.lastIndex() && facts.term(index) === term;
}

/**
 * Checks an append and returns the entries to store: the batch without the entries that are
 * already covered by compaction (possibly none, in which case nothing is written).
 */
export function checkAppend(facts: ReplicaFacts, entries: readonly Entry[]): readonly Entry[] {
  const first = entries[0];
  if (first === undefined) return [];
  let previousTerm = 0;
  entries.forEach((entry, i) => {
    requirePositive(entry.index, "entry index");
    requirePositive(entry.term, "entry term");
    if (entry.index !== first.index + i) {
      throw new StorageUsageError(`appended entries are not contiguous at position ${i} (${entry.index})`);
    }
    if (entry.term < previousTerm) {
      throw new StorageUsageError(`entry ${entry.index} has term ${entry.term} below its predecessor's`);
    }
    previousTerm = entry.term;
  });
  const lastIndex = facts.lastIndex();
  if (first.index > lastIndex + 1) {
    throw new StorageUsageError(`appending at ${first.index} leaves a gap after last index ${lastIndex}`);
  }
  const offset = facts.firstIndex() - 1;
  const atOffset = entries[offset - first.index];
  if (atOffset !== undefined && atOffset.term !== facts.term(offset)) {
    throw new StorageUsageError(
      `entry ${offset} (term ${atOffset.term}) disagrees with the compacted entry (term ${facts.term(offset)})`,
    );
  }
  const kept = entries.slice(Math.max(0, offset + 1 - first.index));
  const keptFirst = kept[0];
  if (keptFirst === undefined) return [];
  const termBefore = facts.term(keptFirst.index - 1);
  if (keptFirst.term < termBefore) {
    throw new StorageUsageError(
      `entry ${keptFirst.index} has term ${keptFirst.term} below its predecessor's (${termBefore})`,
    );
  }
  checkKeepsCommitted(facts, keptFirst.index, kept);
  return kept;
}

/** Appending `kept` from `from` on must leave every committed entry in place, unchanged. */
function checkKeepsCommitted(facts: ReplicaFacts, from: number, kept: readonly Entry[]): void {
  const commit = facts.hardState.commit;
  if (from > commit) return;
  const newLast = from + kept.length - 1;
  if (newLast < commit) {
    throw new StorageUsageError(
      `append ending at ${newLast} would truncate committed entries up to ${commit}`,
    );
  }
  for (let index = from; index <= commit; index++) {
    if (kept[index - from]?.term !== facts.term(index)) {
      throw new StorageUsageError(`append would replace committed entry ${index} (commit ${commit})`);
    }
  }
}

/** Checks a compaction; false when it changes nothing (already compacted). */
export function checkCompact(facts: ReplicaFacts, index: number): boolean {
  requireCount(index, "compaction index");
  if (index < facts.firstIndex()) return false;
  if (index > facts.lastIndex()) {
    throw new StorageUsageError(`cannot compact to ${index}, past last index ${facts.lastIndex()}`);
  }
  return true;
}

export function checkHardState(facts: ReplicaFacts, hardState: HardState): void {
  requireCount(hardState.term, "hard state term");
  requireCount(hardState.vote, "hard state vote");
  requireCount(hardState.commit, "hard state commit");
  const current = facts.hardState;
  if (hardState.term < current.term) {
    throw new StorageUsageError(`hard state term ${hardState.term} is below the stored ${current.term}`);
  }
  if (hardState.term === current.term && current.vote !== NONE && hardState.vote !== current.vote) {
    throw new StorageUsageError(
      `vote for ${hardState.vote} would replace the vote for ${current.vote} in term ${current.term}`,
    );
  }
  if (hardState.commit < current.commit) {
    throw new StorageUsageError(`commit ${hardState.commit} is below the stored ${current.commit}`);
  }
  if (hardState.commit > facts.lastIndex()) {
    throw new StorageUsageError(`commit ${hardState.commit} is past last index ${facts.lastIndex()}`);
  }
}

export function checkAppliedIndex(facts: ReplicaFacts, index: number): void {
  requireCount(index, "applied index");
  if (index < facts.appliedIndex) {
    throw new StorageUsageError(`applied index ${index} is below the stored ${facts.appliedIndex}`);
  }
  const knownCommitted = Math.max(facts.hardState.commit, facts.snapshotIndex());
  if (index > knownCommitted) {
    throw new StorageUsageError(`applied index ${index} is past the known commit index ${knownCommitted}`);
  }
}

/**
 * Checks a snapshot install and returns whether the log agrees with it (holds its index with
 * its term): then only the prefix up to its index is dropped, otherwise the whole log is.
 */
export function checkSnapshot(facts: ReplicaFacts, snapshot: Snapshot): boolean {
  const { index, term } = snapshot.metadata;
  requirePositive(index, "snapshot index");
  requirePositive(term, "snapshot term");
  if (index <= facts.snapshotIndex()) {
    throw new StorageUsageError(
      `snapshot at ${index} is not newer than the stored one at ${facts.snapshotIndex()}`,
    );
  }
  const offset = facts.firstIndex() - 1;
  if (index < offset) {
    throw new StorageUsageError(
      `snapshot at ${index} is older than the compacted log (first index ${facts.firstIndex()})`,
    );
  }
  const holds = logHolds(facts, index, term);
  if (!holds && (index <= facts.hardState.commit || index === offset)) {
    throw new StorageUsageError(
      `snapshot at ${index} term ${term} disagrees with a committed or compacted entry`,
    );
  }
  return holds;
}
