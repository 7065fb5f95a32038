/**
 * Executes one validated write command (Put, DeleteRange, Txn) at its revision. Every change
 * is staged in the command's WriteBatch — the store commits it atomically with its meta data
 * — and reads go through a BatchOverlay, so later ops of a transaction see earlier ones.
 *
 * All writes of one command share its revision, and a key gets at most one version per
 * revision (the duplicate-key rule guarantees it; a violation here is a bug and throws). So
 * keys written by one transaction all carry the same mod_revision: compares and watches
 * cannot order writes within a transaction, only the transaction against other commands.
 */
import { EMPTY } from "./bytes.js";
import type { DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from "./commands.js";
import { BatchOverlay, type KvReader, type WriteBatch } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { decodeStoredVersion, encodeStoredVersion, type KeyLayout, type StoredVersion } from "./keys.js";
import {
  encodedVersionAt,
  executeRange,
  keyInterval,
  liveKeysAt,
  toKeyValue,
  type RevisionBounds,
} from "./range.js";
import {
  errorResponse,
  type DeleteRangeResponse,
  type ErrorResponse,
  type KvEvent,
  type OpResponse,
  type PutResponse,
  type RangeResponse,
  type TxnResponse,
} from "./results.js";
import { planError, planTxn, type TxnPlan } from "./txn.js";

export type WriteCommand = PutRequest | DeleteRangeRequest | TxnRequest;

/**
 * The newest stored version of a key, encoded (a tombstone too), as the command sees the
 * store: its own pending writes (`own`) included. The store answers from its NewestVersions
 * index.
 */
export type NewestVersionLookup = (userKey: Uint8Array, own: WriteBatch) => Uint8Array | undefined;

export class CommandWriter {
  /** The changes staged so far, in order: the command's watch events. */
  readonly events: KvEvent[] = [];
  private readonly reader: KvReader;
  private readonly newestVersion: NewestVersionLookup;

  /**
   * @param base the state before the command
   * @param revision the revision every write of this command gets
   * @param bounds the revisions readable before the command (its current one is below `revision`)
   * @param newestVersion a faster way to what a seek of `base` with the command's writes on top finds
   */
  constructor(
    base: KvReader,
    private readonly batch: WriteBatch,
    private readonly layout: KeyLayout,
    private readonly revision: bigint,
    private readonly bounds: RevisionBounds,
    newestVersion?: NewestVersionLookup,
  ) {
    if (revision <= bounds.current) {
      throw new Error(`invariant violated: write revision ${revision} not above current ${bounds.current}`);
    }
    this.reader = new BatchOverlay(base, batch);
    // Every stored version is below `revision`, so the version at it is the newest.
    this.newestVersion =
      newestVersion ?? ((userKey) => encodedVersionAt(this.reader, layout, userKey, revision));
  }

  /** Runs a command that passed commandShapeError; returns its response or error. */
  run(command: WriteCommand): PutResponse | DeleteRangeResponse | TxnResponse | ErrorResponse {
    switch (command.kind) {
      case "put":
        return this.put(command);
      case "deleteRange":
        return this.deleteRange(command);
      case "txn": {
        // The compares see the state before the command: nothing of its own is written yet.
        const plan = planTxn(this.reader, this.layout, command, this.bounds.current, (userKey) =>
          this.newestVersion(userKey, this.batch),
        );
        const error = planError(this.reader, this.layout, plan, this.bounds);
        return error === null ? this.txn(plan) : errorResponse(error);
      }
    }
  }

  private put(request: PutRequest): PutResponse | ErrorResponse {
    const encoded = this.newestVersion(request.key, this.batch);
    const newest = encoded === undefined ? undefined : decodeStoredVersion(encoded);
    const prev = newest === undefined || newest.tombstone ? undefined : newest;
    if (prev === undefined && (request.ignoreValue || request.ignoreLease)) {
      return errorResponse(KvErrorCode.KeyNotFound);
    }
    const version: StoredVersion = {
      createRevision: prev?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (prev?.version ?? 0n) + 1n,
      lease: request.ignoreLease && prev !== undefined ? prev.lease : request.lease,
      tombstone: false,
      value: request.ignoreValue && prev !== undefined ? prev.value : request.value,
    };
    this.stage(request.key, version);
    const prevKv = prev === undefined ? null : toKeyValue(request.key, prev);
    this.events.push({ type: "put", kv: toKeyValue(request.key, version), prevKv });
    return { kind: "put", prevKv: request.prevKv ? prevKv : null };
  }

  private deleteRange(request: DeleteRangeRequest): DeleteRangeResponse {
    const interval = keyInterval(request.key, request.rangeEnd);
    // Collect first: the overlay must not change while it is being scanned.
    const victims = [...liveKeysAt(this.reader, this.layout, interval, this.revision)].map((live) =>
      toKeyValue(live.userKey, decodeStoredVersion(live.encoded)),
    );
    for (const prevKv of victims) {
      this.stage(prevKv.key, {
        createRevision: 0n,
        modRevision: this.revision,
        version: 0n,
        lease: 0n,
        tombstone: true,
        value: EMPTY,
      });
      const kv = {
        key: prevKv.key,
        value: EMPTY,
        createRevision: 0n,
        modRevision: this.revision,
        version: 0n,
        lease: 0n,
      };
      this.events.push({ type: "delete", kv, prevKv });
    }
    return { kind: "deleteRange", deleted: victims.length, prevKvs: request.prevKv ? victims : [] };
  }

  private range(request: RangeRequest): RangeResponse {
    // Reads at "current" see this command's earlier writes, which sit at `revision`.
    return executeRange(this.reader, this.layout, request, { ...this.bounds, current: this.revision });
  }

  private txn(plan: TxnPlan): TxnResponse {
    const responses = plan.ops.map((op, i): OpResponse => {
      switch (op.kind) {
        case "range":
          return this.range(op);
        case "put": {
          const response = this.put(op);
          if (response.kind === "error") {
            throw new Error(`invariant violated: a put that passed its checks failed: ${response.message}`);
          }
          return response;
        }
        case "deleteRange":
          return this.deleteRange(op);
        case "txn": {
          const nested = plan.nested.get(i);
          if (nested === undefined) throw new Error("invariant violated: a nested transaction has no plan");
          return this.txn(nested);
        }
      }
    });
    return { kind: "txn", succeeded: plan.succeeded, responses };
  }

  private stage(userKey: Uint8Array, version: StoredVersion): void {
    const key = this.layout.dataKey(userKey, this.revision);
    if (this.batch.pending(key) !== undefined) {
      throw new Error(
        "invariant violated: a key was written twice at one revision (duplicate-key check missed it)",
      );
    }
    this.batch.put(key, encodeStoredVersion(version));
  }
}
