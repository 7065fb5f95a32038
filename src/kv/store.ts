/**
 * MvccStore: Concord's replicated state machine — an etcd-compatible multi-version key-value
 * store over an OrderedKv. `apply` executes committed log entries deterministically (the same
 * entries from the same state give byte-identical engines on every replica, but for the
 * versions compaction removes, which each replica removes at its own pace with
 * `removalStep`); `range` serves reads at the current or a past revision; `snapshot` /
 * `restore` move the whole state.
 *
 * Each apply (one entry, or a batch of entries with `applyEntries`) is one atomic engine write
 * holding the commands' effects, their dedup records and the meta data (applied index,
 * revision, compacted revision), so a crash can never separate a command's effects from the
 * record that it was applied.
 *
 * Revisions are HLC timestamps: a write applies at revisionForApply(last revision, the
 * leader's stamp). Commands that change nothing (a delete of nothing, a failed compare with
 * only reads, an error) keep the revision, as in etcd. Compaction and lease grants do not
 * create a revision; a lease revocation that deletes keys does.
 *
 * The lease table and the member table live in the same keyspace (leases.ts, members.ts;
 * member commands create no revision either), and `history` rebuilds the change
 * events of past revisions for watchers that start in the past (history.ts, watch.ts).
 *
 * The store holds one range's keys (`bounds`, meta data like the revision): a command naming
 * a key outside them applies as a KeyOutsideRange error, a write touching the part of a range
 * fenced for a split that moves (keys >= the split key) as RangeFenced — neither recorded for dedup, so the client retries the same request
 * on the right range. Fence, Split and RevisionFloor are split.ts's; MergeFence and Merge are
 * merge.ts's (a merge-fenced store refuses every state change with RangeFenced).
 */
import { crc32 } from "node:zlib";
import {
  compareBytes,
  concatBytes,
  DecodeError,
  latin1,
  readU64,
  samePrefix,
  subrange,
  u64Bytes,
} from "./bytes.js";
import {
  FULL_BOUNDS,
  boundsContainSpan,
  clipInterval,
  commandInsideBounds,
  commandWrites,
  decodeRangeBounds,
  encodeRangeBounds,
  spanOfRequest,
  type RangeBounds,
} from "./bounds.js";
import {
  checkEnvelope,
  isRangeCommand,
  type CommandEnvelope,
  type KvCommand,
  type RangeCommand,
  type RangeRequest,
} from "./commands.js";
import { CompactedVersions, compactionError } from "./compaction.js";
import { DedupTable } from "./dedup.js";
import {
  BatchOverlay,
  WriteBatch,
  type KvPair,
  type KvReader,
  type OrderedKv,
  type ReadView,
} from "./engine.js";
import { KvError, KvErrorCode } from "./errors.js";
import { readHistory, type HistoryPage } from "./history.js";
import { revisionForApply } from "./hlc.js";
import {
  KeyLayout,
  LAYOUT_VERSION,
  MetaField,
  decodeDescendingRevision,
  rangeIdOfNamespace,
  rangeNamespace,
} from "./keys.js";
import { NewestVersions, type NewestVersionsLimits } from "./newest.js";
import { LeaseTable, type LeaseChange, type LeaseInfo, type LeaseSummary } from "./leases.js";
import { decodeAppliedMerge, encodeAppliedMerge, type AppliedMerge, type MergeOutcome } from "./merge.js";
import { MemberTable, type MemberAttributes } from "./members.js";
import { executeRange, keyInterval, type RevisionBounds } from "./range.js";
import { errorResponse, type CommandResult, type KvEvent, type RangeResult } from "./results.js";
import {
  DEFAULT_SNAPSHOT_CHUNK_BYTES,
  SnapshotDecoder,
  encodeSnapshot,
  namespacePairs,
  snapshotOfPairs,
  type MvccSnapshot,
} from "./snapshot.js";
import {
  ACTIVE_RANGE,
  applyRangeCommand,
  boundsRevision,
  decodeAppliedSplit,
  decodeRangeState,
  encodeAppliedSplit,
  encodeRangeState,
  type AppliedSplit,
  type RangeState,
  type SplitOutcome,
  type SplitSide,
} from "./split.js";
import { commandShapeError } from "./txn.js";
import { CommandWriter, type NewestVersionLookup } from "./writer.js";

export interface MvccStoreOptions {
  /**
   * Prefix of every key the store writes (default: none, the store owns the engine). Stores
   * sharing an engine need namespaces none of which is a prefix of another.
   */
  readonly namespace?: Uint8Array;
  /** Most clients the dedup table remembers (default DEFAULT_MAX_DEDUP_CLIENTS). */
  readonly maxDedupClients?: number;
  /**
   * A put (alone or in a transaction) naming a lease that is not live fails with "etcdserver:
   * requested lease not found", as in etcd. Off by default, so the MVCC layer can be used and
   * tested without granting leases: a lease id is then recorded as given, and keys are
   * attached only to live leases. Every replica of a group must use the same setting.
   */
  readonly enforceLeases?: boolean;
  /** Bounds of the in-memory index of newest versions (default DEFAULT_NEWEST_VERSIONS_LIMITS). */
  readonly newestVersions?: NewestVersionsLimits;
  /**
   * The namespace of range `rangeId`'s store in the same engine, where a split puts its
   * right-hand side (default rangeNamespace). Must match how the node opens that range.
   */
  readonly namespaceOf?: (rangeId: number) => Uint8Array;
}

/** Which changes `history` reads: etcd's key / range end, from a revision on. */
export interface HistoryRequest {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  /** The first revision to report; must be above the compacted revision. */
  readonly fromRevision: bigint;
  /** About how many events one page may hold (whole revisions only). */
  readonly maxEvents: number;
}

