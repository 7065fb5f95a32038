/**
 * Public surface of the recipes: sessions (a lease kept alive, with a conservative local
 * deadline), fenced leader election, fenced locks, and the fencing guard any txn can carry.
 * Built on the client calls in client.ts, which `ConcordDb` satisfies as is.
 */
export {
  isAmbiguousWrite,
  systemRuntime,
  type RecipeBytes,
  type RecipeClient,
  type RecipeRangeOptions,
  type RecipeRuntime,
  type RecipeTimer,
  type RecipeWatch,
  type RecipeWatchOptions,
} from "./client.js";
export {
  CampaignAbortedError,
  ElectionClosedError,
  LeadershipLostError,
  NotLeaderError,
  RecipeConfigError,
  RecipeRecordError,
  SessionLostError,
  type LeadershipLossReason,
  type SessionLossReason,
} from "./errors.js";
export { decodeTerm, encodeTerm, guard, leaderKey, termKey } from "./fencing.js";
export { Session, type AttachOptions, type SessionOptions } from "./session.js";
export {
  DEFAULT_ELECTION_CONFIG,
  mergeElectionConfig,
  validateElectionConfig,
  type ElectionConfig,
} from "./election/config.js";
export {
  Election,
  type CampaignOptions,
  type ElectionOptions,
  type LeaderInfo,
  type Leadership,
} from "./election/election.js";
export { observeLeader, type LeaderChange, type ObserveOptions } from "./election/observe.js";
export {
  checkCandidateId,
  checkPriority,
  checkSubspace,
  decodeCandidateRecord,
  decodeLeaderRecord,
  encodeCandidateRecord,
  encodeLeaderRecord,
  type CandidateRecord,
  type LeaderRecord,
} from "./election/records.js";
export {
  ElectionKeys,
  electionOrder,
  keyAbsent,
  leaseIs,
  modRevisionIs,
  readElectionState,
  unchangedSince,
  type ElectionState,
  type RegisteredCandidate,
} from "./election/state.js";
export { acquireLock, type HeldLock, type LockOptions } from "./lock/lock.js";
