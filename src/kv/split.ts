/**
 * Splitting a range's store: the range state that fences writes while a planned split
 * commits, when a fence or split is refused, and the staging of a split — every version of
 * every key at or above the split key moves into the right-hand range's store (another
 * namespace of the same engine), which starts with copies of the lease table (attachments
 * divided by key), the member table and the dedup table, at the split's revision and the
 * applied index RHS_INITIAL_INDEX; and the other range commands (fence, revision floor; the
 * merge commands are merge.ts's, dispatched from applyRangeCommand). All of it goes into the
 * split command's batch, so the store writes it in ONE engine write with the left side's
 * shrunken bounds.
 *
 * When a store already exists under the right-hand namespace (the node created that range's
 * replica from a snapshot before it applied the split here), nothing is written there: it is
 * at or past the split already, and only the left side shrinks.
 */
import { ByteReader, ByteWriter, compareBytes, concatBytes, samePrefix, u64Bytes } from "./bytes.js";
import { encodeRangeBounds, type RangeBounds } from "./bounds.js";
import type { RangeCommand } from "./commands.js";
import type { DedupTable } from "./dedup.js";
import type { KvReader, WriteBatch } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { revisionForApply } from "./hlc.js";
import { LAYOUT_VERSION, MetaField, type KeyLayout } from "./keys.js";
import type { LeaseTable } from "./leases.js";
import type { MemberTable } from "./members.js";
import { applyMergeCommand, type AppliedMerge, type MergeOutcome } from "./merge.js";
import type {
  FenceResponse,
  MergeFenceResponse,
  MergeResponse,
  RevisionFloorResponse,
  SplitResponse,
} from "./results.js";

/**
 * The applied index a split's right-hand store starts at. The node starts the new range's
 * Raft log as if from a snapshot at this index, identically on every replica, so a replica
 * that joins it later with an empty log is caught up by a snapshot, never by entries.
 */
export const RHS_INITIAL_INDEX = 10;

export type RangeState =
  | { readonly kind: "active" }
  /** Writes answer RangeFenced until the planned split (`splitKey`, `rhsRangeId`) applies. */
  | { readonly kind: "write-fenced"; readonly splitKey: Uint8Array; readonly rhsRangeId: number }
  /** Every state change answers RangeFenced: the range is being merged into its left neighbour. */
  | { readonly kind: "merge-fenced" };

export const ACTIVE_RANGE: RangeState = Object.freeze({ kind: "active" });
export const MERGE_FENCED_RANGE: RangeState = Object.freeze({ kind: "merge-fenced" });

/** What a split did, for the node (ApplyOutcome.split). */
export interface SplitOutcome {
  readonly rhsRangeId: number;
  /** The left side's bounds now: [its start, splitKey). */
  readonly lhsBounds: RangeBounds;
  readonly rhsBounds: RangeBounds;
  /** False when a store already existed under the right-hand namespace and was left alone. */
  readonly rhsCreated: boolean;
}

/** A split a store applied: its plan and the split's revision. */
export interface AppliedSplit {
  readonly splitKey: Uint8Array;
  readonly rhsRangeId: number;
  readonly revision: bigint;
}

const APPLIED_SPLIT_FORMAT = 1;

export function encodeAppliedSplit(split: AppliedSplit): Uint8Array {
  return new ByteWriter()
    .u8(APPLIED_SPLIT_FORMAT)
    .bytes(split.splitKey)
    .u32(split.rhsRangeId)
    .u64(split.revision)
    .finish();
}

export function decodeAppliedSplit(bytes: Uint8Array): AppliedSplit {
  const r = new ByteReader(bytes, "applied split");
  const format = r.u8();
  if (format !== APPLIED_SPLIT_FORMAT) r.fail("unknown-version", `applied split format ${format}`);
  const split = { splitKey: r.bytes(), rhsRangeId: r.u32(), revision: r.u64() };
  r.end();
  return split;
}

const STATE_FORMAT = 1;
const STATE_ACTIVE = 0;
const STATE_WRITE_FENCED = 1;
const STATE_MERGE_FENCED = 2;

export function encodeRangeState(state: RangeState): Uint8Array {
  const w = new ByteWriter().u8(STATE_FORMAT);
  if (state.kind === "active") return w.u8(STATE_ACTIVE).finish();
  if (state.kind === "merge-fenced") return w.u8(STATE_MERGE_FENCED).finish();
  return w.u8(STATE_WRITE_FENCED).bytes(state.splitKey).u32(state.rhsRangeId).finish();
}

export function decodeRangeState(bytes: Uint8Array): RangeState {
  const r = new ByteReader(bytes, "range state");
  const format = r.u8();
  if (format !== STATE_FORMAT) r.fail("unknown-version", `range state format ${format}`);
  const kind = r.u8();
  let state: RangeState;
  if (kind === STATE_ACTIVE) state = ACTIVE_RANGE;
  else if (kind === STATE_WRITE_FENCED)
    state = { kind: "write-fenced", splitKey: r.bytes(), rhsRangeId: r.u32() };
  else if (kind === STATE_MERGE_FENCED) state = MERGE_FENCED_RANGE;
  else return r.fail("invalid-field", `range state ${kind}`);
  r.end();
  return state;
}