export const DEFAULT_MAX_DEDUP_CLIENTS = 10_000;

export interface ApplyOutcome {
  readonly result: CommandResult;
  /** The changes the command made, in order, all at result.revision: the watch feed. */
  readonly events: readonly KvEvent[];
  /**
   * The command was a retry and was not applied again: `result` is the stored result of its
   * first application, or a StaleSequence error when it is older than the client's last one.
   */
  readonly duplicate: boolean;
  /** Present when the command granted or revoked a lease: the leader's LeaseClock follows it. */
  readonly leaseChange?: LeaseChange;
  /** Present when the command split the range: the node starts the right-hand range's replica. */
  readonly split?: SplitOutcome;
  /** Present when the command merged the right-hand neighbour in: the node retires its replica. */
  readonly merge?: MergeOutcome;
}

export type { MvccSnapshot } from "./snapshot.js";

/**
 * One read view of a store with what an image of it needs (`MvccStore.imageView`): pairs of
 * its namespace are read from `view`; whoever takes it releases the view.
 */
export interface StoreImageView {
  readonly view: ReadView;
  readonly layout: KeyLayout;
  /** The store's bounds: versions of keys outside them are not in an image. */
  readonly bounds: RangeBounds;
  readonly appliedIndex: number;
  readonly revision: bigint;
}

/** One log entry for `applyEntries`: its command, or null for an entry without one. */
export interface AppliedEntryInput {
  readonly index: number;
  readonly envelope: CommandEnvelope<KvCommand> | null;
}

interface StoreState {
  readonly appliedIndex: number;
  readonly revision: bigint;
  readonly compacted: bigint;
  readonly dedupClients: number;
  readonly bounds: RangeBounds;
  readonly rangeState: RangeState;
  readonly lastSplit: AppliedSplit | null;
  readonly lastMerge: AppliedMerge | null;
  /** MetaField.HighestRangeId: no fence or split may name a range id at or below it. */
  readonly highestRangeId: number;
}

interface Executed {
  readonly batch: WriteBatch;
  readonly result: CommandResult;
  readonly events: readonly KvEvent[];
  readonly revision: bigint;
  readonly compacted: bigint;
  readonly leaseChange: LeaseChange | null;
  readonly bounds: RangeBounds;
  readonly rangeState: RangeState;
  readonly split: SplitOutcome | null;
  /** Present when the command changed the store's last split. */
  readonly lastSplit?: AppliedSplit;
  readonly merge?: MergeOutcome;
  /** Present when the command changed the store's last merge. */
  readonly lastMerge?: AppliedMerge;
  /** Present when the command changed the dedup table's size (a merge imports records). */
  readonly dedupClients?: number;
}

/**
 * Error results that are not recorded for dedup, so a retry of the same request applies:
 * routing refusals (the client retries on the right range), an unknown lease (a router
 * may mirror the lease from range 1 into this range, then retry) and a refused merge image (a
 * coordinator retries with a fresh one). None of them wrote anything.
 */
function isRetriedUnrecorded(result: CommandResult): boolean {
  const { response } = result;
  return (
    response.kind === "error" &&
    (response.code === KvErrorCode.KeyOutsideRange ||
      response.code === KvErrorCode.RangeFenced ||
      response.code === KvErrorCode.LeaseNotFound ||
      response.code === KvErrorCode.MergeImageInvalid)
  );
}

/*
 * The state and the outcome of every applied command are built as whole object literals, not
 * spread from the previous ones: spreading them took a tenth of the CPU time of applying puts.
 */

/** `before` with `appliedIndex` moved on and nothing else changed. */
function withAppliedIndex(before: StoreState, appliedIndex: number): StoreState {
  return {
    appliedIndex,
    revision: before.revision,
    compacted: before.compacted,
    dedupClients: before.dedupClients,
    bounds: before.bounds,
    rangeState: before.rangeState,
    lastSplit: before.lastSplit,
    lastMerge: before.lastMerge,
    highestRangeId: before.highestRangeId,
  };
}

/**
 * A command that answered `result`, staged `batch` (maybe nothing) and reported `events` at
 * `revision`, leaving the bounds, range state, compaction and leases as `before` has them.
 */
function executedOn(
  before: StoreState,
  batch: WriteBatch,
  result: CommandResult,
  events: readonly KvEvent[] = [],
  revision: bigint = before.revision,
): Executed {
  return {
    batch,
    result,
    events,
    revision,
    compacted: before.compacted,
    leaseChange: null,
    bounds: before.bounds,
    rangeState: before.rangeState,
    split: null,
  };
}

/** A command refused with `code`: it staged nothing and changed nothing. */
function refusedWith(before: StoreState, code: KvErrorCode): Executed {
  return executedOn(before, new WriteBatch(), { revision: before.revision, response: errorResponse(code) });
}

/**
 * What `sizeEstimate` answers: the data's bytes and stored versions, and its size-median user
 * key (null: no data).
 */
export interface SizeEstimate {
  readonly bytes: number;
  readonly versions: number;
  readonly medianKey: Uint8Array | null;
}

/** etcd's HashKV answer: the hash, the revision it was taken at, and the compacted revision. */
export interface KvHash {
  readonly hash: number;
  readonly revision: bigint;
  readonly compacted: bigint;
}

/** Whether two data keys are versions of the same user key (they differ in the revision suffix only). */
function sameUserKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && samePrefix(a, b, a.length - 8);
}

/** A u64 meta field of the store under `layout` (0 when absent). */
function readMetaU64(
  get: (key: Uint8Array) => Uint8Array | undefined,
  layout: KeyLayout,
  f: MetaField,
): bigint {
  const bytes = get(layout.metaKey(f));
  if (bytes === undefined) return 0n;
  if (bytes.length !== 8)
    throw new DecodeError("store meta", "invalid-field", `field ${f} has ${bytes.length} bytes`);
  return readU64(bytes, 0);
}

