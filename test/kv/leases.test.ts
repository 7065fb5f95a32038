// Leases in the replicated state machine (etcd semantics): grant, attach, revoke (which
// deletes the attached keys atomically at one revision), the "lease not found" check on puts,
// and that the lease table travels in snapshots and is identical on every replica.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  deleteRangeRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  putRequest,
  rangeRequest,
  txnRequest,
  type KvCommand,
} from "../../src/kv/commands.js";
import { MAX_LEASE_TTL_SECONDS } from "../../src/kv/leases.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import { FROM_KEY, b, dump, s } from "./helpers.js";
import { KvHarness } from "./kv-harness.js";

function attached(h: KvHarness, id: bigint): string[] {
  return (h.store.lease(id, { keys: true })?.keys ?? []).map(s);
}

/** Every live key with its lease, as "key@lease". */
function liveKeys(store: MvccStore): string[] {
  return store
    .range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: FROM_KEY }))
    .kvs.map((kv) => `${s(kv.key)}@${kv.lease}`);
}

describe("LeaseGrant", () => {
  it("grants the requested id and TTL, lists it, and creates no revision", () => {
    const h = new KvHarness();
    h.ok(putRequest({ key: b("x"), value: b("1") }), "put");
    const { result } = h.apply(leaseGrantRequest(30, 7n));
    assert.deepEqual(result, { revision: 1n, response: { kind: "leaseGrant", id: 7n, ttlSeconds: 30 } });
    assert.equal(h.store.revision, 1n);
    assert.deepEqual(h.store.lease(7n), { id: 7n, ttlSeconds: 30, keys: [] });
    h.ok(leaseGrantRequest(5, 3n), "leaseGrant");
    assert.deepEqual(h.store.leases(), [
      { id: 3n, ttlSeconds: 5 },
      { id: 7n, ttlSeconds: 30 },
    ]);
  });

  it('refuses a live id with "etcdserver: lease already exists"', () => {
    const h = new KvHarness();
    h.ok(leaseGrantRequest(30, 7n), "leaseGrant");
    assert.equal(h.error(leaseGrantRequest(60, 7n)), "etcdserver: lease already exists");
    assert.equal(h.store.lease(7n)?.ttlSeconds, 30, "the first grant stands");
  });

  it("id 0 takes the entry index, or the next id above it that is not live", () => {
    const h = new KvHarness();
    h.ok(leaseGrantRequest(10, 3n), "leaseGrant"); // entry 1
    h.ok(leaseGrantRequest(10, 4n), "leaseGrant"); // entry 2
    assert.equal(h.nextEntryIndex, 3);
    assert.equal(h.ok(leaseGrantRequest(10), "leaseGrant").id, 5n, "3 and 4 are live");
    assert.equal(h.ok(leaseGrantRequest(10), "leaseGrant").id, 6n, "5 is live now; entry 4 probes 4, 5, 6");
    h.ok(leaseRevokeRequest(3n), "leaseRevoke"); // entry 5
    assert.equal(h.ok(leaseGrantRequest(10), "leaseGrant").id, 7n, "entry 6: 6 is live");
    assert.equal(h.ok(leaseGrantRequest(10), "leaseGrant").id, 8n, "entry 7: 7 is live");
  });

  it("raises a TTL below one second to one and refuses one above etcd's maximum", () => {
    const h = new KvHarness();
    assert.equal(h.ok(leaseGrantRequest(0, 1n), "leaseGrant").ttlSeconds, 1);
    assert.equal(h.ok(leaseGrantRequest(-5, 2n), "leaseGrant").ttlSeconds, 1);
    assert.equal(
      h.ok(leaseGrantRequest(MAX_LEASE_TTL_SECONDS, 3n), "leaseGrant").ttlSeconds,
      MAX_LEASE_TTL_SECONDS,
    );
    assert.equal(
      h.error(leaseGrantRequest(MAX_LEASE_TTL_SECONDS + 1, 4n)),
      "etcdserver: too large lease TTL",
    );
    assert.equal(h.store.lease(4n), undefined);
  });

  it("a retried grant returns the original id and grants nothing more", () => {
    const h = new KvHarness();
    const envelope = { clientId: "c", sequence: 1, timestamp: 0n, command: leaseGrantRequest(10) };
    const first = h.store.apply(1, envelope);
    const retry = h.store.apply(2, envelope);
    assert.deepEqual(retry.result, first.result);
    assert.equal(retry.duplicate, true);
    assert.equal(retry.leaseChange, undefined, "a duplicate changes no lease");
    assert.equal(h.store.leases().length, 1);
  });
});

