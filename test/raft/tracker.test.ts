// Flow control (Inflights), per-follower progress state transitions, and the ProgressTracker's
// quorum questions over a configuration.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Inflights } from "../../src/raft/tracker/inflights.js";
import { Progress, ProgressState } from "../../src/raft/tracker/progress.js";
import { ProgressTracker } from "../../src/raft/tracker/tracker.js";
import type { TrackerConfig } from "../../src/raft/tracker/tracker.js";
import { VoteResult } from "../../src/raft/quorum.js";
import type { NodeId } from "../../src/raft/types.js";

// ---- Inflights ----

test("inflights: fills up to maxCount, refuses more, and frees in order", () => {
  const inflights = new Inflights(3, 0);
  inflights.add(5, 10);
  inflights.add(7, 10);
  assert.equal(inflights.full(), false);
  inflights.add(9, 10);
  assert.equal(inflights.count, 3);
  assert.equal(inflights.full(), true);
  assert.throws(() => inflights.add(11, 10), /full/);

  inflights.freeLE(4);
  assert.equal(inflights.count, 3, "nothing at or below 4 is in flight");
  inflights.freeLE(7);
  assert.equal(inflights.count, 1);
  assert.equal(inflights.bytes, 10);
  assert.equal(inflights.full(), false);
  inflights.freeLE(100);
  assert.equal(inflights.count, 0);
  assert.equal(inflights.bytes, 0);
});

test("inflights: the ring wraps around and keeps order", () => {
  const inflights = new Inflights(4, 0);
  for (const index of [1, 2, 3, 4]) inflights.add(index, 1);
  inflights.freeLE(2);
  inflights.add(5, 1);
  inflights.add(6, 1);
  assert.equal(inflights.full(), true);
  inflights.freeLE(4);
  assert.equal(inflights.count, 2);
  inflights.freeLE(5);
  assert.equal(inflights.count, 1);
  inflights.add(7, 1);
  inflights.freeLE(6);
  assert.equal(inflights.count, 1);
  inflights.freeLE(7);
  assert.equal(inflights.count, 0);
});

test("inflights: the byte budget fills the window, and one oversized message may still go out", () => {
  const inflights = new Inflights(10, 100);
  inflights.add(1, 40);
  inflights.add(2, 40);
  assert.equal(inflights.full(), false, "80 of 100 bytes in flight");
  inflights.add(3, 30);
  assert.equal(inflights.full(), true, "110 bytes in flight exceeds the budget");
  assert.throws(() => inflights.add(4, 1), /full/);
  inflights.freeLE(1);
  assert.equal(inflights.bytes, 70);
  assert.equal(inflights.full(), false);

  const oversized = new Inflights(10, 100);
  oversized.add(1, 500);
  assert.equal(oversized.count, 1);
  assert.equal(oversized.full(), true);

  const unlimited = new Inflights(2, 0);
  unlimited.add(1, 1_000_000);
  assert.equal(unlimited.full(), false, "maxBytes 0 means no byte limit");
});

test("inflights: rejects indexes that do not increase, and bad limits", () => {
  const inflights = new Inflights(5, 0);
  inflights.add(10, 1);
  assert.throws(() => inflights.add(10, 1), /does not follow/);
  assert.throws(() => inflights.add(9, 1), /does not follow/);
  assert.throws(() => inflights.add(11, -1), /bytes/);
  assert.throws(() => new Inflights(0, 0), /maxCount/);
  assert.throws(() => new Inflights(1, -1), /maxBytes/);
});

test("inflights: reset empties the window; clone is independent", () => {
  const inflights = new Inflights(2, 0);
  inflights.add(1, 3);
  inflights.add(2, 3);
  const copy = inflights.clone();
  inflights.reset();
  assert.equal(inflights.count, 0);
  assert.equal(inflights.bytes, 0);
  assert.equal(inflights.full(), false);
  assert.equal(copy.count, 2);
  assert.equal(copy.full(), true);
  copy.freeLE(1);
  assert.equal(copy.count, 1);
  inflights.add(1, 1);
  assert.equal(copy.count, 1);
});

