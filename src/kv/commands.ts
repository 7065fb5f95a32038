/**
 * The write commands of the MVCC state machine (etcd's Put, DeleteRange, Txn and Compact,
 * with Range as a transaction op), its lease commands (LeaseGrant, LeaseRevoke), the member
 * table's commands (MemberSet, MemberRemove: their fields are members.ts's), the range
 * commands of splits, merges and cross-range reads (Fence, Split, MergeFence, Merge,
 * RevisionFloor), the envelope that carries one through the Raft log, and their versioned
 * binary encoding.
 *
 * Encoding: a format byte (ENCODING_VERSION), then for an envelope the client id, sequence
 * and timestamp, then the command: a kind byte and its fields. Integers are big-endian fixed
 * width, byte strings and lists are u32-length-prefixed, flags are bit sets that reject
 * unknown bits. Decoders throw DecodeError on an unknown version or kind, an invalid field,
 * truncation and trailing bytes; encoders throw RangeError on values that cannot be encoded,
 * so a malformed command never reaches the log.
 *
 * Field conventions follow etcd: an empty `rangeEnd` means the single key `key`, a rangeEnd
 * of one 0x00 byte means every key >= `key`; revision 0 means "current"; limit 0 means none;
 * a lease of 0 means no lease. Lease ids are non-negative int64 values.
 */
import { ByteReader, ByteWriter, EMPTY } from "./bytes.js";
import { isTimestamp } from "./hlc.js";
import { readMemberRemove, readMemberSet, writeMemberCommand, type MemberCommand } from "./members.js";

export const ENCODING_VERSION = 1;
/** Deepest nesting of transactions inside transactions that the encoding accepts. */
export const MAX_TXN_DEPTH = 16;

export enum SortOrder {
  None = 0,
  Ascend = 1,
  Descend = 2,
}

export enum SortTarget {
  Key = 0,
  Version = 1,
  Create = 2,
  Mod = 3,
  Value = 4,
}

export enum CompareTarget {
  Version = 0,
  Create = 1,
  Mod = 2,
  Value = 3,
  Lease = 4,
}

export enum CompareResult {
  Equal = 0,
  Greater = 1,
  Less = 2,
  NotEqual = 3,
}

export interface RangeRequest {
  readonly kind: "range";
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  readonly limit: number;
  readonly revision: bigint;
  readonly sortOrder: SortOrder;
  readonly sortTarget: SortTarget;
  readonly keysOnly: boolean;
  readonly countOnly: boolean;
  readonly minModRevision: bigint;
  readonly maxModRevision: bigint;
  readonly minCreateRevision: bigint;
  readonly maxCreateRevision: bigint;
}

export interface PutRequest {
  readonly kind: "put";
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly lease: bigint;
  readonly prevKv: boolean;
  /** Keep the current value (the key must exist; `value` must be empty). */
  readonly ignoreValue: boolean;
  /** Keep the current lease (the key must exist; `lease` must be 0). */
  readonly ignoreLease: boolean;
}

export interface DeleteRangeRequest {
  readonly kind: "deleteRange";
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  readonly prevKv: boolean;
}

/** A compare against a key's value (bytes). */
export interface ValueCompare {
  readonly target: CompareTarget.Value;
  readonly result: CompareResult;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  readonly value: Uint8Array;
}

/** A compare against a key's version, create or mod revision, or lease. */
export interface NumberCompare {
  readonly target: CompareTarget.Version | CompareTarget.Create | CompareTarget.Mod | CompareTarget.Lease;
  readonly result: CompareResult;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  readonly operand: bigint;
}

export type Compare = ValueCompare | NumberCompare;

