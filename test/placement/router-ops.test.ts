// RangeRouter over fake ranges: retries after stale routing (KeyOutsideRange, RangeFenced, a
// replica not hosted yet, no routes loaded) land a write exactly once, bounded attempts give
// up with the last error; a cross-range txn is refused with nothing written; a delete-range
// over 3 ranges; compaction and leases (a lease's keys gathered from every range); the floor
// step of cross-range reads.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CompareResult,
  CompareTarget,
  compactRequest,
  deleteRangeRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
  type KvCommand,
} from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import type { CommandResult } from "../../src/kv/results.js";
import type { NodeHost } from "../../src/node/host.js";
import type { Replica } from "../../src/node/replica.js";
import type { RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import type { ReplicaDirectory, RoutedReplica } from "../../src/placement/router/routed-replica.js";
import {
  DEFAULT_RETRY_POLICY,
  ReplicaNotHostedError,
  backoffDelay,
} from "../../src/placement/router/retry.js";
import { RangeRouter, type RangeRouterOptions } from "../../src/placement/router/router.js";
import { RoutesUnavailableError } from "../../src/placement/routes/moved.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import { b, split } from "./arbitraries.js";
import { fakeRanges, type FakeDirectory, type FakeReplica } from "./router-fakes.js";

interface Harness {
  readonly router: RangeRouter;
  readonly table: RouteTable;
  readonly directory: FakeDirectory;
  readonly sleeps: number[];
  reloads: number;
}

interface HarnessOptions extends Partial<RangeRouterOptions> {
  /** The routes the table starts with (default: the ranges' routes). */
  readonly tableRoutes?: readonly RouteDescriptor[] | null;
  readonly onReload?: (h: Harness) => void;
}

/** Fake ranges for `routes`; the router's table starts with `tableRoutes` (maybe stale, or none). */
function harness(routes: readonly RouteDescriptor[], options: HarnessOptions = {}): Harness {
  const table = new RouteTable();
  const tableRoutes = options.tableRoutes === undefined ? routes : options.tableRoutes;
  if (tableRoutes !== null) assert.equal(table.applySnapshot(1, tableRoutes).applied, true);
  const directory = fakeRanges(routes);
  const sleeps: number[] = [];
  const h: Harness = {
    table,
    directory,
    sleeps,
    reloads: 0,
    router: new RangeRouter({
      table,
      replicas: directory,
      reload: () => {
        h.reloads += 1;
        options.onReload?.(h);
        return Promise.resolve();
      },
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 25 },
      ...options,
    }),
  };
  return h;
}

/** The table catches up with the ranges' routes (catalog version 2). */
function catchUp(routes: readonly RouteDescriptor[]) {
  return (h: Harness) => {
    if (h.table.version < 2) assert.equal(h.table.applySnapshot(2, routes).applied, true);
  };
}

function fake(h: Harness, groupId: number): FakeReplica {
  const replica = h.directory.replica(groupId);
  assert.ok(replica !== undefined, `no fake range ${groupId}`);
  return replica;
}

function get(replica: FakeReplica, key: string) {
  return replica.store.range(rangeRequest({ key: b(key) })).kvs[0];
}

function errorCode(result: CommandResult): KvErrorCode | null {
  return result.response.kind === "error" ? result.response.code : null;
}

function proposals(replica: FakeReplica): KvCommand[] {
  return replica.calls.flatMap((call) => (call.kind === "propose" ? [call.command] : []));
}

const put = (key: string, value = "v") => putRequest({ key: b(key), value: b(value) });

test("a write refused as KeyOutsideRange is retried after a reload and lands on the new range once", async () => {
  const ranges = split(["m", "t"]);
  const h = harness(ranges, { tableRoutes: split(["m"]), onReload: catchUp(ranges) });
  const result = await h.router.propose(put("x", "1"), { clientId: "c", sequence: 7 });
  assert.equal(result.response.kind, "put");
  assert.equal(h.reloads, 1);
  assert.deepEqual(h.sleeps, [10]);
  assert.equal(get(fake(h, 2), "x"), undefined, "nothing written on the old range");
  assert.equal(get(fake(h, 3), "x")?.version, 1n, "written once on the new range");
  const requests = [fake(h, 2), fake(h, 3)].flatMap((r) =>
    r.calls.flatMap((call) => (call.kind === "propose" ? [call.request] : [])),
  );
  assert.deepEqual(requests, [
    { clientId: "c", sequence: 7 },
    { clientId: "c", sequence: 7 },
  ]);
});

