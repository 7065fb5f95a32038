/**
 * Everything about a command that is decided before it writes: request validation (etcd's
 * empty-key, value/lease-provided and duplicate-key rules), compare evaluation, and the plan
 * of a transaction — which branch every (nested) transaction takes, fixed up front against
 * the state before the transaction, and the checks that must pass before any op runs.
 */
import { compareBytes, latin1 } from "./bytes.js";
import {
  CompareResult,
  CompareTarget,
  type Command,
  type Compare,
  type TxnOp,
  type TxnRequest,
} from "./commands.js";
import type { KvReader } from "./engine.js";
import { KvErrorCode } from "./errors.js";
import { decodeStoredVersion, keyTooLarge, type KeyLayout, type StoredVersion } from "./keys.js";
import {
  keyInterval,
  liveKeysAt,
  liveVersionAt,
  readRevisionError,
  type NewestEncodedVersion,
  type RevisionBounds,
} from "./range.js";

function opError(op: TxnOp): KvErrorCode | null {
  switch (op.kind) {
    case "range":
    case "deleteRange":
      return op.key.length === 0 ? KvErrorCode.EmptyKey : null;
    case "put":
      if (op.key.length === 0) return KvErrorCode.EmptyKey;
      if (keyTooLarge(op.key)) return KvErrorCode.KeyTooLarge;
      if (op.ignoreValue && op.value.length !== 0) return KvErrorCode.ValueProvided;
      if (op.ignoreLease && op.lease !== 0n) return KvErrorCode.LeaseProvided;
      return null;
    case "txn":
      return txnShapeError(op);
  }
}

function txnShapeError(txn: TxnRequest): KvErrorCode | null {
  if (txn.compares.some((c) => c.key.length === 0)) return KvErrorCode.EmptyKey;
  for (const op of [...txn.success, ...txn.failure]) {
    const error = opError(op);
    if (error !== null) return error;
  }
  return null;
}

/** A delete's keys as latin1 strings (which order like the bytes). */
interface DeletedInterval {
  readonly start: string;
  readonly end: string | null;
  readonly single: boolean;
}

function covers(d: DeletedInterval, key: string): boolean {
  return d.single ? d.start === key : d.start <= key && (d.end === null || key < d.end);
}

/**
 * Whether any of `deletes` covers `key`. A function of its own rather than a closure in
 * `footprint`: under tsx every closure made gets its name set at run time (esbuild's
 * keepNames), and footprint runs for every transaction on every replica.
 */
function coveredByAny(deletes: readonly DeletedInterval[], key: string): boolean {
  return deletes.some((d) => covers(d, key));
}

/** The keys a list of ops may put, and the intervals it may delete. */
interface Footprint {
  readonly puts: Set<string>;
  readonly deletes: DeletedInterval[];
}

/**
 * etcd's duplicate-key rule: within the ops that can run together, no key is put twice and no
 * key is both put and deleted (the then and else branches of a nested transaction exclude
 * each other, so they may put the same key). Returns null when violated.
 *
 * One rule stricter than etcd: etcd lets a put in one nested transaction be followed by a
 * delete of the same key in a later sibling and orders the two by sub-revision. Concord gives
 * all writes of a command one revision and keeps one version per key per revision, so it
 * rejects that case as a duplicate key too.
 */
function footprint(ops: readonly TxnOp[]): Footprint | null {
  const deletes: DeletedInterval[] = [];
  for (const op of ops) {
    if (op.kind !== "deleteRange") continue;
    const interval = keyInterval(op.key, op.rangeEnd);
    deletes.push({
      start: latin1(interval.start),
      end: interval.end === null ? null : latin1(interval.end),
      single: interval.single,
    });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.kind !== "txn") continue;
    const then = footprint(op.success);
    const otherwise = footprint(op.failure);
    if (then === null || otherwise === null) return null;
    const nestedDeletes = [...then.deletes, ...otherwise.deletes];
    for (const key of puts) if (coveredByAny(nestedDeletes, key)) return null;
    for (const key of then.puts) if (puts.has(key) || coveredByAny(deletes, key)) return null;
    for (const key of otherwise.puts)
      if ((puts.has(key) && !then.puts.has(key)) || coveredByAny(deletes, key)) return null;
    for (const key of [...then.puts, ...otherwise.puts]) puts.add(key);
    deletes.push(...nestedDeletes);
  }
  for (const op of ops) {
    if (op.kind !== "put") continue;
    const key = latin1(op.key);
    if (puts.has(key) || coveredByAny(deletes, key)) return null;
    puts.add(key);
  }
  return { puts, deletes };
}

