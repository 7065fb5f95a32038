// Member records through a running three-node group: every member publishes its name and URLs
// into the replicated member table; a fourth joins as a learner (its record written first, as
// MemberAdd does), is refused promotion while behind and promoted once caught up; a member is
// removed; leadership is transferred on request and refused where it cannot be; and etcd's
// strict reconfiguration check, case by case.
import assert from "node:assert/strict";
import { test } from "node:test";
import { memberRemoveRequest, memberSetRequest } from "../../src/kv/members.js";
import { NotLeaderError } from "../../src/node/errors.js";
import {
  LeaderTransferError,
  LearnerNotReadyError,
  MemberNotLearnerError,
  checkPromotable,
  reconfigurationRefusal,
} from "../../src/node/members.js";
import type { Replica } from "../../src/node/replica.js";
import type { MemberRecord } from "../../src/node/types.js";
import { EMPTY_CONF_STATE } from "../../src/raft/types.js";
import { TestCluster, put, track, type Tracked } from "./harness.js";

const RANGE = 1;

async function answered<T>(cluster: TestCluster, promise: Promise<T>, what: string): Promise<T> {
  const tracked: Tracked<T> = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  if (tracked.error !== undefined) throw tracked.error as Error;
  return tracked.value as T;
}

async function failure(cluster: TestCluster, promise: Promise<unknown>, what: string): Promise<Error> {
  const tracked = track(promise);
  await cluster.runUntil(() => tracked.settled, what);
  assert.ok(tracked.error instanceof Error, `${what}: expected a failure`);
  return tracked.error;
}

function attributes(id: number) {
  return {
    name: `n${id}`,
    peerUrls: [`http://127.0.0.1:${2000 + id}`],
    clientUrls: [`http://127.0.0.1:${3000 + id}`],
  };
}

function record(id: number, isLearner = false): MemberRecord {
  return { id, ...attributes(id), isLearner };
}

function listed(replica: Replica): string {
  return JSON.stringify(replica.members());
}

test("members publish, join as learners, are promoted once in sync, and leave", async () => {
  const cluster = new TestCluster([1, 2, 3], { snapshotEntries: 4 });
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const leaderId = await cluster.elect(RANGE);
  const leader = () => cluster.replica(leaderId, RANGE);
  // Before anyone publishes, members show with empty names, as etcd shows unstarted ones.
  assert.deepEqual(
    leader().members(),
    [1, 2, 3].map((id) => ({ id, name: "", peerUrls: [], clientUrls: [], isLearner: false })),
  );
  for (const id of cluster.ids) cluster.replica(id, RANGE).publishMember(attributes(id));
  const everyone = JSON.stringify([record(1), record(2), record(3)]);
  await cluster.runUntil(
    () => cluster.ids.every((id) => listed(cluster.replica(id, RANGE)) === everyone),
    "every member's record on every replica",
  );
  for (let i = 0; i < 12; i++) await answered(cluster, leader().propose(put(`k${i}`, "v")), "a put");

  // MemberAdd: the record (peer URLs only), then the configuration change.
  await answered(
    cluster,
    leader().propose(
      memberSetRequest({ id: 4, name: "", peerUrls: ["http://127.0.0.1:2004"], clientUrls: [] }),
    ),
    "member 4's record",
  );
  // Member 4 is not running yet: its log is empty, so it cannot be promoted.
  const follower = cluster.ids.find((id) => id !== leaderId)!;
  await answered(cluster, cluster.replica(follower, RANGE).addLearner(4), "add learner 4");
  assert.deepEqual(leader().members().at(-1), {
    id: 4,
    name: "",
    peerUrls: ["http://127.0.0.1:2004"],
    clientUrls: [],
    isLearner: true,
  });
  const early = await failure(cluster, leader().promote(4), "promote a learner that is behind");
  assert.ok(early instanceof LearnerNotReadyError, String(early));
  assert.ok(
    (await failure(cluster, cluster.replica(follower, RANGE).promote(4), "promote on a follower")) instanceof
      NotLeaderError,
  );
  const notLearner = await failure(cluster, leader().promote(follower), "promote a voter");
  assert.ok(notLearner instanceof MemberNotLearnerError && notLearner.isMember, String(notLearner));

  const joiner = await cluster.startNode(4);
  const joined = joiner.createReplica(RANGE, { join: true });
  joined.publishMember(attributes(4));
  await cluster.waitApplied(RANGE, leader().appliedIndex);
  assert.ok(joiner.counters.snapshotsRestored > 0, "the learner was caught up by a snapshot");
  await cluster.runUntil(
    () => listed(joined) === JSON.stringify([record(1), record(2), record(3), record(4, true)]),
    "member 4 published its record, and it reached member 4",
  );
  const promoted = await answered(cluster, leader().promote(4), "promote member 4");
  assert.deepEqual([...promoted.voters].sort(), [1, 2, 3, 4]);
  assert.equal(leader().members().at(-1)?.isLearner, false);

  // MemberRemove: the configuration change, then the record.
  await answered(cluster, leader().removeNode(follower), "remove a follower");
  await cluster.stopNode(follower);
  await answered(cluster, leader().propose(memberRemoveRequest(follower)), "its record");
  const remaining = [1, 2, 3, 4].filter((id) => id !== follower).map((id) => record(id));
  await cluster.waitApplied(RANGE, leader().appliedIndex);
  assert.deepEqual(joined.members(), remaining);
  cluster.assertHealthy();
  await cluster.shutdown();
});

