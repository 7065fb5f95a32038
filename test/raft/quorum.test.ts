// Quorum arithmetic: committed indexes and vote results for majority and joint configurations.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  VoteResult,
  jointCommittedIndex,
  jointVoteResult,
  jointVoterIds,
  majorityCommittedIndex,
  majorityVoteResult,
} from "../../src/raft/quorum.js";
import type { JointConfig } from "../../src/raft/quorum.js";
import type { NodeId } from "../../src/raft/types.js";

/** Acks from a sparse map: ids without an entry have not acknowledged anything. */
function ackedFrom(acks: ReadonlyMap<NodeId, number>): (id: NodeId) => number | undefined {
  return (id) => acks.get(id);
}

test("majorityCommittedIndex is the largest index acked by a majority", () => {
  const cases: { voters: NodeId[]; acks: [NodeId, number][]; want: number }[] = [
    { voters: [], acks: [], want: Infinity },
    { voters: [1], acks: [], want: 0 },
    { voters: [1], acks: [[1, 12]], want: 12 },
    { voters: [1, 2], acks: [[1, 5]], want: 0 },
    {
      voters: [1, 2],
      acks: [
        [1, 5],
        [2, 3],
      ],
      want: 3,
    },
    { voters: [1, 2, 3], acks: [[1, 5]], want: 0 },
    {
      voters: [1, 2, 3],
      acks: [
        [1, 5],
        [2, 5],
      ],
      want: 5,
    },
    {
      voters: [1, 2, 3],
      acks: [
        [1, 5],
        [2, 3],
        [3, 1],
      ],
      want: 3,
    },
    {
      voters: [1, 2, 3],
      acks: [
        [1, 1],
        [2, 3],
        [3, 5],
      ],
      want: 3,
    },
    {
      voters: [1, 2, 3, 4],
      acks: [
        [1, 8],
        [2, 6],
        [3, 4],
        [4, 2],
      ],
      want: 4,
    },
    {
      voters: [1, 2, 3, 4, 5],
      acks: [
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
        [5, 5],
      ],
      want: 3,
    },
    // Acks from non-voters (learners) change nothing.
    {
      voters: [1, 2, 3],
      acks: [
        [1, 9],
        [4, 9],
        [5, 9],
      ],
      want: 0,
    },
    // Larger than the allocation-free fast path.
    {
      voters: [1, 2, 3, 4, 5, 6, 7, 8, 9],
      acks: [
        [1, 9],
        [2, 8],
        [3, 7],
        [4, 6],
        [5, 5],
        [6, 4],
      ],
      want: 5,
    },
  ];
  for (const { voters, acks, want } of cases) {
    const got = majorityCommittedIndex(new Set(voters), ackedFrom(new Map(acks)));
    assert.equal(got, want, `voters=${JSON.stringify(voters)} acks=${JSON.stringify(acks)}`);
  }
});

test("majorityCommittedIndex stays correct when the acked callback itself computes a quorum", () => {
  const inner = new Set([7, 8, 9]);
  const innerAcks = new Map([
    [7, 40],
    [8, 30],
    [9, 20],
  ]);
  const outer = new Map([
    [1, 1],
    [2, 2],
    [3, 3],
  ]);
  const got = majorityCommittedIndex(new Set([1, 2, 3]), (id) => {
    // Recomputing with the same scratch space must not disturb the outer computation.
    assert.equal(majorityCommittedIndex(inner, ackedFrom(innerAcks)), 30);
    return outer.get(id);
  });
  assert.equal(got, 2);
});

test("majorityVoteResult: won with a majority of grants, lost once a majority is out of reach", () => {
  const cases: { voters: NodeId[]; votes: [NodeId, boolean][]; want: VoteResult }[] = [
    { voters: [], votes: [], want: VoteResult.Won },
    { voters: [1], votes: [], want: VoteResult.Pending },
    { voters: [1], votes: [[1, true]], want: VoteResult.Won },
    { voters: [1], votes: [[1, false]], want: VoteResult.Lost },
    { voters: [1, 2], votes: [[1, true]], want: VoteResult.Pending },
    {
      voters: [1, 2],
      votes: [
        [1, true],
        [2, false],
      ],
      want: VoteResult.Lost,
    },
    {
      voters: [1, 2],
      votes: [
        [1, true],
        [2, true],
      ],
      want: VoteResult.Won,
    },
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [2, false],
      ],
      want: VoteResult.Pending,
    },
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [2, true],
      ],
      want: VoteResult.Won,
    },
    {
      voters: [1, 2, 3],
      votes: [
        [1, false],
        [2, false],
      ],
      want: VoteResult.Lost,
    },
    {
      voters: [1, 2, 3, 4],
      votes: [
        [1, true],
        [2, true],
        [3, false],
      ],
      want: VoteResult.Pending,
    },
    {
      voters: [1, 2, 3, 4],
      votes: [
        [1, true],
        [2, false],
        [3, false],
      ],
      want: VoteResult.Lost,
    },
    // Votes from nodes outside the configuration are ignored.
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [4, true],
        [5, true],
      ],
      want: VoteResult.Pending,
    },
  ];
  for (const { voters, votes, want } of cases) {
    const got = majorityVoteResult(new Set(voters), new Map(votes));
    assert.equal(got, want, `voters=${JSON.stringify(voters)} votes=${JSON.stringify(votes)}`);
  }
});

