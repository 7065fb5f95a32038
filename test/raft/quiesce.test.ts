// The core's quiesce rules: a leader quiesces only with nothing in flight and every follower
// caught up; a follower quiesces only on its leader's quiesce heartbeat at its own term with a
// log ending at the leader's commit; a quiesced core ignores ticks; any other input wakes it;
// a woken leader's lease is gone until a fresh heartbeat round.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUIESCE_CONTEXT } from "../../src/raft/raft.js";
import { message, MessageType } from "../../src/raft/types.js";
import { Interaction } from "./interaction.js";

/** Three nodes, 1 elected and everything replicated, committed and applied. */
function settledCluster(options = ""): Interaction {
  const it = new Interaction();
  it.run(`add-nodes 3 voters=(1,2,3) index=10 ${options}`);
  it.run("campaign 1");
  it.run("stabilize");
  return it;
}

function raw(it: Interaction, id: number) {
  return it.nodes.get(id)!.raw;
}

function quiescedNodes(it: Interaction): number[] {
  return [...it.nodes.values()].filter((n) => n.raw.quiesced).map((n) => n.id);
}

test("a caught-up leader quiesces its followers with one heartbeat each, and they do not answer", () => {
  const it = settledCluster();
  // This tick's plain heartbeats are superseded: their answers would wake the leader again.
  it.run("tick-heartbeat 1");
  assert.equal(raw(it, 1).quiesce(), true);
  const out = it.run("stabilize");
  const heartbeats = out.split("\n").filter((line) => / Heartbeat /.test(line));
  assert.ok(heartbeats.length > 0);
  assert.ok(
    heartbeats.every((line) => line.endsWith('ctx="q"')),
    heartbeats.join("\n"),
  );
  assert.match(out, /1->2 Heartbeat term=1 .*ctx="q"/);
  assert.match(out, /1->3 Heartbeat term=1 .*ctx="q"/);
  assert.doesNotMatch(out, /HeartbeatResp/);
  assert.deepEqual(quiescedNodes(it), [1, 2, 3]);
  // Ticks change nothing: no heartbeat, no election, however many go by.
  for (const id of [1, 2, 3]) it.run(`tick ${id} 50`);
  assert.equal(it.run("stabilize"), "");
  assert.equal(
    it.run("raft-state"),
    "1: leader term=1 lead=1\n2: follower term=1 lead=1\n3: follower term=1 lead=1",
  );
});

test("a leader does not quiesce while anything is in flight", () => {
  const it = settledCluster();
  // An entry not yet replicated.
  it.run("propose 1 a");
  it.run("process-ready 1");
  assert.equal(raw(it, 1).quiesce(), false);
  it.run("stabilize");
  // Committed on the leader, but does every follower match? stabilize brought them all up.
  assert.equal(raw(it, 1).quiesce(), true);
  it.run("stabilize");

  // A pending read.
  const reading = settledCluster();
  reading.run("read-index 1 r1");
  assert.equal(raw(reading, 1).quiesce(), false);
  reading.run("stabilize");
  assert.equal(raw(reading, 1).quiesce(), true);

  // A follower that missed an entry.
  const lagging = settledCluster();
  lagging.run("isolate 3");
  lagging.run("propose 1 b");
  lagging.run("stabilize");
  assert.equal(raw(lagging, 1).quiesce(), false);
  lagging.run("heal");
  lagging.run("tick-heartbeat 1");
  lagging.run("stabilize");
  assert.equal(raw(lagging, 1).quiesce(), true);

  // Followers and candidates never quiesce on their own.
  assert.equal(raw(lagging, 2).quiesce(), false);
});

test("the quiesce marker cannot be used as a read context", () => {
  const it = settledCluster();
  assert.throws(() => raw(it, 1).readIndex(QUIESCE_CONTEXT), /reserved for quiesce heartbeats/);
  assert.equal(it.run("stabilize"), "", "nothing was queued");
});