test("leadership moves to the named voter, and only the leader moves it", async () => {
  const cluster = new TestCluster([1, 2, 3]);
  await cluster.startAll();
  cluster.bootstrap(RANGE);
  const first = await cluster.elect(RANGE);
  const target = cluster.ids.find((id) => id !== first)!;
  const other = cluster.ids.find((id) => id !== first && id !== target)!;
  assert.ok(
    (await failure(
      cluster,
      cluster.replica(other, RANGE).transferLeader(target),
      "transfer on a follower",
    )) instanceof NotLeaderError,
  );
  const notVoter = await failure(
    cluster,
    cluster.replica(first, RANGE).transferLeader(9),
    "transfer to a stranger",
  );
  assert.ok(notVoter instanceof LeaderTransferError, String(notVoter));
  await answered(cluster, cluster.replica(first, RANGE).transferLeader(target), "transfer leadership");
  assert.equal(await cluster.elect(RANGE), target);
  await answered(
    cluster,
    cluster.replica(target, RANGE).propose(put("k", "v")),
    "a write under the new leader",
  );
  await cluster.shutdown();
});

test("a learner is promotable only within a tenth of the leader's log", () => {
  const conf = { ...EMPTY_CONF_STATE, voters: [1, 2], learners: [3] };
  const progress = (learnerMatch: number) =>
    new Map([
      [1, { match: 100, next: 101, state: "Replicate", recentActive: true }],
      [2, { match: 100, next: 101, state: "Replicate", recentActive: true }],
      [3, { match: learnerMatch, next: learnerMatch + 1, state: "Replicate", recentActive: true }],
    ]);
  assert.doesNotThrow(() => checkPromotable(RANGE, 1, conf, progress(90), 3));
  assert.throws(() => checkPromotable(RANGE, 1, conf, progress(89), 3), LearnerNotReadyError);
  assert.throws(
    () => checkPromotable(RANGE, 1, conf, progress(100), 7),
    (error: unknown) => error instanceof MemberNotLearnerError && !error.isMember,
  );
});

test("etcd's strict reconfiguration check: started members for a new voter, reachable quorum", () => {
  const conf = { ...EMPTY_CONF_STATE, voters: [1, 2, 3] };
  const named = (ids: number[]) => ids.map((id) => ({ id, name: `m${id}`, peerUrls: [], clientUrls: [] }));
  const everyoneUp = () => true;
  const allBut = (down: number) => (id: number) => id !== down;
  // Adding a 4th voter needs 3 started voters; a learner needs none.
  assert.equal(reconfigurationRefusal({ kind: "addVoter", id: 4 }, conf, named([1, 2, 3]), everyoneUp), null);
  assert.equal(
    reconfigurationRefusal({ kind: "addVoter", id: 4 }, conf, named([1, 2]), everyoneUp),
    "not-enough-started",
  );
  assert.equal(reconfigurationRefusal({ kind: "addLearner", id: 4 }, conf, [], everyoneUp), null);
  // The leader knows who is reachable: every voter must be, for a new voter.
  assert.equal(
    reconfigurationRefusal({ kind: "addVoter", id: 4 }, conf, named([1, 2, 3]), allBut(3)),
    "unhealthy",
  );
  // A follower does not know (null): only the started-members rule applies.
  assert.equal(reconfigurationRefusal({ kind: "addVoter", id: 4 }, conf, named([1, 2, 3]), null), null);
  assert.equal(reconfigurationRefusal({ kind: "remove", id: 2 }, conf, [], null), null);
  // Removing a voter: the reachable voters left must be a quorum of those left.
  assert.equal(reconfigurationRefusal({ kind: "remove", id: 3 }, conf, [], allBut(3)), null);
  assert.equal(reconfigurationRefusal({ kind: "remove", id: 2 }, conf, [], allBut(3)), "unhealthy");
  assert.equal(reconfigurationRefusal({ kind: "remove", id: 9 }, conf, [], allBut(3)), null);
});
