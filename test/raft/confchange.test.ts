// Membership changes: the Changer (simple and joint), restoring from a ConfState, the
// transition rules of a ConfChange, and the ConfChange payload codec.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Changer,
  ConfChangeError,
  confChangeEntersJoint,
  confChangeLeavesJoint,
} from "../../src/raft/confchange/changer.js";
import { restoreConfState } from "../../src/raft/confchange/restore.js";
import {
  ConfChangeDecodeError,
  decodeConfChange,
  encodeConfChange,
} from "../../src/raft/confchange/codec.js";
import { RaftInvariantError } from "../../src/raft/assert.js";
import { Progress } from "../../src/raft/tracker/progress.js";
import { ProgressTracker } from "../../src/raft/tracker/tracker.js";
import type { ProgressMap, TrackerConfig } from "../../src/raft/tracker/tracker.js";
import { ConfChangeTransition, ConfChangeType } from "../../src/raft/types.js";
import type { ConfChange, ConfChangeSingle, ConfState, NodeId } from "../../src/raft/types.js";

const LAST_INDEX = 10;

const voter = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddVoter, nodeId });
const learner = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddLearner, nodeId });
const removal = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.RemoveNode, nodeId });

function install(tracker: ProgressTracker, [config, progress]: [TrackerConfig, ProgressMap]): void {
  tracker.config = config;
  tracker.progress = progress;
}

/** A tracker built change by change through simple(). */
function trackerOf(changes: ConfChangeSingle[]): ProgressTracker {
  const tracker = new ProgressTracker(4, 0);
  for (const change of changes) install(tracker, new Changer(tracker, LAST_INDEX).simple([change]));
  return tracker;
}

function changer(tracker: ProgressTracker): Changer {
  return new Changer(tracker, LAST_INDEX);
}

/** Applies a change to the tracker and returns its membership, for compact assertions. */
function applied(tracker: ProgressTracker, result: [TrackerConfig, ProgressMap]): ConfState {
  install(tracker, result);
  return tracker.confState();
}

function confState(fields: Partial<ConfState>): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false, ...fields };
}

// ---- Changer: simple ----

test("simple: adding members creates probing progress from the last index", () => {
  const tracker = trackerOf([voter(1), voter(2), learner(3)]);
  assert.deepEqual(tracker.confState(), confState({ voters: [1, 2], learners: [3] }));
  for (const [id, pr] of tracker.progress) {
    assert.deepEqual([pr.match, pr.next, pr.recentActive], [0, LAST_INDEX, true], `node ${id}`);
    assert.equal(pr.isLearner, id === 3);
    assert.equal(pr.inflights.maxCount, 4);
  }
  const fresh = new ProgressTracker(4, 0);
  install(fresh, new Changer(fresh, 0).simple([voter(1)]));
  assert.equal(fresh.progress.get(1)!.next, 1, "next stays above match on an empty log");
});

test("simple: removals, promotions and demotions change at most one voter", () => {
  const tracker = trackerOf([voter(1), voter(2), voter(3), learner(4)]);
  tracker.progress.get(4)!.maybeUpdate(7);
  assert.deepEqual(
    applied(tracker, changer(tracker).simple([voter(4)])),
    confState({ voters: [1, 2, 3, 4] }),
  );
  assert.equal(tracker.progress.get(4)!.match, 7, "a promoted learner keeps its progress");
  assert.equal(tracker.progress.get(4)!.isLearner, false);
  assert.deepEqual(
    applied(tracker, changer(tracker).simple([learner(2)])),
    confState({ voters: [1, 3, 4], learners: [2] }),
  );
  assert.equal(tracker.progress.get(2)!.isLearner, true);
  assert.deepEqual(applied(tracker, changer(tracker).simple([removal(2)])), confState({ voters: [1, 3, 4] }));
  assert.equal(tracker.progress.has(2), false);
  assert.deepEqual(applied(tracker, changer(tracker).simple([removal(9)])), confState({ voters: [1, 3, 4] }));
  // Several changes at once are fine as long as only one of them touches a voter.
  assert.deepEqual(
    applied(tracker, changer(tracker).simple([learner(5), learner(6), voter(7), learner(5)])),
    confState({ voters: [1, 3, 4, 7], learners: [5, 6] }),
  );
  // Adding a voter twice, or a learner that already is one, changes nothing.
  assert.deepEqual(
    applied(tracker, changer(tracker).simple([voter(1), learner(5)])),
    confState({ voters: [1, 3, 4, 7], learners: [5, 6] }),
  );
});