export interface TxnRequest {
  readonly kind: "txn";
  readonly compares: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export interface CompactRequest {
  readonly kind: "compact";
  readonly revision: bigint;
}

/**
 * etcd's LeaseGrant. `id` 0 lets the store choose one (deterministically, from the entry
 * index, never the id of a live lease). A TTL below one second is raised to one second;
 * the leader may raise it further before proposing (etcd's minimum depends on its election
 * timeout).
 */
export interface LeaseGrantRequest {
  readonly kind: "leaseGrant";
  readonly id: bigint;
  readonly ttlSeconds: number;
}

/**
 * etcd's LeaseRevoke: deletes every key attached to the lease, in one revision, and the
 * lease. The leader proposes it too when a lease expires on its clock; replicas never
 * expire a lease on their own.
 */
export interface LeaseRevokeRequest {
  readonly kind: "leaseRevoke";
  readonly id: bigint;
}

/**
 * Fences the range's writes for a planned split at `splitKey` into range `rhsRangeId`: writes
 * answer RangeFenced until the split applies. Idempotent for the same plan; refused
 * (RangeFenced) while fenced for another one, and (KeyOutsideRange) unless `splitKey` lies
 * strictly inside the range's bounds.
 */
export interface FenceRequest {
  readonly kind: "fence";
  readonly splitKey: Uint8Array;
  readonly rhsRangeId: number;
}

/**
 * Splits the range at `splitKey`: every key >= splitKey moves, with all its versions, into a
 * new store for range `rhsRangeId`, in the same engine write (split.ts). Refused like a fence.
 */
export interface SplitRequest {
  readonly kind: "split";
  readonly splitKey: Uint8Array;
  readonly rhsRangeId: number;
}

/**
 * Fences the range for a merge into its left neighbour: from then on it refuses every state
 * change (RangeFenced) and its image (MvccStore.mergeImage) stays valid. Refused
 * (KeyOutsideRange) on the first range, (RangeFenced) while fenced for a split; idempotent.
 */
export interface MergeFenceRequest {
  readonly kind: "merge-fence";
}

/**
 * Merges the right-hand neighbour `rhsRangeId` into this range: `image` is that range's whole
 * store (snapshot format, taken once it was merge-fenced) and enters this store in one engine
 * write (merge.ts). Refused (RangeFenced) while this range is fenced, (MergeImageInvalid) for
 * a bad or unfenced image, (KeyOutsideRange) unless this range ends where the image starts
 * and its bounds revision is still `lhsBoundsRevision`.
 */
export interface MergeRequest {
  readonly kind: "merge";
  readonly rhsRangeId: number;
  readonly image: Uint8Array;
  /**
   * This range's bounds revision (MvccStore.boundsRevision) when the merge was decided: a
   * range that split or merged since refuses it, even if it ends where the image starts
   * again (it may have taken this very image in already, then split at its start).
   */
  readonly lhsBoundsRevision: bigint;
}

/** Raises the range's revision to at least `revision`, so every later write is above it. */
export interface RevisionFloorRequest {
  readonly kind: "revision-floor";
  readonly revision: bigint;
}

export type TxnOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest;
/** The key-value commands. */
export type Command = PutRequest | DeleteRangeRequest | TxnRequest | CompactRequest;
export type LeaseCommand = LeaseGrantRequest | LeaseRevokeRequest;
/** The commands that change what a range is rather than what it holds. */
export type RangeCommand =
  FenceRequest | SplitRequest | MergeFenceRequest | MergeRequest | RevisionFloorRequest;
/** Everything the state machine applies (member commands: members.ts). */
export type KvCommand = Command | LeaseCommand | MemberCommand | RangeCommand;

/**
 * A command as proposed: who sent it (for at-most-once application of retries) and the
 * leader's clock reading when it was proposed (the lower bound of its revision).
 * An empty clientId opts out of deduplication; otherwise sequence is >= 1.
 *
 * `C` narrows the commands an envelope may carry; the default is the key-value commands,
 * and the store and the codec take any command (`CommandEnvelope<KvCommand>`).
 */
export interface CommandEnvelope<C extends KvCommand = Command> {
  readonly clientId: string;
  readonly sequence: number;
  readonly timestamp: bigint;
  readonly command: C;
}

type Fields<T extends { kind: string }> = Omit<T, "kind">;

export function rangeRequest(
  fields: Partial<Fields<RangeRequest>> & Pick<RangeRequest, "key">,
): RangeRequest {
  return {
    kind: "range",
    rangeEnd: EMPTY,
    limit: 0,
    revision: 0n,
    sortOrder: SortOrder.None,
    sortTarget: SortTarget.Key,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0n,
    maxModRevision: 0n,
    minCreateRevision: 0n,
    maxCreateRevision: 0n,
    ...fields,
  };
}

export function putRequest(fields: Partial<Fields<PutRequest>> & Pick<PutRequest, "key">): PutRequest {
  return {
    kind: "put",
    value: EMPTY,
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
    ...fields,
  };
}

export function deleteRangeRequest(
  fields: Partial<Fields<DeleteRangeRequest>> & Pick<DeleteRangeRequest, "key">,
): DeleteRangeRequest {
  return { kind: "deleteRange", rangeEnd: EMPTY, prevKv: false, ...fields };
}

export function txnRequest(fields: Partial<Fields<TxnRequest>>): TxnRequest {
  return { kind: "txn", compares: [], success: [], failure: [], ...fields };
}

export function compactRequest(revision: bigint): CompactRequest {
  return { kind: "compact", revision };
}

export function leaseGrantRequest(ttlSeconds: number, id = 0n): LeaseGrantRequest {
  return { kind: "leaseGrant", id, ttlSeconds };
}

export function leaseRevokeRequest(id: bigint): LeaseRevokeRequest {
  return { kind: "leaseRevoke", id };
}

export function fenceRequest(splitKey: Uint8Array, rhsRangeId: number): FenceRequest {
  return { kind: "fence", splitKey, rhsRangeId };
}

export function splitRequest(splitKey: Uint8Array, rhsRangeId: number): SplitRequest {
  return { kind: "split", splitKey, rhsRangeId };
}

export function revisionFloorRequest(revision: bigint): RevisionFloorRequest {
  return { kind: "revision-floor", revision };
}

export function mergeFenceRequest(): MergeFenceRequest {
  return { kind: "merge-fence" };
}

export function mergeRequest(rhsRangeId: number, image: Uint8Array, lhsBoundsRevision: bigint): MergeRequest {
  return { kind: "merge", rhsRangeId, image, lhsBoundsRevision };
}

/** Whether `command` is one of the range commands (RangeCommand). */
export function isRangeCommand(command: KvCommand): command is RangeCommand {
  return (
    command.kind === "fence" ||
    command.kind === "split" ||
    command.kind === "merge-fence" ||
    command.kind === "merge" ||
    command.kind === "revision-floor"
  );
}

/** Largest range id: range namespaces are 4 bytes (keys.ts rangeNamespace). */
export const MAX_RANGE_ID = 0xffff_ffff;

/** Why a range command's fields are invalid, or null. */
export function rangeCommandProblem(command: RangeCommand): string | null {
  switch (command.kind) {
    case "revision-floor":
      return isTimestamp(command.revision) ? null : `revision floor ${command.revision} is not in 0..2^63-1`;
    case "merge-fence":
      return null;
    case "merge":
      if (!(command.image instanceof Uint8Array)) return "merge: the image must be a Uint8Array";
      if (!isTimestamp(command.lhsBoundsRevision)) {
        return `merge: bounds revision ${command.lhsBoundsRevision} is not in 0..2^63-1`;
      }
      return rangeIdProblem(command);
    case "fence":
    case "split":
      if (!(command.splitKey instanceof Uint8Array) || command.splitKey.length === 0) {
        return `${command.kind}: the split key must not be empty`;
      }
      return rangeIdProblem(command);
  }
}

function rangeIdProblem(command: { readonly kind: string; readonly rhsRangeId: number }): string | null {
  const id = command.rhsRangeId;
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_RANGE_ID) {
    return `${command.kind}: range id ${id} is not in 1..${MAX_RANGE_ID}`;
  }
  return null;
}

