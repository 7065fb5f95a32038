// The leader's lease clock: deadlines on an injected monotonic clock, keep-alive, the list of
// expired leases for the leader to revoke through the log (the store never expires anything
// by itself), fresh full TTLs for a new leader, and TimeToLive.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { leaseGrantRequest, leaseRevokeRequest, putRequest } from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import { LeaseClock } from "../../src/kv/lease-clock.js";
import { b, s } from "./helpers.js";
import { KvHarness } from "./kv-harness.js";

/** A store, a virtual monotonic clock and a lease clock that follows the store's applies. */
class Setup {
  readonly h = new KvHarness();
  time = 0;
  readonly clock: LeaseClock;

  constructor(revokeRetryMs?: number) {
    this.clock = new LeaseClock(
      this.h.store,
      () => this.time,
      revokeRetryMs === undefined ? {} : { revokeRetryMs },
    );
  }

  grant(id: bigint, ttlSeconds: number): void {
    this.clock.applied(this.h.apply(leaseGrantRequest(ttlSeconds, id)).leaseChange);
  }

  revoke(id: bigint): void {
    this.clock.applied(this.h.apply(leaseRevokeRequest(id)).leaseChange);
  }
}

function notLeader(action: () => unknown): void {
  assert.throws(action, (error: unknown) => error instanceof KvError && error.code === KvErrorCode.NotLeader);
}