function samePlan(state: RangeState, splitKey: Uint8Array, rhsRangeId: number): boolean {
  return (
    state.kind === "write-fenced" &&
    state.rhsRangeId === rhsRangeId &&
    compareBytes(state.splitKey, splitKey) === 0
  );
}

/**
 * Why a fence or split for (`splitKey`, `rhsRangeId`) is refused, or null: RangeFenced while
 * fenced for another plan or for a merge, KeyOutsideRange unless the split key lies strictly inside
 * `bounds` (both sides must hold at least the split key's side of the span).
 */
export function splitRefusal(
  bounds: RangeBounds,
  state: RangeState,
  splitKey: Uint8Array,
  rhsRangeId: number,
): KvErrorCode | null {
  if (state.kind === "merge-fenced") return KvErrorCode.RangeFenced;
  if (state.kind === "write-fenced" && !samePlan(state, splitKey, rhsRangeId)) return KvErrorCode.RangeFenced;
  const above = compareBytes(splitKey, bounds.start) > 0;
  const below = bounds.end === null || compareBytes(splitKey, bounds.end) < 0;
  return above && below ? null : KvErrorCode.KeyOutsideRange;
}

/** One store's layout and tables. */
export interface SplitSide {
  readonly layout: KeyLayout;
  readonly dedup: DedupTable;
  readonly leases: LeaseTable;
  readonly members: MemberTable;
}

export interface SplitStaging {
  /** The state before the split (the store's committed state with earlier pending writes). */
  readonly reader: KvReader;
  readonly batch: WriteBatch;
  readonly lhs: SplitSide;
  readonly rhs: SplitSide;
  readonly splitKey: Uint8Array;
  /** The left side's bounds before the split. */
  readonly bounds: RangeBounds;
  /** The split's revision: both sides' revision afterwards. */
  readonly revision: bigint;
  readonly compacted: bigint;
}

function namespacesOverlap(a: Uint8Array, b: Uint8Array): boolean {
  return samePrefix(a, b, Math.min(a.length, b.length));
}

/** Whether the right-hand namespace is usable: neither namespace may contain the other. */
export function splitNamespacesValid(lhs: KeyLayout, rhs: KeyLayout): boolean {
  return !namespacesOverlap(lhs.namespace, rhs.namespace);
}

/**
 * Stages the split into `batch`: unless a store already exists under the right-hand
 * namespace, the right-hand store is written whole, with a copy of every version at or above
 * the split key. Returns whether it was. The caller sets the left side's bounds, state and
 * revision. The moved versions stay in the left side's namespace, outside its bounds, where
 * no read looks, until MvccStore.removalStep removes them: deleting them here would double
 * the time the split holds the node.
 */
export function stageSplit(s: SplitStaging): boolean {
  const { reader, batch, lhs, rhs, splitKey } = s;
  let create = true;
  for (const _ of reader.scan(rhs.layout.start, rhs.layout.end, { limit: 1 })) create = false;
  if (create) {
    const strip = lhs.layout.namespace.length;
    const moved = lhs.layout.dataSpan(splitKey, s.bounds.end);
    for (const { key, value } of reader.scan(moved.start, moved.end)) {
      batch.put(concatBytes(rhs.layout.namespace, key.subarray(strip)), value);
    }
  }
  lhs.leases.stageSplit(reader, batch, rhs.leases, splitKey, create);
  if (!create) return false;
  lhs.members.stageCopy(reader, batch, rhs.members);
  lhs.dedup.stageInheritedCopy(reader, batch, rhs.dedup);
  const meta = (field: MetaField, value: Uint8Array) => batch.put(rhs.layout.metaKey(field), value);
  meta(MetaField.LayoutVersion, u64Bytes(LAYOUT_VERSION));
  meta(MetaField.AppliedIndex, u64Bytes(BigInt(RHS_INITIAL_INDEX)));
  meta(MetaField.Revision, u64Bytes(s.revision));
  meta(MetaField.CompactedRevision, u64Bytes(s.compacted));
  meta(MetaField.DedupClients, u64Bytes(0n));
  meta(MetaField.Bounds, encodeRangeBounds({ start: splitKey, end: s.bounds.end }));
  return true;
}

/**
 * The revision at which a store's bounds last changed: its last split or its last merge as
 * the left side, whichever is later (0: neither, since it was created). Revisions only grow,
 * so it changes with every split and merge, and two looks at a range that give the same
 * bounds revision saw the same range, never one that split and merged back between them.
 */
export function boundsRevision(lastSplit: AppliedSplit | null, lastMerge: AppliedMerge | null): bigint {
  const split = lastSplit?.revision ?? 0n;
  const merge = lastMerge?.revision ?? 0n;
  return split > merge ? split : merge;
}