/**
 * The applied index of the store under `namespace` in `kv` (0: no store there, or one that
 * applied nothing), read from its meta without opening it (MvccStore's constructor also reads
 * its whole state and looks for versions outside its bounds).
 */
export function storedAppliedIndex(kv: OrderedKv, namespace: Uint8Array = new Uint8Array(0)): number {
  const view = kv.view();
  try {
    return Number(readMetaU64((key) => view.get(key), new KeyLayout(namespace), MetaField.AppliedIndex));
  } finally {
    view.release();
  }
}

/** The granularity of `sizeEstimate`'s median: one remembered key per this many bytes. */
const SIZE_CHECKPOINT_BYTES = 64 * 1024;

export class MvccStore {
  private readonly layout: KeyLayout;
  private readonly dedup: DedupTable;
  private readonly leaseTable: LeaseTable;
  private readonly memberTable: MemberTable;
  private readonly enforceLeases: boolean;
  private readonly namespaceOf: (rangeId: number) => Uint8Array;
  /** The newest committed version of recently written keys: what a put replaces, without a seek. */
  private readonly newestVersions: NewestVersions;
  private state: StoreState;
  private restoring = false;
  /**
   * The revision up to which compaction's removals are done here (meta PhysicallyCompacted;
   * local, not replicated: each replica removes at its own pace). Below the compacted
   * revision, removalStep has work.
   */
  private physicallyCompacted: bigint;
  /** Versions lie outside the bounds: a split moved them out (removalStep removes them). */
  private outsideBounds: boolean;
  /** Where the next step removing versions outside the bounds starts (null: at the start). */
  private outsideBoundsNext: Uint8Array | null = null;
  /** The compaction pass under way: its compaction and where its next step starts. */
  private compactionPass: { readonly versions: CompactedVersions; next: Uint8Array } | null = null;
  /** Engine operations written since the store opened (applies, removals, restores): see `changedOps`. */
  private writtenOps = 0;

  constructor(
    private readonly kv: OrderedKv,
    options: MvccStoreOptions = {},
  ) {
    this.layout = new KeyLayout(options.namespace ?? new Uint8Array(0));
    this.dedup = new DedupTable(this.layout, options.maxDedupClients ?? DEFAULT_MAX_DEDUP_CLIENTS);
    this.leaseTable = new LeaseTable(this.layout);
    this.memberTable = new MemberTable(this.layout);
    this.enforceLeases = options.enforceLeases ?? false;
    this.namespaceOf = options.namespaceOf ?? rangeNamespace;
    this.newestVersions = new NewestVersions(
      this.layout.dataStart,
      this.layout.dataEnd,
      options.newestVersions,
    );
    const view = kv.view();
    try {
      this.state = this.readState((key) => view.get(key));
      this.physicallyCompacted = readMetaU64(
        (key) => view.get(key),
        this.layout,
        MetaField.PhysicallyCompacted,
      );
      this.outsideBounds = this.hasVersionsOutsideBounds(view);
    } finally {
      view.release();
    }
  }

  /** Raft index of the last entry applied (0 before any). */
  get appliedIndex(): number {
    return this.state.appliedIndex;
  }

  /** The current revision: that of the last write (0 before any). */
  get revision(): bigint {
    return this.state.revision;
  }

  /** Reads below this revision fail with ErrCompacted (0: nothing compacted). */
  get compactedRevision(): bigint {
    return this.state.compacted;
  }

  /** The keys this store holds (FULL_BOUNDS until a split shrinks them). */
  get bounds(): RangeBounds {
    return this.state.bounds;
  }

  /** Active, write-fenced for a planned split, or merge-fenced. */
  get rangeState(): RangeState {
    return this.state.rangeState;
  }

  /** The last split this store applied (its plan and revision), or null. */
  get lastSplit(): AppliedSplit | null {
    return this.state.lastSplit;
  }

  /** The last merge this store applied (the range it took in, the merge's revision), or null. */
  get lastMerge(): AppliedMerge | null {
    return this.state.lastMerge;
  }

  /** The revision of this store's last split or merge (split.ts boundsRevision); a merge names it. */
  get boundsRevision(): bigint {
    return boundsRevision(this.state.lastSplit, this.state.lastMerge);
  }

  /**
   * The whole namespace in the snapshot format, as one byte array: what a Merge command on
   * the left neighbour carries. Only a merge-fenced store has one (its state cannot change
   * any more); throws otherwise.
   */
  mergeImage(): Uint8Array {
    if (this.state.rangeState.kind !== "merge-fenced") {
      const range = rangeIdOfNamespace(this.layout.namespace) ?? "(unnamed)";
      throw new Error(`range ${range} is not merge-fenced: its image would go stale`);
    }
    const view = this.kv.view();
    try {
      return concatBytes(...encodeSnapshot(namespacePairs(view, this.layout, this.state.bounds)));
    } finally {
      view.release();
    }
  }

  /**
   * Applies the command of log entry `entryIndex`, which must be above appliedIndex. A retry
   * (same client id and sequence as that client's last applied command) is answered from the
   * dedup table without applying again. Errors of the command are part of its result; a
   * throw means a bug or a broken engine, and leaves the store unchanged.
   */
  apply(entryIndex: number, envelope: CommandEnvelope<KvCommand>): ApplyOutcome {
    return this.applyEntries([{ index: entryIndex, envelope }])[0]!;
  }

  /** Records that entry `entryIndex` (no command: an empty or configuration entry) is applied. */
  markApplied(entryIndex: number): void {
    this.applyEntries([{ index: entryIndex, envelope: null }]);
  }

