// etcd's Election and Lock gRPC services on Concord members, driven by a raw grpc-js client
// built from the generated descriptors: campaign / proclaim / leader / resign with the term
// as LeaderKey.rev, a second campaigner waiting its turn, fenced KV writes (guard(name, rev))
// that commit only while the term holds, a waiting campaigner whose lease goes (failed, never
// a phantom leader), a leader whose lease goes (the next one is elected), observe, a cancelled
// campaign withdrawing, etcd's error codes and messages, locks (exclusion, re-locking with the
// same lease, unlock handing over with a higher token, a revoked waiter), and Proclaim /
// Resign / Unlock served by another member of a three-member cluster.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  status as GrpcStatus,
  type CallOptions,
  type Client,
  type ClientReadableStream,
  type ServiceError,
} from "@grpc/grpc-js";
import { CompareTarget, type Compare as KvCompare } from "../../../src/kv/commands.js";
import { guard } from "../../../src/recipes/index.js";
import {
  CompareSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
  KV,
  Lease,
  LeaseGrantRequestSchema,
  LeaseRevokeRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RequestOpSchema,
  TxnRequestSchema,
  type Compare,
  type LeaseGrantResponse,
  type RangeResponse,
  type TxnResponse,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import {
  CampaignRequestSchema,
  Election,
  LeaderRequestSchema,
  ProclaimRequestSchema,
  ResignRequestSchema,
  type CampaignResponse,
  type LeaderKey,
  type LeaderResponse,
} from "../../../src/api/etcd/gen/v3election_pb.js";
import {
  Lock,
  LockRequestSchema,
  UnlockRequestSchema,
  type LockResponse,
} from "../../../src/api/etcd/gen/v3lock_pb.js";
import { text, waitFor } from "../helpers.js";
import { within as withinMs } from "../../process/process-cluster.js";
import { EtcdCluster, rawClient } from "./harness.js";

/** A campaign is several linearizable reads and writes (forwarded from a follower): 30 s on a loaded machine. */
const CALL_WAIT_MS = 30_000;
const within = <T>(promise: Promise<T>, what: string): Promise<T> => withinMs(promise, CALL_WAIT_MS, what);

const utf8 = new TextEncoder();
const bytes = (s: string) => utf8.encode(s);

/** Raw grpc-js clients of one member, one per service. */
class Rpc {
  private readonly clients = new Map<string, Client>();

  constructor(private readonly endpoint: string) {}

  private client(service: DescService): Client {
    let client = this.clients.get(service.typeName);
    if (client === undefined) {
      client = rawClient(service, this.endpoint);
      this.clients.set(service.typeName, client);
    }
    return client;
  }

  unary<I extends DescMessage, O>(
    service: DescService,
    method: string,
    schema: I,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): Promise<O> {
    const client = this.client(service) as unknown as Record<
      string,
      (r: unknown, o: CallOptions, cb: (e: ServiceError | null, out: O) => void) => void
    >;
    const fn = client[method];
    assert.ok(fn !== undefined, `${service.name} has ${method}`);
    return new Promise((resolve, reject) =>
      fn.call(client, create(schema, request), options, (error, response) =>
        error === null ? resolve(response) : reject(error),
      ),
    );
  }

  observe(name: string): ClientReadableStream<LeaderResponse> {
    const client = this.client(Election) as unknown as {
      Observe(request: unknown): ClientReadableStream<LeaderResponse>;
    };
    return client.Observe(create(LeaderRequestSchema, { name: bytes(name) }));
  }

  campaign(name: string, lease: bigint, value: string, options: CallOptions = {}): Promise<CampaignResponse> {
    return this.unary(
      Election,
      "Campaign",
      CampaignRequestSchema,
      { name: bytes(name), lease, value: bytes(value) },
      options,
    );
  }

  proclaim(leader: LeaderKey, value: string): Promise<unknown> {
    return this.unary(Election, "Proclaim", ProclaimRequestSchema, { leader, value: bytes(value) });
  }

  leader(name: string): Promise<LeaderResponse> {
    return this.unary(Election, "Leader", LeaderRequestSchema, { name: bytes(name) });
  }

  resign(leader: LeaderKey): Promise<unknown> {
    return this.unary(Election, "Resign", ResignRequestSchema, { leader });
  }

  lock(name: string, lease: bigint, options: CallOptions = {}): Promise<LockResponse> {
    return this.unary(Lock, "Lock", LockRequestSchema, { name: bytes(name), lease }, options);
  }

  unlock(key: Uint8Array): Promise<unknown> {
    return this.unary(Lock, "Unlock", UnlockRequestSchema, { key });
  }

  async grant(ttlSeconds = 60): Promise<bigint> {
    const response: LeaseGrantResponse = await this.unary(Lease, "LeaseGrant", LeaseGrantRequestSchema, {
      TTL: BigInt(ttlSeconds),
    });
    return response.ID;
  }

  revoke(id: bigint): Promise<unknown> {
    return this.unary(Lease, "LeaseRevoke", LeaseRevokeRequestSchema, { ID: id });
  }

  get(key: Uint8Array | string): Promise<RangeResponse> {
    return this.unary(KV, "Range", RangeRequestSchema, { key: typeof key === "string" ? bytes(key) : key });
  }

  /** A put that commits only if every compare holds. */
  fencedPut(compares: readonly Compare[], key: string, value: string): Promise<TxnResponse> {
    return this.unary(KV, "Txn", TxnRequestSchema, {
      compare: [...compares],
      success: [
        create(RequestOpSchema, {
          request: {
            case: "requestPut",
            value: create(PutRequestSchema, { key: bytes(key), value: bytes(value) }),
          },
        }),
      ],
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
  }
}

/** A recipe compare (src/kv/commands.ts) as etcd's wire Compare. */
function wireCompare(compare: KvCompare): Compare {
  const base = {
    key: compare.key,
    rangeEnd: compare.rangeEnd,
    result: compare.result as number as Compare_CompareResult,
  };
  switch (compare.target) {
    case CompareTarget.Value:
      return create(CompareSchema, {
        ...base,
        target: Compare_CompareTarget.Value,
        targetUnion: { case: "value", value: compare.value },
      });
    case CompareTarget.Version:
      return create(CompareSchema, {
        ...base,
        target: Compare_CompareTarget.Version,
        targetUnion: { case: "version", value: compare.operand },
      });
    default:
      throw new Error(`the guard uses no compare target ${compare.target}`);
  }
}

function fence(name: string, term: bigint): Compare[] {
  return guard(name, term).map(wireCompare);
}

async function rejectsWith(promise: Promise<unknown>, code: GrpcStatus, message: string): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code, `"${error.details}" has code ${error.code}, expected ${code}`);
    assert.equal(error.details, message);
    return true;
  });
}