const Kind = {
  Range: 1,
  Put: 2,
  DeleteRange: 3,
  Txn: 4,
  Compact: 5,
  LeaseGrant: 6,
  LeaseRevoke: 7,
  MemberSet: 8,
  MemberRemove: 9,
  Fence: 10,
  Split: 11,
  RevisionFloor: 12,
  MergeFence: 13,
  Merge: 14,
} as const;

const MAX_LEASE_ID = (1n << 63n) - 1n;

const PUT_PREV_KV = 0x01;
const PUT_IGNORE_VALUE = 0x02;
const PUT_IGNORE_LEASE = 0x04;
const RANGE_KEYS_ONLY = 0x01;
const RANGE_COUNT_ONLY = 0x02;
const DELETE_PREV_KV = 0x01;

function flags(...bits: [boolean, number][]): number {
  let out = 0;
  for (const [on, bit] of bits) if (on) out |= bit;
  return out;
}

function readFlags(r: ByteReader, known: number): number {
  const value = r.u8();
  if ((value & ~known) !== 0) r.fail("invalid-field", `unknown flag bits 0x${value.toString(16)}`);
  return value;
}

function readEnum<T extends number>(r: ByteReader, max: number, what: string): T {
  const value = r.u8();
  if (value > max) r.fail("invalid-field", `${what} ${value}`);
  return value as T;
}

