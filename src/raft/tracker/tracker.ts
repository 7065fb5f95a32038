/**
 * The leader's (and candidate's) view of the group: the current membership configuration, a
 * Progress per member, and the votes of an ongoing election. Answers the quorum questions the
 * state machine asks (what is committed, is a quorum active, who won) over that view.
 */
import type { ConfState, NodeId } from "../types.js";
import { invariant } from "../assert.js";
import type { JointConfig } from "../quorum.js";
import { VoteResult, jointCommittedIndex, jointVoteResult, jointVoterIds } from "../quorum.js";
import type { Progress } from "./progress.js";

export interface TrackerConfig {
  /** Incoming and outgoing voters; the outgoing half is empty unless the config is joint. */
  voters: JointConfig;
  /** Non-voting members that receive the log. Disjoint from both halves of `voters`. */
  learners: ReadonlySet<NodeId>;
  /**
   * Voters of the outgoing half that become learners when the joint config is left. They
   * cannot be in `learners` yet, because a node is never a voter and a learner at once.
   */
  learnersNext: ReadonlySet<NodeId>;
  /** Leave the joint config automatically once it commits. Only meaningful while joint. */
  autoLeave: boolean;
}

export type ProgressMap = Map<NodeId, Progress>;

/** A configuration with no members: where a node starts before it learns its membership. */
export function emptyTrackerConfig(): TrackerConfig {
  return { voters: [new Set(), new Set()], learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return Array.from(ids).sort((a, b) => a - b);
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress: ProgressMap = new Map();
  /** Votes received in the current election: true = granted. */
  votes = new Map<NodeId, boolean>();
  private visitOrderCache: readonly NodeId[] = [];
  readonly maxInflight: number;
  readonly maxInflightBytes: number;

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  isJoint(): boolean {
    return this.config.voters[1].size > 0;
  }

  /** The membership in its persisted form, with every id list sorted. */
  confState(): ConfState {
    return {
      voters: sortedIds(this.config.voters[0]),
      votersOutgoing: sortedIds(this.config.voters[1]),
      learners: sortedIds(this.config.learners),
      learnersNext: sortedIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  /**
   * The highest index acknowledged by a quorum of voters (by both quorums while joint).
   * Learners do not count. Infinity when there are no voters at all; callers must not treat
   * that as a commit index.
   */
  committed(): number {
    return jointCommittedIndex(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** A single voter decides everything alone (it may still have learners). */
  isSingleton(): boolean {
    return this.config.voters[0].size === 1 && this.config.voters[1].size === 0;
  }

  /**
   * Calls `fn` for each tracked member in ascending id order, so that messages go out in the
   * same order on every run regardless of how the map was built.
   */
  visit(fn: (id: NodeId, pr: Progress) => void): void {
    for (const id of this.visitOrder()) {
      const pr = this.progress.get(id);
      invariant(pr !== undefined, () => `tracker: progress for ${id} vanished during visit`);
      fn(id, pr);
    }
  }

  /**
   * The tracked ids in ascending order, sorted again only when the set of ids changed: the
   * leader visits its peers several times per write, and a sort per visit was a tenth of what
   * a leader allocated per put. The map itself may be replaced or edited (configuration
   * changes, a new leader's fresh progress), so the cache is checked against it: same size,
   * and every cached id still in it, means the same ids.
   */
  private visitOrder(): readonly NodeId[] {
    const cached = this.visitOrderCache;
    if (cached.length === this.progress.size) {
      let same = true;
      for (const id of cached) {
        if (!this.progress.has(id)) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    this.visitOrderCache = sortedIds(this.progress.keys());
    return this.visitOrderCache;
  }

  /**
   * Whether the voters heard from recently (`recentActive`) form a quorum. The leader marks
   * itself active, since it does not hear from itself.
   */
  quorumActive(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) active.set(id, pr.recentActive);
    }
    return jointVoteResult(this.config.voters, active) === VoteResult.Won;
  }

  /** Every voter of either half, sorted. */
  voterIds(): NodeId[] {
    return sortedIds(jointVoterIds(this.config.voters));
  }

  /** Learners now and learners-to-be after leaving the joint config, sorted. */
  learnerIds(): NodeId[] {
    const ids = new Set<NodeId>(this.config.learners);
    for (const id of this.config.learnersNext) ids.add(id);
    return sortedIds(ids);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Only a node's first answer counts: a duplicated or late message must not flip a vote. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts the voters' answers (learners' are ignored) and decides the election. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of jointVoterIds(this.config.voters)) {
      const vote = this.votes.get(id);
      if (vote === undefined) continue;
      if (vote) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.config.voters, this.votes) };
  }
}