/**
 * The error etcd's request checks would give `command` before it reaches the store, or null:
 * empty keys, a value or lease given together with ignoreValue / ignoreLease, and duplicate
 * keys in a transaction. Depends on the command alone, not on the store's state.
 */
export function commandShapeError(command: Command): KvErrorCode | null {
  switch (command.kind) {
    case "put":
    case "deleteRange":
      return opError(command);
    case "txn": {
      const error = txnShapeError(command);
      if (error !== null) return error;
      return footprint(command.success) === null || footprint(command.failure) === null
        ? KvErrorCode.DuplicateKey
        : null;
    }
    case "compact":
      return null;
  }
}

const ABSENT: StoredVersion = {
  createRevision: 0n,
  modRevision: 0n,
  version: 0n,
  lease: 0n,
  tombstone: false,
  value: new Uint8Array(0),
};

function compareHolds(c: Compare, version: StoredVersion): boolean {
  let order: number;
  if (c.target === CompareTarget.Value) {
    order = compareBytes(version.value, c.value);
  } else {
    const actual =
      c.target === CompareTarget.Version
        ? version.version
        : c.target === CompareTarget.Create
          ? version.createRevision
          : c.target === CompareTarget.Mod
            ? version.modRevision
            : version.lease;
    order = actual < c.operand ? -1 : actual > c.operand ? 1 : 0;
  }
  switch (c.result) {
    case CompareResult.Equal:
      return order === 0;
    case CompareResult.Greater:
      return order > 0;
    case CompareResult.Less:
      return order < 0;
    case CompareResult.NotEqual:
      return order !== 0;
  }
}

/**
 * etcd's compare: every key of the compare's range that exists must satisfy it. When none
 * exists, a missing key has version, revisions and lease 0 — but a value compare fails, since
 * a missing value cannot be told from an empty one.
 */
export function evaluateCompare(
  reader: KvReader,
  layout: KeyLayout,
  c: Compare,
  revision: bigint,
  newest?: NewestEncodedVersion,
): boolean {
  let found = false;
  const interval = keyInterval(c.key, c.rangeEnd);
  for (const live of liveKeysAt(reader, layout, interval, revision, false, newest)) {
    found = true;
    if (!compareHolds(c, decodeStoredVersion(live.encoded))) return false;
  }
  return found || (c.target !== CompareTarget.Value && compareHolds(c, ABSENT));
}

/** Which branch a transaction takes, and the plans of the transactions nested in that branch. */
export interface TxnPlan {
  readonly succeeded: boolean;
  readonly ops: readonly TxnOp[];
  /** Plan of ops[i] for each i where ops[i] is a transaction. */
  readonly nested: ReadonlyMap<number, TxnPlan>;
}

/**
 * Decides every branch of `txn` against the state at `revision`, before anything is written
 * (as etcd does). `newest`, when given, answers single-key compares for `revision`, the
 * reader's newest state (the store's index of newest versions instead of a seek).
 */
export function planTxn(
  reader: KvReader,
  layout: KeyLayout,
  txn: TxnRequest,
  revision: bigint,
  newest?: NewestEncodedVersion,
): TxnPlan {
  const succeeded = txn.compares.every((c) => evaluateCompare(reader, layout, c, revision, newest));
  const ops = succeeded ? txn.success : txn.failure;
  const nested = new Map<number, TxnPlan>();
  ops.forEach((op, i) => {
    if (op.kind === "txn") nested.set(i, planTxn(reader, layout, op, revision, newest));
  });
  return { succeeded, ops, nested };
}

/**
 * The first error among the ops a plan will run, checked against the state before the
 * transaction: a range at a compacted or future revision, or a put with ignoreValue /
 * ignoreLease on a key that does not exist. Any error fails the whole transaction unapplied.
 */
export function planError(
  reader: KvReader,
  layout: KeyLayout,
  plan: TxnPlan,
  bounds: RevisionBounds,
): KvErrorCode | null {
  for (const [i, op] of plan.ops.entries()) {
    let error: KvErrorCode | null = null;
    if (op.kind === "range") {
      error = readRevisionError(op.revision, bounds);
    } else if (op.kind === "put" && (op.ignoreValue || op.ignoreLease)) {
      error =
        liveVersionAt(reader, layout, op.key, bounds.current) === undefined ? KvErrorCode.KeyNotFound : null;
    } else if (op.kind === "txn") {
      const nested = plan.nested.get(i);
      if (nested === undefined) throw new Error("invariant violated: a nested transaction has no plan");
      error = planError(reader, layout, nested, bounds);
    }
    if (error !== null) return error;
  }
  return null;
}
