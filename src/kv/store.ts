/**
 * MvccStore: Concord's replicated state machine — an etcd-compatible multi-version key-value
 * store over an OrderedKv. `apply` executes committed log entries deterministically (the same
 * entries from the same state give byte-identical engines on every replica); `range` serves
 * reads at the current or a past revision; `snapshot` / `restore` move the whole state.
 *
 * Each apply is one atomic engine write holding the command's effects, its dedup record and
 * the meta data (applied index, revision, compacted revision), so a crash can never separate
 * a command's effects from the record that it was applied.
 *
 * Revisions are HLC timestamps: a write applies at revisionForApply(last revision, the
 * leader's stamp). Commands that change nothing (a delete of nothing, a failed compare with
 * only reads, an error) keep the revision, as in etcd. Compaction does not create a revision.
 */
import { concatBytes, DecodeError, latin1 } from "./bytes.js";
import { checkEnvelope, type CommandEnvelope, type RangeRequest } from "./commands.js";
import { compactionError, stageCompaction } from "./compaction.js";
import { DedupTable } from "./dedup.js";
import { WriteBatch, type KvPair, type KvReader, type OrderedKv } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { revisionForApply } from "./hlc.js";
import { KeyLayout, LAYOUT_VERSION, MetaField } from "./keys.js";
import { executeRange, type RevisionBounds } from "./range.js";
import { errorResponse, type CommandResult, type KvEvent, type RangeResult } from "./results.js";
import { DEFAULT_SNAPSHOT_CHUNK_BYTES, SnapshotDecoder, encodeSnapshot } from "./snapshot.js";
import { commandShapeError } from "./txn.js";
import { CommandWriter } from "./writer.js";

export interface MvccStoreOptions {
  /**
   * Prefix of every key the store writes (default: none, the store owns the engine). Stores
   * sharing an engine need namespaces none of which is a prefix of another.
   */
  readonly namespace?: Uint8Array;
  /** Most clients the dedup table remembers (default DEFAULT_MAX_DEDUP_CLIENTS). */
  readonly maxDedupClients?: number;
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
}

/**
 * A consistent image of the store, taken when snapshot() was called, read out as chunks.
 * Iterate it once; iterating to the end (or stopping early) releases the read view, and
 * release() does so without iterating.
 */
export interface MvccSnapshot extends AsyncIterable<Uint8Array> {
  readonly appliedIndex: number;
  readonly revision: bigint;
  release(): void;
}

interface StoreState {
  readonly appliedIndex: number;
  readonly revision: bigint;
  readonly compacted: bigint;
  readonly dedupClients: number;
}

function u64Bytes(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return out;
}

export class MvccStore {
  private readonly layout: KeyLayout;
  private readonly dedup: DedupTable;
  private state: StoreState;
  private restoring = false;

  constructor(
    private readonly kv: OrderedKv,
    options: MvccStoreOptions = {},
  ) {
    this.layout = new KeyLayout(options.namespace ?? new Uint8Array(0));
    this.dedup = new DedupTable(this.layout, options.maxDedupClients ?? DEFAULT_MAX_DEDUP_CLIENTS);
    const view = kv.view();
    try {
      this.state = this.readState((key) => view.get(key));
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

  /**
   * Applies the command of log entry `entryIndex`, which must be above appliedIndex. A retry
   * (same client id and sequence as that client's last applied command) is answered from the
   * dedup table without applying again. Errors of the command are part of its result; a
   * throw means a bug or a broken engine, and leaves the store unchanged.
   */
  apply(entryIndex: number, envelope: CommandEnvelope): ApplyOutcome {
    this.checkEntryIndex(entryIndex);
    checkEnvelope(envelope);
    const view = this.kv.view();
    try {
      const batch = new WriteBatch();
      const before = this.state;
      const bounds: RevisionBounds = { current: before.revision, compacted: before.compacted };
      const { clientId, sequence } = envelope;
      const previous = clientId === "" ? undefined : this.dedup.lookup(view, clientId);
      let outcome: ApplyOutcome;
      let after: StoreState = { ...before, appliedIndex: entryIndex };
      if (previous !== undefined && sequence <= previous.sequence) {
        const result =
          sequence === previous.sequence
            ? previous.result
            : { revision: before.revision, response: errorResponse(KvErrorCode.StaleSequence) };
        outcome = { result, events: [], duplicate: true };
      } else {
        const executed = this.execute(view, batch, envelope, bounds);
        after = { ...after, revision: executed.revision, compacted: executed.compacted };
        outcome = { result: executed.result, events: executed.events, duplicate: false };
        if (clientId !== "") {
          const record = { sequence, entryIndex, result: executed.result };
          after = {
            ...after,
            dedupClients: this.dedup.record(view, batch, clientId, record, previous, before.dedupClients),
          };
        }
      }
      this.stageState(batch, before, after);
      this.kv.write(batch);
      this.state = after;
      return outcome;
    } finally {
      view.release();
    }
  }

  /** Records that entry `entryIndex` (no command: an empty or configuration entry) is applied. */
  markApplied(entryIndex: number): void {
    this.checkEntryIndex(entryIndex);
    const after = { ...this.state, appliedIndex: entryIndex };
    const batch = new WriteBatch();
    this.stageState(batch, this.state, after);
    this.kv.write(batch);
    this.state = after;
  }

  /** etcd's Range at request.revision (0: current). Throws KvError (compacted, future revision, empty key). */
  range(request: RangeRequest): RangeResult {
    const view = this.kv.view();
    try {
      const bounds = { current: this.state.revision, compacted: this.state.compacted };
      return { ...executeRange(view, this.layout, request, bounds), revision: bounds.current };
    } finally {
      view.release();
    }
  }

  snapshot(chunkBytes = DEFAULT_SNAPSHOT_CHUNK_BYTES): MvccSnapshot {
    const view = this.kv.view();
    const layout = this.layout;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        view.release();
      }
    };
    return {
      appliedIndex: this.state.appliedIndex,
      revision: this.state.revision,
      release,
      [Symbol.asyncIterator]: () => {
        const chunks = encodeSnapshot(view, layout, chunkBytes);
        const finish = (): Promise<IteratorResult<Uint8Array>> => {
          release();
          return Promise.resolve({ done: true, value: undefined });
        };
        return {
          next: () =>
            new Promise<IteratorResult<Uint8Array>>((resolve) => {
              const step = chunks.next();
              if (step.done === true) release();
              resolve(step.done === true ? { done: true, value: undefined } : step);
            }).catch((error: unknown) => {
              release();
              throw error;
            }),
          return: finish,
        };
      },
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
      const restored = this.readStateFromPairs(pairs);
      const batch = new WriteBatch();
      const view = this.kv.view();
      try {
        for (const { key } of view.scan(this.layout.start, this.layout.end)) batch.delete(key);
      } finally {
        view.release();
      }
      for (const { key, value } of pairs) batch.put(concatBytes(this.layout.namespace, key), value);
      this.kv.write(batch);
      this.state = restored;
    } finally {
      this.restoring = false;
    }
  }

