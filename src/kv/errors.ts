/**
 * The errors a request to the MVCC store, its leases or its watches can end in, with etcd's
 * wording where etcd has the same error (clients match on these strings). A write that fails
 * still applies as an entry: its result carries the error, identically on every replica.
 * Reads, and the leader-side lease clock, throw KvError.
 */

export enum KvErrorCode {
  Compacted = 1,
  FutureRevision = 2,
  KeyNotFound = 3,
  DuplicateKey = 4,
  EmptyKey = 5,
  ValueProvided = 6,
  LeaseProvided = 7,
  /** Concord's own: a client retried something older than its last applied request. */
  StaleSequence = 8,
  LeaseNotFound = 9,
  LeaseExists = 10,
  LeaseTtlTooLarge = 11,
  /** Asked of a replica that does not lead its group (the lease clock lives on the leader). */
  NotLeader = 12,
  /** Concord's own: a watcher left more events unread than the hub keeps for it. */
  WatchOverloaded = 13,
  /** Concord's own: the range no longer holds the key (split or merged); reload routes, retry. */
  KeyOutsideRange = 14,
  /** Concord's own: the range refuses writes while a split or merge of it commits; retry. */
  RangeFenced = 15,
  /** Concord's own: a transaction's keys live in more than one range. */
  CrossRangeTxn = 16,
  /** Concord's own: a merge's image of the right-hand range is bad or was taken unfenced. */
  MergeImageInvalid = 17,
  /** Concord's own: a write names a key over MAX_KEY_BYTES (keys.ts). */
  KeyTooLarge = 18,
}

export const KV_ERROR_MESSAGES: Readonly<Record<KvErrorCode, string>> = {
  [KvErrorCode.Compacted]: "mvcc: required revision has been compacted",
  [KvErrorCode.FutureRevision]: "mvcc: required revision is a future revision",
  [KvErrorCode.KeyNotFound]: "etcdserver: key not found",
  [KvErrorCode.DuplicateKey]: "etcdserver: duplicate key given in txn request",
  [KvErrorCode.EmptyKey]: "etcdserver: key is not provided",
  [KvErrorCode.ValueProvided]: "etcdserver: value is provided",
  [KvErrorCode.LeaseProvided]: "etcdserver: lease is provided",
  [KvErrorCode.StaleSequence]:
    "concord: request sequence is older than the client's last applied request; its result is gone",
  [KvErrorCode.LeaseNotFound]: "etcdserver: requested lease not found",
  [KvErrorCode.LeaseExists]: "etcdserver: lease already exists",
  [KvErrorCode.LeaseTtlTooLarge]: "etcdserver: too large lease TTL",
  [KvErrorCode.NotLeader]: "etcdserver: not leader",
  [KvErrorCode.WatchOverloaded]:
    "concord: watch overloaded: too many events left unread; watch again from the last response's revision + 1",
  [KvErrorCode.KeyOutsideRange]:
    "concord: key is outside this range (it was split or merged); reload routes and retry",
  [KvErrorCode.RangeFenced]: "concord: range is fenced while a split or merge commits; retry",
  [KvErrorCode.CrossRangeTxn]: "concord: cross-range transactions not yet supported",
  [KvErrorCode.MergeImageInvalid]:
    "concord: merge refused: the right-hand range's image is invalid or not fenced",
  [KvErrorCode.KeyTooLarge]: "concord: key is too large (at most 1,900 bytes, a zero byte counting as two)",
};

export function isKvErrorCode(value: number): value is KvErrorCode {
  return Object.hasOwn(KV_ERROR_MESSAGES, value);
}

export class KvError extends Error {
  constructor(readonly code: KvErrorCode) {
    super(KV_ERROR_MESSAGES[code]);
    this.name = "KvError";
  }
}
