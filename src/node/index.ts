/** Public surface of the node runtime: the host, its replicas, their options, errors and values. */
export { NodeHost } from "./host.js";
export { Replica } from "./replica.js";
export { LEASE_RANGE_ID, RHS_INITIAL_TERM } from "./split-range.js";
export {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaRequestError,
  ReplicaStoppedError,
} from "./errors.js";
export type {
  DropReason,
  NodeHostCounters,
  NodeHostOptions,
  RaftTuning,
  ReplicaInit,
  StateMachineFactory,
  StateMachineStorage,
} from "./options.js";
export type {
  AppliedCommand,
  ApplyListener,
  PeerProgress,
  ReadConsistency,
  ReplicaStatus,
  RequestId,
  RestoredImage,
} from "./types.js";