test("simple: node id 0 marks a change the application declined, and is skipped", () => {
  const tracker = trackerOf([voter(1)]);
  assert.deepEqual(
    applied(tracker, changer(tracker).simple([voter(0), removal(0)])),
    confState({ voters: [1] }),
  );
});

test("simple: refuses to change several voters, to run while joint, or to remove every voter", () => {
  const tracker = trackerOf([voter(1), voter(2), voter(3)]);
  assert.throws(() => changer(tracker).simple([voter(4), voter(5)]), ConfChangeError);
  assert.throws(() => changer(tracker).simple([removal(1), removal(2)]), /at most one voter/);
  assert.throws(() => changer(tracker).simple([voter(4), removal(1)]), /changes 2/);
  assert.throws(() => changer(tracker).simple([learner(1), learner(2)]), ConfChangeError);
  assert.throws(() => changer(trackerOf([voter(1)])).simple([removal(1)]), /removes all voters/);
  assert.throws(() => changer(new ProgressTracker(4, 0)).simple([learner(1)]), /removes all voters/);
  assert.throws(
    () => changer(tracker).simple([{ type: 7 as ConfChangeType, nodeId: 4 }]),
    /unknown configuration change type 7/,
  );
  assert.throws(() => changer(tracker).simple([voter(-1)]), /invalid node id/);
  assert.throws(() => changer(tracker).simple([voter(1.5)]), /invalid node id/);

  install(tracker, changer(tracker).enterJoint(false, [voter(4)]));
  assert.throws(() => changer(tracker).simple([voter(5)]), /joint configuration/);
});

test("changes never touch the tracker they were computed from", () => {
  const tracker = trackerOf([voter(1), voter(2), learner(3)]);
  const before = tracker.confState();
  const progressBefore = tracker.progress;
  const pr3 = tracker.progress.get(3)!;
  const [config, progress] = changer(tracker).simple([voter(3)]);
  assert.deepEqual(tracker.confState(), before);
  assert.equal(tracker.progress, progressBefore);
  assert.equal(pr3.isLearner, true);
  assert.notEqual(progress.get(3), pr3, "progress entries are copies");
  assert.equal(progress.get(3)!.isLearner, false);
  assert.deepEqual([...config.voters[0]].sort(), [1, 2, 3]);
  assert.throws(() => changer(tracker).simple([voter(3), removal(1)]), ConfChangeError);
  assert.deepEqual(tracker.confState(), before, "a refused change leaves no trace either");
  assert.equal(pr3.isLearner, true);
});

// ---- Changer: joint ----

test("joint: entering keeps the old voters as the outgoing half; leaving drops them", () => {
  const tracker = trackerOf([voter(1), voter(2), voter(3)]);
  tracker.progress.get(1)!.maybeUpdate(9);
  assert.deepEqual(
    applied(tracker, changer(tracker).enterJoint(true, [removal(1), voter(4), voter(5)])),
    confState({ voters: [2, 3, 4, 5], votersOutgoing: [1, 2, 3], autoLeave: true }),
  );
  assert.equal(tracker.isJoint(), true);
  assert.equal(tracker.progress.get(1)!.match, 9, "a removed outgoing voter is still tracked");
  assert.deepEqual(applied(tracker, changer(tracker).leaveJoint()), confState({ voters: [2, 3, 4, 5] }));
  assert.equal(tracker.progress.has(1), false);
  assert.deepEqual([...tracker.progress.keys()].sort(), [2, 3, 4, 5]);
});

