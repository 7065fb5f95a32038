/**
 * Configuration of one Raft core, its defaults, and validation. Tick counts are logical: the
 * caller decides how long a tick is; the core never reads a clock.
 */
import type { RaftLogReader } from "./storage.js";
import type { NodeId, RandomSource } from "./types.js";

export enum ReadOnlyOption {
  /** ReadIndex confirmed by a quorum heartbeat round: safe regardless of clocks. */
  Safe = "safe",
  /**
   * Served from the leader's lease, judged in ticks: valid while a quorum answered heartbeats
   * sent less than `electionTick - leaseSafetyTicks` ticks ago. Relies on check-quorum (followers
   * refuse votes for an election timeout after hearing from the leader) and on tick rates not
   * drifting apart by more than the safety margin.
   */
  LeaseBased = "lease-based",
}

/**
 * Deliberate bugs, switched on only by tests, to prove the simulator's checks catch them.
 * Never set in production code.
 */
export interface InjectedBugs {
  /** Count vote responses that carry an older term than the candidate's current one. */
  readonly countStaleVotes?: boolean;
  /** Commit an entry of a previous term by counting replicas (the Raft paper's Figure 8). */
  readonly commitPreviousTermByCounting?: boolean;
  /** Grant votes without the "candidate's log is at least as up to date" check. */
  readonly grantVoteIgnoringLog?: boolean;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  readonly electionTick: number;
  /** Ticks between leader heartbeats; must be less than electionTick. */
  readonly heartbeatTick: number;
  readonly storage: RaftLogReader;
  readonly random: RandomSource;
  /** Index the application has already applied (on restart). */
  readonly applied?: number;
  /** Byte limit of entries in one append message. */
  readonly maxSizePerMsg?: number;
  /** Byte limit of committed entries handed out in one Ready. */
  readonly maxCommittedSizePerReady?: number;
  /** Byte limit of proposed-but-uncommitted entries on a leader; 0 = unlimited. */
  readonly maxUncommittedEntriesSize?: number;
  /** Append messages in flight to one follower in the replicate state. */
  readonly maxInflightMsgs?: number;
  /** Bytes in flight to one follower; 0 = unlimited. */
  readonly maxInflightBytes?: number;
  readonly checkQuorum?: boolean;
  readonly preVote?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  /** Ticks subtracted from the election timeout when judging a lease (clock-rate drift margin). */
  readonly leaseSafetyTicks?: number;
  readonly disableProposalForwarding?: boolean;
  /** A leader removed from (or demoted in) the configuration steps down. */
  readonly stepDownOnRemoval?: boolean;
  /**
   * This core resumes a member that may have answered a leader's heartbeats before it went
   * down (its state was stored, not just created). With check-quorum it refuses votes for its
   * first election timeout, as a follower that just heard from a leader does: it no longer
   * knows that leader, and a lease the leader holds on its answers must stay safe.
   */
  readonly restarted?: boolean;
  /**
   * A leader does not send a follower that holds every entry a message of its own for a commit
   * index that advanced, unless the follower's last acknowledgement asked for one
   * (`RawNode.setWantsCommitNotices`): the follower learns it from the next append or
   * heartbeat, or when the caller calls `flushCommitNotices()` (which it should do within a
   * bounded delay while `hasCommitNoticesPending()`). Saves a message to, and a wake-up of,
   * every idle follower per commit when the next request follows soon. Off (the default),
   * notices leave at once.
   */
  readonly deferCommitNotices?: boolean;
  readonly bugs?: InjectedBugs;
}

export type ResolvedRaftConfig = Required<Omit<RaftConfig, "bugs">> & { readonly bugs: InjectedBugs };

export class RaftConfigError extends Error {
  constructor(message: string) {
    super(`invalid raft config: ${message}`);
    this.name = "RaftConfigError";
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new RaftConfigError(`${name} must be a positive integer`);
}

export function resolveConfig(config: RaftConfig): ResolvedRaftConfig {
  const resolved: ResolvedRaftConfig = {
    applied: 0,
    maxSizePerMsg: 1024 * 1024,
    maxCommittedSizePerReady: 4 * 1024 * 1024,
    maxUncommittedEntriesSize: 0,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    checkQuorum: true,
    preVote: true,
    readOnlyOption: ReadOnlyOption.Safe,
    leaseSafetyTicks: 2,
    disableProposalForwarding: false,
    stepDownOnRemoval: true,
    restarted: false,
    deferCommitNotices: false,
    ...config,
    bugs: config.bugs ?? {},
  };
  positiveInteger("id", resolved.id);
  positiveInteger("heartbeatTick", resolved.heartbeatTick);
  positiveInteger("electionTick", resolved.electionTick);
  if (resolved.electionTick <= resolved.heartbeatTick) {
    throw new RaftConfigError("electionTick must be greater than heartbeatTick");
  }
  positiveInteger("maxSizePerMsg", resolved.maxSizePerMsg);
  positiveInteger("maxCommittedSizePerReady", resolved.maxCommittedSizePerReady);
  positiveInteger("maxInflightMsgs", resolved.maxInflightMsgs);
  for (const [name, value] of [
    ["applied", resolved.applied],
    ["maxUncommittedEntriesSize", resolved.maxUncommittedEntriesSize],
    ["maxInflightBytes", resolved.maxInflightBytes],
    ["leaseSafetyTicks", resolved.leaseSafetyTicks],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RaftConfigError(`${name} must be a non-negative integer`);
  }
  if (resolved.readOnlyOption === ReadOnlyOption.LeaseBased) {
    if (!resolved.checkQuorum) throw new RaftConfigError("lease-based reads require checkQuorum");
    if (resolved.leaseSafetyTicks >= resolved.electionTick) {
      throw new RaftConfigError("leaseSafetyTicks must be less than electionTick");
    }
  }
  return resolved;
}