test("property: inflights behaves like a bounded queue of (lastIndex, bytes)", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("add" as const), step: fc.integer({ min: 1, max: 3 }), bytes: fc.nat(50) }),
    fc.record({ kind: fc.constant("free" as const), back: fc.integer({ min: -2, max: 6 }) }),
    fc.record({ kind: fc.constant("reset" as const) }),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.nat(120),
      fc.array(op, { maxLength: 60 }),
      (maxCount, maxBytes, ops) => {
        const inflights = new Inflights(maxCount, maxBytes);
        let model: { index: number; bytes: number }[] = [];
        let lastIndex = 0;
        const modelBytes = (): number => model.reduce((sum, m) => sum + m.bytes, 0);
        const modelFull = (): boolean =>
          model.length === maxCount || (maxBytes > 0 && modelBytes() >= maxBytes);
        for (const o of ops) {
          if (o.kind === "add") {
            if (modelFull()) continue;
            lastIndex += o.step;
            inflights.add(lastIndex, o.bytes);
            model.push({ index: lastIndex, bytes: o.bytes });
          } else if (o.kind === "free") {
            const upTo = lastIndex - o.back;
            inflights.freeLE(upTo);
            model = model.filter((m) => m.index > upTo);
          } else {
            inflights.reset();
            model = [];
          }
          assert.equal(inflights.count, model.length);
          assert.equal(inflights.bytes, modelBytes());
          assert.equal(inflights.full(), modelFull());
        }
      },
    ),
  );
});

// ---- Progress ----

function progress(fields: { match?: number; next: number; maxInflight?: number }): Progress {
  return new Progress({
    next: fields.next,
    match: fields.match ?? 0,
    maxInflight: fields.maxInflight ?? 256,
    maxInflightBytes: 0,
  });
}

test("progress: the constructor enforces match < next", () => {
  assert.throws(() => progress({ match: 5, next: 5 }), /match < next/);
  assert.throws(() => progress({ next: 0 }), /match < next/);
  const pr = progress({ next: 1 });
  assert.equal(pr.state, ProgressState.Probe);
  assert.equal(pr.isLearner, false);
  assert.equal(pr.recentActive, false);
});

test("progress: maybeUpdate advances match (and next if needed) and unpauses a probe", () => {
  const pr = progress({ match: 3, next: 10 });
  pr.sentEntries(1, 10);
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.maybeUpdate(2), false, "older ack");
  assert.equal(pr.maybeUpdate(3), false, "same ack");
  assert.equal(pr.isPaused(), true, "a stale ack does not unpause");
  assert.equal(pr.maybeUpdate(5), true);
  assert.deepEqual([pr.match, pr.next], [5, 10]);
  assert.equal(pr.isPaused(), false);
  assert.equal(pr.maybeUpdate(12), true);
  assert.deepEqual([pr.match, pr.next], [12, 13]);
});

test("progress: in Probe, any send pauses until an answer arrives — even an empty append", () => {
  for (const entries of [0, 1, 5]) {
    const pr = progress({ match: 0, next: 4 });
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(entries, entries * 10);
    assert.equal(pr.isPaused(), true, `after sending ${entries} entries`);
    assert.equal(pr.next, 4, "probing does not move next");
    assert.equal(pr.inflights.count, 0);
  }
});