function writeRevision(w: ByteWriter, revision: bigint, what: string): void {
  if (!isTimestamp(revision)) throw new RangeError(`${what} must be in 0..2^63-1, got ${revision}`);
  w.u64(revision);
}

function readRevision(r: ByteReader, what: string): bigint {
  const revision = r.u64();
  if (!isTimestamp(revision)) r.fail("invalid-field", `${what} ${revision} above 2^63-1`);
  return revision;
}

function writeRange(w: ByteWriter, q: RangeRequest): void {
  w.bytes(q.key).bytes(q.rangeEnd).count(q.limit);
  writeRevision(w, q.revision, "range revision");
  w.u8(q.sortOrder).u8(q.sortTarget);
  w.u8(flags([q.keysOnly, RANGE_KEYS_ONLY], [q.countOnly, RANGE_COUNT_ONLY]));
  writeRevision(w, q.minModRevision, "minModRevision");
  writeRevision(w, q.maxModRevision, "maxModRevision");
  writeRevision(w, q.minCreateRevision, "minCreateRevision");
  writeRevision(w, q.maxCreateRevision, "maxCreateRevision");
}

function readRange(r: ByteReader): RangeRequest {
  const key = r.bytes();
  const rangeEnd = r.bytes();
  const limit = r.count();
  const revision = readRevision(r, "range revision");
  const sortOrder = readEnum<SortOrder>(r, SortOrder.Descend, "sort order");
  const sortTarget = readEnum<SortTarget>(r, SortTarget.Value, "sort target");
  const f = readFlags(r, RANGE_KEYS_ONLY | RANGE_COUNT_ONLY);
  return {
    kind: "range",
    key,
    rangeEnd,
    limit,
    revision,
    sortOrder,
    sortTarget,
    keysOnly: (f & RANGE_KEYS_ONLY) !== 0,
    countOnly: (f & RANGE_COUNT_ONLY) !== 0,
    minModRevision: readRevision(r, "minModRevision"),
    maxModRevision: readRevision(r, "maxModRevision"),
    minCreateRevision: readRevision(r, "minCreateRevision"),
    maxCreateRevision: readRevision(r, "maxCreateRevision"),
  };
}

