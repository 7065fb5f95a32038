/**
 * What the router needs of a node's replicas: the replica of a range id, if this node hosts
 * one, and of each replica the node Replica's request surface (propose, range, its applied
 * revision, floorRevision for cross-range reads, and a lease's keys). The node's Replica satisfies it; tests
 * use fakes.
 */
import type { KeySpan } from "../../kv/bounds.js";
import type { KvCommand, RangeRequest } from "../../kv/commands.js";
import type { LeaseSummary } from "../../kv/leases.js";
import type { CommandResult, RangeResult } from "../../kv/results.js";
import type { ReadConsistency, RequestId } from "../../node/types.js";

export interface RoutedReplica {
  /** The range (Raft group) id: a route's `groupId`. */
  readonly rangeId: number;
  /** The revision of the state applied on this node. */
  readonly revision: bigint;
  /** Proposes a write; resolves with its result once applied here (Replica.propose). */
  propose(command: KvCommand, request?: RequestId): Promise<CommandResult>;
  /** Reads (Replica.range); throws KvError(KeyOutsideRange) for a span outside the range. */
  range(request: RangeRequest, consistency?: ReadConsistency): Promise<RangeResult>;
  /**
   * Proposes a revision floor: once it resolves it has applied here, and every later write of
   * the range gets a revision above `revision` (so reads at `revision` are final).
   */
  floorRevision(revision: bigint): Promise<unknown>;
  /**
   * The keys attached to a lease in this range, read linearizably; KvError KeyOutsideRange
   * when the range does not hold exactly `span` by then (Replica.leaseKeys).
   */
  leaseKeys(id: bigint, span: KeySpan): Promise<readonly Uint8Array[]>;
  /**
   * The leases applied here (Replica.leases). The router mirrors a lease of range 1 into
   * another range from it when a write there names a lease that range does not know yet.
   */
  leases?(): readonly LeaseSummary[];
}

export interface ReplicaDirectory {
  /** This node's replica of range `rangeId`, or undefined when it hosts none. */
  replica(rangeId: number): RoutedReplica | undefined;
}
