// etcd's Maintenance service against three in-process Concord members, driven by the `etcd3`
// npm client: Status on every member, HashKV equal on every member at the same revision (and
// different at another), the compaction and future-revision errors, a Snapshot stream that
// restores into a fresh store, MoveLeader (refused on a follower, done on the leader), Alarm
// and Defragment; after a split, HashKV, Snapshot and MoveLeader cover both ranges. Bounded
// polls; nothing asserts on timing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ServiceError } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import type { ISnapshotResponse } from "etcd3";
import { HashKVRequestSchema, Maintenance, type HashKVResponse } from "../../../src/api/etcd/gen/rpc_pb.js";
import { imageOfSnapshotFile } from "../../../src/api/etcd/snapshot-file.js";
import { ETCD_COMPATIBLE_VERSION } from "../../../src/api/etcd/maintenance-service.js";
import { rangeRequest } from "../../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../../src/kv/memory-engine.js";
import { MvccStore } from "../../../src/kv/store.js";
import { StateRole } from "../../../src/raft/types.js";
import { text, waitFor } from "../helpers.js";
import { rawClient } from "./harness.js";
import { MemberServers } from "./member-servers.js";

const servers = new MemberServers();

before(async () => {
  await servers.startFounders();
});

after(async () => {
  await servers.close();
});

/** HashKV through a plain grpc-js client: etcd3 1.1.2 cannot call it (it looks up a method it lacks). */
function hashKv(id: number, revision: bigint): Promise<HashKVResponse> {
  const client = rawClient(Maintenance, servers.member(id).endpoint);
  const call = (client as unknown as Record<string, (...args: unknown[]) => void>)["HashKV"]!.bind(client);
  return new Promise<HashKVResponse>((resolve, reject) => {
    call(
      create(HashKVRequestSchema, { revision }),
      (error: ServiceError | null, response: HashKVResponse) => {
        client.close();
        if (error === null) resolve(response);
        else reject(new Error(error.details));
      },
    );
  });
}

async function rejects(call: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(call, (error: Error) => {
    assert.ok(error.message.includes(message), `expected "${message}", got "${error.message}"`);
    return true;
  });
}

/**
 * Streams Maintenance.Snapshot from member `id`, checks etcdctl's framing and the exact
 * remaining bytes of every response, and restores the image into a fresh store.
 */
async function restoredSnapshot(id: number): Promise<MvccStore> {
  const stream = await servers.member(id).client.maintenance.snapshot();
  const responses: ISnapshotResponse[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (response) => responses.push(response));
    stream.on("end", () => resolve());
    stream.on("error", reject);
  });
  assert.ok(responses.length > 0);
  const blobs = responses.map((r) => new Uint8Array(r.blob));
  let remaining = blobs.reduce((sum, blob) => sum + blob.length, 0);
  for (const [i, response] of responses.entries()) {
    remaining -= blobs[i]!.length;
    assert.equal(response.remaining_bytes, String(remaining));
  }
  const file = Buffer.concat(blobs);
  assert.equal(file.length % 512, 32, "etcdctl's size check: a multiple of 512 plus a SHA-256");
  const store = new MvccStore(new MemoryOrderedKv());
  await store.restore([imageOfSnapshotFile(file)]);
  return store;
}

test("Status on every member: version, the same leader, indexes, term, data size", async () => {
  const leader = await servers.agreeOnLeader();
  await servers.member(1).db.put("status/k", "v");
  await servers.converge();
  for (const id of [1, 2, 3]) {
    const status = await servers.member(id).client.maintenance.status();
    assert.equal(status.version, ETCD_COMPATIBLE_VERSION);
    assert.equal(status.leader, String(leader));
    assert.equal(status.header?.member_id, String(id));
    assert.ok(Number(status.raftIndex) >= Number(status.raftAppliedIndex) - 0, JSON.stringify(status));
    assert.ok(Number(status.raftAppliedIndex) > 0);
    assert.ok(Number(status.raftTerm) > 0);
    assert.ok(Number(status.dbSize) > 0, "the data files have a size");
    assert.equal(status.isLearner, false);
    assert.deepEqual(status.errors ?? [], []);
  }
});