test("bounded attempts: a range that keeps refusing gives the last refusal back, after capped backoff", async () => {
  const h = harness(split(["m", "t"]), { tableRoutes: split(["m"]) });
  const result = await h.router.propose(put("x"));
  assert.equal(errorCode(result), KvErrorCode.KeyOutsideRange);
  assert.equal(proposals(fake(h, 2)).length, 4, "one proposal per attempt");
  assert.equal(h.reloads, 3);
  assert.deepEqual(h.sleeps, [10, 20, 25]);
  assert.equal(get(fake(h, 2), "x"), undefined);
  assert.equal(get(fake(h, 3), "x"), undefined);
});

test("the default attempts wait out etcd's request timeout (7 s), each wait at most 200 ms", () => {
  const waits = Array.from({ length: DEFAULT_RETRY_POLICY.attempts - 1 }, (_, i) =>
    backoffDelay(DEFAULT_RETRY_POLICY, i + 1),
  );
  const total = waits.reduce((sum, wait) => sum + wait, 0);
  assert.ok(total >= 7_000 && total < 8_000, `backoff in all: ${total} ms`);
  assert.ok(Math.max(...waits) <= 200);
});

test("a fenced range is retried until the fence lifts; the write applies once", async () => {
  const h = harness(split(["m"]), {
    onReload: (self) => {
      if (self.reloads === 2) fake(self, 2).fenced = false;
    },
  });
  fake(h, 2).fenced = true;
  const result = await h.router.propose(put("p"));
  assert.equal(result.response.kind, "put");
  assert.equal(proposals(fake(h, 2)).length, 3);
  assert.equal(get(fake(h, 2), "p")?.version, 1n);
});

test("a replica not hosted yet and an empty table are retried; out of attempts the error is thrown", async () => {
  const ranges = split(["m"]);
  const h = harness(ranges, { tableRoutes: null, onReload: catchUp(ranges) });
  const missing = fake(h, 2);
  h.directory.replicas.delete(2);
  // Attempt 1: no routes; attempt 2: range 2 not hosted; attempt 3: hosted.
  const restore = (self: Harness) => {
    catchUp(ranges)(self);
    if (self.reloads === 2) self.directory.replicas.set(2, missing);
  };
  const router = new RangeRouter({
    table: h.table,
    replicas: h.directory,
    reload: () => {
      h.reloads += 1;
      restore(h);
      return Promise.resolve();
    },
    sleep: () => Promise.resolve(),
  });
  const result = await router.propose(put("q"));
  assert.equal(result.response.kind, "put");
  assert.equal(h.reloads, 2);
  assert.equal(get(missing, "q")?.version, 1n);

  const empty = harness(ranges, { tableRoutes: null });
  await assert.rejects(empty.router.propose(put("q")), RoutesUnavailableError);
  assert.equal(empty.reloads, 3);
  const unhosted = harness(ranges);
  unhosted.directory.replicas.delete(2);
  await assert.rejects(unhosted.router.range(rangeRequest({ key: b("q") })), ReplicaNotHostedError);
  await assert.rejects(unhosted.router.propose(put("q")), ReplicaNotHostedError);
});

test("a read answered with KeyOutsideRange is retried on the reloaded routes", async () => {
  const ranges = split(["m", "t"]);
  const h = harness(ranges, { tableRoutes: split(["m"]), onReload: catchUp(ranges) });
  fake(h, 3).write(put("x", "here"));
  const result = await h.router.range(rangeRequest({ key: b("x") }));
  assert.equal(h.reloads, 1);
  assert.deepEqual(
    result.kvs.map((kv) => Buffer.from(kv.value).toString()),
    ["here"],
  );
  // A span read over the stale routes: also retried, then merged over the three ranges.
  const h2 = harness(ranges, { tableRoutes: split(["m"]), onReload: catchUp(ranges) });
  for (const [group, key] of [
    [1, "a"],
    [2, "n"],
    [3, "x"],
  ] as const)
    fake(h2, group).write(put(key));
  const all = await h2.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0) }));
  assert.equal(all.count, 3);
  assert.equal(h2.reloads, 1);
});