describe("attaching keys", () => {
  it("a put attaches its key; another lease, no lease or a delete detaches it", () => {
    const h = new KvHarness();
    h.ok(leaseGrantRequest(10, 1n), "leaseGrant");
    h.ok(leaseGrantRequest(10, 2n), "leaseGrant");
    h.ok(putRequest({ key: b("a"), value: b("1"), lease: 1n }), "put");
    h.ok(putRequest({ key: b("b"), value: b("1"), lease: 1n }), "put");
    h.ok(putRequest({ key: b("c"), value: b("1"), lease: 1n }), "put");
    assert.deepEqual(attached(h, 1n), ["a", "b", "c"]);
    h.ok(putRequest({ key: b("a"), value: b("2"), lease: 2n }), "put");
    h.ok(putRequest({ key: b("b"), value: b("2") }), "put");
    h.ok(deleteRangeRequest({ key: b("c") }), "deleteRange");
    assert.deepEqual(attached(h, 1n), []);
    assert.deepEqual(attached(h, 2n), ["a"]);
    h.ok(putRequest({ key: b("a"), value: b("3"), ignoreLease: true }), "put");
    assert.deepEqual(attached(h, 2n), ["a"], "ignore_lease keeps the attachment");
    assert.deepEqual(h.store.lease(2n, { keys: false })?.keys, [], "keys only when asked for");
  });
});

describe("LeaseRevoke", () => {
  it("deletes every attached key at one new revision, with an event each, and removes the lease", () => {
    const h = new KvHarness();
    h.ok(leaseGrantRequest(10, 9n), "leaseGrant");
    for (const key of ["k1", "k2", "k3"]) h.ok(putRequest({ key: b(key), value: b(key), lease: 9n }), "put");
    h.ok(putRequest({ key: b("other"), value: b("stays") }), "put");
    const before = h.store.revision;
    const outcome = h.apply(leaseRevokeRequest(9n), 1000n);
    assert.deepEqual(outcome.result, { revision: 1000n, response: { kind: "leaseRevoke" } });
    assert.deepEqual(outcome.leaseChange, { kind: "revoked", id: 9n });
    assert.deepEqual(
      outcome.events.map(
        (e) => `${e.type} ${s(e.kv.key)} @${e.kv.modRevision} was ${e.prevKv && s(e.prevKv.value)}`,
      ),
      ["delete k1 @1000 was k1", "delete k2 @1000 was k2", "delete k3 @1000 was k3"],
    );
    assert.equal(h.store.revision, 1000n);
    assert.deepEqual(liveKeys(h.store), ["other@0"]);
    const atBefore = h.store.range(rangeRequest({ key: b("k"), rangeEnd: b("l"), revision: before }));
    assert.equal(atBefore.kvs.length, 3, "no revision saw only some of the keys gone");
    assert.equal(h.store.lease(9n), undefined);
    assert.deepEqual(h.store.leases(), []);
  });

  it('an unknown lease fails with "etcdserver: requested lease not found"; a lease without keys creates no revision', () => {
    const h = new KvHarness();
    assert.equal(h.error(leaseRevokeRequest(5n)), "etcdserver: requested lease not found");
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    h.ok(leaseGrantRequest(10, 5n), "leaseGrant");
    const outcome = h.apply(leaseRevokeRequest(5n), 900n);
    assert.deepEqual(outcome.result, { revision: 1n, response: { kind: "leaseRevoke" } });
    assert.deepEqual(outcome.events, []);
    assert.equal(h.error(leaseRevokeRequest(5n)), "etcdserver: requested lease not found", "revoked");
  });
});

describe("puts must name a live lease", () => {
  it('a put with an unknown or revoked lease fails with "etcdserver: requested lease not found" and changes nothing', () => {
    const h = new KvHarness();
    h.ok(putRequest({ key: b("a"), value: b("1") }), "put");
    // The data, lease and attachment areas (meta and dedup records move with every entry).
    const state = () => dump(h.kv).filter((line) => /^(04|05|10)/.test(line));
    const before = state();
    assert.equal(before.length, 1);
    assert.equal(
      h.error(putRequest({ key: b("a"), value: b("2"), lease: 4n })),
      "etcdserver: requested lease not found",
    );
    assert.deepEqual(state(), before);
    h.ok(leaseGrantRequest(10, 4n), "leaseGrant");
    h.ok(leaseRevokeRequest(4n), "leaseRevoke");
    assert.equal(
      h.error(putRequest({ key: b("b"), value: b("2"), lease: 4n })),
      "etcdserver: requested lease not found",
    );
    assert.deepEqual(state(), before);
    assert.equal(h.store.revision, 1n);
    assert.deepEqual(liveKeys(h.store), ["a@0"]);
  });

  it("a transaction that would put with an unknown lease fails whole; an untaken branch is not checked", () => {
    const h = new KvHarness();
    h.ok(leaseGrantRequest(10, 1n), "leaseGrant");
    const bad = txnRequest({
      success: [
        putRequest({ key: b("a"), value: b("1"), lease: 1n }),
        putRequest({ key: b("b"), value: b("1"), lease: 2n }),
      ],
    });
    assert.equal(h.error(bad), "etcdserver: requested lease not found");
    assert.deepEqual(liveKeys(h.store), []);
    assert.deepEqual(attached(h, 1n), []);
    const untaken = txnRequest({
      success: [putRequest({ key: b("a"), value: b("1"), lease: 1n })],
      failure: [putRequest({ key: b("b"), value: b("1"), lease: 2n })],
    });
    assert.equal(h.ok(untaken, "txn").succeeded, true);
    assert.deepEqual(liveKeys(h.store), ["a@1"]);
    assert.deepEqual(attached(h, 1n), ["a"]);
  });

  it("without enforceLeases a lease id is recorded as given and attaches nothing", () => {
    const h = new KvHarness({});
    h.ok(putRequest({ key: b("a"), value: b("1"), lease: 4n }), "put");
    assert.deepEqual(liveKeys(h.store), ["a@4"]);
    h.ok(leaseGrantRequest(10, 4n), "leaseGrant");
    assert.deepEqual(attached(h, 4n), [], "attached only while the lease is live");
    h.ok(leaseRevokeRequest(4n), "leaseRevoke");
    assert.deepEqual(liveKeys(h.store), ["a@4"]);
  });
});