test("HashKV agrees on every member at one revision and differs at another; bad revisions fail", async () => {
  const db = servers.member(1).db;
  const first = await db.put("hash/a", "1");
  await db.put("hash/b", "2");
  await servers.converge();
  const hashes = async (revision: bigint) => Promise.all([1, 2, 3].map((id) => hashKv(id, revision)));
  const now = await hashes(0n);
  assert.equal(new Set(now.map((r) => r.hash)).size, 1, String(now.map((r) => r.hash)));
  assert.equal(new Set(now.map((r) => r.header?.revision)).size, 1);
  assert.equal(now[0]?.compactRevision, 0n);
  const earlier = await hashes(first.revision);
  assert.equal(new Set(earlier.map((r) => r.hash)).size, 1);
  assert.notEqual(earlier[0]?.hash, now[0]?.hash);

  await rejects(
    hashKv(2, db.host.replica(1)!.revision + 10n ** 15n),
    "etcdserver: mvcc: required revision is a future revision",
  );
  await db.compact(first.revision + 1n);
  await servers.converge();
  await rejects(hashKv(2, first.revision), "etcdserver: mvcc: required revision has been compacted");
});

test("Snapshot streams Concord's image in etcdctl's file framing with exact remaining bytes; it restores", async () => {
  const db = servers.member(1).db;
  for (let i = 0; i < 20; i++) await db.put(`snap/${i}`, "x".repeat(i * 50));
  await servers.converge();
  const store = await restoredSnapshot(2);
  const restored = store.range(rangeRequest({ key: new TextEncoder().encode("snap/19") }));
  assert.equal(text(restored.kvs[0]?.value), "x".repeat(19 * 50));
});

test("MoveLeader is refused on a follower and hands leadership over on the leader", async () => {
  const leader = await servers.agreeOnLeader();
  const target = [1, 2, 3].find((id) => id !== leader)!;
  await rejects(
    servers.member(target).client.maintenance.moveLeader({ targetID: String(target) }),
    "etcdserver: not leader",
  );
  await rejects(
    servers.member(leader).client.maintenance.moveLeader({ targetID: "12345" }),
    "etcdserver: bad leader transferee",
  );
  await servers.member(leader).client.maintenance.moveLeader({ targetID: String(target) });
  await waitFor(async () => (await servers.agreeOnLeader()) === target, "the target leads");
});

test("Alarm lists none and Defragment succeeds", async () => {
  const client = servers.member(3).client;
  const alarms = await client.maintenance.alarm({ action: "Get", memberID: "0", alarm: "None" });
  assert.deepEqual(alarms.alarms ?? [], []);
  const defragmented = await client.maintenance.defragment();
  assert.equal(defragmented.header?.member_id, "3");
});

// Last: the split stays for the rest of the file.
test("HashKV, Snapshot and MoveLeader cover every range: a write to a range split off changes the hash and is in the image; its leadership moves", async () => {
  const db = servers.member(1).db;
  await db.put("hashsplit/a", "1");
  const { right } = await db.ranges!.split(new TextEncoder().encode("hashsplit/m"));
  /** The hash every member answers once all agree (their route tables catch up with the split). */
  const agreed = async (): Promise<number> => {
    let hash = 0;
    await waitFor(async () => {
      const answers = await Promise.all([1, 2, 3].map((id) => hashKv(id, 0n)));
      hash = answers[0]!.hash;
      return answers.every((answer) => answer.hash === hash);
    }, "one HashKV on every member");
    return hash;
  };
  const before = await agreed();
  await db.put("hashsplit/x", "2");
  const after = await agreed();
  assert.notEqual(after, before, "the split-off range's write is hashed");

  // A snapshot holds both ranges, as one store of the whole keyspace without the route catalog.
  const store = await restoredSnapshot(2);
  const keys = store
    .range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) }))
    .kvs.map((kv) => text(kv.key) ?? "");
  assert.ok(keys.includes("hashsplit/a") && keys.includes("hashsplit/x"), keys.join(" "));
  assert.ok(!keys.some((key) => key.includes("concord/")), "no system key");
  assert.equal(store.bounds.end, null);

  // MoveLeader moves every range the member leads, not just range 1.
  const rightReplica = (id: number) => servers.member(id).db.host.replica(right.groupId)!;
  const leader = await servers.agreeOnLeader();
  await waitFor(() => rightReplica(leader).status().leader !== 0, "a leader of the new range");
  const rightLeader = rightReplica(leader).status().leader;
  if (rightLeader !== leader) await rightReplica(rightLeader).transferLeader(leader);
  const target = [1, 2, 3].find((id) => id !== leader)!;
  await servers.member(leader).client.maintenance.moveLeader({ targetID: String(target) });
  await waitFor(
    () => rightReplica(target).status().role === StateRole.Leader,
    "the new range's leadership on the target",
  );
});
