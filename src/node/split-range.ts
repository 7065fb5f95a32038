/**
 * How a node starts the right-hand range of a split it applied: the new range's Raft storage
 * begins as if restored from a snapshot at RHS_INITIAL_INDEX and term RHS_INITIAL_TERM with
 * the parent's membership — identically on every replica that applied the split — while its
 * state machine already holds the split's right-hand store at that index. A replica that
 * joins the new range later with an empty log is below the leader's first index, so the
 * leader catches it up with a snapshot, never with entries. Also which range expires leases.
 */
import { RHS_INITIAL_INDEX } from "../kv/split.js";
import { EMPTY_BYTES, NONE, type ConfState } from "../raft/types.js";
import type { ReplicaStorage } from "../storage/contracts.js";

/** The term a split's right-hand range starts at (any fixed term above 0 would do). */
export const RHS_INITIAL_TERM = 5;

/**
 * The range whose leader expires leases by its lease clock. Other ranges hold copies of the
 * lease table made by splits and drop a lease only when a revocation is applied to them.
 */
export const LEASE_RANGE_ID = 1;

/** Writes the initial Raft state of a split's right-hand range into its (empty) storage. */
export function initialiseSplitRange(storage: ReplicaStorage, confState: ConfState): void {
  storage.saveSnapshot({
    metadata: { index: RHS_INITIAL_INDEX, term: RHS_INITIAL_TERM, confState },
    data: EMPTY_BYTES,
  });
  storage.setHardState({ term: RHS_INITIAL_TERM, vote: NONE, commit: RHS_INITIAL_INDEX });
}