  /**
   * Applies log entries (increasing indexes above appliedIndex) in ONE atomic engine write: each command reads the effects of those before it through the pending batch, so
   * the outcomes are exactly those of applying them one by one, at a fraction of the cost (one
   * engine transaction instead of one per entry). An entry without a command (`envelope`
   * null: an empty or configuration entry) only moves the applied index. Returns the outcome
   * of each command entry, null for the others. Reads see none of the entries until all are
   * written; a throw leaves the store unchanged.
   */
  applyEntries(entries: readonly AppliedEntryInput[]): (ApplyOutcome | null)[] {
    if (this.restoring) throw new Error("cannot apply while a snapshot is being restored");
    const view = this.kv.view();
    try {
      const pending = new WriteBatch();
      const reader = new BatchOverlay(view, pending);
      const newestVersion: NewestVersionLookup = (userKey, own) => {
        const prefix = this.layout.versionsPrefix(userKey);
        return this.newestVersions.newestVersion(view, [own, pending], prefix, true)?.value;
      };
      const before = this.state;
      let state = before;
      const outcomes = entries.map(({ index, envelope }) => {
        if (!Number.isSafeInteger(index) || index <= state.appliedIndex) {
          throw new Error(`entry index ${index} is not above the applied index ${state.appliedIndex}`);
        }
        if (envelope === null) {
          state = withAppliedIndex(state, index);
          return null;
        }
        const applied = this.applyCommand(reader, newestVersion, state, index, envelope);
        pending.absorb(applied.batch);
        state = applied.state;
        return applied.outcome;
      });
      this.stageState(pending, before, state);
      this.kv.write(pending);
      this.writtenOps += pending.size;
      this.newestVersions.committed(pending);
      this.state = state;
      if (outcomes.some((outcome) => outcome?.split !== undefined)) {
        this.outsideBounds = true;
        this.outsideBoundsNext = null;
        // Its entries for the moved keys are not this range's any more.
        this.newestVersions.clear();
      }
      if (outcomes.some((outcome) => outcome?.merge !== undefined)) {
        this.physicallyCompacted = 0n;
        this.compactionPass = null;
        this.newestVersions.reset();
      }
      return outcomes;
    } finally {
      view.release();
    }
  }

  /** One command on top of `reader` (the state `before` describes): its effects, outcome and new state. */
  private applyCommand(
    reader: KvReader,
    newestVersion: NewestVersionLookup,
    before: StoreState,
    entryIndex: number,
    envelope: CommandEnvelope<KvCommand>,
  ): { batch: WriteBatch; outcome: ApplyOutcome; state: StoreState } {
    checkEnvelope(envelope);
    const { clientId, sequence } = envelope;
    const previous = clientId === "" ? undefined : this.dedup.lookup(reader, clientId);
    if (previous !== undefined && sequence <= previous.sequence) {
      const result =
        sequence === previous.sequence
          ? previous.result()
          : { revision: before.revision, response: errorResponse(KvErrorCode.StaleSequence) };
      return {
        batch: new WriteBatch(),
        outcome: { result, events: [], duplicate: true },
        state: withAppliedIndex(before, entryIndex),
      };
    }
    const executed = this.execute(reader, envelope, before, entryIndex, newestVersion);
    let outcome: ApplyOutcome = { result: executed.result, events: executed.events, duplicate: false };
    // Only range and lease commands have these: rare enough to spread for.
    if (executed.leaseChange !== null) outcome = { ...outcome, leaseChange: executed.leaseChange };
    if (executed.split !== null) outcome = { ...outcome, split: executed.split };
    if (executed.merge !== undefined) {
      outcome = { ...outcome, merge: executed.merge };
      // The versions merged in may hold some that the other range's compaction has not
      // removed yet: the next removal pass goes over everything (applyEntries restarts it).
      executed.batch.delete(this.layout.metaKey(MetaField.PhysicallyCompacted));
    }
    let dedupClients = executed.dedupClients ?? before.dedupClients;
    if (clientId !== "" && !isRetriedUnrecorded(executed.result)) {
      const record = { sequence, entryIndex, result: executed.result };
      // A merge may have imported this client's record: replace that one.
      const replaced =
        executed.merge === undefined
          ? previous
          : this.dedup.lookup(new BatchOverlay(reader, executed.batch), clientId);
      dedupClients = this.dedup.record(reader, executed.batch, clientId, record, replaced, dedupClients);
    }
    const state: StoreState = {
      appliedIndex: entryIndex,
      revision: executed.revision,
      compacted: executed.compacted,
      dedupClients,
      bounds: executed.bounds,
      rangeState: executed.rangeState,
      lastSplit: executed.lastSplit ?? before.lastSplit,
      lastMerge: executed.lastMerge ?? before.lastMerge,
      highestRangeId: Math.max(
        before.highestRangeId,
        executed.lastSplit?.rhsRangeId ?? 0,
        executed.lastMerge?.rhsRangeId ?? 0,
      ),
    };
    return { batch: executed.batch, outcome, state };
  }

  /**
   * etcd's Range at request.revision (0: current). Throws KvError (compacted, future revision,
   * empty key; KeyOutsideRange for a span not inside the bounds).
   */
  range(request: RangeRequest): RangeResult {
    const span = spanOfRequest(request.key, request.rangeEnd);
    const named = request.key.length > 0 || request.rangeEnd.length > 0;
    if (named && !boundsContainSpan(this.state.bounds, span.start, span.end)) {
      throw new KvError(KvErrorCode.KeyOutsideRange);
    }
    const view = this.kv.view();
    try {
      const bounds = { current: this.state.revision, compacted: this.state.compacted };
      const newest = (userKey: Uint8Array) =>
        this.newestVersions.newestVersion(view, [], this.layout.versionsPrefix(userKey))?.value;
      return { ...executeRange(view, this.layout, request, bounds, newest), revision: bounds.current };
    } finally {
      view.release();
    }
  }

