/**
 * ReplicaStateMachine: one replica's MvccStore and the rules that tie it to the replica's
 * Raft storage — applying committed entries, restoring snapshot images, recording local
 * snapshots (which compact the log), and telling apply listeners.
 *
 * The state machine and the Raft storage are separate stores with separate syncs, tied by
 * one rule: the Raft storage's applied index (with the membership recorded beside it) and
 * its compaction point never move past what the state machine holds durably — the state
 * machine is synced first. So after a restart the state machine is at or ahead of the Raft
 * storage's applied index; the core hands out the entries after that index again, and the
 * ones the state machine already holds are skipped (configuration changes among them are
 * still applied to the core). The same skip covers a snapshot image that is newer than the
 * snapshot metadata it travelled with: a leader streams its state machine as it is when the
 * transfer starts, at or past the snapshot's index.
 *
 * Splits: an applied split (or, after a restart, a split entry the state machine already held
 * when the core handed it out again) is reported to `splitApplied` once the state machine is
 * synced and before any later entry is applied, with the membership as of that entry, so the
 * node can start the right-hand range from durable state (see host.ts). Merges need nothing
 * here: the merged range's grown bounds are its store's, and `ApplyOutcome.merge` reaches the
 * apply listeners with the rest of the outcome (the node retires the right-hand replica by
 * its route table, not by this entry).
 */
import { DecodeError } from "../kv/bytes.js";
import { decodeEnvelope, type RangeRequest } from "../kv/commands.js";
import type { HybridClock } from "../kv/hlc.js";
import type { RangeBounds } from "../kv/bounds.js";
import type { MemberAttributes } from "../kv/members.js";
import type { AppliedMerge } from "../kv/merge.js";
import type { AppliedSplit, RangeState } from "../kv/split.js";
import type { CommandResult, RangeResult } from "../kv/results.js";
import { MvccStore, type KvHash, type MvccSnapshot, type StoreImageView } from "../kv/store.js";
import { decodeConfChange } from "../raft/confchange/codec.js";
import {
  EMPTY_BYTES,
  EntryType,
  type ConfChange,
  type ConfState,
  type Entry,
  type Snapshot,
  type SnapshotMetadata,
} from "../raft/types.js";
import type { ReplicaStorage } from "../storage/contracts.js";
import type { Logger } from "../transport/transport.js";
import type { NodeHostCounters, StateMachineStorage } from "./options.js";
import { commandKey } from "./requests.js";
import type { ServiceSource } from "./services.js";
import type { ApplyListener } from "./types.js";

/** What applying one entry did, for the replica to answer the request it carries. */
export type AppliedEntry =
  | {
      readonly kind: "command";
      /** The request id; null for a command without a client id. */
      readonly key: string | null;
      /** Null when the state machine already held the entry (its result is not known here). */
      readonly result: CommandResult | null;
    }
  | { readonly kind: "confChange"; readonly key: string | null; readonly confState: ConfState }
  | { readonly kind: "empty" };

const decoder = new TextDecoder();

export class ReplicaStateMachine {
  private readonly store: MvccStore;
  /** Membership as of the core's applied index: what a local snapshot records. */
  private appliedConfState: ConfState;
  private appliedSinceSnapshot = 0;
  /** Bytes of the entries counted in appliedSinceSnapshot. */
  private appliedBytesSinceSnapshot = 0;
  private membershipChangedSinceSnapshot = false;
  private readonly listeners = new Set<ApplyListener>();

  constructor(
    private readonly rangeId: number,
    private readonly raftStorage: ReplicaStorage,
    private readonly storage: StateMachineStorage,
    private readonly clock: HybridClock,
    private readonly counters: NodeHostCounters,
    private readonly logger: Logger,
  ) {
    this.store = new MvccStore(storage.kv, storage.storeOptions);
    const recorded = raftStorage.appliedIndex();
    if (this.store.appliedIndex < recorded) {
      throw new Error(
        `range ${rangeId}: state machine is at applied index ${this.store.appliedIndex}, behind the ` +
          `Raft storage's ${recorded}: its storage lost writes it had synced`,
      );
    }
    this.appliedConfState = raftStorage.confState();
    clock.observe(this.store.revision);
  }

  get appliedIndex(): number {
    return this.store.appliedIndex;
  }

  get revision(): bigint {
    return this.store.revision;
  }

  range(request: RangeRequest): RangeResult {
    return this.store.range(request);
  }

  /** The keys the range holds, as applied here. */
  get bounds(): RangeBounds {
    return this.store.bounds;
  }

  get rangeState(): RangeState {
    return this.store.rangeState;
  }

  get lastSplit(): AppliedSplit | null {
    return this.store.lastSplit;
  }

  get lastMerge(): AppliedMerge | null {
    return this.store.lastMerge;
  }

  get boundsRevision(): bigint {
    return this.store.boundsRevision;
  }