test("a transaction over two ranges fails with CrossRangeTxn and writes nothing", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a", "old"));
  const before = [fake(h, 1).store.revision, fake(h, 2).store.revision];
  const cases = [
    txnRequest({ success: [put("a"), put("x")] }),
    // A compare on one range, writes on the other.
    txnRequest({
      compares: [
        {
          target: CompareTarget.Value,
          result: CompareResult.Equal,
          key: b("x"),
          rangeEnd: new Uint8Array(0),
          value: b(""),
        },
      ],
      success: [put("a")],
    }),
    // The other branch or a nested transaction counts too.
    txnRequest({ success: [put("a")], failure: [put("x")] }),
    txnRequest({
      success: [txnRequest({ success: [put("b"), deleteRangeRequest({ key: b("l"), rangeEnd: b("n") })] })],
    }),
  ];
  for (const command of cases) {
    const result = await h.router.propose(command);
    assert.equal(errorCode(result), KvErrorCode.CrossRangeTxn);
    assert.equal(
      result.response.kind === "error" ? result.response.message : "",
      "concord: cross-range transactions not yet supported",
    );
  }
  assert.deepEqual([fake(h, 1).store.revision, fake(h, 2).store.revision], before);
  assert.equal(proposals(fake(h, 1)).length + proposals(fake(h, 2)).length, 0, "nothing proposed");
  assert.equal(Buffer.from(get(fake(h, 1), "a")!.value).toString(), "old");

  // Within one range: the one-entry fast path.
  const ok = await h.router.propose(txnRequest({ success: [put("n"), put("z")] }));
  assert.equal(ok.response.kind, "txn");
  assert.equal(get(fake(h, 2), "z")?.version, 1n);
});

test("a delete-range over 3 ranges: one delete per range in key order, merged answer", async () => {
  const h = harness(split(["h", "p"]));
  for (const key of ["a", "c", "j", "k", "q", "z"])
    fake(h, key < "h" ? 1 : key < "p" ? 2 : 3).write(put(key, key));
  const result = await h.router.propose(
    deleteRangeRequest({ key: b("b"), rangeEnd: b("zz"), prevKv: true }),
    {
      clientId: "d",
      sequence: 1,
    },
  );
  assert.equal(result.response.kind, "deleteRange");
  if (result.response.kind !== "deleteRange") return;
  assert.equal(result.response.deleted, 5);
  assert.deepEqual(
    result.response.prevKvs.map((kv) => Buffer.from(kv.key).toString()),
    ["c", "j", "k", "q", "z"],
  );
  const revisions = [1, 2, 3].map((g) => fake(h, g).store.revision);
  assert.equal(
    result.revision,
    revisions.reduce((x, y) => (x > y ? x : y)),
  );
  assert.equal(result.revision, fake(h, 3).store.revision, "the last range written is the newest");
  for (const g of [1, 2, 3]) {
    assert.equal(proposals(fake(h, g)).length, 1, `one delete on range ${g}`);
  }
  const left = await h.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0) }));
  assert.deepEqual(
    left.kvs.map((kv) => Buffer.from(kv.key).toString()),
    ["a"],
  );
  // The parts are clipped to their ranges: range 1 got [b, h), range 2 [h, p), range 3 [p, zz).
  const spans = [1, 2, 3].map((g) => {
    const command = proposals(fake(h, g))[0]!;
    assert.equal(command.kind, "deleteRange");
    return command.kind === "deleteRange"
      ? [Buffer.from(command.key).toString(), Buffer.from(command.rangeEnd).toString()]
      : [];
  });
  assert.deepEqual(spans, [
    ["b", "h"],
    ["h", "p"],
    ["p", "zz"],
  ]);
});

test("a delete part refused for stale routing is split again over the reloaded routes", async () => {
  const ranges = split(["h", "p"]);
  const h = harness(ranges, { tableRoutes: split(["h"]), onReload: catchUp(ranges) });
  for (const key of ["a", "j", "q"]) fake(h, key < "h" ? 1 : key < "p" ? 2 : 3).write(put(key));
  const result = await h.router.propose(deleteRangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0) }));
  assert.equal(result.response.kind === "deleteRange" ? result.response.deleted : -1, 3);
  assert.equal(h.reloads, 1);
  assert.equal(proposals(fake(h, 1)).length, 1, "the first part was not sent again");
});

test("compact goes to every range, flooring the ranges below the revision; leases live in range 1", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a"));
  fake(h, 1).write(put("a"));
  const high = fake(h, 1).store.revision;
  const result = await h.router.propose(compactRequest(high));
  assert.equal(result.response.kind, "compact");
  assert.deepEqual(fake(h, 2).callKinds(), ["floor", "propose"]);
  assert.equal(fake(h, 1).store.compactedRevision, high);
  const future = await h.router.propose(compactRequest(high + 100n));
  assert.equal(errorCode(future), KvErrorCode.FutureRevision);

  const grant = await h.router.propose(leaseGrantRequest(10));
  assert.equal(grant.response.kind, "leaseGrant");
  assert.equal(fake(h, 1).store.leases().length, 1);
  assert.equal(fake(h, 2).store.leases().length, 0);
});