  /** The live lease `id` (with its attached keys when `keys`), or undefined. */
  lease(id: bigint, options: { readonly keys?: boolean } = {}): LeaseInfo | undefined {
    const view = this.kv.view();
    try {
      const lease = this.leaseTable.lookup(view, id);
      if (lease === undefined) return undefined;
      return { ...lease, keys: options.keys === true ? this.leaseTable.attachedKeys(view, id) : [] };
    } finally {
      view.release();
    }
  }

  /** Every live lease, by id (etcd's LeaseLeases, with the granted TTLs). */
  leases(): LeaseSummary[] {
    const view = this.kv.view();
    try {
      return this.leaseTable.list(view);
    } finally {
      view.release();
    }
  }

  /**
   * etcd's HashKV: a CRC-32 over every stored version that compaction keeps (key and value
   * bytes, relative to the namespace, in key order) at or below `revision` (0: the current
   * one). Replicas that applied the same entries keep byte-identical versions, so they answer
   * the same hash for the same revision. The CRC continues from `seed`: ranges hashed in key order, each from the hash
   * of the one before, hash like one store holding all their versions. Throws KvError:
   * Compacted below the compacted revision, FutureRevision above the current one.
   */
  hashKv(revision = 0n, seed = 0): KvHash {
    const { compacted } = this.state;
    const at = revision === 0n ? this.state.revision : revision;
    if (at > this.state.revision) throw new KvError(KvErrorCode.FutureRevision);
    if (at < compacted) throw new KvError(KvErrorCode.Compacted);
    const strip = this.layout.namespace.length;
    const view = this.kv.view();
    try {
      let hash = seed;
      // Versions compaction removed or a split moved out may still be stored here
      // (removalStep removes them later, at each replica's pace): they are left out, so
      // replicas hash alike.
      const removed = new CompactedVersions(compacted);
      const inside = this.layout.dataSpan(this.state.bounds.start, this.state.bounds.end);
      for (const { key, value } of view.scan(inside.start, inside.end)) {
        if (removed.removes(key, value)) continue;
        if (decodeDescendingRevision(key, key.length - 8) > at) continue;
        hash = crc32(value, crc32(key.subarray(strip), hash));
      }
      return { hash, revision: this.state.revision, compacted };
    } finally {
      view.release();
    }
  }

  /**
   * Whether versions no read can see are still stored: ones compaction removed, or ones a
   * split moved out of the bounds. removalStep removes them.
   */
  get removalPending(): boolean {
    return this.outsideBounds || this.physicallyCompacted < this.state.compacted;
  }

  /**
   * Removes up to `maxVersions` versions' worth of what compaction and splits left behind;
   * returns whether work remains. The node runs these steps between requests: a Compact only
   * moves the compacted revision, and a split only copies the versions it moves, because
   * removing them in the apply would hold the node for a scan of the whole range (etcd also
   * compacts in the background, in batches).
   *
   * Versions outside the bounds go first, then a compaction pass: over the data in key order,
   * it removes what the compaction at the compacted revision removes, and records that
   * revision once it reaches the end (meta PhysicallyCompacted; a pass that a later compaction
   * overtook is followed by another). A restart, restore or merge starts the pass again.
   */
  removalStep(maxVersions: number): boolean {
    if (!(maxVersions >= 1)) throw new RangeError(`maxVersions must be at least 1, got ${maxVersions}`);
    if (this.restoring) return true;
    const batch = new WriteBatch();
    const view = this.kv.view();
    try {
      if (this.outsideBounds) this.stageOutsideBoundsRemoval(view, batch, maxVersions);
      else if (this.physicallyCompacted < this.state.compacted)
        this.stageCompactedRemoval(view, batch, maxVersions);
    } finally {
      view.release();
    }
    this.kv.write(batch);
    this.writtenOps += batch.size;
    this.newestVersions.committed(batch);
    return this.removalPending;
  }

  private stageOutsideBoundsRemoval(view: ReadView, batch: WriteBatch, maxVersions: number): void {
    const inside = this.layout.dataSpan(this.state.bounds.start, this.state.bounds.end);
    let removed = 0;
    let last: Uint8Array | null = null;
    for (const [start, end] of [
      [this.layout.dataStart, inside.start],
      [inside.end, this.layout.dataEnd],
    ] as const) {
      if (removed >= maxVersions) break;
      // The versions the last steps removed are still in the engine's unwritten layers, which
      // a scan from the start would walk over again: each step goes on from the last.
      const cursor = this.outsideBoundsNext;
      const from = cursor !== null && compareBytes(cursor, start) > 0 ? cursor : start;
      if (compareBytes(from, end) >= 0) continue;
      for (const { key } of view.scan(from, end, { limit: maxVersions - removed })) {
        batch.delete(key);
        removed += 1;
        last = key;
      }
    }
    if (removed < maxVersions) {
      this.outsideBounds = false;
      this.outsideBoundsNext = null;
    } else {
      this.outsideBoundsNext = concatBytes(last!, Uint8Array.of(0));
    }
  }

