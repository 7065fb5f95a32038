/**
 * Membership changes: turns a list of ConfChangeSingle into the next tracker configuration and
 * progress map, either directly (a "simple" change of at most one voter) or through a joint
 * configuration (enter, then leave). Works on copies: the caller installs the result only once
 * it is known to be valid. Every result is checked against the configuration invariants.
 */
import type { ConfChange, ConfChangeSingle, NodeId } from "../types.js";
import { ConfChangeTransition, ConfChangeType } from "../types.js";
import { RaftInvariantError, invariant } from "../assert.js";
import { Progress } from "../tracker/progress.js";
import type { ProgressMap, TrackerConfig } from "../tracker/tracker.js";

/** The requested change is not allowed from the current configuration. */
export class ConfChangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfChangeError";
  }
}

/** What a Changer needs from the tracker it computes changes for. */
export interface ChangerBase {
  readonly config: TrackerConfig;
  readonly progress: ProgressMap;
  readonly maxInflight: number;
  readonly maxInflightBytes: number;
}

/** A configuration under construction. */
interface DraftConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export class Changer {
  private readonly base: ChangerBase;
  private readonly lastIndex: number;

  /** `lastIndex` is the leader's last log index, from where new members are probed. */
  constructor(tracker: ChangerBase, lastIndex: number) {
    this.base = tracker;
    this.lastIndex = lastIndex;
  }

  /**
   * Applies `changes` in a joint configuration: the current voters become the outgoing half
   * and the changed voters the incoming half, so decisions need a quorum of both until the
   * joint configuration is left.
   */
  enterJoint(autoLeave: boolean, changes: readonly ConfChangeSingle[]): [TrackerConfig, ProgressMap] {
    const [draft, progress] = this.checkAndCopy();
    if (draft.outgoing.size > 0) throw new ConfChangeError("configuration is already joint");
    if (draft.incoming.size === 0) {
      // An empty outgoing half would mean "not joint"; there is nothing to transition from.
      throw new ConfChangeError("cannot enter a joint configuration from one without voters");
    }
    for (const id of draft.incoming) draft.outgoing.add(id);
    this.apply(draft, progress, changes);
    draft.autoLeave = autoLeave;
    return checkAndReturn(draft, progress);
  }

  /**
   * Leaves the joint configuration: the incoming half alone decides, demoted voters become
   * learners, and members of neither half nor the learners stop being tracked.
   */
  leaveJoint(): [TrackerConfig, ProgressMap] {
    const [draft, progress] = this.checkAndCopy();
    if (draft.outgoing.size === 0)
      throw new ConfChangeError("cannot leave a configuration that is not joint");
    for (const id of draft.learnersNext) {
      draft.learners.add(id);
      requireProgress(progress, id).isLearner = true;
    }
    draft.learnersNext.clear();
    for (const id of draft.outgoing) {
      if (!draft.incoming.has(id) && !draft.learners.has(id)) progress.delete(id);
    }
    draft.outgoing.clear();
    draft.autoLeave = false;
    return checkAndReturn(draft, progress);
  }

  /**
   * Applies `changes` directly, which is safe only if at most one voter is added or removed:
   * any majority of the old voters then overlaps any majority of the new ones.
   */
  simple(changes: readonly ConfChangeSingle[]): [TrackerConfig, ProgressMap] {
    const [draft, progress] = this.checkAndCopy();
    if (draft.outgoing.size > 0) {
      throw new ConfChangeError("cannot apply a simple configuration change in a joint configuration");
    }
    this.apply(draft, progress, changes);
    const changed = symmetricDifferenceSize(this.base.config.voters[0], draft.incoming);
    if (changed > 1) {
      throw new ConfChangeError(
        `a simple configuration change may change at most one voter, this one changes ${changed}`,
      );
    }
    return checkAndReturn(draft, progress);
  }

