// etcd's Cluster service handlers on a member whose applied membership lags the committed one
// (a follower that has not yet applied a change another member acknowledged): add, remove,
// update and promote judge the request by the membership after a ReadIndex, as etcd judges a
// change by the committed membership. The member is a stand-in: its view becomes the committed
// one when a linearizable read is asked of it, and it records what the handlers propose.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { clusterService } from "../../../src/api/etcd/cluster-service.js";
import type { EtcdContext } from "../../../src/api/etcd/context.js";
import {
  MemberAddRequestSchema,
  MemberPromoteRequestSchema,
  MemberRemoveRequestSchema,
  MemberUpdateRequestSchema,
  ResponseHeaderSchema,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import type { UnaryHandler } from "../../../src/api/etcd/grpc-server.js";
import type { MemberRecord } from "../../../src/node/types.js";

const founder = (id: number): MemberRecord => ({
  id,
  name: `n${id}`,
  peerUrls: [`http://127.0.0.1:${2380 + id}`],
  clientUrls: [`http://127.0.0.1:${2379 + 10 * id}`],
  isLearner: false,
});
const FOUNDERS = [founder(1), founder(2), founder(3)];
/** Added by another member; committed, not yet applied on the lagging member. */
const ADDED: MemberRecord = {
  id: 4,
  name: "",
  peerUrls: ["http://127.0.0.1:2390"],
  clientUrls: [],
  isLearner: true,
};

/** A member that shows `applied` until a linearizable read brings it to `committed`. */
function laggingMember(applied: readonly MemberRecord[], committed: readonly MemberRecord[]) {
  let members = applied;
  const proposed: string[] = [];
  const replica = {
    range: () => {
      members = committed;
      return Promise.resolve({});
    },
    reconfigurationRefusal: () => null,
    removeNode: (id: number) => {
      proposed.push(`remove ${id}`);
      return Promise.resolve();
    },
    promote: (id: number) => {
      proposed.push(`promote ${id}`);
      return Promise.resolve();
    },
    propose: (command: { kind: string }) => {
      proposed.push(command.kind);
      return Promise.resolve({ response: { kind: "member" } });
    },
  };
  const ctx = {
    clusterId: 7n,
    members: () => members,
    replica: () => replica,
    header: () => create(ResponseHeaderSchema, {}),
  } as unknown as EtcdContext;
  const service = clusterService(ctx);
  const call = (method: string, request: unknown): Promise<unknown> =>
    (service[method] as UnaryHandler)(request as never, { metadata: () => undefined } as never);
  return { call, proposed };
}

test("remove, update and promote of a member the lagging member has not applied yet go ahead", async () => {
  const removal = laggingMember(FOUNDERS, [...FOUNDERS, ADDED]);
  await removal.call("MemberRemove", create(MemberRemoveRequestSchema, { ID: 4n }));
  assert.deepEqual(removal.proposed, ["remove 4", "memberRemove"]);

  const update = laggingMember(FOUNDERS, [...FOUNDERS, ADDED]);
  await update.call(
    "MemberUpdate",
    create(MemberUpdateRequestSchema, { ID: 4n, peerURLs: ["http://127.0.0.1:2391"] }),
  );
  assert.deepEqual(update.proposed, ["memberSet"]);

  const promotion = laggingMember(FOUNDERS, [...FOUNDERS, ADDED]);
  await promotion.call("MemberPromote", create(MemberPromoteRequestSchema, { ID: 4n }));
  assert.deepEqual(promotion.proposed, ["promote 4"]);
});

test("a member removed elsewhere is not found, and nothing is proposed", async () => {
  const lagging = laggingMember([...FOUNDERS, ADDED], FOUNDERS);
  await assert.rejects(
    lagging.call("MemberRemove", create(MemberRemoveRequestSchema, { ID: 4n })),
    /etcdserver: member not found/,
  );
  assert.deepEqual(lagging.proposed, []);
});

test("an add whose peer URL another member's add took is refused, and nothing is proposed", async () => {
  const lagging = laggingMember(FOUNDERS, [...FOUNDERS, ADDED]);
  await assert.rejects(
    lagging.call("MemberAdd", create(MemberAddRequestSchema, { peerURLs: [...ADDED.peerUrls] })),
    /etcdserver: Peer URLs already exists/,
  );
  assert.deepEqual(lagging.proposed, []);
});