/** Whether `promise` is still pending after the server has answered `probe` (no timing assumed). */
async function stillPending(promise: Promise<unknown>, probe: () => Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await probe();
  await probe();
  return !settled;
}

describe("one member", () => {
  let cluster: EtcdCluster;
  let rpc: Rpc;

  before(async () => {
    cluster = await EtcdCluster.start(1);
    rpc = new Rpc(cluster.endpoint(1));
  });

  after(async () => {
    rpc.close();
    await cluster.close();
  });

  test("campaign, leader, proclaim; a second campaigner waits and is elected with a higher term", async () => {
    const [leaseA, leaseB] = [await rpc.grant(), await rpc.grant()];
    const first = await within(rpc.campaign("e1", leaseA, "a"), "the first campaign");
    const keyA = first.leader;
    assert.ok(keyA !== undefined);
    assert.equal(text(keyA.name), "e1");
    assert.equal(text(keyA.key), `e1/candidates/${leaseA.toString(16)}`);
    assert.equal(keyA.lease, leaseA);
    assert.ok(keyA.rev >= 1n, `term ${keyA.rev}`);
    assert.ok((first.header?.revision ?? 0n) > 0n);

    const leader = await rpc.leader("e1");
    assert.equal(text(leader.kv?.key), text(keyA.key));
    assert.equal(text(leader.kv?.value), "a");
    assert.equal(leader.kv?.createRevision, keyA.rev);
    assert.equal(leader.kv?.lease, leaseA);

    const second = rpc.campaign("e1", leaseB, "b");
    assert.ok(await stillPending(second, () => rpc.proclaim(keyA, "a2")), "B waits while A leads");
    assert.equal(text((await rpc.leader("e1")).kv?.value), "a2");

    await rpc.resign(keyA);
    const keyB = (await within(second, "the second campaign")).leader;
    assert.ok(keyB !== undefined);
    assert.ok(keyB.rev > keyA.rev, `term ${keyB.rev} follows ${keyA.rev}`);
    assert.equal(text((await rpc.leader("e1")).kv?.value), "b");

    await rejectsWith(rpc.proclaim(keyA, "stale"), GrpcStatus.UNKNOWN, "election: not leader");
    // Resigning a leadership that is over changes nothing (etcd's Resign answers OK).
    await rpc.resign(keyA);
    assert.equal(text((await rpc.leader("e1")).kv?.value), "b");
    await rpc.resign(keyB);
    await rejectsWith(rpc.leader("e1"), GrpcStatus.UNKNOWN, "election: no leader");
  });

  test("a write guarded by the term commits while it holds and fails once a later holder leads", async () => {
    const [leaseA, leaseB] = [await rpc.grant(), await rpc.grant()];
    const keyA = (await within(rpc.campaign("e2", leaseA, "a"), "A's campaign")).leader!;
    assert.equal((await rpc.fencedPut(fence("e2", keyA.rev), "e2-data", "by A")).succeeded, true);
    const second = rpc.campaign("e2", leaseB, "b");
    await rpc.revoke(leaseA);
    const keyB = (await within(second, "B's campaign after A's lease went")).leader!;
    assert.ok(keyB.rev > keyA.rev);
    assert.equal((await rpc.fencedPut(fence("e2", keyA.rev), "e2-data", "by stale A")).succeeded, false);
    assert.equal((await rpc.fencedPut(fence("e2", keyB.rev), "e2-data", "by B")).succeeded, true);
    assert.equal(text((await rpc.get("e2-data")).kvs[0]?.value), "by B");
    await rejectsWith(rpc.proclaim(keyA, "stale"), GrpcStatus.UNKNOWN, "election: not leader");
    await rpc.resign(keyB);
  });

  test("a campaigner whose lease goes while it waits fails instead of being elected", async () => {
    const [leaseA, leaseB] = [await rpc.grant(), await rpc.grant()];
    const keyA = (await within(rpc.campaign("e3", leaseA, "a"), "A's campaign")).leader!;
    const second = rpc.campaign("e3", leaseB, "b");
    assert.ok(await stillPending(second, () => rpc.leader("e3")));
    await rpc.revoke(leaseB);
    await rejectsWith(
      within(second, "B's campaign to fail"),
      GrpcStatus.UNKNOWN,
      "election: session is expired",
    );
    assert.equal(text((await rpc.leader("e3")).kv?.value), "a");
    await rpc.resign(keyA);
  });

  test("observe streams the leader, its proclamations and the next leader", async () => {
    const [leaseA, leaseB] = [await rpc.grant(), await rpc.grant()];
    const keyA = (await within(rpc.campaign("e4", leaseA, "a"), "A's campaign")).leader!;
    const stream = rpc.observe("e4");
    const seen: string[] = [];
    const terms: bigint[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (response: LeaderResponse) => {
        seen.push(text(response.kv?.value) ?? "");
        terms.push(response.kv?.createRevision ?? 0n);
        if (seen.includes("b")) resolve();
      });
      stream.on("error", (error: ServiceError) => {
        if (error.code !== GrpcStatus.CANCELLED) reject(error);
      });
    });
    await waitFor(() => seen.length >= 1, "the current leader on the stream");
    await rpc.proclaim(keyA, "a2");
    const second = rpc.campaign("e4", leaseB, "b");
    await waitFor(() => seen.includes("a2"), "the proclamation on the stream");
    await rpc.resign(keyA);
    const keyB = (await within(second, "B's campaign")).leader!;
    await within(done, "the next leader on the stream");
    stream.cancel();
    assert.deepEqual(seen, ["a", "a2", "b"]);
    assert.deepEqual(terms, [keyA.rev, keyA.rev, keyB.rev]);
    await rpc.resign(keyB);
  });

  test("a cancelled campaign withdraws its candidacy", async () => {
    const [leaseA, leaseB] = [await rpc.grant(), await rpc.grant()];
    const keyA = (await within(rpc.campaign("e5", leaseA, "a"), "A's campaign")).leader!;
    const candidateB = `e5/candidates/${leaseB.toString(16)}`;
    const second = rpc.campaign("e5", leaseB, "b", { deadline: Date.now() + 1_000 });
    await assert.rejects(within(second, "the deadline"), (error: ServiceError) => {
      assert.equal(error.code, GrpcStatus.DEADLINE_EXCEEDED, error.message);
      return true;
    });
    await waitFor(async () => (await rpc.get(candidateB)).kvs.length === 0, "B's candidate record to go");
    await rpc.resign(keyA);
    await rejectsWith(rpc.leader("e5"), GrpcStatus.UNKNOWN, "election: no leader");
  });

  test("one lease campaigns, resigns and campaigns again; locks, unlocks and locks again", async () => {
    const lease = await rpc.grant();
    for (let round = 0; round < 3; round++) {
      const key = (await within(rpc.campaign("e7", lease, `v${round}`), `campaign ${round}`)).leader!;
      assert.equal(text((await rpc.leader("e7")).kv?.value), `v${round}`);
      // Campaigning again while leading is the same leadership, announcing the new value.
      const again = (await within(rpc.campaign("e7", lease, `w${round}`), `campaign ${round} again`)).leader!;
      assert.equal(again.rev, key.rev);
      assert.equal(text((await rpc.leader("e7")).kv?.value), `w${round}`);
      await rpc.resign(key);
      const held = await within(rpc.lock("l7", lease), `lock ${round}`);
      await rpc.unlock(held.key);
    }
    await rejectsWith(rpc.leader("e7"), GrpcStatus.UNKNOWN, "election: no leader");
    assert.equal((await rpc.get("l7/leader")).kvs.length, 0);
  });

  test("etcd's errors: missing leader, unknown lease, bad names", async () => {
    await rejectsWith(
      rpc.unary(Election, "Proclaim", ProclaimRequestSchema, { value: bytes("x") }),
      GrpcStatus.UNKNOWN,
      '"leader" field must be provided',
    );
    await rejectsWith(
      rpc.unary(Election, "Resign", ResignRequestSchema, {}),
      GrpcStatus.UNKNOWN,
      '"leader" field must be provided',
    );
    // etcd's election and lock services answer their inner client's errors as UNKNOWN.
    await rejectsWith(
      rpc.campaign("e6", 0x7777n, "x"),
      GrpcStatus.UNKNOWN,
      "etcdserver: requested lease not found",
    );
    await rejectsWith(rpc.lock("l6", 0x7777n), GrpcStatus.UNKNOWN, "etcdserver: requested lease not found");
    const lease = await rpc.grant();
    const badName = 'concord: an election or lock name must be non-empty UTF-8 not ending in "/"';
    await rejectsWith(rpc.campaign("", lease, "x"), GrpcStatus.INVALID_ARGUMENT, badName);
    await rejectsWith(rpc.campaign("e6/", lease, "x"), GrpcStatus.INVALID_ARGUMENT, badName);
    await rejectsWith(rpc.unlock(new Uint8Array(0)), GrpcStatus.UNKNOWN, "etcdserver: key is not provided");
    await rejectsWith(
      rpc.unlock(bytes("some/other/key")),
      GrpcStatus.INVALID_ARGUMENT,
      "concord: not a lock key (expected <name>/candidates/<lease id in hex>)",
    );
    // Nothing was written under the names refused.
    assert.equal((await rpc.get("e6/config")).kvs.length, 0);
  });

  test("locks: exclusion, re-locking with the same lease, unlock hands over with a higher token", async () => {
    const [leaseA, leaseB, leaseC] = [await rpc.grant(), await rpc.grant(), await rpc.grant()];
    const lockA = await within(rpc.lock("l1", leaseA), "A's lock");
    assert.equal(text(lockA.key), `l1/candidates/${leaseA.toString(16)}`);
    const tokenA = BigInt(text((await rpc.get("l1/term")).kvs[0]?.value) ?? "0");
    assert.ok(tokenA >= 1n);
    const again = await within(rpc.lock("l1", leaseA), "A locking again");
    assert.deepEqual(again.key, lockA.key);

    const lockB = rpc.lock("l1", leaseB);
    const lockC = rpc.lock("l1", leaseC);
    const lockCFails = rejectsWith(
      within(lockC, "C to fail"),
      GrpcStatus.UNKNOWN,
      "mutex: session is expired",
    );
    assert.ok(await stillPending(lockB, () => rpc.get("l1/term")), "B waits while A holds the lock");
    await rpc.revoke(leaseC);
    await lockCFails;

    await rpc.unlock(lockA.key);
    const heldB = await within(lockB, "B's lock after A's unlock");
    assert.equal(text(heldB.key), `l1/candidates/${leaseB.toString(16)}`);
    const tokenB = BigInt(text((await rpc.get("l1/term")).kvs[0]?.value) ?? "0");
    assert.ok(tokenB > tokenA, `token ${tokenB} follows ${tokenA}`);
    assert.equal((await rpc.fencedPut(fence("l1", tokenA), "l1-data", "stale")).succeeded, false);
    assert.equal((await rpc.fencedPut(fence("l1", tokenB), "l1-data", "B")).succeeded, true);
    await rpc.unlock(heldB.key);
    assert.equal((await rpc.get("l1/leader")).kvs.length, 0);
  });
});