describe("leases in snapshots", () => {
  it("a restored store has the leases and attachments, and revoking there deletes the keys", async () => {
    const source = new KvHarness();
    source.ok(leaseGrantRequest(10, 1n), "leaseGrant");
    source.ok(leaseGrantRequest(20, 2n), "leaseGrant");
    source.ok(putRequest({ key: b("a"), value: b("1"), lease: 1n }), "put");
    source.ok(putRequest({ key: b("b"), value: b("1"), lease: 2n }), "put");
    const target = new KvHarness();
    await target.store.restore(source.store.snapshot());
    assert.deepEqual(target.store.leases(), source.store.leases());
    assert.deepEqual(attached(target, 1n), ["a"]);
    const outcome = target.store.apply(target.store.appliedIndex + 1, {
      clientId: "",
      sequence: 0,
      timestamp: 0n,
      command: leaseRevokeRequest(1n),
    });
    assert.deepEqual(
      outcome.events.map((e) => s(e.kv.key)),
      ["a"],
    );
    assert.deepEqual(liveKeys(target.store), ["b@2"]);
  });
});

describe("leases on every replica", () => {
  const key = fc.constantFrom("a", "b", "c", "d").map(b);
  const lease = fc.constantFrom(0n, 1n, 2n, 3n);
  const command: fc.Arbitrary<KvCommand> = fc.oneof(
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: -1, max: 20 }), lease)
        .map(([ttl, id]) => leaseGrantRequest(ttl, id)),
    },
    { weight: 2, arbitrary: lease.map(leaseRevokeRequest) },
    {
      weight: 4,
      arbitrary: fc.tuple(key, lease).map(([k, l]) => putRequest({ key: k, value: b("v"), lease: l })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(key, key).map(([k, end]) => deleteRangeRequest({ key: k, rangeEnd: end })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(key, lease, key, lease)
        .filter(([k1, , k2]) => s(k1) !== s(k2))
        .map(([k1, l1, k2, l2]) =>
          txnRequest({ success: [putRequest({ key: k1, lease: l1 }), putRequest({ key: k2, lease: l2 })] }),
        ),
    },
  );

  it("replicas end byte-identical, and a lease's attached keys are exactly the live keys naming it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(command, fc.bigInt({ min: 0n, max: 50n })), { maxLength: 40 }),
        (steps) => {
          const one = new KvHarness();
          const two = new KvHarness();
          for (const [c, timestamp] of steps) {
            assert.deepEqual(two.apply(c, timestamp), one.apply(c, timestamp));
          }
          assert.deepEqual(dump(two.kv), dump(one.kv));
          const live = liveKeys(one.store);
          const leases = one.store.leases().map((l) => l.id);
          for (const entry of live) {
            const id = BigInt(entry.split("@")[1]!);
            assert.ok(id === 0n || leases.includes(id), `${entry} names a live lease`);
          }
          for (const id of leases) {
            const expected = live
              .filter((entry) => entry.endsWith(`@${id}`))
              .map((entry) => entry.split("@")[0]!);
            assert.deepEqual(attached(one, id), expected, `keys of lease ${id}`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a replica restored from a snapshot mid-way ends identical to one that applied everything", async () => {
    const one = new KvHarness();
    one.ok(leaseGrantRequest(10, 1n), "leaseGrant");
    one.ok(putRequest({ key: b("a"), lease: 1n }), "put");
    const two = new KvHarness({ enforceLeases: true }, new MemoryOrderedKv());
    await two.store.restore(one.store.snapshot());
    const rest: KvCommand[] = [
      putRequest({ key: b("b"), lease: 1n }),
      leaseRevokeRequest(1n),
      leaseGrantRequest(5),
    ];
    for (const c of rest) {
      const index = one.store.appliedIndex + 1;
      const envelope = { clientId: "", sequence: 0, timestamp: 0n, command: c };
      assert.deepEqual(two.store.apply(index, envelope), one.store.apply(index, envelope));
    }
    assert.deepEqual(dump(two.kv), dump(one.kv));
  });
});