  private stageCompactedRemoval(view: ReadView, batch: WriteBatch, maxVersions: number): void {
    const inside = this.layout.dataSpan(this.state.bounds.start, this.state.bounds.end);
    const pass = (this.compactionPass ??= {
      versions: new CompactedVersions(this.state.compacted),
      next: inside.start,
    });
    let scanned = 0;
    let last: Uint8Array | null = null;
    let stopped = false;
    const from = compareBytes(pass.next, inside.start) < 0 ? inside.start : pass.next;
    for (const { key, value } of view.scan(from, inside.end)) {
      // A step ends only between keys: a key's removed versions go in one write, or a removed
      // tombstone (the newest, so the first) would uncover the older versions behind it.
      if (scanned >= maxVersions && !sameUserKey(key, last!)) {
        stopped = true;
        break;
      }
      scanned += 1;
      last = key;
      if (pass.versions.removes(key, value)) batch.delete(key);
    }
    if (!stopped) {
      batch.put(this.layout.metaKey(MetaField.PhysicallyCompacted), u64Bytes(pass.versions.revision));
      this.physicallyCompacted = pass.versions.revision;
      this.compactionPass = null;
    } else {
      pass.next = concatBytes(last!, Uint8Array.of(0));
    }
  }

  /** Whether versions lie outside the bounds (a split left them): one seek on each side. */
  private hasVersionsOutsideBounds(view: KvReader): boolean {
    const inside = this.layout.dataSpan(this.state.bounds.start, this.state.bounds.end);
    for (const _ of view.scan(this.layout.dataStart, inside.start, { limit: 1 })) return true;
    for (const _ of view.scan(inside.end, this.layout.dataEnd, { limit: 1 })) return true;
    return false;
  }