test("progress: in Replicate, sends advance next optimistically and fill the inflight window", () => {
  const pr = progress({ match: 5, next: 9, maxInflight: 2 });
  pr.becomeReplicate();
  assert.deepEqual([pr.state, pr.next], [ProgressState.Replicate, 6]);
  pr.sentEntries(3, 30);
  assert.equal(pr.next, 9);
  assert.equal(pr.isPaused(), false);
  pr.sentEntries(0, 0);
  assert.equal(pr.inflights.count, 1, "an empty append occupies no slot");
  pr.sentEntries(2, 20);
  assert.equal(pr.next, 11);
  assert.equal(pr.isPaused(), true, "window of 2 messages is full");
  pr.inflights.freeLE(8);
  assert.equal(pr.isPaused(), false);
  pr.inflights.freeLE(10);
  assert.equal(pr.inflights.count, 0);
  assert.throws(() => pr.sentEntries(-1, 0), /non-negative/);
});

test("progress: Snapshot pauses everything, and returns to Probe past the snapshot", () => {
  const pr = progress({ match: 3, next: 4 });
  pr.becomeReplicate();
  pr.sentEntries(2, 20);
  pr.becomeSnapshot(20);
  assert.deepEqual([pr.state, pr.pendingSnapshot, pr.next], [ProgressState.Snapshot, 20, 21]);
  assert.equal(pr.inflights.count, 0, "entering Snapshot drops the inflight window");
  assert.equal(pr.isPaused(), true);
  assert.throws(() => pr.sentEntries(1, 1), /Snapshot state/);
  pr.becomeProbe();
  assert.deepEqual([pr.state, pr.pendingSnapshot, pr.next], [ProgressState.Probe, 0, 21]);
  assert.equal(pr.isPaused(), false);

  // If the follower acknowledged beyond the snapshot meanwhile, probe from its match instead.
  const ahead = progress({ match: 3, next: 4 });
  ahead.becomeSnapshot(20);
  ahead.maybeUpdate(25);
  ahead.becomeProbe();
  assert.equal(ahead.next, 26);

  assert.throws(() => progress({ match: 10, next: 11 }).becomeSnapshot(9), /behind match/);
});

test("progress: becomeProbe from Replicate restarts right after match and resets the window", () => {
  const pr = progress({ match: 5, next: 6 });
  pr.becomeReplicate();
  pr.sentEntries(4, 40);
  pr.becomeProbe();
  assert.deepEqual([pr.state, pr.next, pr.inflights.count], [ProgressState.Probe, 6, 0]);
});

test("progress: maybeDecrTo in Replicate ignores stale rejections and falls back to match + 1", () => {
  const pr = progress({ match: 5, next: 6 });
  pr.becomeReplicate();
  pr.sentEntries(10, 100);
  assert.equal(pr.next, 16);
  assert.equal(pr.maybeDecrTo(5, 5), false, "rejected at or below match is stale");
  assert.equal(pr.maybeDecrTo(3, 0), false);
  assert.equal(pr.next, 16);
  assert.equal(pr.maybeDecrTo(9, 7), true);
  assert.equal(pr.next, 6);
});

test("progress: maybeDecrTo in Probe only accepts a rejection of the probed index", () => {
  const cases: {
    match: number;
    next: number;
    rejected: number;
    hint: number;
    ok: boolean;
    wantNext: number;
  }[] = [
    // The probe went out at next - 1 = 9; any other rejection answers an older message.
    { match: 0, next: 10, rejected: 8, hint: 8, ok: false, wantNext: 10 },
    { match: 0, next: 10, rejected: 10, hint: 8, ok: false, wantNext: 10 },
    // The follower's hint moves next back past several entries at once.
    { match: 0, next: 10, rejected: 9, hint: 4, ok: true, wantNext: 5 },
    // A hint at or beyond the rejected index still moves next back by one.
    { match: 0, next: 10, rejected: 9, hint: 9, ok: true, wantNext: 9 },
    { match: 0, next: 10, rejected: 9, hint: 20, ok: true, wantNext: 9 },
    // Never below match + 1.
    { match: 6, next: 10, rejected: 9, hint: 2, ok: true, wantNext: 7 },
    { match: 0, next: 1, rejected: 0, hint: 0, ok: true, wantNext: 1 },
  ];
  for (const c of cases) {
    const pr = progress({ match: c.match, next: c.next });
    pr.sentEntries(1, 1);
    assert.equal(pr.maybeDecrTo(c.rejected, c.hint), c.ok, JSON.stringify(c));
    assert.equal(pr.next, c.wantNext, JSON.stringify(c));
    assert.equal(pr.isPaused(), !c.ok, "an accepted rejection answers the probe");
  }
});

