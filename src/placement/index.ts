/**
 * The placement layer's public surface: the route catalog (descriptors, validation, keys and
 * encodings, the catalog itself, the meta range it is stored in) and the route cache (the
 * table, its watcher, stale-route detection and retry).
 */
export {
  RouteCatalog,
  catalogDelta,
  MAX_DELTAS_PER_READ,
  MAX_ROUTE_ID_ALLOCATION,
} from "./catalog/catalog.js";
export type { CatalogSnapshot, DeltaRead, RouteCatalogOptions, SaveResult } from "./catalog/catalog.js";
export {
  CatalogKeys,
  DEFAULT_CATALOG_PREFIX,
  RECORD_FORMAT,
  decodeDelta,
  decodeDescriptor,
  decodeNextRouteId,
  decodeVersion,
  encodeDelta,
  encodeDescriptor,
  encodeNextRouteId,
  encodeVersion,
  type CatalogDelta,
} from "./catalog/codec.js";
export {
  MAX_ID,
  MAX_SPLIT_AT,
  ROUTE_STATES,
  describeRoute,
  isRouteState,
  routeContains,
  sameDescriptor,
  validateCatalog,
  validateDescriptor,
  type RouteDescriptor,
  type RouteState,
} from "./catalog/descriptor.js";
export {
  CatalogConflictError,
  CatalogDecodeError,
  CatalogStoreError,
  CatalogVersionMismatchError,
  InvalidCatalogError,
  type InvalidCatalogReason,
} from "./catalog/errors.js";
export { MemoryMetaKv } from "./catalog/memory-meta-kv.js";
export {
  replicaMetaKv,
  toTxnResult,
  type MetaRangeKv,
  type MetaRangeWatch,
  type MetaTxnResult,
} from "./catalog/meta-kv.js";
export {
  DEFAULT_ROUTE_ATTEMPTS,
  RangeMovedError,
  RoutesUnavailableError,
  routeFor,
  withRouteRetry,
  type RouteRetryOptions,
} from "./routes/moved.js";
export { RouteTable, type RefusalReason, type UpdateResult } from "./routes/table.js";
export {
  RouteWatcher,
  type CatalogSource,
  type RouteWatcherCounters,
  type RouteWatcherOptions,
} from "./routes/watcher.js";
export {
  DEFAULT_HISTORY_WINDOWS,
  DEFAULT_RESERVOIR_SIZE,
  DEFAULT_WINDOW_MS,
  LoadSampler,
  weightedMedianKey,
  type LoadSamplerOptions,
  type RequestKind,
  type WeightedKey,
  type WindowLoad,
} from "./split/load-sampler.js";
export {
  DEFAULT_SPLIT_POLICY,
  SplitPolicy,
  type LoadSource,
  type MergePlan,
  type RangeCandidate,
  type RangeSizeSource,
  type SplitPlan,
  type SplitPolicyOptions,
  type SplitReason,
} from "./split/policy.js";
export {
  SplitCoordinator,
  type AppliedMerge,
  type AppliedSplit,
  type PlannedSplit,
  type RangeDescription,
  type RangeOps,
  type RecoveryReport,
  type SplitCatalog,
  type SplitCause,
  type SplitCoordinatorOptions,
  type SplitCounters,
  type SplitResult,
} from "./split/coordinator.js";
export {
  SplitLoop,
  type SplitCycleReport,
  type SplitLoopCounters,
  type SplitLoopOptions,
} from "./split/loop.js";
export {
  MergeCoordinator,
  type MergeCatalog,
  type MergeCause,
  type MergeCoordinatorOptions,
  type MergeCounters,
  type MergeRecoveryReport,
  type MergeResult,
} from "./split/merge-coordinator.js";
export {
  MergeConflictError,
  MergeRefusedError,
  MergeStateError,
  SplitConflictError,
  SplitRefusedError,
  SplitStateError,
  type MergeRefusal,
  type SplitRefusal,
} from "./split/errors.js";
export { SYSTEM_SPAN_END, splitKeyRefusal } from "./split/split-key.js";
export {
  SYSTEM_SPAN,
  SystemKeyError,
  catalogKeys,
  isAllowedSplitKey,
  isSystemKey,
  minSplitKey,
  spanMeetsSystem,
  userSpans,
} from "./router/system-keys.js";
export type { ReplicaDirectory, RoutedReplica } from "./router/routed-replica.js";
export { txnSpans } from "./router/command-spans.js";
export {
  DEFAULT_RETRY_POLICY,
  ReplicaNotHostedError,
  backoffDelay,
  isRoutingError,
  isRoutingRefusal,
  retryPolicy,
  type RetryPolicy,
} from "./router/retry.js";
export { crossRangeRead, type CrossReadAccess, type ReadPart } from "./router/cross-range-read.js";
export { LEASE_HOME_RANGE, RangeRouter, type RangeRouterOptions } from "./router/router.js";
