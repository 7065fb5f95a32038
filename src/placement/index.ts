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