test("progress: clone shares no state", () => {
  const pr = progress({ match: 2, next: 3 });
  pr.becomeReplicate();
  pr.sentEntries(1, 1);
  const copy = pr.clone();
  assert.deepEqual(
    [copy.match, copy.next, copy.state, copy.inflights.count],
    [2, 4, ProgressState.Replicate, 1],
  );
  pr.inflights.freeLE(10);
  pr.isLearner = true;
  assert.equal(copy.inflights.count, 1);
  assert.equal(copy.isLearner, false);
});

test("progress: toString summarizes the state", () => {
  const pr = new Progress({ next: 4, match: 3, maxInflight: 1, maxInflightBytes: 0, isLearner: true });
  pr.becomeReplicate();
  pr.sentEntries(2, 2);
  assert.equal(pr.toString(), "replicate match=3 next=6 learner paused inactive inflight=1[full]");
  pr.recentActive = true;
  pr.becomeSnapshot(9);
  assert.equal(pr.toString(), "snapshot match=3 next=10 learner paused pendingSnap=9");
});

// ---- ProgressTracker ----

/** A tracker with the given membership and acknowledged indexes (no Changer involved). */
function trackerWith(
  incoming: NodeId[],
  outgoing: NodeId[],
  learners: NodeId[],
  matches: ReadonlyMap<NodeId, number> = new Map(),
): ProgressTracker {
  const tracker = new ProgressTracker(16, 0);
  const config: TrackerConfig = {
    voters: [new Set(incoming), new Set(outgoing)],
    learners: new Set(learners),
    learnersNext: new Set(),
    autoLeave: false,
  };
  tracker.config = config;
  for (const id of new Set([...incoming, ...outgoing, ...learners])) {
    const match = matches.get(id) ?? 0;
    tracker.progress.set(
      id,
      new Progress({
        next: match + 1,
        match,
        maxInflight: 16,
        maxInflightBytes: 0,
        isLearner: learners.includes(id),
      }),
    );
  }
  return tracker;
}

test("tracker: a new tracker has no members", () => {
  const tracker = new ProgressTracker(8, 1024);
  assert.deepEqual([tracker.maxInflight, tracker.maxInflightBytes], [8, 1024]);
  assert.equal(tracker.isJoint(), false);
  assert.equal(tracker.isSingleton(), false);
  assert.equal(tracker.committed(), Infinity);
  assert.deepEqual(tracker.confState(), {
    voters: [],
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  });
});

test("tracker: committed counts voters only, and both halves while joint", () => {
  const matches = new Map([
    [1, 10],
    [2, 8],
    [3, 2],
    [4, 100],
    [5, 1],
  ]);
  assert.equal(trackerWith([1, 2, 3], [], [4], matches).committed(), 8, "learner 4's match does not count");
  const joint = trackerWith([1, 2, 3], [3, 4, 5], [], matches);
  assert.equal(joint.isJoint(), true);
  assert.equal(joint.committed(), 2);
});

test("tracker: isSingleton means exactly one voter outside a joint config", () => {
  assert.equal(trackerWith([1], [], [2]).isSingleton(), true);
  assert.equal(trackerWith([1, 2], [], []).isSingleton(), false);
  assert.equal(trackerWith([1], [1, 2], []).isSingleton(), false);
});

test("tracker: visit goes in ascending id order whatever the insertion order", () => {
  const tracker = trackerWith([9, 3, 7], [], [5, 1]);
  const seen: NodeId[] = [];
  tracker.visit((id, pr) => {
    assert.equal(pr, tracker.progress.get(id));
    seen.push(id);
  });
  assert.deepEqual(seen, [1, 3, 5, 7, 9]);
});

