/**
 * Rebuilds a tracker's membership from a persisted ConfState (on restart or when a snapshot is
 * applied) by replaying it as configuration changes through a Changer, so the result obeys
 * exactly the same rules and invariants as a configuration reached change by change.
 */
import type { ConfChangeSingle, ConfState, NodeId } from "../types.js";
import { ConfChangeType } from "../types.js";
import { ProgressTracker } from "../tracker/tracker.js";
import type { ProgressMap, TrackerConfig } from "../tracker/tracker.js";
import { ConfChangeError, Changer } from "./changer.js";

function changesOf(type: ConfChangeType, ids: readonly NodeId[]): ConfChangeSingle[] {
  return ids.map((nodeId) => ({ type, nodeId }));
}

/**
 * Replaces `tracker`'s configuration and progress (and clears its votes) with the membership
 * described by `cs`; new members are probed from `lastIndex`.
 *
 * A joint ConfState is reached in two steps. First the outgoing voters are added one by one,
 * which builds the configuration that existed before the joint one. Then the joint config is
 * entered with changes that remove every outgoing voter, add back the incoming voters, and add
 * the learners and the learners-to-be. For example voters=(1 2 3) learners=(5)
 * votersOutgoing=(1 2 4 6) learnersNext=(4) replays as: add 1, 2, 4, 6; then enter joint with
 * remove 1, 2, 4, 6; add 1, 2, 3; add learner 5; add learner 4 — where "add learner 4" lands in
 * learnersNext because 4 still votes in the outgoing half. (Whether 5 was a learner before the
 * joint config cannot be told from the ConfState, and does not matter.)
 *
 * Throws ConfChangeError if `cs` is not a reachable configuration (a node both voter and
 * learner, duplicate ids, learnersNext outside the outgoing voters, ...); the tracker is left
 * untouched then.
 */
export function restoreConfState(tracker: ProgressTracker, lastIndex: number, cs: ConfState): void {
  const scratch = new ProgressTracker(tracker.maxInflight, tracker.maxInflightBytes);
  const install = ([config, progress]: [TrackerConfig, ProgressMap]): void => {
    scratch.config = config;
    scratch.progress = progress;
  };
  const incoming = [
    ...changesOf(ConfChangeType.RemoveNode, cs.votersOutgoing),
    ...changesOf(ConfChangeType.AddVoter, cs.voters),
    ...changesOf(ConfChangeType.AddLearner, cs.learners),
    ...changesOf(ConfChangeType.AddLearner, cs.learnersNext),
  ];
  if (cs.votersOutgoing.length === 0) {
    // One change at a time: each adds at most one voter, which simple() allows.
    for (const change of incoming) install(new Changer(scratch, lastIndex).simple([change]));
  } else {
    for (const change of changesOf(ConfChangeType.AddVoter, cs.votersOutgoing)) {
      install(new Changer(scratch, lastIndex).simple([change]));
    }
    install(new Changer(scratch, lastIndex).enterJoint(cs.autoLeave, incoming));
  }

  const restored = scratch.confState();
  if (!sameConfState(restored, cs)) {
    throw new ConfChangeError(
      `conf state ${JSON.stringify(cs)} is not a valid configuration (restores as ${JSON.stringify(restored)})`,
    );
  }
  tracker.config = scratch.config;
  tracker.progress = scratch.progress;
  tracker.resetVotes();
}

/** Equal as sets of ids per role (order-insensitive; duplicates make them differ). */
function sameConfState(restored: ConfState, cs: ConfState): boolean {
  const sameIds = (a: readonly NodeId[], b: readonly NodeId[]): boolean => {
    const sortedB = [...b].sort((x, y) => x - y);
    return a.length === sortedB.length && a.every((id, i) => id === sortedB[i]);
  };
  return (
    sameIds(restored.voters, cs.voters) &&
    sameIds(restored.votersOutgoing, cs.votersOutgoing) &&
    sameIds(restored.learners, cs.learners) &&
    sameIds(restored.learnersNext, cs.learnersNext) &&
    restored.autoLeave === cs.autoLeave
  );
}
