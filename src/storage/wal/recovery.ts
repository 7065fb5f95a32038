/**
 * Opening a write-ahead log: which segment replay starts from, replaying every frame after it
 * through the contract's write rules, and what the disk shows about the last write.
 *
 * - Replay starts at the newest segment flagged as a replay start whose first frame is whole
 *   (a checkpoint: an image of every group), or at segment 1 (the log's first, which starts
 *   from nothing). A checkpoint segment whose first frame is torn can only be the last one
 *   (the crash hit while it was written); it is deleted and the previous start is used.
 *   Segments before the start are deleted: a checkpoint made them unnecessary.
 * - Every frame is checked whole (length and CRC) and every record is validated against the
 *   state it applies to, with the same rules that accepted it (journal.ts, rules.ts).
 * - A damaged frame in the last segment is the torn tail of a write that never completed
 *   (writes are sequential and each waits for the previous one to be durable), so no sync
 *   resolved for it: the segment is cut there, durably, with a warning. Anywhere else a
 *   damaged frame, a missing segment or a record that does not decode or breaks a rule means
 *   the disk lost acknowledged data: opening refuses with StorageCorruptionError.
 */
import { MalformedRecordError } from "../codec.js";
import { StorageUsageError } from "../contracts.js";
import { StorageCorruptionError, type StorageLogger } from "../errors.js";
import { ReplicaState, type JournalRecord } from "../journal.js";
import type { WalDirectory } from "./files.js";
import {
  SEGMENT_HEADER_BYTES,
  decodeRecords,
  readFrame,
  readSegmentHeader,
  type WalRecord,
} from "./records.js";

/** What opening found: the groups' state, and where the next write goes. */
export interface WalRecovery {
  readonly states: Map<number, ReplicaState>;
  /** Segments from the replay start on, ascending; empty for a new log. */
  readonly liveSegments: number[];
  /** Where the next frame goes in the last live segment (its end of data). */
  readonly writeOffset: number;
  /** Bytes of the live segments' frames: what a checkpoint would make unnecessary. */
  readonly liveBytes: number;
  /** Segments before the replay start, to delete. */
  readonly staleSegments: number[];
}

/** The normalized record `record` stands for, validated against `state` (null: changes nothing). */
function validated(state: ReplicaState, record: JournalRecord): JournalRecord | null {
  const { groupId } = record;
  switch (record.kind) {
    case "append":
      return state.prepareAppend(groupId, record.entries);
    case "compact":
      return state.prepareCompact(groupId, record.index);
    case "hardState":
      return state.prepareHardState(groupId, record.hardState);
    case "applied":
      return state.prepareApplied(groupId, record.index, record.confState ?? undefined);
    case "snapshot":
      return state.prepareSnapshot(groupId, record.snapshot);
    case "confState":
    case "drop":
      return record;
  }
}

function replay(states: Map<number, ReplicaState>, record: WalRecord): void {
  if (record.kind === "image") {
    states.set(record.groupId, ReplicaState.fromImage(record.image));
    return;
  }
  if (record.kind === "drop") {
    states.delete(record.groupId);
    return;
  }
  let state = states.get(record.groupId);
  if (state === undefined) {
    state = new ReplicaState();
    states.set(record.groupId, state);
  }
  const normalized = validated(state, record);
  if (normalized !== null) state.apply(normalized);
}

class SegmentReplay {
  constructor(
    private readonly directory: WalDirectory,
    private readonly logger: StorageLogger,
  ) {}

  corrupt(sequence: number, problem: string): StorageCorruptionError {
    return new StorageCorruptionError(this.directory.path, `segment ${sequence}: ${problem}`);
  }

  /** Whether replay may start at a segment of these bytes, checking its header. */
  replayStart(sequence: number, bytes: Uint8Array): boolean {
    const header = readSegmentHeader(bytes);
    if ("problem" in header) throw this.corrupt(sequence, header.problem);
    return header.replayStart;
  }

