/**
 * Quorum arithmetic: which log index a majority (or a joint pair of majorities) has
 * acknowledged, and whether an election is won, lost or still open. Pure functions over sets
 * of voter ids; the tracker feeds them progress and votes.
 */
import type { NodeId } from "./types.js";

export enum VoteResult {
  Pending = "pending",
  Lost = "lost",
  Won = "won",
}

/** The voters of one configuration; a decision needs more than half of them. */
export type MajorityConfig = ReadonlySet<NodeId>;

/**
 * Two majority configurations that must both agree. Outside of a joint configuration the
 * outgoing half is empty, and an empty half never stands in the way of a decision.
 */
export type JointConfig = readonly [incoming: MajorityConfig, outgoing: MajorityConfig];

/**
 * Configurations up to this size sort their acked indexes in a reused buffer, so the hot path
 * (computing the commit index on every append response) allocates nothing.
 */
const SMALL_CONFIG = 7;
const smallScratch = new Float64Array(SMALL_CONFIG);
/** Set while `smallScratch` holds live data, in case an `acked` callback re-enters. */
let smallScratchInUse = false;

/**
 * The largest index acknowledged by a majority of `voters`. A voter without an ack counts as
 * having acknowledged 0. An empty configuration returns Infinity, so that in a joint
 * configuration with an empty outgoing half the incoming half alone decides.
 */
export function majorityCommittedIndex(
  voters: MajorityConfig,
  acked: (id: NodeId) => number | undefined,
): number {
  const n = voters.size;
  if (n === 0) return Infinity;
  const useScratch = n <= SMALL_CONFIG && !smallScratchInUse;
  const indexes = useScratch ? smallScratch : new Float64Array(n);
  if (useScratch) smallScratchInUse = true;
  try {
    let i = 0;
    for (const id of voters) {
      const index = acked(id) ?? 0;
      // Insertion sort (ascending) while filling: n is tiny in practice.
      let j = i;
      while (j > 0 && indexes[j - 1]! > index) {
        indexes[j] = indexes[j - 1]!;
        j--;
      }
      indexes[j] = index;
      i++;
    }
    // With the acks sorted ascending, the entry at n - quorum is acknowledged by exactly the
    // `quorum` voters at and above it, and no larger index is.
    const quorum = Math.floor(n / 2) + 1;
    return indexes[n - quorum]!;
  } finally {
    if (useScratch) smallScratchInUse = false;
  }
}

/**
 * The outcome of an election given the votes received so far. Voters that have not voted
 * may still swing it (Pending). An empty configuration wins by convention, which lets the
 * outgoing half of a non-joint configuration agree to everything.
 */
export function majorityVoteResult(voters: MajorityConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const quorum = Math.floor(voters.size / 2) + 1;
  if (granted >= quorum) return VoteResult.Won;
  if (granted + missing >= quorum) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** An index is committed in a joint configuration only once both halves have committed it. */
export function jointCommittedIndex(config: JointConfig, acked: (id: NodeId) => number | undefined): number {
  const incoming = majorityCommittedIndex(config[0], acked);
  const outgoing = majorityCommittedIndex(config[1], acked);
  return Math.min(incoming, outgoing);
}

/** Both halves must win; if either has lost, the election is lost; otherwise it is open. */
export function jointVoteResult(config: JointConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const incoming = majorityVoteResult(config[0], votes);
  const outgoing = majorityVoteResult(config[1], votes);
  if (incoming === outgoing) return incoming;
  if (incoming === VoteResult.Lost || outgoing === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending;
}

/** Every node that votes in either half. */
export function jointVoterIds(config: JointConfig): Set<NodeId> {
  const ids = new Set<NodeId>(config[0]);
  for (const id of config[1]) ids.add(id);
  return ids;
}