function writePut(w: ByteWriter, p: PutRequest): void {
  w.bytes(p.key).bytes(p.value).i64(p.lease);
  w.u8(flags([p.prevKv, PUT_PREV_KV], [p.ignoreValue, PUT_IGNORE_VALUE], [p.ignoreLease, PUT_IGNORE_LEASE]));
}

function readPut(r: ByteReader): PutRequest {
  const key = r.bytes();
  // A view, not a copy: commands are decoded from arrays of their own (a log entry's data, a
  // request's field) that nobody changes, and the value is usually the largest part.
  const value = r.bytesView();
  const lease = r.i64();
  const f = readFlags(r, PUT_PREV_KV | PUT_IGNORE_VALUE | PUT_IGNORE_LEASE);
  return {
    kind: "put",
    key,
    value,
    lease,
    prevKv: (f & PUT_PREV_KV) !== 0,
    ignoreValue: (f & PUT_IGNORE_VALUE) !== 0,
    ignoreLease: (f & PUT_IGNORE_LEASE) !== 0,
  };
}

function writeDeleteRange(w: ByteWriter, d: DeleteRangeRequest): void {
  w.bytes(d.key)
    .bytes(d.rangeEnd)
    .u8(flags([d.prevKv, DELETE_PREV_KV]));
}

function readDeleteRange(r: ByteReader): DeleteRangeRequest {
  const key = r.bytes();
  const rangeEnd = r.bytes();
  const prevKv = (readFlags(r, DELETE_PREV_KV) & DELETE_PREV_KV) !== 0;
  return { kind: "deleteRange", key, rangeEnd, prevKv };
}

function writeCompare(w: ByteWriter, c: Compare): void {
  w.u8(c.target).u8(c.result).bytes(c.key).bytes(c.rangeEnd);
  if (c.target === CompareTarget.Value) w.bytes(c.value);
  else w.i64(c.operand);
}

function readCompare(r: ByteReader): Compare {
  const target = readEnum<CompareTarget>(r, CompareTarget.Lease, "compare target");
  const result = readEnum<CompareResult>(r, CompareResult.NotEqual, "compare result");
  const key = r.bytes();
  const rangeEnd = r.bytes();
  if (target === CompareTarget.Value) return { target, result, key, rangeEnd, value: r.bytes() };
  return { target, result, key, rangeEnd, operand: r.i64() };
}

function writeList<T>(w: ByteWriter, items: readonly T[], write: (item: T) => void): void {
  w.u32(items.length);
  for (const item of items) write(item);
}

function readList<T>(r: ByteReader, read: () => T): T[] {
  const n = r.u32();
  // Every item takes at least one byte: a larger count is a lie, not a reason to allocate.
  if (n > r.remaining) r.fail("truncated", `list of ${n} items in ${r.remaining} bytes`);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(read());
  return out;
}

function writeTxn(w: ByteWriter, t: TxnRequest, depth: number): void {
  if (depth > MAX_TXN_DEPTH) throw new RangeError(`transactions nested deeper than ${MAX_TXN_DEPTH}`);
  writeList(w, t.compares, (c) => writeCompare(w, c));
  writeList(w, t.success, (op) => writeOp(w, op, depth));
  writeList(w, t.failure, (op) => writeOp(w, op, depth));
}

function readTxn(r: ByteReader, depth: number): TxnRequest {
  if (depth > MAX_TXN_DEPTH) r.fail("invalid-field", `transactions nested deeper than ${MAX_TXN_DEPTH}`);
  const compares = readList(r, () => readCompare(r));
  const success = readList(r, () => readOp(r, depth));
  const failure = readList(r, () => readOp(r, depth));
  return { kind: "txn", compares, success, failure };
}

function writeOp(w: ByteWriter, op: TxnOp, depth: number): void {
  switch (op.kind) {
    case "range":
      w.u8(Kind.Range);
      return writeRange(w, op);
    case "put":
      w.u8(Kind.Put);
      return writePut(w, op);
    case "deleteRange":
      w.u8(Kind.DeleteRange);
      return writeDeleteRange(w, op);
    case "txn":
      w.u8(Kind.Txn);
      return writeTxn(w, op, depth + 1);
  }
}