test("a compaction at a revision this node has not applied yet catches up with every range first", async () => {
  // The write that made the revision went through another member; this one lags behind it.
  const h = harness(split(["m"]));
  fake(h, 2).write(put("x"));
  const revision = fake(h, 2).store.revision;
  fake(h, 1).lagging = true;
  fake(h, 2).lagging = true;
  const result = await h.router.propose(compactRequest(revision));
  assert.equal(result.response.kind, "compact", JSON.stringify(result.response));
  assert.equal(fake(h, 2).store.compactedRevision, revision);
  assert.deepEqual(fake(h, 2).callKinds(), ["range", "propose"]);
});

test("a read at a revision another range made, which this node has not applied yet, catches up first (one range or several)", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a", "1"));
  fake(h, 2).write(put("x"));
  fake(h, 2).write(put("x"));
  const revision = fake(h, 2).store.revision;
  assert.ok(fake(h, 1).store.revision < revision);
  fake(h, 2).lagging = true;
  const result = await h.router.range(rangeRequest({ key: b("a"), revision }));
  assert.deepEqual(
    result.kvs.map((kv) => new TextDecoder().decode(kv.value)),
    ["1"],
  );

  // The same over two ranges, neither of them the one that made the revision.
  const three = harness(split(["h", "p"]));
  fake(three, 1).write(put("a", "1"));
  fake(three, 2).write(put("j", "2"));
  fake(three, 3).write(put("x"));
  fake(three, 3).write(put("x"));
  const newest = fake(three, 3).store.revision;
  fake(three, 3).lagging = true;
  const across = await three.router.range(rangeRequest({ key: b("a"), rangeEnd: b("o"), revision: newest }));
  assert.deepEqual(
    across.kvs.map((kv) => new TextDecoder().decode(kv.key)),
    ["a", "j"],
  );
});

test("the floor step: a range behind R is floored to R before it is read at R", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a", "1"));
  for (let i = 0; i < 5; i++) fake(h, 2).write(put("x", String(i)));
  const r1 = fake(h, 1).store.revision;
  const r2 = fake(h, 2).store.revision;
  assert.ok(r1 < r2);
  const result = await h.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0) }));
  assert.equal(result.revision, r2, "R is the newest revision of the ranges read");
  assert.equal(result.count, 2);
  const calls = fake(h, 1).calls;
  assert.deepEqual(
    calls.map((call) => call.kind),
    ["range", "floor", "range"],
  );
  const [probe, floor, read] = calls;
  assert.ok(probe?.kind === "range" && probe.consistency === "linearizable" && probe.request.countOnly);
  assert.ok(floor?.kind === "floor" && floor.revision === r2);
  assert.ok(read?.kind === "range" && read.consistency === "serializable" && read.request.revision === r2);
  assert.deepEqual(fake(h, 2).callKinds(), ["range", "range"], "the range at R needs no floor");
  // A later write on range 1 lands above R: the answer at R stays the same.
  const later = await h.router.propose(put("b"));
  assert.ok(later.revision > r2);
  const again = await h.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0), revision: r2 }));
  assert.equal(again.count, 2);
});

test("a read at no revision over several ranges is read again when a compaction passes the revision it chose", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a", "1"));
  fake(h, 2).write(put("x", "1"));
  // Right after the revision probes, range 2 takes a write and a compaction at its revision,
  // past the R the read chose (auto-compaction racing the read; found by the simulator).
  const right = fake(h, 2);
  const range = right.range.bind(right);
  let probes = 0;
  right.range = async (request, consistency) => {
    const result = await range(request, consistency);
    if (consistency === "linearizable" && ++probes === 1) {
      right.write(put("x", "2"));
      right.write(compactRequest(right.store.revision));
    }
    return result;
  };
  const result = await h.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0) }));
  assert.deepEqual(
    result.kvs.map((kv) => `${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}`),
    ["a=1", "x=2"],
  );
  assert.ok(result.revision >= right.store.compactedRevision);
  // An explicit revision below the compaction stays an error, as in etcd.
  await assert.rejects(
    h.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0), revision: 1n })),
    (error: unknown) => error instanceof KvError && error.code === KvErrorCode.Compacted,
  );
});

