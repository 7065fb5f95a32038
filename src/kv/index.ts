/**
 * The public surface of the kv layer: the MVCC state machine, its commands and results, the
 * HLC that stamps them, leases (the replicated table and the leader's clock), the watch hub,
 * and the ordered-KV engine contract with its in-memory implementation; range bounds, fences,
 * splits, merges and revision floors.
 */
export {
  FULL_BOUNDS,
  boundsContainKey,
  boundsContainSpan,
  boundsEqual,
  commandInsideBounds,
  spanOfRequest,
  type KeySpan,
  type RangeBounds,
} from "./bounds.js";
export { DecodeError, type DecodeFailure } from "./bytes.js";
export {
  CompareResult,
  CompareTarget,
  ENCODING_VERSION,
  MAX_TXN_DEPTH,
  SortOrder,
  SortTarget,
  checkEnvelope,
  compactRequest,
  decodeCommand,
  decodeEnvelope,
  deleteRangeRequest,
  encodeCommand,
  encodeEnvelope,
  fenceRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  mergeFenceRequest,
  mergeRequest,
  putRequest,
  rangeRequest,
  revisionFloorRequest,
  splitRequest,
  txnRequest,
  type Command,
  type CommandEnvelope,
  type CompactRequest,
  type Compare,
  type DeleteRangeRequest,
  type FenceRequest,
  type KvCommand,
  type LeaseCommand,
  type LeaseGrantRequest,
  type LeaseRevokeRequest,
  type MergeFenceRequest,
  type MergeRequest,
  type NumberCompare,
  type PutRequest,
  type RangeCommand,
  type RangeRequest,
  type RevisionFloorRequest,
  type SplitRequest,
  type TxnOp,
  type TxnRequest,
  type ValueCompare,
} from "./commands.js";
export {
  BatchOverlay,
  WriteBatch,
  type KvPair,
  type KvReader,
  type OrderedKv,
  type ReadView,
  type ScanOptions,
  type WriteOp,
} from "./engine.js";
export { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "./errors.js";
export {
  HybridClock,
  MAX_TIMESTAMP,
  MAX_WALL_MILLIS,
  logicalOf,
  makeTimestamp,
  revisionForApply,
  wallMillisOf,
} from "./hlc.js";
export { type HistoryPage, type RevisionChanges } from "./history.js";
export {
  DEFAULT_REVOKE_RETRY_MS,
  LeaseClock,
  type LeaseClockOptions,
  type LeaseSource,
  type TimeToLive,
} from "./lease-clock.js";
export {
  MAX_LEASE_TTL_SECONDS,
  MIN_LEASE_TTL_SECONDS,
  type LeaseChange,
  type LeaseInfo,
  type LeaseSummary,
} from "./leases.js";
export { rangeNamespace } from "./keys.js";
export { type AppliedMerge, type MergeOutcome } from "./merge.js";
export { MemoryOrderedKv } from "./memory-engine.js";
export {
  decodeCommandResult,
  encodeCommandResult,
  type CommandResponse,
  type CommandResult,
  type CompactResponse,
  type DeleteRangeResponse,
  type ErrorResponse,
  type FenceResponse,
  type KeyValue,
  type KvEvent,
  type LeaseGrantResponse,
  type LeaseRevokeResponse,
  type MergeFenceResponse,
  type MergeResponse,
  type OpResponse,
  type PutResponse,
  type RangeResponse,
  type RangeResult,
  type RevisionFloorResponse,
  type SplitResponse,
  type TxnResponse,
} from "./results.js";
export { RHS_INITIAL_INDEX, type AppliedSplit, type RangeState, type SplitOutcome } from "./split.js";
export {
  DEFAULT_MAX_DEDUP_CLIENTS,
  MvccStore,
  type ApplyOutcome,
  type HistoryRequest,
  type MvccSnapshot,
  type MvccStoreOptions,
} from "./store.js";
export {
  WatchHub,
  type Watch,
  type WatchFilter,
  type WatchHubOptions,
  type WatchRequest,
  type WatchResponse,
  type WatchSource,
} from "./watch.js";