test("joint: a demoted voter waits in learnersNext until the joint config is left", () => {
  const tracker = trackerOf([voter(1), voter(2), voter(3)]);
  assert.deepEqual(
    applied(tracker, changer(tracker).enterJoint(false, [learner(3), voter(4), learner(5)])),
    confState({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learners: [5], learnersNext: [3] }),
  );
  assert.equal(tracker.progress.get(3)!.isLearner, false, "3 still votes in the outgoing half");
  assert.deepEqual(
    applied(tracker, changer(tracker).leaveJoint()),
    confState({ voters: [1, 2, 4], learners: [3, 5] }),
  );
  assert.equal(tracker.progress.get(3)!.isLearner, true);
});

test("joint: promoting a staged learner back, and removing it, clear learnersNext", () => {
  const restaged = trackerOf([voter(1), voter(2), voter(3)]);
  assert.deepEqual(
    applied(restaged, changer(restaged).enterJoint(false, [learner(3), voter(3)])),
    confState({ voters: [1, 2, 3], votersOutgoing: [1, 2, 3] }),
  );
  const removed = trackerOf([voter(1), voter(2), voter(3)]);
  assert.deepEqual(
    applied(removed, changer(removed).enterJoint(false, [learner(3), removal(3)])),
    confState({ voters: [1, 2], votersOutgoing: [1, 2, 3] }),
  );
  assert.equal(removed.progress.has(3), true, "still an outgoing voter");
  // A learner promoted while joint becomes an incoming voter.
  const promoted = trackerOf([voter(1), learner(2)]);
  assert.deepEqual(
    applied(promoted, changer(promoted).enterJoint(true, [voter(2), learner(1)])),
    confState({ voters: [2], votersOutgoing: [1], learnersNext: [1], autoLeave: true }),
  );
  assert.deepEqual(
    applied(promoted, changer(promoted).leaveJoint()),
    confState({ voters: [2], learners: [1] }),
  );
});

test("joint: errors — twice, not joint, no voters, or all voters removed", () => {
  const tracker = trackerOf([voter(1), voter(2)]);
  assert.throws(() => changer(tracker).leaveJoint(), /not joint/);
  assert.throws(() => changer(new ProgressTracker(4, 0)).enterJoint(false, [voter(1)]), /without voters/);
  assert.throws(() => changer(tracker).enterJoint(false, [removal(1), removal(2)]), /removes all voters/);
  assert.throws(() => changer(tracker).enterJoint(false, [learner(1), learner(2)]), /removes all voters/);
  install(tracker, changer(tracker).enterJoint(false, [voter(3)]));
  assert.throws(() => changer(tracker).enterJoint(false, [voter(4)]), /already joint/);
  assert.throws(() => changer(tracker).enterJoint(false, []), ConfChangeError);
});

