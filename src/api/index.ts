/** Public surface of the client API: Concord.open / Concord.connect, the handle, its errors, the native server. */
export { Concord } from "./concord.js";
export { parseAddress } from "./address.js";
export { connectRemote, type ConnectOptions } from "./client.js";
export {
  ConcordDb,
  DEFAULT_RETRY_POLICY,
  prefixEnd,
  singleRange,
  type Backend,
  type Bytes,
  type DeleteOptions,
  type DeleteResult,
  type KeyRouter,
  type LeaseGrantResult,
  type PutOptions,
  type PutResult,
  type RangeOptions,
  type ReadOptions,
  type RetryPolicy,
  type TxnResult,
  type TxnSpec,
  type WatchOptions,
} from "./db.js";
export { EmbeddedConcord, FIRST_RANGE_ID, openEmbedded, type OpenOptions } from "./embedded.js";
export { LINEARIZABLE_READS, type LinearizableReads } from "./linearizable-reads.js";
export {
  AmbiguousResultError,
  AmbiguousWriteError,
  ClientClosedError,
  ConnectionLostError,
  EndpointsUnavailableError,
  isRetryable,
  KvError,
  KvErrorCode,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaRequestError,
  ReplicaStoppedError,
  ServerProtocolError,
  type PendingWrite,
} from "./errors.js";
export { NativeServer, type NativeServerOptions } from "./native/server.js";
export type { RangeStatus } from "./native/protocol.js";
export { compareNumber, compareValue, deleteOp, getOp, putOp, type CompareOperator } from "./ops.js";
export type { ConcordWatch } from "./watch.js";
export type { KeyValue, KvEvent, OpResponse, RangeResult } from "../kv/results.js";
export type { WatchFilter, WatchResponse } from "../kv/watch.js";
export type { TimeToLive } from "../kv/lease-clock.js";
export type { LeaseSummary } from "../kv/leases.js";
