/**
 * Merging a range's store into its left neighbour's: the merge fence (the right-hand range
 * refuses every state change, so an image of it cannot go stale), decoding and checking that
 * image (the store snapshot format of the right-hand range's whole namespace), and staging a
 * merge — every data version, the lease table and the dedup table of the image enter this
 * store's namespace in the merge command's batch, so the store writes it in ONE engine write
 * with its grown bounds. What the store remembers of its last merge (`AppliedMerge`) is here
 * too.
 *
 * The image is history: its versions keep their revisions (all at or below the image's
 * revision, below the merge's), so reads at old revisions of the right-hand keys answer on
 * the merged range exactly as they did on the right-hand one, and no watch event is made for
 * them (the right-hand range's watches delivered them).
 */
import { decodeRangeBounds, type RangeBounds } from "./bounds.js";
import { ByteReader, ByteWriter, DecodeError, EMPTY, compareBytes, concatBytes } from "./bytes.js";
import type { MergeFenceRequest, MergeRequest } from "./commands.js";
import { DedupTable } from "./dedup.js";
import { WriteBatch, type KvReader } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { revisionForApply } from "./hlc.js";
import { KeyLayout, LAYOUT_VERSION, MetaField } from "./keys.js";
import { LeaseTable } from "./leases.js";
import { MemoryOrderedKv } from "./memory-engine.js";
import { SnapshotDecoder } from "./snapshot.js";
import {
  MERGE_FENCED_RANGE,
  decodeRangeState,
  type RangeCommandEffect,
  type RangeCommandInput,
  type RangeState,
  type UnchangedRange,
} from "./split.js";

/** What a merge did, for the node (ApplyOutcome.merge). */
export interface MergeOutcome {
  /** The range merged away (its store is left for the node to destroy). */
  readonly rhsRangeId: number;
  /** This store's bounds now: [its start, the image's end). */
  readonly bounds: RangeBounds;
}

/** A merge a store applied: which range it took in, and the merge's revision. */
export interface AppliedMerge {
  readonly rhsRangeId: number;
  readonly revision: bigint;
}

const APPLIED_MERGE_FORMAT = 1;

export function encodeAppliedMerge(merge: AppliedMerge): Uint8Array {
  return new ByteWriter().u8(APPLIED_MERGE_FORMAT).u32(merge.rhsRangeId).u64(merge.revision).finish();
}

export function decodeAppliedMerge(bytes: Uint8Array): AppliedMerge {
  const r = new ByteReader(bytes, "applied merge");
  const format = r.u8();
  if (format !== APPLIED_MERGE_FORMAT) r.fail("unknown-version", `applied merge format ${format}`);
  const merge = { rhsRangeId: r.u32(), revision: r.u64() };
  r.end();
  return merge;
}

/**
 * Why a merge fence is refused, or null: KeyOutsideRange on the first range (it holds the
 * catalog and is never merged away), RangeFenced while fenced for a split.
 */
export function mergeFenceRefusal(bounds: RangeBounds, state: RangeState): KvErrorCode | null {
  if (bounds.start.length === 0) return KvErrorCode.KeyOutsideRange;
  return state.kind === "write-fenced" ? KvErrorCode.RangeFenced : null;
}

/** A decoded merge image: its pairs (keys relative to the namespace) and its meta state. */
export interface MergeImage {
  readonly reader: KvReader;
  /** The image's layout: an empty namespace, since its keys are relative. */
  readonly layout: KeyLayout;
  readonly revision: bigint;
  readonly compacted: bigint;
  readonly bounds: RangeBounds;
  readonly rangeState: RangeState;
}

function metaU64(reader: KvReader, layout: KeyLayout, field: MetaField): bigint {
  const bytes = reader.get(layout.metaKey(field));
  if (bytes === undefined) return 0n;
  if (bytes.length !== 8) {
    throw new DecodeError("merge image", "invalid-field", `meta field ${field} has ${bytes.length} bytes`);
  }
  return new ByteReader(bytes, "merge image").u64();
}

/**
 * Decodes an image (MvccStore.mergeImage) and checks that it is one a merge may take in:
 * its layout version is this one's, its store is merge-fenced, does not start at the empty
 * key, and holds no version outside its bounds. Throws DecodeError otherwise.
 */
