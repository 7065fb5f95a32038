/**
 * The errors a request to the MVCC store can end in, with etcd's wording where etcd has the
 * same error (clients match on these strings). A write that fails still applies as an entry:
 * its result carries the error, identically on every replica. Reads throw KvError.
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
