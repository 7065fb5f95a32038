/**
 * What the MVCC store answers: key-values, per-command responses (etcd's response messages
 * without the header), the result of applying a command (the header revision plus the
 * response or error), the change events a write produced, and the versioned binary encoding
 * of results, which the dedup table stores so that a retried command gets its original answer.
 */
import { ByteReader, ByteWriter, DecodeError } from "./bytes.js";
import { ENCODING_VERSION } from "./commands.js";
import { KV_ERROR_MESSAGES, KvErrorCode, isKvErrorCode } from "./errors.js";
import type { MemberResponse } from "./members.js";

export interface KeyValue {
  readonly key: Uint8Array;
  /** Empty for keysOnly reads and in delete events. */
  readonly value: Uint8Array;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  readonly lease: bigint;
}

export interface RangeResponse {
  readonly kind: "range";
  readonly kvs: readonly KeyValue[];
  /** More keys matched than `limit` allowed. */
  readonly more: boolean;
  /** Keys in the range at the read revision (before limit and the revision filters). */
  readonly count: number;
}

export interface PutResponse {
  readonly kind: "put";
  /** The key-value before the put, when requested and the key existed. */
  readonly prevKv: KeyValue | null;
}

export interface DeleteRangeResponse {
  readonly kind: "deleteRange";
  readonly deleted: number;
  /** The deleted key-values, when requested. */
  readonly prevKvs: readonly KeyValue[];
}

export interface TxnResponse {
  readonly kind: "txn";
  readonly succeeded: boolean;
  /** One response per op of the branch taken. */
  readonly responses: readonly OpResponse[];
}

export interface CompactResponse {
  readonly kind: "compact";
}

export interface LeaseGrantResponse {
  readonly kind: "leaseGrant";
  readonly id: bigint;
  /** The TTL granted (the requested one, or the minimum when that was below it). */
  readonly ttlSeconds: number;
}

export interface LeaseRevokeResponse {
  readonly kind: "leaseRevoke";
}

/** A fence applied (or was already in place for the same plan). */
export interface FenceResponse {
  readonly kind: "fence";
}

/** A split applied; the result's revision is the split's (ApplyOutcome.split says what it made). */
export interface SplitResponse {
  readonly kind: "split";
}

/** A merge fence applied (or was in place already); the result's revision is the range's, frozen. */
export interface MergeFenceResponse {
  readonly kind: "merge-fence";
}

/** A merge applied; the result's revision is the merge's (ApplyOutcome.merge says what it did). */
export interface MergeResponse {
  readonly kind: "merge";
}

/** A revision floor applied; the result's revision is the range's revision now (>= the floor). */
export interface RevisionFloorResponse {
  readonly kind: "revision-floor";
}

export interface ErrorResponse {
  readonly kind: "error";
  readonly code: KvErrorCode;
  readonly message: string;
}

export type OpResponse = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse;
export type CommandResponse =
  | PutResponse
  | DeleteRangeResponse
  | TxnResponse
  | CompactResponse
  | LeaseGrantResponse
  | LeaseRevokeResponse
  | MemberResponse
  | FenceResponse
  | SplitResponse
  | MergeFenceResponse
  | MergeResponse
  | RevisionFloorResponse
  | ErrorResponse;

/** The outcome of one command, as returned to its client. */
export interface CommandResult {
  /**
   * The header revision: the store's revision after the command — the command's own revision
   * when it wrote something, otherwise the revision it found.
   */
  readonly revision: bigint;
  readonly response: CommandResponse;
}

/** A read's answer with its header revision (the store's current revision). */
export interface RangeResult extends RangeResponse {
  readonly revision: bigint;
}

/**
 * One change made by a write, for the watch feed. A delete event's kv has the key and the
 * deleting revision as modRevision, everything else zero or empty (as in etcd). prevKv is the
 * key-value the change replaced, null when the key did not exist.
 */
export interface KvEvent {
  readonly type: "put" | "delete";
  readonly kv: KeyValue;
  readonly prevKv: KeyValue | null;
}

export function errorResponse(code: KvErrorCode): ErrorResponse {
  return { kind: "error", code, message: KV_ERROR_MESSAGES[code] };
}

const ResponseKind = {
  Range: 1,
  Put: 2,
  DeleteRange: 3,
  Txn: 4,
  Compact: 5,
  Error: 6,
  LeaseGrant: 7,
  LeaseRevoke: 8,
  Member: 9,
  Fence: 10,
  Split: 11,
  RevisionFloor: 12,
  MergeFence: 13,
  Merge: 14,
} as const;

function writeKeyValue(w: ByteWriter, kv: KeyValue): void {
  w.bytes(kv.key).bytes(kv.value).u64(kv.createRevision).u64(kv.modRevision).u64(kv.version).i64(kv.lease);
}

function readKeyValue(r: ByteReader): KeyValue {
  return {
    key: r.bytes(),
    value: r.bytes(),
    createRevision: r.u64(),
    modRevision: r.u64(),
    version: r.u64(),
    lease: r.i64(),
  };
}

function writeKeyValues(w: ByteWriter, kvs: readonly KeyValue[]): void {
  w.u32(kvs.length);
  for (const kv of kvs) writeKeyValue(w, kv);
}

