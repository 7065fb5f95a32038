// etcd's Cluster service against three in-process Concord members, driven by the `etcd3` npm
// client: MemberList shows every member's published name and URLs; MemberAdd records a
// learner that then joins (Concord.open with `join`, the id derived from its peer URL), is
// refused promotion while behind (asked on a follower: forwarded to the leader) and promoted
// once in sync; MemberUpdate and MemberRemove; etcd's errors for bad requests. Bounded polls.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { IMember } from "etcd3";
import { etcdClusterId } from "../../../src/api/etcd/context.js";
import { joinedMemberIdOf } from "../../../src/api/etcd/member-ids.js";
import { freePort } from "../../free-port.js";
import { waitFor } from "../helpers.js";
import { CLUSTER_ID, MemberServers } from "./member-servers.js";

const servers = new MemberServers();

before(async () => {
  await servers.startFounders();
});

after(async () => {
  await servers.close();
});

function summary(members: readonly IMember[] | undefined): string[] {
  return (members ?? [])
    .map(
      (m) =>
        `${m.name}|${(m.peerURLs ?? []).join(",")}|${(m.clientURLs ?? []).join(",")}|${m.isLearner === true}`,
    )
    .sort();
}

function expectedFounder(id: number): string {
  return `n${id}|http://${servers.peers.get(id)}|http://${servers.member(id).endpoint}|false`;
}

async function rejects(call: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(call, (error: Error) => {
    assert.ok(error.message.includes(message), `expected "${message}", got "${error.message}"`);
    return true;
  });
}

test("MemberList shows each member's name, peer and client URLs, on every member, with a truthful header", async () => {
  const founders = [1, 2, 3].map(expectedFounder).sort();
  for (const id of [1, 2, 3]) {
    const client = servers.member(id).client;
    await waitFor(
      async () =>
        JSON.stringify(summary((await client.cluster.memberList({})).members)) === JSON.stringify(founders),
      `member ${id} lists every published member`,
    );
    const response = await client.cluster.memberList({ linearizable: true });
    assert.equal(response.header?.member_id, String(id));
    assert.equal(response.header?.cluster_id, String(etcdClusterId(CLUSTER_ID)));
    assert.deepEqual((response.members ?? []).map((m) => m.ID).sort(), ["1", "2", "3"]);
  }
});

test("a learner is added, joins, is promoted once in sync, updated and removed", async () => {
  const leader = await servers.agreeOnLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const viaFollower = servers.member(follower).client;
  const peerPort = await freePort();
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const id = joinedMemberIdOf(etcdClusterId(CLUSTER_ID), [peerUrl]);

  const added = await viaFollower.cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true });
  assert.equal(added.member?.ID, String(id));
  assert.equal(added.member?.name, "");
  assert.equal(added.member?.isLearner, true);
  assert.ok(summary(added.members).includes(`|${peerUrl}||true`), JSON.stringify(added.members));
  await rejects(
    viaFollower.cluster.memberAdd({ peerURLs: [peerUrl] }),
    "etcdserver: Peer URLs already exists",
  );
  // Not started yet: its log is empty, so the leader refuses (asked on a follower, which forwards).
  await rejects(
    viaFollower.cluster.memberPromote({ ID: String(id) }),
    "etcdserver: can only promote a learner member which is in sync with leader",
  );

  const joinerPeers = new Map(servers.peers);
  joinerPeers.set(id, `127.0.0.1:${peerPort}`);
  const joiner = await servers.start(id, { joining: true, peers: joinerPeers });
  await waitFor(async () => {
    const list = await viaFollower.cluster.memberList({});
    return summary(list.members).includes(`n${id}|${peerUrl}|http://${joiner.endpoint}|true`);
  }, "the joined learner published its name and client URL");
  await servers.converge();
  await waitFor(async () => {
    try {
      await viaFollower.cluster.memberPromote({ ID: String(id) });
      return true;
    } catch (error) {
      if ((error as Error).message.includes("in sync with leader")) return false;
      throw error;
    }
  }, "the learner promoted once in sync");
  const promoted = await servers.member(leader).client.cluster.memberList({});
  assert.equal(promoted.members?.find((m) => m.ID === String(id))?.isLearner, false);
  await rejects(
    viaFollower.cluster.memberPromote({ ID: String(id) }),
    "etcdserver: can only promote a learner member",
  );

  const movedUrl = `http://127.0.0.1:${await freePort()}`;
  await rejects(
    viaFollower.cluster.memberUpdate({ ID: String(id), peerURLs: [`http://${servers.peers.get(1)}`] }),
    "etcdserver: Peer URLs already exists",
  );
  const updated = await viaFollower.cluster.memberUpdate({ ID: String(id), peerURLs: [movedUrl] });
  assert.ok(summary(updated.members).includes(`n${id}|${movedUrl}|http://${joiner.endpoint}|false`));

  const removed = await viaFollower.cluster.memberRemove({ ID: String(id) });
  assert.deepEqual(summary(removed.members), [1, 2, 3].map(expectedFounder).sort());
  await servers.stop(id);
  await rejects(viaFollower.cluster.memberRemove({ ID: String(id) }), "etcdserver: member not found");
});

test("bad requests fail with etcd's errors and change nothing", async () => {
  const client = servers.member(1).client;
  const before = summary((await client.cluster.memberList({})).members);
  await rejects(client.cluster.memberAdd({ peerURLs: [] }), "etcdserver: given member URLs are invalid");
  await rejects(
    client.cluster.memberAdd({ peerURLs: ["not a url"] }),
    "etcdserver: given member URLs are invalid",
  );
  await rejects(
    client.cluster.memberUpdate({ ID: "12345", peerURLs: ["http://127.0.0.1:9"] }),
    "etcdserver: member not found",
  );
  await rejects(client.cluster.memberPromote({ ID: "12345" }), "etcdserver: member not found");
  await rejects(client.cluster.memberPromote({ ID: "2" }), "etcdserver: can only promote a learner member");
  assert.deepEqual(summary((await client.cluster.memberList({})).members), before);
});