test("a hand-built tracker that breaks an invariant is reported as a bug, not a bad request", () => {
  const tracker = trackerOf([voter(1), voter(2)]);
  tracker.config = { ...tracker.config, learners: new Set([2]) };
  const error = (() => {
    try {
      changer(tracker).simple([voter(3)]);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(error instanceof RaftInvariantError);
  assert.match(error.message, /2 is both a voter and a learner/);

  const orphan = trackerOf([voter(1)]);
  orphan.progress.set(5, new Progress({ next: 1, maxInflight: 1, maxInflightBytes: 0 }));
  assert.throws(() => changer(orphan).simple([voter(2)]), /5, which is not a member/);
  const untracked = trackerOf([voter(1)]);
  untracked.progress.delete(1);
  assert.throws(() => changer(untracked).simple([voter(2)]), /no progress for member 1/);
});

// ---- ConfChange transitions ----

test("confChangeEntersJoint / confChangeLeavesJoint follow the transition rules", () => {
  const cc = (transition: ConfChangeTransition, changes: ConfChangeSingle[]): ConfChange => ({
    transition,
    changes,
    context: new Uint8Array(),
  });
  const cases: { cc: ConfChange; entersJoint: boolean; autoLeave: boolean; leaves: boolean }[] = [
    { cc: cc(ConfChangeTransition.Auto, []), entersJoint: false, autoLeave: false, leaves: true },
    { cc: cc(ConfChangeTransition.Auto, [voter(1)]), entersJoint: false, autoLeave: false, leaves: false },
    {
      cc: cc(ConfChangeTransition.Auto, [voter(1), voter(2)]),
      entersJoint: true,
      autoLeave: true,
      leaves: false,
    },
    { cc: cc(ConfChangeTransition.Implicit, [voter(1)]), entersJoint: true, autoLeave: true, leaves: false },
    { cc: cc(ConfChangeTransition.Explicit, [voter(1)]), entersJoint: true, autoLeave: false, leaves: false },
    { cc: cc(ConfChangeTransition.Explicit, []), entersJoint: false, autoLeave: false, leaves: true },
    {
      cc: { ...cc(ConfChangeTransition.Auto, []), context: new Uint8Array([1, 2]) },
      entersJoint: false,
      autoLeave: false,
      leaves: true,
    },
  ];
  for (const { cc: change, entersJoint, autoLeave, leaves } of cases) {
    assert.deepEqual(confChangeEntersJoint(change), { entersJoint, autoLeave }, JSON.stringify(change));
    assert.equal(confChangeLeavesJoint(change), leaves, JSON.stringify(change));
  }
  assert.throws(
    () => confChangeEntersJoint(cc(9 as ConfChangeTransition, [voter(1)])),
    /unknown .* transition 9/,
  );
});

// ---- restore ----

test("restore: rebuilds simple and joint configurations exactly", () => {
  const states: ConfState[] = [
    confState({}),
    confState({ voters: [1] }),
    confState({ voters: [3, 1, 2], learners: [5, 4] }),
    confState({ voters: [1, 2, 3], learners: [5], votersOutgoing: [1, 2, 4, 6], learnersNext: [4] }),
    confState({ voters: [1, 2, 3], votersOutgoing: [1, 2, 3], autoLeave: true }),
    confState({ voters: [7], votersOutgoing: [1], learnersNext: [1], learners: [2] }),
  ];
  for (const cs of states) {
    const tracker = new ProgressTracker(4, 0);
    tracker.recordVote(1, true);
    restoreConfState(tracker, LAST_INDEX, cs);
    const sorted = (ids: readonly NodeId[]): NodeId[] => [...ids].sort((a, b) => a - b);
    assert.deepEqual(
      tracker.confState(),
      {
        voters: sorted(cs.voters),
        learners: sorted(cs.learners),
        votersOutgoing: sorted(cs.votersOutgoing),
        learnersNext: sorted(cs.learnersNext),
        autoLeave: cs.autoLeave,
      },
      JSON.stringify(cs),
    );
    assert.equal(tracker.votes.size, 0, "votes are cleared");
    for (const pr of tracker.progress.values()) assert.equal(pr.next, LAST_INDEX);
  }
});

test("restore: replaces whatever the tracker held before", () => {
  const tracker = trackerOf([voter(1), voter(2), learner(3)]);
  restoreConfState(tracker, LAST_INDEX, confState({ voters: [4, 5] }));
  assert.deepEqual(tracker.confState(), confState({ voters: [4, 5] }));
  assert.deepEqual([...tracker.progress.keys()].sort(), [4, 5]);
});

test("restore: rejects unreachable configurations and leaves the tracker untouched", () => {
  const invalid: ConfState[] = [
    confState({ voters: [1, 2], learners: [2] }),
    confState({ voters: [1, 1] }),
    confState({ learners: [1] }),
    confState({ voters: [1], learnersNext: [2] }),
    confState({ voters: [1, 2], votersOutgoing: [1], learnersNext: [2] }),
    confState({ voters: [1], autoLeave: true }),
    confState({ voters: [0] }),
  ];
  for (const cs of invalid) {
    const tracker = trackerOf([voter(8), voter(9)]);
    assert.throws(() => restoreConfState(tracker, LAST_INDEX, cs), ConfChangeError, JSON.stringify(cs));
    assert.deepEqual(tracker.confState(), confState({ voters: [8, 9] }));
  }
});

// ---- Property: random change sequences ----

type Op =
  | { kind: "simple"; changes: ConfChangeSingle[] }
  | { kind: "enter"; autoLeave: boolean; changes: ConfChangeSingle[] }
  | { kind: "leave" };

const changeArb = fc.record({
  type: fc.constantFrom(ConfChangeType.AddVoter, ConfChangeType.AddLearner, ConfChangeType.RemoveNode),
  nodeId: fc.integer({ min: 1, max: 6 }),
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("simple" as const), changes: fc.array(changeArb, { maxLength: 3 }) }),
  fc.record({
    kind: fc.constant("enter" as const),
    autoLeave: fc.boolean(),
    changes: fc.array(changeArb, { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant("leave" as const) }),
);

/** The configuration invariants, restated independently of the Changer's own checks. */
function assertWellFormed(tracker: ProgressTracker): void {
  const [incoming, outgoing] = tracker.config.voters;
  const { learners, learnersNext, autoLeave } = tracker.config;
  assert.ok(incoming.size > 0, "at least one voter");
  for (const id of learners) assert.ok(!incoming.has(id) && !outgoing.has(id), `${id} voter and learner`);
  for (const id of learnersNext) assert.ok(outgoing.has(id) && !learners.has(id), `${id} in learnersNext`);
  if (outgoing.size === 0) assert.ok(learnersNext.size === 0 && !autoLeave, "joint-only state outside joint");
  const members = new Set([...incoming, ...outgoing, ...learners]);
  assert.deepEqual(
    [...tracker.progress.keys()].sort(),
    [...members].sort(),
    "progress for exactly the members",
  );
  for (const [id, pr] of tracker.progress) assert.equal(pr.isLearner, learners.has(id), `isLearner of ${id}`);
}

test("property: any sequence of changes keeps the invariants, and every result restores exactly", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
      const tracker = trackerOf([voter(1)]);
      for (const op of ops) {
        const before = tracker.voterIds();
        const wasJoint = tracker.isJoint();
        try {
          const c = changer(tracker);
          install(
            tracker,
            op.kind === "simple"
              ? c.simple(op.changes)
              : op.kind === "enter"
                ? c.enterJoint(op.autoLeave, op.changes)
                : c.leaveJoint(),
          );
        } catch (e) {
          assert.ok(e instanceof ConfChangeError, `unexpected ${String(e)}`);
          continue;
        }
        assertWellFormed(tracker);
        if (op.kind === "simple") {
          assert.equal(wasJoint, false);
          const after = new Set(tracker.config.voters[0]);
          const changed =
            before.filter((id) => !after.has(id)).length +
            [...after].filter((id) => !before.includes(id)).length;
          assert.ok(changed <= 1, "a simple change changed several voters");
        }
        const restored = new ProgressTracker(4, 0);
        restoreConfState(restored, LAST_INDEX, tracker.confState());
        assert.deepEqual(restored.confState(), tracker.confState());
      }
    }),
  );
});