  /** The store's whole image for a merge into the left neighbour; throws unless merge-fenced. */
  mergeImage(): Uint8Array {
    return this.store.mergeImage();
  }

  sizeEstimate(): ReturnType<MvccStore["sizeEstimate"]> {
    return this.store.sizeEstimate();
  }

  /** Whether compaction or a split left versions for removalStep to remove. */
  get removalPending(): boolean {
    return this.store.removalPending;
  }

  /** One step of removing what compaction and splits left (MvccStore.removalStep); whether work remains. */
  removalStep(maxVersions: number): boolean {
    return this.store.removalStep(maxVersions);
  }

  sizeEstimateSteps(versionsPerStep: number): ReturnType<MvccStore["sizeEstimateSteps"]> {
    return this.store.sizeEstimateSteps(versionsPerStep);
  }

  changedOps(): number {
    return this.store.changedOps();
  }

  hashKv(revision: bigint, seed: number): KvHash {
    return this.store.hashKv(revision, seed);
  }

  /** The member table's records as applied here. */
  members(): MemberAttributes[] {
    return this.store.members();
  }

  /** The applied state as the replica's watches and lease clock read it. */
  get serviceSource(): ServiceSource {
    return this.store;
  }

  addListener(listener: ApplyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Applies committed entries in log order. Runs of entries without a membership change are
   * applied in ONE store write (`MvccStore.applyEntries`); the listeners then hear of each
   * command in order, before the next run or change is applied. A membership change is handed
   * to the core by `applyConfChange`, which returns the resulting membership; it is recorded
   * with the entry's index once the state machine is synced. Each split is reported to
   * `splitApplied` (the right-hand range id, the membership) after the state machine is synced.
   */
  async apply(
    entries: readonly Entry[],
    applyConfChange: (change: ConfChange) => ConfState,
    splitApplied: (rhsRangeId: number, confState: ConfState) => void,
  ): Promise<AppliedEntry[]> {
    const applied: AppliedEntry[] = [];
    let run: Entry[] = [];
    // The first index the state machine does not hold; entries below it are skipped.
    let next = this.store.appliedIndex + 1;
    for (const entry of entries) {
      if (entry.index > next) {
        throw new Error(`range ${this.rangeId}: entry ${entry.index} follows applied index ${next - 1}`);
      }
      if (entry.index === next) next++;
      if (entry.type !== EntryType.ConfChange) {
        run.push(entry);
        continue;
      }
      applied.push(...(await this.applyRunAndSplits(run, splitApplied)));
      run = [];
      applied.push(await this.applyConfChangeEntry(entry, applyConfChange));
    }
    applied.push(...(await this.applyRunAndSplits(run, splitApplied)));
    return applied;
  }

  private async applyRunAndSplits(
    run: readonly Entry[],
    splitApplied: (rhsRangeId: number, confState: ConfState) => void,
  ): Promise<AppliedEntry[]> {
    const { applied, splits } = this.applyRun(run);
    if (splits.length === 0) return applied;
    // The right-hand range's Raft storage may only exist once its state machine is durable.
    await this.storage.sync();
    for (const rhsRangeId of splits) splitApplied(rhsRangeId, this.appliedConfState);
    return applied;
  }

  private async applyConfChangeEntry(
    entry: Entry,
    applyConfChange: (change: ConfChange) => ConfState,
  ): Promise<AppliedEntry> {
    const { index } = entry;
    this.appliedSinceSnapshot++;
    this.appliedBytesSinceSnapshot += entry.data.byteLength;
    const change = decodeConfChange(entry.data);
    const confState = applyConfChange(change);
    this.appliedConfState = confState;
    // Snapshot right after every membership change: the core sends a lagging or new member
    // only a snapshot whose membership includes it, so one must exist without waiting for
    // `snapshotEntries` more writes (simulator --runtime membership seed 2).
    this.membershipChangedSinceSnapshot = true;
    if (index > this.store.appliedIndex) this.store.markApplied(index);
    await this.storage.sync();
    if (index > this.raftStorage.appliedIndex()) this.raftStorage.setAppliedIndex(index, confState);
    const key = change.context.length === 0 ? null : decoder.decode(change.context);
    return { kind: "confChange", key, confState };
  }

  /**
   * Commands and empty entries, in one store write. Entries the state machine already holds
   * (replayed after a restart, or covered by a newer snapshot image) are skipped: their results
   * are not known here. Also returns the right-hand range ids of the splits among them: the
   * ones applied now, and the split entries held already (after a restart the node may not
   * have started their right-hand ranges yet; the host checks what exists).
   */
  private applyRun(run: readonly Entry[]): { applied: AppliedEntry[]; splits: number[] } {
    if (run.length === 0) return { applied: [], splits: [] };
    this.appliedSinceSnapshot += run.length;
    for (const entry of run) this.appliedBytesSinceSnapshot += entry.data.byteLength;
    const held = this.store.appliedIndex;
    // An empty entry is a new leader's; it only moves the applied index.
    const decoded = run.map((entry) => ({
      index: entry.index,
      envelope: entry.data.length === 0 ? null : decodeEnvelope(entry.data),
    }));
    const fresh = decoded.filter(({ index }) => index > held);
    const splits: number[] = [];
    for (const { index, envelope } of decoded) {
      if (index <= held && envelope?.command.kind === "split") splits.push(envelope.command.rhsRangeId);
    }
    const outcomes = this.store.applyEntries(fresh);
    const results = new Map<number, CommandResult>();
    fresh.forEach(({ index, envelope }, i) => {
      const outcome = outcomes[i];
      if (envelope === null || outcome === null || outcome === undefined) return;
      // Any replica may lead next: its stamps must not fall below revisions already applied.
      this.clock.observe(outcome.result.revision);
      this.notify((l) => l.onCommand?.({ rangeId: this.rangeId, index, envelope, outcome }));
      results.set(index, outcome.result);
      if (outcome.split !== undefined) splits.push(outcome.split.rhsRangeId);
    });
    const applied = decoded.map(({ index, envelope }): AppliedEntry => {
      if (envelope === null) return { kind: "empty" };
      const key = envelope.clientId === "" ? null : commandKey(envelope.clientId, envelope.sequence);
      return { kind: "command", key, result: results.get(index) ?? null };
    });
    return { applied, splits };
  }

  /**
   * Restores the state from a snapshot image received with `snapshot`'s metadata, if that
   * moves it forward; returns whether it did. Afterwards the image is durable. A bad image
   * is logged, counted and ignored (the leader sends another); an image older than its
   * metadata is a sender bug and throws.
   */
  async restoreImage(snapshot: Snapshot, from: number): Promise<boolean> {
    const index = snapshot.metadata.index;
    if (index <= this.store.appliedIndex) return false;
    try {
      await this.store.restore([snapshot.data]);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.counters.snapshotsRejected++;
      this.logger.warn({ rangeId: this.rangeId, from, error: error.message }, "bad snapshot image");
      return false;
    }
    if (this.store.appliedIndex < index) {
      throw new Error(
        `range ${this.rangeId}: snapshot image at applied index ${this.store.appliedIndex} is older ` +
          `than its metadata's ${index}`,
      );
    }
    await this.storage.sync();
    this.counters.snapshotsRestored++;
    this.clock.observe(this.store.revision);
    const restored = {
      rangeId: this.rangeId,
      appliedIndex: this.store.appliedIndex,
      revision: this.store.revision,
    };
    this.notify((l) => l.onRestore?.(restored));
    return true;
  }

  /** The core installed a snapshot (already restored into the store by restoreImage). */
  snapshotInstalled(metadata: SnapshotMetadata): void {
    if (this.store.appliedIndex < metadata.index) {
      throw new Error(
        `range ${this.rangeId}: the core installed a snapshot at ${metadata.index} but the state ` +
          `machine is at ${this.store.appliedIndex}`,
      );
    }
    this.appliedConfState = metadata.confState;
    this.resetSnapshotCounters();
  }

  /** Whether a local snapshot is due: after a membership change, or enough entries or bytes. */
  snapshotDue(snapshotEntries: number, snapshotBytes: number): boolean {
    return (
      this.membershipChangedSinceSnapshot ||
      this.appliedSinceSnapshot >= snapshotEntries ||
      this.appliedBytesSinceSnapshot >= snapshotBytes
    );
  }

  private resetSnapshotCounters(): void {
    this.appliedSinceSnapshot = 0;
    this.appliedBytesSinceSnapshot = 0;
    this.membershipChangedSinceSnapshot = false;
  }

  /**
   * Records a snapshot at the core's applied index — metadata only, the image is streamed from
   * the store when a follower needs it — which compacts the log up to that index. The state
   * machine is synced first: the log may forget only entries the state machine holds durably.
   */
  async takeSnapshot(coreApplied: number): Promise<boolean> {
    this.resetSnapshotCounters();
    if (coreApplied <= this.raftStorage.snapshot().metadata.index) return false;
    const metadata: SnapshotMetadata = {
      index: coreApplied,
      term: this.raftStorage.term(coreApplied),
      confState: this.appliedConfState,
    };
    await this.storage.sync();
    this.raftStorage.saveSnapshot({ metadata, data: EMPTY_BYTES });
    return true;
  }

  /** The state as of now, for a follower; read from one consistent view. */
  image(): MvccSnapshot {
    return this.store.snapshot();
  }

  /** A read view of the state as of now, for a backup image (MvccStore.imageView). */
  imageView(): StoreImageView {
    return this.store.imageView();
  }

  private notify(call: (listener: ApplyListener) => void): void {
    for (const listener of this.listeners) {
      try {
        call(listener);
      } catch (error) {
        this.counters.listenerErrors++;
        this.logger.warn({ rangeId: this.rangeId, error: String(error) }, "apply listener failed");
      }
    }
  }
}