describe("three members", () => {
  let cluster: EtcdCluster;
  let onLeader: Rpc;
  let onFollower: Rpc;

  before(async () => {
    cluster = await EtcdCluster.start(3);
    onLeader = new Rpc(cluster.endpoint(await cluster.leaderId()));
    onFollower = new Rpc(cluster.endpoint(await cluster.followerId()));
  });

  after(async () => {
    onLeader.close();
    onFollower.close();
    await cluster.close();
  });

  test("a campaign on a follower; proclaim, resign, lock and unlock served by other members", async () => {
    const [leaseA, leaseB] = [await onFollower.grant(), await onLeader.grant()];
    const keyA = (await within(onFollower.campaign("m1", leaseA, "a"), "a campaign on a follower")).leader!;
    await onLeader.proclaim(keyA, "a2");
    assert.equal(text((await onFollower.leader("m1")).kv?.value), "a2");
    const second = onLeader.campaign("m1", leaseB, "b");
    await onFollower.resign(keyA);
    const keyB = (await within(second, "a campaign on the leader")).leader!;
    assert.ok(keyB.rev > keyA.rev);
    await onFollower.resign(keyB);

    const held = await within(onFollower.lock("m2", leaseA), "a lock on a follower");
    const waiting = onLeader.lock("m2", leaseB);
    assert.ok(await stillPending(waiting, () => onLeader.get("m2/term")));
    await onLeader.unlock(held.key);
    const next = await within(waiting, "the lock on the leader");
    await onFollower.unlock(next.key);
  });
});