function readOp(r: ByteReader, depth: number): TxnOp {
  const kind = r.u8();
  switch (kind) {
    case Kind.Range:
      return readRange(r);
    case Kind.Put:
      return readPut(r);
    case Kind.DeleteRange:
      return readDeleteRange(r);
    case Kind.Txn:
      return readTxn(r, depth + 1);
    default:
      return r.fail("unknown-kind", `transaction op kind ${kind}`);
  }
}

function writeLeaseId(w: ByteWriter, id: bigint): void {
  if (id < 0n || id > MAX_LEASE_ID) throw new RangeError(`lease id must be in 0..2^63-1, got ${id}`);
  w.i64(id);
}

function readLeaseId(r: ByteReader): bigint {
  const id = r.i64();
  if (id < 0n) r.fail("invalid-field", `negative lease id ${id}`);
  return id;
}

function writeTtl(w: ByteWriter, ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds))
    throw new RangeError(`lease TTL must be an integer, got ${ttlSeconds}`);
  w.i64(BigInt(ttlSeconds));
}

function readTtl(r: ByteReader): number {
  const ttl = r.i64();
  if (ttl > BigInt(Number.MAX_SAFE_INTEGER) || ttl < BigInt(Number.MIN_SAFE_INTEGER)) {
    r.fail("invalid-field", `lease TTL ${ttl} is not a safe integer`);
  }
  return Number(ttl);
}

function writeCommand(w: ByteWriter, command: KvCommand): void {
  switch (command.kind) {
    case "put":
      w.u8(Kind.Put);
      return writePut(w, command);
    case "deleteRange":
      w.u8(Kind.DeleteRange);
      return writeDeleteRange(w, command);
    case "txn":
      w.u8(Kind.Txn);
      return writeTxn(w, command, 1);
    case "compact":
      w.u8(Kind.Compact);
      return writeRevision(w, command.revision, "compact revision");
    case "leaseGrant":
      w.u8(Kind.LeaseGrant);
      writeLeaseId(w, command.id);
      return writeTtl(w, command.ttlSeconds);
    case "leaseRevoke":
      w.u8(Kind.LeaseRevoke);
      return writeLeaseId(w, command.id);
    case "memberSet":
      w.u8(Kind.MemberSet);
      return writeMemberCommand(w, command);
    case "memberRemove":
      w.u8(Kind.MemberRemove);
      return writeMemberCommand(w, command);
    case "fence":
    case "split":
    case "merge-fence":
    case "merge":
    case "revision-floor":
      return writeRangeCommand(w, command);
  }
}

function writeRangeCommand(w: ByteWriter, command: RangeCommand): void {
  const problem = rangeCommandProblem(command);
  if (problem !== null) throw new RangeError(problem);
  switch (command.kind) {
    case "revision-floor":
      w.u8(Kind.RevisionFloor).u64(command.revision);
      return;
    case "merge-fence":
      w.u8(Kind.MergeFence);
      return;
    case "merge":
      w.u8(Kind.Merge).u32(command.rhsRangeId).u64(command.lhsBoundsRevision).bytes(command.image);
      return;
    case "fence":
    case "split":
      w.u8(command.kind === "fence" ? Kind.Fence : Kind.Split);
      w.bytes(command.splitKey).u32(command.rhsRangeId);
  }
}

function readRangeCommand(r: ByteReader, kind: number): RangeCommand {
  let command: RangeCommand;
  if (kind === Kind.RevisionFloor) command = revisionFloorRequest(r.u64());
  else if (kind === Kind.MergeFence) command = mergeFenceRequest();
  else if (kind === Kind.Merge) {
    const rhsRangeId = r.u32();
    const lhsBoundsRevision = r.u64();
    command = mergeRequest(rhsRangeId, r.bytes(), lhsBoundsRevision);
  } else {
    const splitKey = r.bytes();
    const rhsRangeId = r.u32();
    command = kind === Kind.Fence ? fenceRequest(splitKey, rhsRangeId) : splitRequest(splitKey, rhsRangeId);
  }
  const problem = rangeCommandProblem(command);
  if (problem !== null) r.fail("invalid-field", problem);
  return command;
}