test("a follower quiesces only from its leader's heartbeat at its term, with its log at the leader's commit", () => {
  const it = settledCluster();
  assert.equal(raw(it, 1).quiesce(), true);
  // Keep the quiesce heartbeats back; the leader wakes and appends an entry the followers get.
  const held = it.run("process-ready 1");
  assert.match(held, /ctx="q"/);
  const quiesceTo2 = message({
    type: MessageType.Heartbeat,
    from: 1,
    to: 2,
    term: 1,
    commit: 11,
    logTerm: 1,
    index: 1,
    context: QUIESCE_CONTEXT,
  });
  it.run("deliver-msgs drop=true");
  it.run("propose 1 c");
  it.run("process-ready 1");
  it.run("deliver-msgs 2 3");
  it.run("process-ready 2 3");
  // The stale quiesce heartbeat (commit 11) reaches a follower whose log ends at 12: it answers
  // as to any heartbeat and keeps ticking.
  raw(it, 2).step(quiesceTo2);
  assert.equal(raw(it, 2).quiesced, false);
  const answer = it.run("process-ready 2");
  assert.match(answer, /2->1 HeartbeatResp term=1/);
  assert.doesNotMatch(answer, /2->1 HeartbeatResp.*ctx/);

  // After a leadership change, the old leader's quiesce heartbeat (an older term) is refused
  // like any stale heartbeat; the new leader's quiesces.
  it.run("stabilize");
  it.run("transfer-leader 1 2");
  it.run("stabilize");
  assert.match(it.run("raft-state"), /2: leader term=2/);
  raw(it, 3).step({ ...quiesceTo2, to: 3, term: 1, commit: 13 });
  assert.equal(raw(it, 3).quiesced, false);
  assert.match(it.run("process-ready 3"), /3->1 AppResp term=2/);
  assert.equal(raw(it, 2).quiesce(), true);
  it.run("stabilize");
  assert.deepEqual(quiescedNodes(it), [1, 2, 3]);
});

test("any input wakes a quiesced node, and a woken follower's election timer runs again", () => {
  const it = settledCluster();
  raw(it, 1).quiesce();
  it.run("stabilize");
  assert.deepEqual(quiescedNodes(it), [1, 2, 3]);

  // A message (here a pre-vote from 3, which 2 ignores: it heard from its leader recently).
  raw(it, 3).unquiesce();
  it.run("tick 3 40");
  const campaign = it.run("stabilize 3");
  assert.match(campaign, /3->2 PreVote/);
  it.run("deliver-msgs 2");
  assert.equal(raw(it, 2).quiesced, false);
  assert.equal(raw(it, 1).quiesced, true);

  // A local request wakes the leader, and so does a snapshot report; an unreachable report
  // does not (transports repeat it while a peer is down; nothing is in flight to resend).
  it.run("propose 1 d");
  assert.equal(raw(it, 1).quiesced, false);
  it.run("stabilize");
  assert.equal(raw(it, 1).quiesce(), true);
  raw(it, 1).reportUnreachable(2);
  assert.equal(raw(it, 1).quiesced, true);
  raw(it, 1).reportSnapshot(2, false);
  assert.equal(raw(it, 1).quiesced, false);

  // The caller's unquiesce (its liveness rule) lets a follower's election timer run.
  const alone = settledCluster();
  raw(alone, 1).quiesce();
  alone.run("stabilize");
  alone.run("isolate 1");
  alone.run("tick 2 40");
  assert.equal(alone.run("stabilize 2"), "", "a quiesced follower never campaigns");
  raw(alone, 2).unquiesce();
  alone.run("tick 2 40");
  assert.match(alone.run("stabilize 2 3"), /2->3 PreVote/);
});

test("a woken leader serves no lease read before a fresh heartbeat round", () => {
  const it = settledCluster("read-only=lease");
  it.run("tick-heartbeat 1");
  it.run("stabilize");
  it.run("read-index 1 before");
  assert.match(
    it.run("process-ready 1"),
    /ReadState index=11 ctx=before/,
    "the lease holds before quiescing",
  );
  it.run("stabilize");
  assert.equal(raw(it, 1).quiesce(), true);
  it.run("stabilize");
  raw(it, 1).unquiesce();
  it.run("read-index 1 after");
  const out = it.run("process-ready 1");
  assert.doesNotMatch(out, /ReadState/);
  assert.match(out, /1->2 Heartbeat .*ctx="after"/);
  assert.match(it.run("stabilize"), /ReadState index=11 ctx=after/);
});

test("answers to heartbeats sent before quiescing do not renew the woken leader's lease", () => {
  const it = settledCluster("read-only=lease");
  it.run("tick-heartbeat 1");
  it.run("process-ready 1");
  it.run("deliver-msgs 2 3");
  // The followers' answers stay on the wire while the leader quiesces.
  it.run("process-ready 2 3");
  assert.equal(raw(it, 1).quiesce(), true);
  it.run("process-ready 1");
  // Much later (tick time stood still), the old answers arrive and wake the leader.
  assert.match(it.run("deliver-msgs 1"), /2->1 HeartbeatResp/);
  assert.equal(raw(it, 1).quiesced, false);
  it.run("read-index 1 late");
  assert.doesNotMatch(it.run("process-ready 1"), /ReadState/, "no lease from answers older than the quiesce");
});