  /**
   * Replays one segment's frames into `states`; returns where its data ends and how many
   * bytes its frames hold. `last`: the newest segment, where a damaged frame is a torn tail.
   */
  replay(
    states: Map<number, ReplicaState>,
    sequence: number,
    bytes: Uint8Array,
    last: boolean,
  ): { readonly end: number; readonly frameBytes: number } {
    let offset = SEGMENT_HEADER_BYTES;
    for (;;) {
      const read = readFrame(bytes, offset);
      if (read.type === "end") return { end: offset, frameBytes: offset - SEGMENT_HEADER_BYTES };
      if (read.type === "damaged") {
        if (!last) throw this.corrupt(sequence, `${read.reason} at byte ${offset}, and later segments exist`);
        this.logger.warn(
          `write-ahead log ${this.directory.path}: segment ${sequence} ends in a torn write at byte ${offset} ` +
            `(${read.reason}); cutting it there, no acknowledged write is lost`,
        );
        this.directory.truncate(sequence, offset);
        return { end: offset, frameBytes: offset - SEGMENT_HEADER_BYTES };
      }
      try {
        for (const record of decodeRecords(read.payload)) replay(states, record);
      } catch (error) {
        if (error instanceof MalformedRecordError || error instanceof StorageUsageError) {
          throw this.corrupt(sequence, `the frame at byte ${offset}: ${error.message}`);
        }
        throw error;
      }
      offset = read.next;
    }
  }
}

/** Reads the log in `directory` (see the header for what it checks and repairs). */
export function recoverWal(directory: WalDirectory, logger: StorageLogger): WalRecovery {
  const sequences = directory.segments();
  const states = new Map<number, ReplicaState>();
  const segments = new SegmentReplay(directory, logger);
  const first = sequences[0];
  if (first === undefined)
    return { states, liveSegments: [], writeOffset: 0, liveBytes: 0, staleSegments: [] };
  sequences.forEach((sequence, i) => {
    if (sequence !== first + i) throw segments.corrupt(first + i, "it is missing, later segments exist");
  });

  const read = new Map<number, Uint8Array>();
  const bytesOf = (sequence: number): Uint8Array => {
    let bytes = read.get(sequence);
    if (bytes === undefined) {
      bytes = directory.read(sequence);
      read.set(sequence, bytes);
    }
    return bytes;
  };
  let live = [...sequences];
  const torn: number[] = [];
  const last = live.at(-1) as number;
  if (
    bytesOf(last)
      .subarray(0, SEGMENT_HEADER_BYTES)
      .every((byte) => byte === 0)
  ) {
    // Created, but its first write (header and first frame together) never landed.
    logger.warn(
      `write-ahead log ${directory.path}: segment ${last} was created but never written; deleting it`,
    );
    torn.push(last);
    live = live.slice(0, -1);
  }
  let startIndex = -1;
  if (live.length === 0)
    return { states, liveSegments: [], writeOffset: 0, liveBytes: 0, staleSegments: torn };
  for (let i = live.length - 1; i >= 0; i--) {
    const sequence = live[i] as number;
    const bytes = bytesOf(sequence);
    if (!segments.replayStart(sequence, bytes)) continue;
    if (sequence === 1 || readFrame(bytes, SEGMENT_HEADER_BYTES).type === "frame") {
      startIndex = i;
      break;
    }
    if (i !== live.length - 1)
      throw segments.corrupt(sequence, "its checkpoint is damaged, and later segments exist");
    logger.warn(
      `write-ahead log ${directory.path}: the checkpoint in segment ${sequence} was torn by a crash; ` +
        `replaying from the previous one`,
    );
    torn.push(sequence);
    live = live.slice(0, i);
  }
  if (startIndex < 0) {
    throw segments.corrupt(first, "no segment to start replay from (no checkpoint and no segment 1)");
  }

  const staleSegments = [...live.slice(0, startIndex), ...torn];
  live = live.slice(startIndex);
  let writeOffset = 0;
  let liveBytes = 0;
  live.forEach((sequence, i) => {
    const { end, frameBytes } = segments.replay(states, sequence, bytesOf(sequence), i === live.length - 1);
    writeOffset = end;
    liveBytes += frameBytes;
  });
  return { states, liveSegments: live, writeOffset, liveBytes, staleSegments };
}
