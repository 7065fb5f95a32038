/**
 * The public value types of the node runtime: request ids, read consistency, what apply
 * listeners are told, and a replica's status.
 */
import type { CommandEnvelope, KvCommand } from "../kv/commands.js";
import type { ApplyOutcome } from "../kv/store.js";
import type { ConfState, NodeId, StateRole } from "../raft/types.js";

/** Who sent a command: results are matched to proposals by this pair, and the store dedups on it. */
export interface RequestId {
  readonly clientId: string;
  readonly sequence: number;
}

/** "linearizable" (default): ReadIndex, served once applied; "serializable": local applied state now. */
export type ReadConsistency = "linearizable" | "serializable";

export interface AppliedCommand {
  readonly rangeId: number;
  readonly index: number;
  readonly envelope: CommandEnvelope<KvCommand>;
  readonly outcome: ApplyOutcome;
}

export interface RestoredImage {
  readonly rangeId: number;
  /** The index the image covers: the state machine's new applied index. */
  readonly appliedIndex: number;
  readonly revision: bigint;
}

/**
 * Told, synchronously and in log order, what a replica's state machine did: the hook for
 * leases and watches. A listener that throws is logged and counted; the apply goes on.
 */
export interface ApplyListener {
  onCommand?(applied: AppliedCommand): void;
  /** The whole state was replaced by a snapshot image (no per-command events exist for it). */
  onRestore?(restored: RestoredImage): void;
}

export interface PeerProgress {
  readonly nodeId: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: string;
}

export interface ReplicaStatus {
  readonly rangeId: number;
  readonly nodeId: NodeId;
  readonly role: StateRole;
  readonly term: number;
  readonly leader: NodeId;
  readonly commit: number;
  /** The state machine's applied index (it may run ahead of the core's after a snapshot image). */
  readonly applied: number;
  readonly revision: bigint;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly confState: ConfState;
  /** Followers' replication progress; on the leader only. */
  readonly progress: readonly PeerProgress[];
  readonly pendingProposals: number;
  readonly pendingReads: number;
}

/**
 * One member of a replica's group as etcd's MemberList shows it: its id and learner status
 * from the Raft configuration, its name and URLs from the replicated member table. A member
 * that has no record yet (it has not started and published) has an empty name and no URLs
 * beyond those MemberAdd recorded, as etcd shows an unstarted member.
 */
export interface MemberRecord {
  readonly id: NodeId;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/** What a member publishes about itself once it runs (MemberRecord without id and learner status). */
export interface LocalMemberAttributes {
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
}
