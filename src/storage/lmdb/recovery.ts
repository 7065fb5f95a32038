/**
 * Opening an lmdb store: one pass over every key rebuilds each group's metadata and log
 * bounds and checks every stored record against its checksum.
 *
 * LMDB commits are atomic, so a crash alone never tears a batch; the checks are for what
 * happens to bytes at rest (bit rot, a bad sector, a copied file). A metadata record that fails
 * its check, or a log that cannot reach the hard state's commit index, is corruption of data
 * the cluster relies on: opening refuses. A log entry that fails its check, or is missing
 * (a gap), cuts the log there (logged as a warning) as long as everything committed is kept:
 * the entries after the cut are deleted, since stale entries left behind would rejoin the log
 * on a later open once new entries fill the gap.
 */
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  type HardState,
  type SnapshotMetadata,
} from "../../raft/types.js";
import { StorageCorruptionError, type StorageLogger } from "../errors.js";
import {
  FORMAT_KEY,
  LAYOUT_VERSION,
  MalformedRecordError,
  RecordKind,
  decodeApplied,
  decodeEntryTerm,
  decodeFormat,
  decodeHardState,
  decodeLogStart,
  decodeSnapshotMetadata,
  encodeFormat,
  entriesEnd,
  entryKey,
  frame,
  parseKey,
  unframe,
  type Applied,
  type LogStart,
} from "./layout.js";
import type { DurableStore, StoreWrite } from "./store.js";

/** Where the engine reports what it repaired on open. */
/** One group's state as found on disk. */
export interface RecoveredGroup {
  readonly groupId: number;
  readonly logStart: LogStart;
  readonly lastIndex: number;
  readonly hardState: HardState;
  readonly applied: Applied;
  readonly snapshotMetadata: SnapshotMetadata;
}

export interface Recovery {
  /** Every group with data on disk, by ascending id. */
  readonly groups: readonly RecoveredGroup[];
  /** Writes that make the disk match what was recovered (cut tails, the layout marker). */
  readonly repairs: readonly StoreWrite[];
}

const KIND_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(RecordKind).map(([name, kind]) => [kind, name] as const),
);

export const EMPTY_SNAPSHOT_METADATA: SnapshotMetadata = { index: 0, term: 0, confState: EMPTY_CONF_STATE };

/** A cut in a group's log: entries from `index` on are not kept. */
interface Cut {
  readonly index: number;
  readonly reason: string;
}

/** Accumulates one group's keys, which arrive in key order: its records, then its entries. */
class GroupScan {
  private logStart: LogStart = { index: 0, term: 0 };
  private hardState: HardState = EMPTY_HARD_STATE;
  private applied: Applied = { index: 0, confState: EMPTY_CONF_STATE };
  private snapshotMetadata: SnapshotMetadata = EMPTY_SNAPSHOT_METADATA;
  /** Index the next stored entry must have; set when the first entry arrives. */
  private expected: number | null = null;
  private cut: Cut | null = null;
  private droppedEntries = 0;
  private staleEntries = 0;

  constructor(
    readonly groupId: number,
    private readonly path: string,
  ) {}

  private corrupt(problem: string): StorageCorruptionError {
    return new StorageCorruptionError(this.path, `group ${this.groupId}: ${problem}`);
  }

  record(kind: RecordKind, key: Uint8Array, value: Uint8Array): void {
    const name = KIND_NAMES.get(kind) ?? String(kind);
    const payload = unframe(key, value);
    if (payload === null) throw this.corrupt(`its ${name} record fails its checksum`);
    try {
      switch (kind) {
        case RecordKind.HardState:
          this.hardState = decodeHardState(payload);
          return;
        case RecordKind.LogStart:
          this.logStart = decodeLogStart(payload);
          return;
        case RecordKind.Applied:
          this.applied = decodeApplied(payload);
          return;
        case RecordKind.Snapshot:
          this.snapshotMetadata = decodeSnapshotMetadata(payload);
          return;
        case RecordKind.Entry:
          throw new Error(`lmdb recovery: entry key of group ${this.groupId} parsed as a record`);
      }
    } catch (error) {
      if (error instanceof MalformedRecordError) throw this.corrupt(`its ${name} record: ${error.message}`);
      throw error;
    }
  }