test("reads at an explicit revision floor the ranges behind it; above every range it is FutureRevision", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a"));
  fake(h, 2).write(put("x"));
  fake(h, 2).write(put("y"));
  const r2 = fake(h, 2).store.revision;
  // One range, read at a revision only the other range reached: floored, then served.
  const one = await h.router.range(rangeRequest({ key: b("a"), revision: r2 }));
  assert.equal(one.count, 1);
  assert.equal(fake(h, 1).floor, r2);
  await assert.rejects(
    h.router.range(rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0), revision: r2 + 10n })),
    (error: unknown) => error instanceof KvError && error.code === KvErrorCode.FutureRevision,
  );
  await assert.rejects(
    h.router.range(rangeRequest({ key: b("a"), revision: r2 + 10n })),
    (error: unknown) => error instanceof KvError && error.code === KvErrorCode.FutureRevision,
  );
});

test("serializable cross-range reads use the lowest local revision and propose nothing", async () => {
  const h = harness(split(["m"]));
  fake(h, 1).write(put("a", "old"));
  const r1 = fake(h, 1).store.revision;
  fake(h, 2).write(put("x"));
  fake(h, 2).write(put("y"));
  fake(h, 1).write(put("a", "new"));
  // Range 2 is at its last write, below range 1's: R is range 2's revision, range 1 is read in the past.
  const r2 = fake(h, 2).store.revision;
  const result = await h.router.range(
    rangeRequest({ key: b("a"), rangeEnd: Uint8Array.of(0) }),
    "serializable",
  );
  assert.equal(result.revision, r2);
  assert.ok(r1 < r2);
  assert.equal(Buffer.from(result.kvs[0]!.value).toString(), "old");
  assert.equal(result.count, 3);
  for (const g of [1, 2])
    assert.ok(fake(h, g).calls.every((call) => call.kind === "range" && call.consistency === "serializable"));
});

test("the node's Replica and NodeHost fit the router's interfaces", () => {
  // Compile-time: the router runs over the real node types unchanged.
  const fits = (host: NodeHost): ReplicaDirectory => host;
  const replicaFits = (replica: Replica): RoutedReplica => replica;
  assert.equal(typeof fits, "function");
  assert.equal(typeof replicaFits, "function");
});

test("a lease's keys come from every range, read again over reloaded routes when a range no longer holds its route's span", async () => {
  const ranges = split(["h", "p"]);
  // The table predates the split at "p": range 2 still looks like it ends at +inf.
  const h = harness(ranges, { tableRoutes: split(["h"]), onReload: catchUp(ranges) });
  for (const groupId of [1, 2, 3]) fake(h, groupId).write(leaseGrantRequest(10, 7n));
  fake(h, 3).write(leaseGrantRequest(10, 8n));
  const attach = (groupId: number, key: string, lease: bigint) =>
    fake(h, groupId).write(putRequest({ key: b(key), value: b("1"), lease }));
  attach(1, "a", 7n);
  attach(2, "j", 7n);
  attach(3, "z", 7n);
  attach(3, "q", 7n);
  attach(3, "r", 8n);
  const keys = await h.router.leaseKeys(7n);
  assert.deepEqual(
    keys.map((key) => new TextDecoder().decode(key)),
    ["a", "j", "q", "z"],
  );
  assert.equal(h.reloads, 1, "range 2's answer over the stale route was refused");
});

test("a lease revocation goes to range 1, then to every other range holding a copy", async () => {
  const h = harness(split(["h", "p"]));
  const grant = await h.router.propose(leaseGrantRequest(10, 7n));
  assert.equal(grant.response.kind, "leaseGrant");
  // A split copied the lease table into range 2 (range 3 was split off before the grant).
  fake(h, 2).write(leaseGrantRequest(10, 7n));
  for (const key of ["a", "j"]) {
    const result = await h.router.propose(putRequest({ key: b(key), value: b("1"), lease: 7n }));
    assert.equal(result.response.kind, "put");
  }
  const revoke = await h.router.propose(leaseRevokeRequest(7n));
  assert.equal(revoke.response.kind, "leaseRevoke");
  assert.equal(revoke.revision, fake(h, 2).store.revision, "the newest revision of the ranges");
  assert.equal(get(fake(h, 1), "a"), undefined);
  assert.equal(get(fake(h, 2), "j"), undefined, "the other range's attached key is gone too");
  assert.equal(fake(h, 2).store.leases().length, 0);
  assert.equal(proposals(fake(h, 3)).length, 1, "range 3 was asked (it answered LeaseNotFound)");
});