test("tracker: visit follows the ids as the progress map changes, in place or replaced", () => {
  const tracker = trackerWith([1, 3], [], []);
  const visited = (): NodeId[] => {
    const seen: NodeId[] = [];
    tracker.visit((id) => seen.push(id));
    return seen;
  };
  assert.deepEqual(visited(), [1, 3]);
  // Same size, other ids: the order of the earlier visit must not be reused.
  const three = tracker.progress.get(3)!;
  tracker.progress.delete(3);
  tracker.progress.set(2, three);
  assert.deepEqual(visited(), [1, 2]);
  tracker.progress.set(0, three);
  assert.deepEqual(visited(), [0, 1, 2]);
  tracker.progress = new Map([
    [8, three],
    [4, three],
  ]);
  assert.deepEqual(visited(), [4, 8]);
});

test("tracker: voterIds, learnerIds and confState are sorted", () => {
  const tracker = trackerWith([9, 3], [3, 7], [5]);
  tracker.config = { ...tracker.config, learnersNext: new Set([7]), autoLeave: true };
  assert.deepEqual(tracker.voterIds(), [3, 7, 9]);
  assert.deepEqual(tracker.learnerIds(), [5, 7]);
  assert.deepEqual(tracker.confState(), {
    voters: [3, 9],
    votersOutgoing: [3, 7],
    learners: [5],
    learnersNext: [7],
    autoLeave: true,
  });
});

test("tracker: quorumActive asks whether active voters form a quorum in both halves", () => {
  const tracker = trackerWith([1, 2, 3], [], [4]);
  const setActive = (ids: NodeId[]): void =>
    tracker.visit((id, pr) => {
      pr.recentActive = ids.includes(id);
    });
  setActive([1]);
  assert.equal(tracker.quorumActive(), false);
  setActive([1, 4]);
  assert.equal(tracker.quorumActive(), false, "an active learner does not count");
  setActive([1, 3]);
  assert.equal(tracker.quorumActive(), true);

  const joint = trackerWith([1, 2, 3], [4, 5, 6], []);
  joint.visit((id, pr) => {
    pr.recentActive = [1, 2, 4].includes(id);
  });
  assert.equal(joint.quorumActive(), false, "only one of the outgoing voters is active");
  joint.progress.get(5)!.recentActive = true;
  assert.equal(joint.quorumActive(), true);
});

test("tracker: votes — the first answer counts, learners are ignored, reset clears", () => {
  const tracker = trackerWith([1, 2, 3, 4, 5], [], [6]);
  tracker.recordVote(1, true);
  tracker.recordVote(2, false);
  tracker.recordVote(2, true);
  tracker.recordVote(6, true);
  assert.deepEqual(tracker.tallyVotes(), { granted: 1, rejected: 1, result: VoteResult.Pending });
  tracker.recordVote(3, true);
  tracker.recordVote(4, true);
  assert.deepEqual(tracker.tallyVotes(), { granted: 3, rejected: 1, result: VoteResult.Won });
  tracker.resetVotes();
  assert.deepEqual(tracker.tallyVotes(), { granted: 0, rejected: 0, result: VoteResult.Pending });
  for (const id of [1, 2, 3]) tracker.recordVote(id, false);
  assert.equal(tracker.tallyVotes().result, VoteResult.Lost);
});

test("tracker: a joint election needs both halves", () => {
  const tracker = trackerWith([1, 2, 3], [3, 4, 5], []);
  for (const id of [1, 2, 3]) tracker.recordVote(id, true);
  assert.deepEqual(tracker.tallyVotes(), { granted: 3, rejected: 0, result: VoteResult.Pending });
  tracker.recordVote(4, false);
  tracker.recordVote(5, false);
  assert.deepEqual(tracker.tallyVotes(), { granted: 3, rejected: 2, result: VoteResult.Lost });
});