function readKeyValues(r: ByteReader): KeyValue[] {
  const n = r.u32();
  if (n > r.remaining) r.fail("truncated", `${n} key-values in ${r.remaining} bytes`);
  const out: KeyValue[] = [];
  for (let i = 0; i < n; i++) out.push(readKeyValue(r));
  return out;
}

function writeResponse(w: ByteWriter, response: CommandResponse | OpResponse): void {
  switch (response.kind) {
    case "range":
      w.u8(ResponseKind.Range).bool(response.more).count(response.count);
      return writeKeyValues(w, response.kvs);
    case "put":
      w.u8(ResponseKind.Put).bool(response.prevKv !== null);
      if (response.prevKv !== null) writeKeyValue(w, response.prevKv);
      return;
    case "deleteRange":
      w.u8(ResponseKind.DeleteRange).count(response.deleted);
      return writeKeyValues(w, response.prevKvs);
    case "txn":
      w.u8(ResponseKind.Txn).bool(response.succeeded).u32(response.responses.length);
      for (const r of response.responses) writeResponse(w, r);
      return;
    case "compact":
      w.u8(ResponseKind.Compact);
      return;
    case "error":
      w.u8(ResponseKind.Error).u8(response.code);
      return;
    case "leaseGrant":
      w.u8(ResponseKind.LeaseGrant).i64(response.id).i64(BigInt(response.ttlSeconds));
      return;
    case "leaseRevoke":
      w.u8(ResponseKind.LeaseRevoke);
      return;
    case "member":
      w.u8(ResponseKind.Member);
      return;
    case "fence":
      w.u8(ResponseKind.Fence);
      return;
    case "split":
      w.u8(ResponseKind.Split);
      return;
    case "revision-floor":
      w.u8(ResponseKind.RevisionFloor);
      return;
    case "merge-fence":
      w.u8(ResponseKind.MergeFence);
      return;
    case "merge":
      w.u8(ResponseKind.Merge);
      return;
  }
}

function isOpResponse(response: CommandResponse | RangeResponse): response is OpResponse {
  return (
    response.kind === "range" ||
    response.kind === "put" ||
    response.kind === "deleteRange" ||
    response.kind === "txn"
  );
}

function readResponse(r: ByteReader): CommandResponse | RangeResponse {
  const kind = r.u8();
  switch (kind) {
    case ResponseKind.Range: {
      const more = r.bool();
      const count = r.count();
      return { kind: "range", more, count, kvs: readKeyValues(r) };
    }
    case ResponseKind.Put:
      return { kind: "put", prevKv: r.bool() ? readKeyValue(r) : null };
    case ResponseKind.DeleteRange: {
      const deleted = r.count();
      return { kind: "deleteRange", deleted, prevKvs: readKeyValues(r) };
    }
    case ResponseKind.Txn: {
      const succeeded = r.bool();
      const n = r.u32();
      if (n > r.remaining) r.fail("truncated", `${n} responses in ${r.remaining} bytes`);
      const responses: OpResponse[] = [];
      for (let i = 0; i < n; i++) {
        const sub = readResponse(r);
        if (!isOpResponse(sub)) r.fail("invalid-field", `${sub.kind} inside a txn`);
        responses.push(sub);
      }
      return { kind: "txn", succeeded, responses };
    }
    case ResponseKind.Compact:
      return { kind: "compact" };
    case ResponseKind.Error: {
      const code = r.u8();
      if (!isKvErrorCode(code)) r.fail("invalid-field", `error code ${code}`);
      return errorResponse(code);
    }
    case ResponseKind.LeaseGrant: {
      const id = r.i64();
      const ttl = r.i64();
      if (id <= 0n) r.fail("invalid-field", `granted lease id ${id}`);
      if (ttl <= 0n || ttl > BigInt(Number.MAX_SAFE_INTEGER)) r.fail("invalid-field", `granted TTL ${ttl}`);
      return { kind: "leaseGrant", id, ttlSeconds: Number(ttl) };
    }
    case ResponseKind.LeaseRevoke:
      return { kind: "leaseRevoke" };
    case ResponseKind.Member:
      return { kind: "member" };
    case ResponseKind.Fence:
      return { kind: "fence" };
    case ResponseKind.Split:
      return { kind: "split" };
    case ResponseKind.RevisionFloor:
      return { kind: "revision-floor" };
    case ResponseKind.MergeFence:
      return { kind: "merge-fence" };
    case ResponseKind.Merge:
      return { kind: "merge" };
    default:
      return r.fail("unknown-kind", `response kind ${kind}`);
  }
}

export function encodeCommandResult(result: CommandResult): Uint8Array {
  const w = new ByteWriter().u8(ENCODING_VERSION).u64(result.revision);
  writeResponse(w, result.response);
  return w.finish();
}

export function decodeCommandResult(bytes: Uint8Array): CommandResult {
  const r = new ByteReader(bytes, "command result");
  const version = r.u8();
  if (version !== ENCODING_VERSION) r.fail("unknown-version", `encoding version ${version}`);
  const revision = r.u64();
  const response = readResponse(r);
  if (response.kind === "range") {
    throw new DecodeError("command result", "invalid-field", "a range response is not a command result");
  }
  r.end();
  return { revision, response };
}