  /** Applies each change to the incoming half, then refuses a result without voters. */
  private apply(draft: DraftConfig, progress: ProgressMap, changes: readonly ConfChangeSingle[]): void {
    for (const change of changes) {
      // Node id 0 marks a change the application decided not to apply; it is a no-op.
      if (change.nodeId === 0) continue;
      if (!Number.isSafeInteger(change.nodeId) || change.nodeId < 0) {
        throw new ConfChangeError(`invalid node id ${change.nodeId}`);
      }
      switch (change.type) {
        case ConfChangeType.AddVoter:
          this.makeVoter(draft, progress, change.nodeId);
          break;
        case ConfChangeType.AddLearner:
          this.makeLearner(draft, progress, change.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          remove(draft, progress, change.nodeId);
          break;
        default:
          throw new ConfChangeError(`unknown configuration change type ${String(change.type)}`);
      }
    }
    if (draft.incoming.size === 0) throw new ConfChangeError("the change removes all voters");
  }

  private makeVoter(draft: DraftConfig, progress: ProgressMap, id: NodeId): void {
    const pr = progress.get(id);
    if (pr === undefined) {
      this.track(draft, progress, id, false);
      return;
    }
    pr.isLearner = false;
    draft.learners.delete(id);
    draft.learnersNext.delete(id);
    draft.incoming.add(id);
  }

  /**
   * A voter of the outgoing half cannot become a learner while it still votes there; it is
   * staged in learnersNext and becomes a learner when the joint configuration is left.
   */
  private makeLearner(draft: DraftConfig, progress: ProgressMap, id: NodeId): void {
    const pr = progress.get(id);
    if (pr === undefined) {
      this.track(draft, progress, id, true);
      return;
    }
    if (pr.isLearner) return;
    // Drop it as a voter first, keeping its progress: the follower's log is still useful.
    remove(draft, progress, id);
    progress.set(id, pr);
    if (draft.outgoing.has(id)) {
      draft.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      draft.learners.add(id);
    }
  }

  /**
   * Starts tracking a new member. It is probed from the leader's last index (at least 1, to
   * keep match < next) and counts as active, so that adding it does not immediately make a
   * check-quorum round fail before it had a chance to answer.
   */
  private track(draft: DraftConfig, progress: ProgressMap, id: NodeId, isLearner: boolean): void {
    if (isLearner) draft.learners.add(id);
    else draft.incoming.add(id);
    progress.set(
      id,
      new Progress({
        next: Math.max(this.lastIndex, 1),
        match: 0,
        maxInflight: this.base.maxInflight,
        maxInflightBytes: this.base.maxInflightBytes,
        isLearner,
        recentActive: true,
      }),
    );
  }

  /** Copies the current config and progress after checking that they are consistent. */
  private checkAndCopy(): [DraftConfig, ProgressMap] {
    const config = this.base.config;
    const draft: DraftConfig = {
      incoming: new Set(config.voters[0]),
      outgoing: new Set(config.voters[1]),
      learners: new Set(config.learners),
      learnersNext: new Set(config.learnersNext),
      autoLeave: config.autoLeave,
    };
    const progress: ProgressMap = new Map();
    for (const [id, pr] of this.base.progress) progress.set(id, pr.clone());
    checkInvariants(draft, progress);
    return [draft, progress];
  }
}

/** Removes `id` from the incoming voters and the learners; outgoing voters keep their progress. */
function remove(draft: DraftConfig, progress: ProgressMap, id: NodeId): void {
  if (!progress.has(id)) return;
  draft.incoming.delete(id);
  draft.learners.delete(id);
  draft.learnersNext.delete(id);
  if (!draft.outgoing.has(id)) progress.delete(id);
}

function checkAndReturn(draft: DraftConfig, progress: ProgressMap): [TrackerConfig, ProgressMap] {
  checkInvariants(draft, progress);
  const config: TrackerConfig = {
    voters: [draft.incoming, draft.outgoing],
    learners: draft.learners,
    learnersNext: draft.learnersNext,
    autoLeave: draft.autoLeave,
  };
  return [config, progress];
}

function requireProgress(progress: ProgressMap, id: NodeId): Progress {
  const pr = progress.get(id);
  invariant(pr !== undefined, () => `confchange: no progress for member ${id}`);
  return pr;
}

/**
 * The invariants every configuration satisfies. A violation is a bug (here or in whoever
 * built the tracker's state by hand), not a bad request: RaftInvariantError, not ConfChangeError.
 */
function checkInvariants(draft: DraftConfig, progress: ProgressMap): void {
  const fail = (what: string): never => {
    throw new RaftInvariantError(`confchange: ${what}`);
  };
  for (const id of draft.incoming) {
    if (requireProgress(progress, id).isLearner) fail(`incoming voter ${id} is marked as a learner`);
  }
  for (const id of draft.outgoing) {
    if (requireProgress(progress, id).isLearner) fail(`outgoing voter ${id} is marked as a learner`);
  }
  for (const id of draft.learnersNext) {
    if (!draft.outgoing.has(id)) fail(`${id} is in learnersNext but not an outgoing voter`);
    if (requireProgress(progress, id).isLearner) fail(`${id} is in learnersNext but already a learner`);
  }
  for (const id of draft.learners) {
    if (draft.incoming.has(id) || draft.outgoing.has(id)) fail(`${id} is both a voter and a learner`);
    if (!requireProgress(progress, id).isLearner) fail(`learner ${id} is not marked as a learner`);
  }
  for (const id of progress.keys()) {
    const member =
      draft.incoming.has(id) ||
      draft.outgoing.has(id) ||
      draft.learners.has(id) ||
      draft.learnersNext.has(id);
    if (!member) fail(`progress is tracked for ${id}, which is not a member`);
  }
  if (draft.outgoing.size === 0) {
    if (draft.learnersNext.size > 0) fail("learnersNext is not empty outside a joint configuration");
    if (draft.autoLeave) fail("autoLeave is set outside a joint configuration");
  }
}

function symmetricDifferenceSize(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): number {
  let count = 0;
  for (const id of a) if (!b.has(id)) count++;
  for (const id of b) if (!a.has(id)) count++;
  return count;
}

/**
 * Whether applying `cc` enters a joint configuration, and if so whether it is left
 * automatically. An empty change list never enters one (it leaves, see confChangeLeavesJoint).
 * Auto: a change of at most one member applies directly; more enters joint, left automatically.
 * Implicit: always joint, left automatically. Explicit: always joint, left by an empty change.
 */
export function confChangeEntersJoint(cc: ConfChange): { entersJoint: boolean; autoLeave: boolean } {
  if (cc.changes.length === 0) return { entersJoint: false, autoLeave: false };
  switch (cc.transition) {
    case ConfChangeTransition.Auto:
      return cc.changes.length > 1
        ? { entersJoint: true, autoLeave: true }
        : { entersJoint: false, autoLeave: false };
    case ConfChangeTransition.Implicit:
      return { entersJoint: true, autoLeave: true };
    case ConfChangeTransition.Explicit:
      return { entersJoint: true, autoLeave: false };
    default:
      throw new ConfChangeError(`unknown configuration change transition ${String(cc.transition)}`);
  }
}

/** A change without any member changes is the request to leave the joint configuration. */
export function confChangeLeavesJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}