/** A range command and the state it applies to (the store's, before it). */
export interface RangeCommandInput {
  readonly reader: KvReader;
  readonly batch: WriteBatch;
  readonly command: RangeCommand;
  /** The envelope's stamp: a split takes revisionForApply(revision, timestamp). */
  readonly timestamp: bigint;
  readonly revision: bigint;
  readonly compacted: bigint;
  /** The size of the store's dedup table (a merge imports records into it). */
  readonly dedupClients: number;
  readonly bounds: RangeBounds;
  readonly rangeState: RangeState;
  /** The store's bounds revision (boundsRevision): a merge must name it. */
  readonly boundsRevision: bigint;
  /** The highest range id the store split into or merged in: a fence or split must name a higher one. */
  readonly highestRangeId: number;
  readonly lhs: SplitSide;
  /** The layout and tables of another range's store in the same engine. */
  readonly sideOf: (rangeId: number) => SplitSide;
}

export type RangeCommandEffect =
  | { readonly kind: "refused"; readonly code: KvErrorCode }
  | {
      readonly kind: "applied";
      readonly revision: bigint;
      readonly response:
        FenceResponse | SplitResponse | MergeFenceResponse | MergeResponse | RevisionFloorResponse;
      readonly compacted: bigint;
      readonly dedupClients: number;
      readonly bounds: RangeBounds;
      readonly rangeState: RangeState;
      readonly split: SplitOutcome | null;
      /** Set by a split: what the store remembers as its last split. */
      readonly lastSplit: AppliedSplit | null;
      readonly merge: MergeOutcome | null;
      /** Set by a merge: what the store remembers as its last merge. */
      readonly lastMerge: AppliedMerge | null;
    };

/** The effect of a range command that changes none of the store's state but its response. */
export type UnchangedRange = Omit<Extract<RangeCommandEffect, { kind: "applied" }>, "response">;

/**
 * Applies a Fence, Split, MergeFence, Merge or RevisionFloor: stages its writes into `batch`
 * and says what changed. A merge-fenced range refuses all of them but another MergeFence.
 */
export function applyRangeCommand(input: RangeCommandInput): RangeCommandEffect {
  const { command, bounds, rangeState } = input;
  const unchanged: UnchangedRange = {
    kind: "applied",
    revision: input.revision,
    compacted: input.compacted,
    dedupClients: input.dedupClients,
    bounds,
    rangeState,
    split: null,
    lastSplit: null,
    merge: null,
    lastMerge: null,
  };
  if (rangeState.kind === "merge-fenced" && command.kind !== "merge-fence") {
    return { kind: "refused", code: KvErrorCode.RangeFenced };
  }
  if (command.kind === "merge-fence" || command.kind === "merge") {
    return applyMergeCommand(input, command, unchanged);
  }
  if (command.kind === "revision-floor") {
    const revision = command.revision > input.revision ? command.revision : input.revision;
    return { ...unchanged, revision, response: { kind: "revision-floor" } };
  }
  const { splitKey, rhsRangeId } = command;
  const refusal = splitRefusal(bounds, rangeState, splitKey, rhsRangeId);
  if (refusal !== null) return { kind: "refused", code: refusal };
  // Route ids are allocated in increasing order, so a fence or split naming an id this store
  // already split into or merged in, or a lower one, is a stale plan (a coordinator's retry of
  // a split that applied before a merge): applying it could revive a merged-away range's
  // store, still under its namespace until its replica is destroyed, and lose the writes made
  // since (simulator seed 94037).
  if (rhsRangeId <= input.highestRangeId) return { kind: "refused", code: KvErrorCode.KeyOutsideRange };
  if (command.kind === "fence") {
    const fenced: RangeState =
      rangeState.kind === "write-fenced"
        ? rangeState
        : { kind: "write-fenced", splitKey: splitKey.slice(), rhsRangeId };
    return { ...unchanged, rangeState: fenced, response: { kind: "fence" } };
  }
  const rhs = input.sideOf(rhsRangeId);
  // The namespaces of the two sides must be disjoint, as for any two stores of one engine.
  if (!splitNamespacesValid(input.lhs.layout, rhs.layout)) {
    return { kind: "refused", code: KvErrorCode.KeyOutsideRange };
  }
  const revision = revisionForApply(input.revision, input.timestamp);
  const rhsCreated = stageSplit({
    reader: input.reader,
    batch: input.batch,
    lhs: input.lhs,
    rhs,
    splitKey,
    bounds,
    revision,
    compacted: input.compacted,
  });
  const lhsBounds: RangeBounds = { start: bounds.start, end: splitKey.slice() };
  const rhsBounds: RangeBounds = { start: splitKey.slice(), end: bounds.end };
  return {
    ...unchanged,
    revision,
    response: { kind: "split" },
    bounds: lhsBounds,
    rangeState: ACTIVE_RANGE,
    split: { rhsRangeId, lhsBounds, rhsBounds, rhsCreated },
    lastSplit: { splitKey: splitKey.slice(), rhsRangeId, revision },
  };
}