// ---- codec ----

const confChangeArb: fc.Arbitrary<ConfChange> = fc.record(
  {
    transition: fc.constantFrom(
      ConfChangeTransition.Auto,
      ConfChangeTransition.Implicit,
      ConfChangeTransition.Explicit,
    ),
    changes: fc.array(
      fc.record(
        {
          type: fc.constantFrom(
            ConfChangeType.AddVoter,
            ConfChangeType.AddLearner,
            ConfChangeType.RemoveNode,
          ),
          nodeId: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.maxSafeNat()),
        },
        { noNullPrototype: true },
      ),
      { maxLength: 8 },
    ),
    context: fc.uint8Array({ maxLength: 300 }),
  },
  { noNullPrototype: true },
);

test("codec: the byte layout is version, transition, count, (type, id)*, context", () => {
  const cc: ConfChange = {
    transition: ConfChangeTransition.Explicit,
    changes: [voter(1), { type: ConfChangeType.RemoveNode, nodeId: 300 }],
    context: new Uint8Array([0xaa, 0xbb]),
  };
  const bytes = encodeConfChange(cc);
  assert.deepEqual([...bytes], [1, 2, 2, 0, 1, 2, 0xac, 0x02, 2, 0xaa, 0xbb]);
  assert.deepEqual(decodeConfChange(bytes), cc);
});

