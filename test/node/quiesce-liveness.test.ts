// PeerLiveness, the bookkeeping of the node-level liveness rule: followers wait on their
// leader's node, and are handed back once that node has been silent for the whole window
// (counted in this node's ticks); a peer sent a Raft message in an interval is owed no
// liveness message for it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PeerLiveness, livenessIntervalTicks, livenessMessage } from "../../src/node/quiesce.js";
import { MessageType } from "../../src/raft/types.js";

test("followers of a silent leader node are woken once; those of a heard one are not", () => {
  const liveness = new PeerLiveness<string>(10);
  liveness.heard(2, 0);
  liveness.heard(3, 0);
  liveness.follows("range 1", 2);
  liveness.follows("range 2", 2);
  liveness.follows("range 3", 3);
  assert.deepEqual(liveness.silentLeaderFollowers(9), []);
  liveness.heard(3, 9);
  assert.deepEqual(liveness.silentLeaderFollowers(10), ["range 1", "range 2"]);
  assert.deepEqual(liveness.silentLeaderFollowers(15), [], "handed back once");
  assert.deepEqual(liveness.silentLeaderFollowers(19), ["range 3"]);
});

test("a follower forgotten or moved to another leader is not woken for the old one", () => {
  const liveness = new PeerLiveness<string>(10);
  liveness.heard(2, 0);
  liveness.heard(3, 50);
  liveness.follows("moved", 2);
  liveness.follows("moved", 3);
  liveness.follows("awake", 2);
  liveness.forget("awake");
  liveness.forget("never followed");
  assert.deepEqual(liveness.silentLeaderFollowers(55), []);
});

test("a leader never heard from counts as silent; peers are those heard from or sent to", () => {
  const liveness = new PeerLiveness<string>(10);
  liveness.follows("orphan", 4);
  assert.deepEqual(liveness.silentLeaderFollowers(0), ["orphan"]);
  liveness.addPeer(5);
  liveness.heard(6, 0);
  assert.deepEqual(liveness.owedLiveness().sort(), [5, 6]);
  assert.throws(() => new PeerLiveness(0), /positive number of ticks/);
  assert.throws(() => new PeerLiveness(2.5), /positive number of ticks/);
  const m = livenessMessage(1, 5);
  assert.equal(m.type, MessageType.Heartbeat);
  assert.equal(m.term, 0);
  assert.deepEqual([m.from, m.to], [1, 5]);
});

test("a peer sent a Raft message in an interval is owed no liveness message for that interval", () => {
  const liveness = new PeerLiveness<string>(10);
  liveness.addPeer(2);
  liveness.addPeer(3);
  liveness.spokeTo(3);
  liveness.spokeTo(4);
  assert.deepEqual(liveness.owedLiveness(), [2]);
  assert.deepEqual(liveness.owedLiveness().sort(), [2, 3, 4], "each interval starts owing everyone");
});

test("four liveness intervals per election timeout, never less than a tick", () => {
  assert.deepEqual([1, 3, 4, 10, 11, 40].map(livenessIntervalTicks), [1, 1, 1, 2, 2, 10]);
});
