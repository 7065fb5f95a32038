/**
 * The values the consensus core exchanges with the world: log entries, messages, hard state,
 * membership (ConfState), snapshots, and the Ready hand-off. Plain data, no behaviour.
 *
 * Node ids, terms and indexes are positive safe integers (0 means "none"); arithmetic on
 * them goes through `checkedIncrement` so an overflow is an assertion failure, never a wrap.
 */

/** A node id; 0 is "no node". */
export type NodeId = number;
export const NONE: NodeId = 0;

export enum EntryType {
  Normal = 0,
  /** `data` is an encoded ConfChange (see confchange/codec.ts). */
  ConfChange = 1,
}

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before a vote or a commit index may be relied upon. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Membership as stored in snapshots and reported after a configuration change applies. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Voters of the outgoing configuration while in a joint configuration; empty otherwise. */
  readonly votersOutgoing: readonly NodeId[];
  /** Voters that become learners when the joint configuration is left. */
  readonly learnersNext: readonly NodeId[];
  /** Leave the joint configuration automatically once it is committed. */
  readonly autoLeave: boolean;
}

export const EMPTY_CONF_STATE: ConfState = {
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The application's state machine image; opaque to the core. */
  readonly data: Uint8Array;
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  RemoveNode = 2,
}

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * How a ConfChange moves between configurations.
 * - Auto: a single voter change applies directly ("simple"); anything else enters a joint
 *   configuration that the leader leaves automatically once it commits.
 * - Implicit: always joint, left automatically.
 * - Explicit: always joint; the application proposes an empty ConfChange to leave.
 */
export enum ConfChangeTransition {
  Auto = 0,
  Implicit = 1,
  Explicit = 2,
}

export interface ConfChange {
  readonly transition: ConfChangeTransition;
  readonly changes: readonly ConfChangeSingle[];
  /** Opaque to the core; handed back to the application when the change applies. */
  readonly context: Uint8Array;
}

export enum MessageType {
  /** Append entries (also carries the leader's commit index). */
  App = 1,
  AppResp = 2,
  Vote = 3,
  VoteResp = 4,
  PreVote = 5,
  PreVoteResp = 6,
  Heartbeat = 7,
  HeartbeatResp = 8,
  Snap = 9,
  /** A follower forwards a proposal to the leader. */
  Prop = 10,
  /** A follower forwards a ReadIndex request to the leader. */
  ReadIndex = 11,
  ReadIndexResp = 12,
  /** Sent by a leader to its chosen successor: start an election now, skipping pre-vote. */
  TimeoutNow = 13,
  /** A follower asks the leader to transfer leadership. */
  TransferLeader = 14,
}

export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  /** App: term of the entry before `entries`. Vote: candidate's last log term. */
  readonly logTerm: number;
  /** App: index of the entry before `entries`. AppResp: last index matched (or rejected). */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot: Snapshot | null;
  readonly reject: boolean;
  /** AppResp reject: the follower's hint of where logs may diverge. */
  readonly rejectHint: number;
  /** ReadIndex and Heartbeat: the read request's context; Vote: campaign kind marker. */
  readonly context: Uint8Array;
}

/** A message with defaults filled in, so call sites name only the fields that matter. */
export function message(fields: Partial<Message> & Pick<Message, "type" | "to" | "from">): Message {
  return {
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...fields,
  };
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

export enum StateRole {
  Follower = "follower",
  Candidate = "candidate",
  PreCandidate = "pre-candidate",
  Leader = "leader",
}

/** Volatile state that the application may want to observe (who leads, in what role). */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: StateRole;
}

/** A ReadIndex answer: once `index` is applied, a read with `context` is linearizable. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/**
 * Everything the core asks its caller to do, in order:
 * 1. persist `snapshot` (if any), then `entries`, then `hardState` — durably when `mustSync`;
 * 2. send `messages` (only after step 1: some of them promise that state is durable);
 * 3. apply `committedEntries` and serve `readStates` once applied;
 * 4. call `advance(ready)` (or pipeline: see `RawNode.advance` and src/raft/README.md).
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly readStates: readonly ReadState[];
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly mustSync: boolean;
}

/** Seeded randomness handed in by the caller; the core never draws its own. */
export interface RandomSource {
  /** A uniformly distributed integer in [0, bound). */
  nextInt(bound: number): number;
}
