// The etcd Watch and Lease services (and KV through a follower) on a three-member Concord
// cluster in this process, driven by the real `etcd3` client and, where exact wire behaviour
// matters (created / canceled responses, watch ids, progress), by a raw grpc-js client built
// from the generated descriptors. Lease keep-alive and time-to-live asked of a follower are
// forwarded to the leader. Waits are bounded polls; nothing asserts on timing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import type { Etcd3, IKeyValue } from "etcd3";
import {
  Watch,
  WatchCancelRequestSchema,
  WatchCreateRequestSchema,
  WatchProgressRequestSchema,
  WatchRequestSchema,
  type WatchRequest,
  type WatchResponse,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { text, waitFor } from "../helpers.js";
import { EtcdCluster, rawClient, within } from "./harness.js";

let cluster: EtcdCluster;
let leaderId: number;
let followerId: number;
let onLeader: Etcd3;
let onFollower: Etcd3;

before(async () => {
  cluster = await EtcdCluster.start(3);
  leaderId = await cluster.leaderId();
  followerId = await cluster.followerId();
  onLeader = cluster.client(leaderId);
  onFollower = cluster.client(followerId);
});

after(async () => {
  await cluster.close();
});

test("writes through a follower are read linearizably on every member", async () => {
  const put = await onFollower.put("c/k").value("v1").exec();
  assert.equal(put.header.member_id, String(followerId));
  for (const id of cluster.members.keys()) {
    const response = await cluster.client(id).get("c/k").exec();
    assert.equal(response.kvs[0]?.value.toString(), "v1");
    assert.ok(BigInt(response.header.revision) >= BigInt(put.header.revision));
  }
});

test("a watch on a follower gets puts and deletes with previous values, and replays from a revision", async () => {
  const seen: string[] = [];
  const watcher = await onFollower.watch().prefix("w/").withPreviousKV().create();
  const describe = (kind: string, kv: IKeyValue, previous?: IKeyValue) =>
    `${kind} ${kv.key.toString()}=${kv.value.toString()} prev=${previous?.value.toString() ?? "-"}`;
  watcher.on("put", (kv, previous) => seen.push(describe("put", kv, previous)));
  watcher.on("delete", (kv, previous) => seen.push(describe("delete", kv, previous)));
  const first = await onLeader.put("w/a").value("1").exec();
  await onLeader.put("w/a").value("2");
  await onLeader.delete().key("w/a");
  await waitFor(() => seen.length >= 3, "three watch events");
  assert.deepEqual(seen, ["put w/a=1 prev=-", "put w/a=2 prev=1", "delete w/a= prev=2"]);
  await watcher.cancel();

  const replayed: string[] = [];
  const fromFirst = await onFollower.watch().key("w/a").startRevision(first.header.revision).create();
  fromFirst.on("put", (kv) => replayed.push(`put ${kv.value.toString()} @${kv.mod_revision}`));
  fromFirst.on("delete", () => replayed.push("delete"));
  await waitFor(() => replayed.length >= 3, "the replayed events");
  assert.equal(replayed[0], `put 1 @${first.header.revision}`);
  assert.deepEqual(replayed.slice(1), [replayed[1], "delete"]);
  await fromFirst.cancel();
});

type WatchCall = ClientDuplexStream<WatchRequest, WatchResponse>;

/** A raw Watch stream on `memberId` and the responses it has received. */
function rawWatch(memberId: number): { stream: WatchCall; responses: WatchResponse[]; close: () => void } {
  const client = rawClient(Watch, cluster.endpoint(memberId));
  const stream = (client as unknown as { Watch(): WatchCall }).Watch();
  const responses: WatchResponse[] = [];
  stream.on("data", (response: WatchResponse) => responses.push(response));
  stream.on("error", () => {});
  return {
    stream,
    responses,
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

test("the watch stream: created responses, chosen and assigned ids, cancel, progress, refusals", async () => {
  const { stream, responses, close } = rawWatch(followerId);
  try {
    const createRequest = (fields: Parameters<typeof create<typeof WatchCreateRequestSchema>>[1]) =>
      create(WatchRequestSchema, {
        requestUnion: { case: "createRequest", value: create(WatchCreateRequestSchema, fields) },
      });
    stream.write(createRequest({ key: Buffer.from("r/a"), watchId: 7n }));
    stream.write(createRequest({ key: Buffer.from("r/b") }));
    stream.write(createRequest({ key: Buffer.from("r/c"), watchId: 7n }));
    stream.write(createRequest({ key: Buffer.from("r/z"), rangeEnd: Buffer.from("r/a") }));
    await waitFor(() => responses.length >= 4, "four created responses");
    assert.deepEqual(
      responses.slice(0, 4).map((r) => [r.watchId, r.created, r.canceled]),
      [
        [7n, true, false],
        [0n, true, false],
        [-1n, true, true],
        [-1n, true, true],
      ],
    );
    assert.equal(responses[2]?.cancelReason, "mvcc: duplicate watch ID provided on the WatchStream");
    assert.equal(responses[0]?.header?.memberId, BigInt(followerId));

    const put = await onLeader.put("r/a").value("x").exec();
    await waitFor(() => responses.some((r) => r.events.length > 0), "an event");
    const event = responses.find((r) => r.events.length > 0);
    assert.equal(event?.watchId, 7n);
    assert.equal(text(event?.events[0]?.kv?.value), "x");
    assert.equal(event?.header?.revision, BigInt(put.header.revision));

    const before = responses.length;
    stream.write(
      create(WatchRequestSchema, {
        requestUnion: { case: "progressRequest", value: create(WatchProgressRequestSchema) },
      }),
    );
    await waitFor(() => responses.length >= before + 2, "a progress response per watch");
    for (const progress of responses.slice(before)) {
      assert.equal(progress.events.length, 0);
      assert.ok((progress.header?.revision ?? 0n) >= BigInt(put.header.revision));
    }

    stream.write(
      create(WatchRequestSchema, {
        requestUnion: { case: "cancelRequest", value: create(WatchCancelRequestSchema, { watchId: 7n }) },
      }),
    );
    await waitFor(() => responses.some((r) => r.canceled && r.watchId === 7n), "the cancel response");
    const afterCancel = responses.length;
    await onLeader.put("r/a").value("y");
    await onLeader.put("r/b").value("y");
    await waitFor(() => responses.some((r) => r.watchId === 0n && r.events.length > 0), "watch 0's event");
    assert.ok(
      responses.slice(afterCancel).every((r) => r.watchId !== 7n),
      "nothing for the cancelled watch",
    );
  } finally {
    close();
  }
});

test("a watch from a compacted revision is cancelled with the compact revision", async () => {
  const old = await onLeader.put("wc/k").value("1").exec();
  const latest = await onLeader.put("wc/k").value("2").exec();
  await onLeader.kv.compact({ revision: latest.header.revision, physical: true });
  // The compaction moves no revision: the follower has applied it once its applied index
  // reaches the leader's (a follower may hold `latest` and not yet the compaction).
  const compactedAt = (await cluster.member(leaderId).status()).applied;
  const { stream, responses, close } = rawWatch(followerId);
  try {
    await waitFor(
      async () => (await cluster.member(followerId).status()).applied >= compactedAt,
      "the follower to apply the compaction",
    );
    stream.write(
      create(WatchRequestSchema, {
        requestUnion: {
          case: "createRequest",
          value: create(WatchCreateRequestSchema, {
            key: Buffer.from("wc/k"),
            startRevision: BigInt(old.header.revision),
          }),
        },
      }),
    );
    await waitFor(() => responses.some((r) => r.canceled), "the cancellation");
    const canceled = responses.find((r) => r.canceled);
    assert.ok((canceled?.compactRevision ?? 0n) > BigInt(old.header.revision));
  } finally {
    close();
  }
});

test("leases: grant and keep alive through a follower, time to live with keys, revoke deletes the keys", async () => {
  const lease = onFollower.lease(30, { autoKeepAlive: false });
  const id = await lease.grant();
  await lease.put("l/a").value("1");
  await lease.put("l/b").value("2");
  const kept = await lease.keepaliveOnce();
  assert.equal(kept.TTL, "30");
  const ttl = await onFollower.leaseClient.leaseTimeToLive({ ID: id, keys: true });
  assert.equal(ttl.grantedTTL, "30");
  assert.ok(Number(ttl.TTL) > 0 && Number(ttl.TTL) <= 30);
  assert.deepEqual(ttl.keys.map((key) => key.toString()).sort(), ["l/a", "l/b"]);
  const listed = await onFollower.leaseClient.leaseLeases({});
  assert.ok(listed.leases.some((l) => l.ID === id));
  const attached = await onLeader.get("l/a").exec();
  assert.equal(attached.kvs[0]?.lease, id);

  await lease.revoke();
  assert.equal(await onFollower.getAll().prefix("l/").count(), 0);
  const gone = await onFollower.leaseClient.leaseTimeToLive({ ID: id });
  assert.equal(gone.TTL, "-1");
  await assert.rejects(onFollower.leaseClient.leaseRevoke({ ID: id }), /requested lease not found/);
});

test("a keep-alive of an unknown lease answers TTL 0", async () => {
  const followerLease = onFollower.lease(5, { autoKeepAlive: false });
  const id = await followerLease.grant();
  await followerLease.revoke();
  const stream = await onFollower.leaseClient.leaseKeepAlive();
  try {
    const answer = new Promise<{ ID: string; TTL: string }>((resolve) => stream.on("data", resolve));
    stream.write({ ID: id });
    const response = await within(answer, "the keep-alive answer");
    assert.equal(response.ID, id);
    assert.equal(response.TTL, "0");
  } finally {
    stream.end();
  }
});