describe("LeaseClock", () => {
  it("lists a lease once its TTL has passed; only the revoke command removes it from the store", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    t.grant(1n, 10);
    t.h.ok(putRequest({ key: b("k"), lease: 1n }), "put");
    t.time = 9_999;
    assert.deepEqual(t.clock.expired(), []);
    t.time = 10_000;
    assert.deepEqual(t.clock.expired(), [1n]);
    t.time = 1_000_000;
    assert.ok(t.h.store.lease(1n) !== undefined, "the store still has the lease: only a command expires it");
    assert.deepEqual(t.h.store.lease(1n, { keys: true })?.keys.map(s), ["k"]);
    t.revoke(1n);
    assert.equal(t.h.store.lease(1n), undefined);
    assert.deepEqual(t.clock.expired(), []);
  });

  it("keep-alive moves the deadline to now + TTL and answers the granted TTL", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    t.grant(1n, 10);
    t.time = 8_000;
    assert.equal(t.clock.keepAlive(1n), 10);
    t.time = 17_999;
    assert.deepEqual(t.clock.expired(), [], "the old deadline (10 s) has passed, the new one (18 s) has not");
    t.time = 18_000;
    assert.deepEqual(t.clock.expired(), [1n]);
  });

  it("keep-alive of an unknown or already expired lease answers null and renews nothing", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    assert.equal(t.clock.keepAlive(5n), null);
    t.grant(1n, 1);
    t.time = 1_000;
    assert.equal(t.clock.keepAlive(1n), null, "expired: its revocation is due");
    assert.deepEqual(t.clock.expired(), [1n]);
  });

  it("a new leader gives every lease a full TTL from the moment it took over", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    t.grant(1n, 10);
    t.grant(2n, 4);
    t.time = 9_000;
    t.clock.onStepDown();
    // Another replica's clock, following the same store, takes over at 9 s.
    const successor = new LeaseClock(t.h.store, () => t.time);
    successor.onBecomeLeader();
    t.time = 12_999;
    assert.deepEqual(successor.expired(), [], "lease 2 would have expired at 4 s under the old leader");
    t.time = 13_000;
    assert.deepEqual(successor.expired(), [2n]);
    successor.applied(t.h.apply(leaseRevokeRequest(2n)).leaseChange);
    t.time = 18_999;
    assert.deepEqual(successor.expired(), []);
    t.time = 19_000;
    assert.deepEqual(successor.expired(), [1n]);
  });

  it("a replica that does not lead keeps no deadlines and refuses leader-only calls", () => {
    const t = new Setup();
    t.grant(1n, 1);
    assert.equal(t.clock.isLeader, false);
    notLeader(() => t.clock.keepAlive(1n));
    notLeader(() => t.clock.expired());
    notLeader(() => t.clock.timeToLive(1n));
    t.clock.onBecomeLeader();
    t.clock.onStepDown();
    notLeader(() => t.clock.expired());
  });

  it("lists an expired lease again only after the retry interval, and not at all once revoked", () => {
    const t = new Setup(500);
    t.clock.onBecomeLeader();
    t.grant(1n, 1);
    t.grant(2n, 1);
    t.grant(3n, 2);
    t.time = 1_000;
    assert.deepEqual(t.clock.expired(1), [1n], "at most `limit`");
    assert.deepEqual(t.clock.expired(), [2n]);
    t.time = 1_499;
    assert.deepEqual(t.clock.expired(), []);
    t.revoke(2n);
    t.time = 2_000;
    assert.deepEqual(t.clock.expired().sort(), [1n, 3n], "1 again (its revoke was lost), 3 due, 2 gone");
  });

  it("drops a lease the store no longer has even if its revocation was never followed", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    t.grant(1n, 1);
    t.h.apply(leaseRevokeRequest(1n));
    t.time = 5_000;
    assert.deepEqual(t.clock.expired(), []);
  });

  it("adopts with a full TTL a lease whose grant it was not told about", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    t.time = 1_000;
    t.h.apply(leaseGrantRequest(5, 1n));
    t.time = 3_000;
    assert.equal(t.clock.timeToLive(1n)?.remainingTtlSeconds, 5, "adopted now, at 3 s");
    t.time = 7_999;
    assert.deepEqual(t.clock.expired(), []);
    t.time = 8_000;
    assert.deepEqual(t.clock.expired(), [1n]);
  });

  it("TimeToLive answers the granted TTL, the whole seconds left and the attached keys", () => {
    const t = new Setup();
    t.clock.onBecomeLeader();
    t.grant(1n, 10);
    t.h.ok(putRequest({ key: b("b"), lease: 1n }), "put");
    t.h.ok(putRequest({ key: b("a"), lease: 1n }), "put");
    t.time = 2_500;
    const ttl = t.clock.timeToLive(1n, true);
    assert.ok(ttl !== null);
    assert.deepEqual(
      { ...ttl, keys: ttl.keys.map(s) },
      { id: 1n, grantedTtlSeconds: 10, remainingTtlSeconds: 7, keys: ["a", "b"] },
    );
    assert.deepEqual(t.clock.timeToLive(1n)?.keys, []);
    t.time = 20_000;
    assert.equal(t.clock.timeToLive(1n)?.remainingTtlSeconds, 0);
    assert.equal(t.clock.timeToLive(2n), null);
  });

  it("refuses a clock that goes backwards", () => {
    const t = new Setup();
    t.time = 100;
    t.clock.onBecomeLeader();
    t.time = 99;
    assert.throws(() => t.clock.expired(), /clock went back/);
  });

  it("agrees with a table of deadlines checked one by one", () => {
    type Action =
      | { kind: "grant" | "revoke" | "keepAlive"; id: bigint; ttl: number }
      | { kind: "advance"; ms: number }
      | { kind: "expired" };
    const id = fc.bigInt({ min: 1n, max: 5n });
    const action: fc.Arbitrary<Action> = fc.oneof(
      fc.record({
        kind: fc.constantFrom("grant" as const, "revoke" as const, "keepAlive" as const),
        id,
        ttl: fc.integer({ min: 1, max: 4 }),
      }),
      fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 2500 }) }),
      fc.record({ kind: fc.constant("expired" as const) }),
    );
    fc.assert(
      fc.property(fc.array(action, { maxLength: 60, size: "max" }), (actions) => {
        const t = new Setup(1000);
        t.clock.onBecomeLeader();
        const model = new Map<bigint, { ttlMs: number; expiresAt: number; retryAt: number }>();
        for (const a of actions) {
          switch (a.kind) {
            case "grant":
              if (model.has(a.id)) break;
              t.grant(a.id, a.ttl);
              model.set(a.id, { ttlMs: a.ttl * 1000, expiresAt: t.time + a.ttl * 1000, retryAt: -Infinity });
              break;
            case "revoke":
              if (!model.has(a.id)) break;
              t.revoke(a.id);
              model.delete(a.id);
              break;
            case "keepAlive": {
              const entry = model.get(a.id);
              const alive = entry !== undefined && entry.expiresAt > t.time;
              if (alive) entry.expiresAt = t.time + entry.ttlMs;
              assert.equal(t.clock.keepAlive(a.id), alive ? entry.ttlMs / 1000 : null);
              break;
            }
            case "advance":
              t.time += a.ms;
              break;
            case "expired": {
              const due = [...model.entries()].filter(
                ([, e]) => e.expiresAt <= t.time && e.retryAt <= t.time,
              );
              for (const [, e] of due) e.retryAt = t.time + 1000;
              assert.deepEqual(t.clock.expired().sort(), due.map(([dueId]) => dueId).sort());
              break;
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