  /**
   * How many bytes the range's data holds (every stored version, keys and values), and a user
   * key with about half of them below it (null when the data is empty): what a split by size
   * needs. One scan; memory bounded by one checkpoint per SIZE_CHECKPOINT_BYTES.
   */
  sizeEstimate(): SizeEstimate {
    const steps = this.sizeEstimateSteps(Infinity);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /**
   * `sizeEstimate` in steps of at most `versionsPerStep` stored versions, so that a caller can
   * let other work run between them: the scan of a large range takes long enough to stall
   * every request of the node. The steps read one view (writes applied meanwhile are not
   * counted), released when the generator finishes or is returned.
   */
  *sizeEstimateSteps(versionsPerStep: number): Generator<void, SizeEstimate, void> {
    if (!(versionsPerStep >= 1))
      throw new RangeError(`versionsPerStep must be at least 1, got ${versionsPerStep}`);
    const inside = this.layout.dataSpan(this.state.bounds.start, this.state.bounds.end);
    const view = this.kv.view();
    try {
      const checkpoints: { readonly below: number; readonly dataKey: Uint8Array }[] = [];
      let bytes = 0;
      let versions = 0;
      let nextCheckpoint = 0;
      let inStep = 0;
      for (const { key, value } of view.scan(inside.start, inside.end)) {
        if (bytes >= nextCheckpoint) {
          checkpoints.push({ below: bytes, dataKey: key.slice() });
          nextCheckpoint = bytes + SIZE_CHECKPOINT_BYTES;
        }
        bytes += key.length + value.length;
        versions++;
        if (++inStep >= versionsPerStep) {
          inStep = 0;
          yield;
        }
      }
      const median = checkpoints.find((checkpoint) => checkpoint.below * 2 >= bytes) ?? checkpoints.at(-1);
      return {
        bytes,
        versions,
        medianKey: median === undefined ? null : this.layout.parseDataKey(median.dataKey).userKey,
      };
    } finally {
      view.release();
    }
  }

  /**
   * How much the stored data has changed: engine operations written since the store opened
   * (each apply's, removal step's and restore's). Only differences mean anything: a size
   * measured when this was N still holds while it stays near N.
   */
  changedOps(): number {
    return this.writtenOps;
  }

  /** The member table's records, by id (who is a voter or learner is Raft's ConfState). */
  members(): MemberAttributes[] {
    const view = this.kv.view();
    try {
      return this.memberTable.list(view);
    } finally {
      view.release();
    }
  }

  /**
   * The change events of the request's interval from its fromRevision on, as of the current
   * revision, one page at a time (see readHistory). Throws KvError(Compacted) when
   * fromRevision is not above the compacted revision: compaction may have removed a
   * deletion at exactly that revision, so the events could be incomplete.
   */
  history(request: HistoryRequest): HistoryPage {
    if (request.fromRevision < 1n)
      throw new RangeError(`fromRevision must be positive, got ${request.fromRevision}`);
    if (request.fromRevision <= this.state.compacted) throw new KvError(KvErrorCode.Compacted);
    const view = this.kv.view();
    try {
      // Versions a split moved out may still be stored here: only the bounds' are this range's.
      const interval = clipInterval(keyInterval(request.key, request.rangeEnd), this.state.bounds);
      return readHistory(
        view,
        this.layout,
        interval,
        request.fromRevision,
        this.state.revision,
        request.maxEvents,
      );
    } finally {
      view.release();
    }
  }

  snapshot(chunkBytes = DEFAULT_SNAPSHOT_CHUNK_BYTES): MvccSnapshot {
    const { view, layout, bounds, appliedIndex, revision } = this.imageView();
    return snapshotOfPairs({
      appliedIndex,
      revision,
      pairs: () => namespacePairs(view, layout, bounds),
      release: () => view.release(),
      chunkBytes,
    });
  }

  /** A read view of the store as it is now, for an image made elsewhere (e.g. of several ranges). */
  imageView(): StoreImageView {
    return {
      view: this.kv.view(),
      layout: this.layout,
      bounds: this.state.bounds,
      appliedIndex: this.state.appliedIndex,
      revision: this.state.revision,
    };
  }

  /**
   * Replaces the whole state (data, meta, dedup table) with a snapshot's. Nothing changes
   * unless the snapshot decodes completely; do not apply entries until the promise settles.
   */
  async restore(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    if (this.restoring) throw new Error("a restore is already running");
    this.restoring = true;
    try {
      const decoder = new SnapshotDecoder();
      const pairs: KvPair[] = [];
      for await (const chunk of chunks) {
        for (const pair of decoder.push(chunk)) pairs.push(pair);
      }
      decoder.finish();
      const meta = this.metaOfPairs(pairs);
      const restored = this.readState(meta);
      const physicallyCompacted = readMetaU64(meta, this.layout, MetaField.PhysicallyCompacted);
      const batch = new WriteBatch();
      const view = this.kv.view();
      try {
        for (const { key } of view.scan(this.layout.start, this.layout.end)) batch.delete(key);
      } finally {
        view.release();
      }
      for (const { key, value } of pairs) batch.put(concatBytes(this.layout.namespace, key), value);
      this.kv.write(batch);
      this.writtenOps += batch.size;
      this.newestVersions.reset();
      this.state = restored;
      this.physicallyCompacted = physicallyCompacted;
      this.compactionPass = null;
      this.outsideBoundsNext = null;
      const restoredView = this.kv.view();
      try {
        this.outsideBounds = this.hasVersionsOutsideBounds(restoredView);
      } finally {
        restoredView.release();
      }
    } finally {
      this.restoring = false;
    }
  }

  /**
   * Runs a (non-duplicate) command on the state `before` describes; the returned batch holds
   * its effects and nothing else. Key-value commands must name only keys inside the bounds
   * (else KeyOutsideRange) and may not write while the range is fenced (RangeFenced).
   */
  private execute(
    view: KvReader,
    envelope: CommandEnvelope<KvCommand>,
    before: StoreState,
    entryIndex: number,
    newestVersion: NewestVersionLookup,
  ): Executed {
    const bounds: RevisionBounds = { current: before.revision, compacted: before.compacted };
    const batch = new WriteBatch();
    const fenced = before.rangeState.kind === "write-fenced";
    // A merge-fenced range's image must not go stale: it changes nothing any more.
    const mergeFenced = before.rangeState.kind === "merge-fenced";
    const { command } = envelope;
    if (isRangeCommand(command)) {
      return this.executeRangeCommand(view, batch, command, envelope.timestamp, before);
    }
    if (command.kind === "leaseGrant" || command.kind === "leaseRevoke") {
      // A revocation deletes keys: a write like any other.
      if (mergeFenced || (command.kind === "leaseRevoke" && fenced)) {
        return refusedWith(before, KvErrorCode.RangeFenced);
      }
      const outcome =
        command.kind === "leaseGrant"
          ? this.leaseTable.grant(view, batch, command, entryIndex, bounds.current)
          : this.leaseTable.revoke(view, batch, command, envelope.timestamp, bounds, before.bounds);
      const result = { revision: outcome.revision, response: outcome.response };
      return {
        ...executedOn(before, batch, result, outcome.events, outcome.revision),
        leaseChange: outcome.change,
      };
    }
    if (command.kind === "memberSet" || command.kind === "memberRemove") {
      if (mergeFenced) return refusedWith(before, KvErrorCode.RangeFenced);
      const response = this.memberTable.stage(batch, command);
      return executedOn(before, batch, { revision: bounds.current, response });
    }
    // Keys first: a request for another range is routed there, where it is validated.
    if (!commandInsideBounds(before.bounds, command)) return refusedWith(before, KvErrorCode.KeyOutsideRange);
    const shapeError = commandShapeError(command);
    if (shapeError !== null) return refusedWith(before, shapeError);
    if (mergeFenced && (command.kind === "compact" || commandWrites(command))) {
      return refusedWith(before, KvErrorCode.RangeFenced);
    }
    if (command.kind === "compact") {
      const error = compactionError(command.revision, bounds);
      if (error !== null) return refusedWith(before, error);
      // The versions the compaction removes are left for removalStep: no read it still
      // allows can see them, and removing them all here would hold the node for a scan of
      // the whole range.
      return {
        ...executedOn(before, batch, { revision: bounds.current, response: { kind: "compact" } }),
        compacted: command.revision,
      };
    }
    if (before.rangeState.kind === "write-fenced" && commandWrites(command)) {
      // Only the part that moves is fenced: writes below the split key stay in this range,
      // so they go on (among them the route catalog's, which a split of range 1 saves here).
      const staying = { start: before.bounds.start, end: before.rangeState.splitKey };
      if (!commandInsideBounds(staying, command)) return refusedWith(before, KvErrorCode.RangeFenced);
    }
    const revision = revisionForApply(bounds.current, envelope.timestamp);
    const writer = new CommandWriter(view, batch, this.layout, revision, bounds, newestVersion);
    const response = writer.run(command);
    const wrote = writer.events.length > 0;
    if (response.kind === "error" && (wrote || batch.size > 0)) {
      throw new Error("invariant violated: a command that failed staged writes");
    }
    // etcd checks the leases of the puts it will run before running any; checking the
    // executed puts instead and dropping their batch has the same effect.
    if (this.enforceLeases && this.leaseTable.namesMissingLease(view, writer.events)) {
      return refusedWith(before, KvErrorCode.LeaseNotFound);
    }
    this.leaseTable.stageAttachments(view, batch, writer.events);
    const resultRevision = wrote ? revision : bounds.current;
    return executedOn(before, batch, { revision: resultRevision, response }, writer.events, resultRevision);
  }

  /** Fence, Split, MergeFence, Merge, RevisionFloor (see commands.ts, split.ts, merge.ts). */
  private executeRangeCommand(
    reader: KvReader,
    batch: WriteBatch,
    command: RangeCommand,
    timestamp: bigint,
    before: StoreState,
  ): Executed {
    const lhs = {
      layout: this.layout,
      dedup: this.dedup,
      leases: this.leaseTable,
      members: this.memberTable,
    };
    const effect = applyRangeCommand({
      reader,
      batch,
      command,
      timestamp,
      revision: before.revision,
      compacted: before.compacted,
      dedupClients: before.dedupClients,
      bounds: before.bounds,
      rangeState: before.rangeState,
      boundsRevision: boundsRevision(before.lastSplit, before.lastMerge),
      highestRangeId: before.highestRangeId,
      lhs,
      sideOf: (rangeId) => this.splitSide(rangeId),
    });
    if (effect.kind === "refused") return refusedWith(before, effect.code);
    return {
      batch,
      events: [],
      revision: effect.revision,
      compacted: effect.compacted,
      leaseChange: null,
      bounds: effect.bounds,
      rangeState: effect.rangeState,
      split: effect.split,
      dedupClients: effect.dedupClients,
      ...(effect.lastSplit === null ? {} : { lastSplit: effect.lastSplit }),
      ...(effect.merge === null ? {} : { merge: effect.merge }),
      ...(effect.lastMerge === null ? {} : { lastMerge: effect.lastMerge }),
      result: { revision: effect.revision, response: effect.response },
    };
  }

  /** The layout and tables of range `rangeId`'s store in this engine. */
  private splitSide(rangeId: number): SplitSide {
    const layout = new KeyLayout(this.namespaceOf(rangeId));
    return {
      layout,
      dedup: new DedupTable(layout, this.dedup.maxClients),
      leases: new LeaseTable(layout),
      members: new MemberTable(layout),
    };
  }

  /** Stages the meta fields that differ between `before` and `after` (the applied index always moves). */
  private stageState(batch: WriteBatch, before: StoreState, after: StoreState): void {
    const meta = (field: MetaField, value: bigint) => batch.put(this.layout.metaKey(field), u64Bytes(value));
    if (before.appliedIndex === 0) meta(MetaField.LayoutVersion, LAYOUT_VERSION);
    meta(MetaField.AppliedIndex, BigInt(after.appliedIndex));
    if (after.revision !== before.revision) meta(MetaField.Revision, after.revision);
    if (after.compacted !== before.compacted) meta(MetaField.CompactedRevision, after.compacted);
    if (after.dedupClients !== before.dedupClients) meta(MetaField.DedupClients, BigInt(after.dedupClients));
    if (after.bounds !== before.bounds) {
      batch.put(this.layout.metaKey(MetaField.Bounds), encodeRangeBounds(after.bounds));
    }
    if (after.rangeState !== before.rangeState) {
      batch.put(this.layout.metaKey(MetaField.RangeState), encodeRangeState(after.rangeState));
    }
    if (after.lastSplit !== before.lastSplit && after.lastSplit !== null) {
      batch.put(this.layout.metaKey(MetaField.LastSplit), encodeAppliedSplit(after.lastSplit));
    }
    if (after.lastMerge !== before.lastMerge && after.lastMerge !== null) {
      batch.put(this.layout.metaKey(MetaField.LastMerge), encodeAppliedMerge(after.lastMerge));
    }
    if (after.highestRangeId !== before.highestRangeId)
      meta(MetaField.HighestRangeId, BigInt(after.highestRangeId));
  }

  private readState(get: (key: Uint8Array) => Uint8Array | undefined): StoreState {
    const field = (f: MetaField): bigint => readMetaU64(get, this.layout, f);
    const layoutVersion = field(MetaField.LayoutVersion);
    if (layoutVersion !== 0n && layoutVersion !== LAYOUT_VERSION) {
      throw new DecodeError("store meta", "unknown-version", `store layout version ${layoutVersion}`);
    }
    const bounds = get(this.layout.metaKey(MetaField.Bounds));
    const rangeState = get(this.layout.metaKey(MetaField.RangeState));
    const lastSplit = get(this.layout.metaKey(MetaField.LastSplit));
    const lastMerge = get(this.layout.metaKey(MetaField.LastMerge));
    const decodedSplit = lastSplit === undefined ? null : decodeAppliedSplit(lastSplit);
    const decodedMerge = lastMerge === undefined ? null : decodeAppliedMerge(lastMerge);
    const highestRangeId =
      get(this.layout.metaKey(MetaField.HighestRangeId)) === undefined
        ? Math.max(decodedSplit?.rhsRangeId ?? 0, decodedMerge?.rhsRangeId ?? 0)
        : Number(field(MetaField.HighestRangeId));
    return {
      appliedIndex: Number(field(MetaField.AppliedIndex)),
      revision: field(MetaField.Revision),
      compacted: field(MetaField.CompactedRevision),
      dedupClients: Number(field(MetaField.DedupClients)),
      bounds: bounds === undefined ? FULL_BOUNDS : decodeRangeBounds(bounds),
      rangeState: rangeState === undefined ? ACTIVE_RANGE : decodeRangeState(rangeState),
      lastSplit: decodedSplit,
      lastMerge: decodedMerge,
      highestRangeId,
    };
  }

  /** The meta fields among `pairs` (namespace-relative keys), by their full key. */
  private metaOfPairs(pairs: readonly KvPair[]): (key: Uint8Array) => Uint8Array | undefined {
    const strip = this.layout.namespace.length;
    const metaKeys = new Set(
      [
        MetaField.LayoutVersion,
        MetaField.AppliedIndex,
        MetaField.Revision,
        MetaField.CompactedRevision,
        MetaField.DedupClients,
        MetaField.Bounds,
        MetaField.RangeState,
        MetaField.LastSplit,
        MetaField.LastMerge,
        MetaField.PhysicallyCompacted,
        MetaField.HighestRangeId,
      ].map((f) => latin1(this.layout.metaKey(f).subarray(strip))),
    );
    const meta = new Map<string, Uint8Array>();
    for (const { key, value } of pairs) {
      const name = latin1(key);
      if (metaKeys.has(name)) meta.set(name, value);
    }
    return (key) => meta.get(latin1(subrange(key, strip)));
  }
}