test("jointCommittedIndex is the smaller of the two halves; an empty half does not constrain", () => {
  const acks = new Map([
    [1, 10],
    [2, 10],
    [3, 4],
    [4, 2],
    [5, 1],
  ]);
  const joint = (incoming: NodeId[], outgoing: NodeId[]): number =>
    jointCommittedIndex([new Set(incoming), new Set(outgoing)], ackedFrom(acks));
  assert.equal(joint([1, 2, 3], []), 10);
  assert.equal(joint([], [1, 2, 3]), 10);
  assert.equal(joint([], []), Infinity);
  assert.equal(joint([1, 2, 3], [3, 4, 5]), 2);
  assert.equal(joint([3, 4, 5], [1, 2, 3]), 2);
  assert.equal(joint([1, 2], [1, 2, 3]), 10);
});

test("jointVoteResult needs both halves to win; either losing loses", () => {
  const won: [NodeId, boolean][] = [
    [1, true],
    [2, true],
  ];
  const cases: { incoming: NodeId[]; outgoing: NodeId[]; votes: [NodeId, boolean][]; want: VoteResult }[] = [
    { incoming: [1, 2, 3], outgoing: [], votes: won, want: VoteResult.Won },
    { incoming: [1, 2, 3], outgoing: [], votes: [[1, true]], want: VoteResult.Pending },
    { incoming: [], outgoing: [], votes: [], want: VoteResult.Won },
    { incoming: [1, 2, 3], outgoing: [1, 2, 4], votes: won, want: VoteResult.Won },
    { incoming: [1, 2, 3], outgoing: [4, 5, 6], votes: won, want: VoteResult.Pending },
    {
      incoming: [1, 2, 3],
      outgoing: [4, 5, 6],
      votes: [...won, [4, false], [5, false]],
      want: VoteResult.Lost,
    },
    {
      incoming: [4, 5, 6],
      outgoing: [1, 2, 3],
      votes: [
        [4, true],
        [1, false],
        [2, false],
      ],
      want: VoteResult.Lost,
    },
    { incoming: [1, 2, 3], outgoing: [3, 4, 5], votes: [[3, true]], want: VoteResult.Pending },
  ];
  for (const { incoming, outgoing, votes, want } of cases) {
    const got = jointVoteResult([new Set(incoming), new Set(outgoing)], new Map(votes));
    assert.equal(got, want, `incoming=${JSON.stringify(incoming)} outgoing=${JSON.stringify(outgoing)}`);
  }
});

test("jointVoterIds is the union of both halves", () => {
  const config: JointConfig = [new Set([1, 2, 3]), new Set([3, 4])];
  assert.deepEqual([...jointVoterIds(config)].sort(), [1, 2, 3, 4]);
  assert.deepEqual([...jointVoterIds([new Set(), new Set()])], []);
});

const voterSet = fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 9 }).map((ids) => new Set(ids));
/** Acks for a subset of the possible ids; the rest are missing. */
const ackMap = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 12 })
  .map((pairs) => new Map(pairs));

test("property: the majority committed index is acked by a majority, and no larger index is", () => {
  fc.assert(
    fc.property(
      voterSet.filter((s) => s.size > 0),
      ackMap,
      (voters, acks) => {
        const committed = majorityCommittedIndex(voters, ackedFrom(acks));
        const quorum = Math.floor(voters.size / 2) + 1;
        const ackedAtLeast = (index: number): number =>
          [...voters].filter((id) => (acks.get(id) ?? 0) >= index).length;
        assert.ok(ackedAtLeast(committed) >= quorum, "committed index lacks a majority");
        assert.ok(ackedAtLeast(committed + 1) < quorum, "a larger index also has a majority");
      },
    ),
  );
});

test("property: the joint committed index is at most each half's, and equals the smaller one", () => {
  fc.assert(
    fc.property(voterSet, voterSet, ackMap, (incoming, outgoing, acks) => {
      const acked = ackedFrom(acks);
      const joint = jointCommittedIndex([incoming, outgoing], acked);
      const inIndex = majorityCommittedIndex(incoming, acked);
      const outIndex = majorityCommittedIndex(outgoing, acked);
      assert.ok(joint <= inIndex && joint <= outIndex);
      assert.ok(joint === inIndex || joint === outIndex);
    }),
  );
});

test("property: the majority vote result follows from counting grants and missing votes", () => {
  const voteMap = fc
    .array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean()), { maxLength: 12 })
    .map((pairs) => new Map(pairs));
  fc.assert(
    fc.property(
      voterSet.filter((s) => s.size > 0),
      voteMap,
      (voters, votes) => {
        const quorum = Math.floor(voters.size / 2) + 1;
        const granted = [...voters].filter((id) => votes.get(id) === true).length;
        const missing = [...voters].filter((id) => !votes.has(id)).length;
        const want =
          granted >= quorum
            ? VoteResult.Won
            : granted + missing >= quorum
              ? VoteResult.Pending
              : VoteResult.Lost;
        assert.equal(majorityVoteResult(voters, votes), want);
      },
    ),
  );
});