export function decodeMergeImage(image: Uint8Array): MergeImage {
  const decoder = new SnapshotDecoder();
  const batch = new WriteBatch();
  for (const { key, value } of decoder.push(image)) batch.put(key, value);
  decoder.finish();
  const kv = new MemoryOrderedKv();
  kv.write(batch);
  // A memory engine's view holds nothing open: it needs no release.
  const reader = kv.view();
  const layout = new KeyLayout(EMPTY);
  const fail = (detail: string): never => {
    throw new DecodeError("merge image", "invalid-field", detail);
  };
  const version = metaU64(reader, layout, MetaField.LayoutVersion);
  if (version !== LAYOUT_VERSION) fail(`store layout version ${version}`);
  const boundsBytes = reader.get(layout.metaKey(MetaField.Bounds));
  const stateBytes = reader.get(layout.metaKey(MetaField.RangeState));
  if (boundsBytes === undefined || stateBytes === undefined) fail("no bounds or range state");
  const bounds = decodeRangeBounds(boundsBytes!);
  const rangeState = decodeRangeState(stateBytes!);
  if (rangeState.kind !== "merge-fenced") fail(`the range is ${rangeState.kind}, not merge-fenced`);
  if (bounds.start.length === 0) fail("the image is of the first range");
  const first = layout.versionsPrefix(bounds.start);
  const last = bounds.end === null ? null : layout.versionsPrefix(bounds.end);
  for (const { key } of reader.scan(layout.dataStart, layout.dataEnd)) {
    if (compareBytes(key, first) < 0 || (last !== null && compareBytes(key, last) >= 0)) {
      fail("a version lies outside the image's bounds");
    }
  }
  return {
    reader,
    layout,
    revision: metaU64(reader, layout, MetaField.Revision),
    compacted: metaU64(reader, layout, MetaField.CompactedRevision),
    bounds,
    rangeState,
  };
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** MergeFence or Merge on the state `input` describes (split.ts dispatches them here). */
export function applyMergeCommand(
  input: RangeCommandInput,
  command: MergeFenceRequest | MergeRequest,
  unchanged: UnchangedRange,
): RangeCommandEffect {
  const { bounds, rangeState } = input;
  if (command.kind === "merge-fence") {
    const refusal = mergeFenceRefusal(bounds, rangeState);
    if (refusal !== null) return { kind: "refused", code: refusal };
    return { ...unchanged, rangeState: MERGE_FENCED_RANGE, response: { kind: "merge-fence" } };
  }
  if (rangeState.kind !== "active") return { kind: "refused", code: KvErrorCode.RangeFenced };
  if (bounds.end === null) return { kind: "refused", code: KvErrorCode.KeyOutsideRange };
  let image: MergeImage;
  try {
    image = decodeMergeImage(command.image);
  } catch (error) {
    if (error instanceof DecodeError) return { kind: "refused", code: KvErrorCode.MergeImageInvalid };
    throw error;
  }
  // A range that no longer ends where the image starts took it in already, or split since; one
  // whose bounds revision moved split or merged since the merge was decided, whatever its end.
  if (
    compareBytes(bounds.end, image.bounds.start) !== 0 ||
    command.lhsBoundsRevision !== input.boundsRevision
  ) {
    return { kind: "refused", code: KvErrorCode.KeyOutsideRange };
  }
  const { reader, batch, lhs } = input;
  const prefix = lhs.layout.namespace;
  // Versions of the merged keys that this range's last split moved out may still be stored
  // here, not removed yet (MvccStore.removalStep): they go before the image's come in.
  for (const { key } of reader.scan(lhs.layout.versionsPrefix(bounds.end), lhs.layout.dataEnd)) {
    batch.delete(key);
  }
  for (const { key, value } of image.reader.scan(image.layout.dataStart, image.layout.dataEnd)) {
    batch.put(concatBytes(prefix, key), value);
  }
  lhs.leases.stageMergeFrom(reader, batch, new LeaseTable(image.layout), image.reader);
  const imageDedup = new DedupTable(image.layout, lhs.dedup.maxClients);
  const dedupClients = lhs.dedup.stageMergeFrom(reader, batch, imageDedup, image.reader, input.dedupClients);
  const revision = revisionForApply(max(input.revision, image.revision), input.timestamp);
  const merged: RangeBounds = { start: bounds.start, end: image.bounds.end };
  return {
    ...unchanged,
    revision,
    compacted: max(input.compacted, image.compacted),
    dedupClients,
    bounds: merged,
    response: { kind: "merge" },
    merge: { rhsRangeId: command.rhsRangeId, bounds: merged },
    lastMerge: { rhsRangeId: command.rhsRangeId, revision },
  };
}