  entry(index: number, key: Uint8Array, value: Uint8Array): void {
    if (this.cut !== null) {
      this.droppedEntries++;
      return;
    }
    if (index <= this.logStart.index) {
      this.staleEntries++;
      return;
    }
    const expected = (this.expected ??= this.logStart.index + 1);
    if (index !== expected) {
      this.cutAt(expected, `entry ${expected} is missing (the next stored entry is ${index})`);
      return;
    }
    const payload = unframe(key, value);
    if (payload === null) {
      this.cutAt(index, `entry ${index} fails its checksum`);
      return;
    }
    try {
      decodeEntryTerm(payload);
    } catch (error) {
      if (error instanceof MalformedRecordError) throw this.corrupt(`entry ${index}: ${error.message}`);
      throw error;
    }
    this.expected = expected + 1;
  }

  private cutAt(index: number, reason: string): void {
    this.cut = { index, reason };
    this.droppedEntries++;
  }

  finish(logger: StorageLogger, repairs: StoreWrite[]): RecoveredGroup {
    const lastIndex = (this.expected ?? this.logStart.index + 1) - 1;
    const commit = this.hardState.commit;
    if (commit > lastIndex) {
      const why = this.cut?.reason ?? `the log ends at ${lastIndex}`;
      throw this.corrupt(`entries up to ${commit} are committed, but ${why}`);
    }
    const where = `lmdb storage at ${this.path}: group ${this.groupId}`;
    if (this.cut !== null) {
      logger.warn(
        `${where}: ${this.cut.reason}; cutting the log after entry ${lastIndex} ` +
          `(${this.droppedEntries} stored entries dropped, commit index ${commit} kept)`,
      );
      repairs.push({
        kind: "deleteRange",
        start: entryKey(this.groupId, this.cut.index),
        end: entriesEnd(this.groupId),
      });
    }
    if (this.staleEntries > 0) {
      logger.warn(`${where}: deleting ${this.staleEntries} stale entries at or below ${this.logStart.index}`);
      repairs.push({
        kind: "deleteRange",
        start: entryKey(this.groupId, 0),
        end: entryKey(this.groupId, this.logStart.index + 1),
      });
    }
    return {
      groupId: this.groupId,
      logStart: this.logStart,
      lastIndex,
      hardState: this.hardState,
      applied: this.applied,
      snapshotMetadata: this.snapshotMetadata,
    };
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function decodeFormatOrThrow(path: string, payload: Uint8Array): number {
  try {
    return decodeFormat(payload);
  } catch (error) {
    if (error instanceof MalformedRecordError)
      throw new StorageCorruptionError(path, `layout marker: ${error.message}`);
    throw error;
  }
}

/** Reads and checks everything `store` holds; throws StorageCorruptionError when it must not be used. */
export function recover(store: DurableStore, logger: StorageLogger): Recovery {
  const groups: RecoveredGroup[] = [];
  const repairs: StoreWrite[] = [];
  let current: GroupScan | null = null;
  let formatVersion: number | null = null;
  let sawGroupData = false;
  for (const { key, value } of store.scan()) {
    const parsed = parseKey(key);
    if (parsed === null) throw new StorageCorruptionError(store.path, `unexpected key ${hex(key)}`);
    if (parsed.type === "format") {
      const payload = unframe(key, value);
      if (payload === null)
        throw new StorageCorruptionError(store.path, "the layout marker fails its checksum");
      formatVersion = decodeFormatOrThrow(store.path, payload);
      continue;
    }
    sawGroupData = true;
    if (current === null || current.groupId !== parsed.groupId) {
      if (current !== null) {
        if (parsed.groupId < current.groupId) throw new Error("lmdb recovery: keys are not in group order");
        groups.push(current.finish(logger, repairs));
      }
      current = new GroupScan(parsed.groupId, store.path);
    }
    if (parsed.type === "record") current.record(parsed.kind, key, value);
    else current.entry(parsed.index, key, value);
  }
  if (current !== null) groups.push(current.finish(logger, repairs));
  if (formatVersion === null) {
    if (sawGroupData) {
      throw new StorageCorruptionError(
        store.path,
        "group data without a layout marker: not a Concord raft store",
      );
    }
    repairs.push({ kind: "put", key: FORMAT_KEY, value: frame(FORMAT_KEY, encodeFormat()) });
  } else if (formatVersion !== LAYOUT_VERSION) {
    throw new StorageCorruptionError(
      store.path,
      `layout version ${formatVersion} is not the supported version ${LAYOUT_VERSION}`,
    );
  }
  return { groups, repairs };
}