  private execute(
    view: KvReader,
    batch: WriteBatch,
    envelope: CommandEnvelope,
    bounds: RevisionBounds,
  ): { result: CommandResult; events: readonly KvEvent[]; revision: bigint; compacted: bigint } {
    const unchanged = { events: [], revision: bounds.current, compacted: bounds.compacted };
    const { command } = envelope;
    const shapeError = commandShapeError(command);
    if (shapeError !== null) {
      return { ...unchanged, result: { revision: bounds.current, response: errorResponse(shapeError) } };
    }
    if (command.kind === "compact") {
      const error = compactionError(command.revision, bounds);
      if (error !== null)
        return { ...unchanged, result: { revision: bounds.current, response: errorResponse(error) } };
      stageCompaction(view, this.layout, batch, command.revision);
      return {
        ...unchanged,
        compacted: command.revision,
        result: { revision: bounds.current, response: { kind: "compact" } },
      };
    }
    const revision = revisionForApply(bounds.current, envelope.timestamp);
    const writer = new CommandWriter(view, batch, this.layout, revision, bounds);
    const response = writer.run(command);
    const wrote = writer.events.length > 0;
    if (response.kind === "error" && (wrote || batch.size > 0)) {
      throw new Error("invariant violated: a command that failed staged writes");
    }
    const resultRevision = wrote ? revision : bounds.current;
    return {
      ...unchanged,
      events: writer.events,
      revision: resultRevision,
      result: { revision: resultRevision, response },
    };
  }

  private checkEntryIndex(entryIndex: number): void {
    if (this.restoring) throw new Error("cannot apply while a snapshot is being restored");
    if (!Number.isSafeInteger(entryIndex) || entryIndex <= this.state.appliedIndex) {
      throw new Error(`entry index ${entryIndex} is not above the applied index ${this.state.appliedIndex}`);
    }
  }

  /** Stages the meta fields that differ between `before` and `after` (the applied index always moves). */
  private stageState(batch: WriteBatch, before: StoreState, after: StoreState): void {
    const meta = (field: MetaField, value: bigint) => batch.put(this.layout.metaKey(field), u64Bytes(value));
    if (before.appliedIndex === 0) meta(MetaField.LayoutVersion, LAYOUT_VERSION);
    meta(MetaField.AppliedIndex, BigInt(after.appliedIndex));
    if (after.revision !== before.revision) meta(MetaField.Revision, after.revision);
    if (after.compacted !== before.compacted) meta(MetaField.CompactedRevision, after.compacted);
    if (after.dedupClients !== before.dedupClients) meta(MetaField.DedupClients, BigInt(after.dedupClients));
  }

  private readState(get: (key: Uint8Array) => Uint8Array | undefined): StoreState {
    const field = (f: MetaField): bigint => {
      const bytes = get(this.layout.metaKey(f));
      if (bytes === undefined) return 0n;
      if (bytes.length !== 8)
        throw new DecodeError("store meta", "invalid-field", `field ${f} has ${bytes.length} bytes`);
      return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
    };
    const layoutVersion = field(MetaField.LayoutVersion);
    if (layoutVersion !== 0n && layoutVersion !== LAYOUT_VERSION) {
      throw new DecodeError("store meta", "unknown-version", `store layout version ${layoutVersion}`);
    }
    return {
      appliedIndex: Number(field(MetaField.AppliedIndex)),
      revision: field(MetaField.Revision),
      compacted: field(MetaField.CompactedRevision),
      dedupClients: Number(field(MetaField.DedupClients)),
    };
  }

  /** The state a restore of `pairs` (namespace-relative keys) would have; throws if its meta is invalid. */
  private readStateFromPairs(pairs: readonly KvPair[]): StoreState {
    const strip = this.layout.namespace.length;
    const metaKeys = new Set(
      [
        MetaField.LayoutVersion,
        MetaField.AppliedIndex,
        MetaField.Revision,
        MetaField.CompactedRevision,
        MetaField.DedupClients,
      ].map((f) => latin1(this.layout.metaKey(f).subarray(strip))),
    );
    const meta = new Map<string, Uint8Array>();
    for (const { key, value } of pairs) {
      const name = latin1(key);
      if (metaKeys.has(name)) meta.set(name, value);
    }
    return this.readState((key) => meta.get(latin1(key.subarray(strip))));
  }
}