function readCommand(r: ByteReader): KvCommand {
  const kind = r.u8();
  switch (kind) {
    case Kind.Put:
      return readPut(r);
    case Kind.DeleteRange:
      return readDeleteRange(r);
    case Kind.Txn:
      return readTxn(r, 1);
    case Kind.Compact:
      return compactRequest(readRevision(r, "compact revision"));
    case Kind.LeaseGrant: {
      const id = readLeaseId(r);
      return leaseGrantRequest(readTtl(r), id);
    }
    case Kind.LeaseRevoke:
      return leaseRevokeRequest(readLeaseId(r));
    case Kind.MemberSet:
      return readMemberSet(r);
    case Kind.MemberRemove:
      return readMemberRemove(r);
    case Kind.Fence:
    case Kind.Split:
    case Kind.MergeFence:
    case Kind.Merge:
    case Kind.RevisionFloor:
      return readRangeCommand(r, kind);
    default:
      return r.fail("unknown-kind", `command kind ${kind}`);
  }
}

function readVersion(r: ByteReader): void {
  const version = r.u8();
  if (version !== ENCODING_VERSION) r.fail("unknown-version", `encoding version ${version}`);
}

export function encodeCommand(command: KvCommand): Uint8Array {
  const w = new ByteWriter().u8(ENCODING_VERSION);
  writeCommand(w, command);
  return w.finish();
}

export function decodeCommand(bytes: Uint8Array): KvCommand {
  const r = new ByteReader(bytes, "command");
  readVersion(r);
  const command = readCommand(r);
  r.end();
  return command;
}

function checkEnvelopeHeader(clientId: string, sequence: number, timestamp: bigint): string | null {
  if (!Number.isSafeInteger(sequence) || sequence < 0)
    return `sequence ${sequence} is not a non-negative integer`;
  if (clientId === "" && sequence !== 0) return "a command without client id must have sequence 0";
  if (clientId !== "" && sequence === 0) return "a client's sequence numbers start at 1";
  if (!isTimestamp(timestamp)) return `timestamp ${timestamp} is not a valid HLC timestamp`;
  return null;
}

/**
 * Throws RangeError unless the envelope's client id, sequence and timestamp, and a range
 * command's fields, are well formed.
 */
export function checkEnvelope(envelope: CommandEnvelope<KvCommand>): void {
  const { command } = envelope;
  const problem =
    checkEnvelopeHeader(envelope.clientId, envelope.sequence, envelope.timestamp) ??
    (isRangeCommand(command) ? rangeCommandProblem(command) : null);
  if (problem !== null) throw new RangeError(`invalid command envelope: ${problem}`);
}

export function encodeEnvelope(envelope: CommandEnvelope<KvCommand>): Uint8Array {
  checkEnvelope(envelope);
  const w = new ByteWriter().u8(ENCODING_VERSION).string(envelope.clientId).count(envelope.sequence);
  w.u64(envelope.timestamp);
  writeCommand(w, envelope.command);
  return w.finish();
}

export function decodeEnvelope(bytes: Uint8Array): CommandEnvelope<KvCommand> {
  const r = new ByteReader(bytes, "command envelope");
  readVersion(r);
  const clientId = r.string();
  const sequence = r.count();
  const timestamp = r.u64();
  const problem = checkEnvelopeHeader(clientId, sequence, timestamp);
  if (problem !== null) r.fail("invalid-field", problem);
  const command = readCommand(r);
  r.end();
  return { clientId, sequence, timestamp, command };
}