test("codec: node ids up to 2^53 - 1 survive (no 32-bit truncation)", () => {
  for (const nodeId of [2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 49, Number.MAX_SAFE_INTEGER]) {
    const cc: ConfChange = {
      transition: ConfChangeTransition.Auto,
      changes: [voter(nodeId)],
      context: new Uint8Array(),
    };
    assert.equal(decodeConfChange(encodeConfChange(cc)).changes[0]!.nodeId, nodeId);
  }
  const max = encodeConfChange({
    transition: ConfChangeTransition.Auto,
    changes: [voter(Number.MAX_SAFE_INTEGER)],
    context: new Uint8Array(),
  });
  assert.deepEqual([...max.subarray(4, 12)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
});

test("property: encode then decode is the identity, and the context is copied", () => {
  fc.assert(
    fc.property(confChangeArb, (cc) => {
      const bytes = encodeConfChange(cc);
      const decoded = decodeConfChange(bytes);
      assert.deepEqual(decoded, cc);
      if (cc.context.byteLength > 0) {
        bytes[bytes.byteLength - 1] = bytes[bytes.byteLength - 1]! ^ 0xff;
        assert.deepEqual(decoded.context, cc.context, "decoded context aliases the input buffer");
      }
    }),
  );
});

test("property: every proper prefix and every extension of an encoding is rejected", () => {
  fc.assert(
    fc.property(confChangeArb, fc.uint8Array({ minLength: 1, maxLength: 4 }), (cc, extra) => {
      const bytes = encodeConfChange(cc);
      for (let length = 0; length < bytes.byteLength; length++) {
        assert.throws(() => decodeConfChange(bytes.subarray(0, length)), ConfChangeDecodeError);
      }
      const extended = new Uint8Array([...bytes, ...extra]);
      assert.throws(() => decodeConfChange(extended), /trailing bytes/);
    }),
  );
});

test("codec: rejects each kind of malformed input with a clear error", () => {
  const cases: { bytes: number[]; error: RegExp }[] = [
    { bytes: [], error: /truncated input: missing version/ },
    { bytes: [2, 0, 0, 0], error: /unknown version 2/ },
    { bytes: [0, 0, 0, 0], error: /unknown version 0/ },
    { bytes: [1, 3, 0, 0], error: /unknown transition 3/ },
    { bytes: [1, 0, 1, 3, 1, 0], error: /unknown change type 3 in change 0/ },
    { bytes: [1, 0, 2, 0, 1], error: /truncated input: missing type of change 1/ },
    { bytes: [1, 0, 1, 0, 0x81], error: /truncated input: missing node id of change 0/ },
    { bytes: [1, 0, 0, 3, 1, 2], error: /context of 3 bytes, only 2 left/ },
    { bytes: [1, 0, 0, 0, 9], error: /1 trailing bytes/ },
    { bytes: [1, 0, 0x80, 0x00, 0], error: /change count at offset 2 is not in its shortest form/ },
    {
      bytes: [1, 0, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0],
      error: /node id of change 0 at offset 4 is longer than 8 bytes/,
    },
    {
      bytes: [1, 0, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0],
      error: /node id of change 0 at offset 4 exceeds the largest safe integer/,
    },
    // A huge count is read lazily: the input runs out long before anything large is allocated.
    { bytes: [1, 0, 0xff, 0xff, 0xff, 0x0f], error: /truncated input: missing type of change 0 at offset 6/ },
  ];
  for (const { bytes, error } of cases) {
    assert.throws(
      () => decodeConfChange(new Uint8Array(bytes)),
      (e: unknown) => e instanceof ConfChangeDecodeError && error.test(e.message),
      `${JSON.stringify(bytes)} should fail with ${String(error)}`,
    );
  }
});

test("codec: refuses to encode values it could not decode", () => {
  const base: ConfChange = { transition: ConfChangeTransition.Auto, changes: [], context: new Uint8Array() };
  assert.throws(
    () => encodeConfChange({ ...base, transition: 5 as ConfChangeTransition }),
    /unknown transition 5/,
  );
  assert.throws(
    () => encodeConfChange({ ...base, changes: [{ type: 9 as ConfChangeType, nodeId: 1 }] }),
    /unknown change type 9/,
  );
  for (const nodeId of [-1, 1.5, 2 ** 53, Number.NaN]) {
    assert.throws(() => encodeConfChange({ ...base, changes: [voter(nodeId)] }), /node id must be a safe/);
  }
});
