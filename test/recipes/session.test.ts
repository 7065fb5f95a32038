// Session on a virtual clock with a scripted lease service: the local deadline is measured
// from the START of the last successful keep-alive, lost fires exactly at it when renewals
// fail, a keep-alive that says the lease is gone ends the session, bad timings are refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RecipeClient } from "../../src/recipes/index.js";
import { RecipeConfigError, Session, SessionLostError } from "../../src/recipes/index.js";
import { FakeRuntime } from "./fake-runtime.js";

/** Lease calls answered by the test: each keep-alive waits until the test answers it. */
class ScriptedLeases {
  readonly keepAlives: { resolve(ttl: number | null): void; reject(error: Error): void }[] = [];
  revoked: bigint[] = [];

  client(): RecipeClient {
    const unused = () => Promise.reject(new Error("not used by sessions"));
    return {
      get: unused,
      range: unused,
      txn: unused,
      watch: unused,
      leaseGrant: (ttlSeconds) => Promise.resolve({ id: 7n, ttlSeconds, revision: 1n }),
      leaseKeepAlive: () =>
        new Promise<number | null>((resolve, reject) => this.keepAlives.push({ resolve, reject })),
      leaseRevoke: (id) => {
        this.revoked.push(id);
        return Promise.resolve({ revision: 2n });
      },
    };
  }
}

function reasonOf(session: Session): string | undefined {
  const reason: unknown = session.lost.reason;
  return reason instanceof SessionLostError ? reason.reason : undefined;
}

test("the deadline runs from the start of the last successful keep-alive, minus the margin", async () => {
  const runtime = new FakeRuntime();
  const leases = new ScriptedLeases();
  const session = await Session.create(leases.client(), {
    ttlSeconds: 10,
    renewIntervalMs: 2_000,
    marginMs: 1_000,
    runtime,
  });
  let renewals = 0;
  session.onRenewed(() => renewals++);
  assert.equal(session.deadline, 9_000, "grant sent at 0");

  await runtime.advanceTo(2_000);
  assert.equal(leases.keepAlives.length, 1, "first renewal sent at 2000");
  await runtime.advanceTo(5_000);
  assert.equal(leases.keepAlives.length, 2, "an unanswered keep-alive does not hold back the next (at 4000)");
  leases.keepAlives[0]!.resolve(10);
  await runtime.advanceTo(5_000);
  assert.equal(session.deadline, 11_000, "2000 + 10 s - 1 s, not measured from the answer at 5000");
  assert.equal(renewals, 1);

  // Every later keep-alive fails: the session is lost exactly at the deadline.
  for (let t = 5_000; t < 10_999; t += 50) {
    await runtime.advanceTo(t);
    for (const pending of leases.keepAlives.splice(0)) pending.reject(new Error("unreachable"));
  }
  await runtime.advanceTo(10_999);
  assert.equal(session.isLost, false);
  await runtime.advanceTo(11_000);
  assert.equal(session.isLost, true);
  assert.equal(reasonOf(session), "deadline-passed");
  await session.close();
  assert.deepEqual(leases.revoked, [7n], "close revokes what it can");
});

test("a keep-alive that says the lease is gone ends the session; close fires lost and revokes", async () => {
  const runtime = new FakeRuntime();
  const leases = new ScriptedLeases();
  const session = await Session.create(leases.client(), { ttlSeconds: 5, renewIntervalMs: 1_000, runtime });
  await runtime.advanceTo(1_000);
  leases.keepAlives.shift()!.resolve(null);
  await runtime.advanceTo(1_000);
  assert.equal(reasonOf(session), "lease-gone");
  await session.close();
  assert.deepEqual(leases.revoked, [], "a lease known gone is not revoked");

  const other = await Session.create(leases.client(), { ttlSeconds: 5, renewIntervalMs: 1_000, runtime });
  await other.close();
  assert.equal(reasonOf(other), "closed");
  assert.deepEqual(leases.revoked, [7n]);
});

test("an attached session without keep-alive has no deadline", async () => {
  const runtime = new FakeRuntime();
  const leases = new ScriptedLeases();
  const session = await Session.attach(leases.client(), 42n, { ttlSeconds: 5, keepAlive: false, runtime });
  assert.equal(session.deadline, Infinity);
  await runtime.advanceTo(60_000);
  assert.equal(leases.keepAlives.length, 0);
  assert.equal(session.isLost, false);
  session.markLost("records-gone");
  assert.equal(reasonOf(session), "records-gone");
  await session.close({ revoke: false });
  assert.deepEqual(leases.revoked, []);
});

test("session timings are validated before any lease is granted", async () => {
  const leases = new ScriptedLeases();
  const client = leases.client();
  const cases: [Parameters<typeof Session.create>[1], RegExp][] = [
    [{ ttlSeconds: 0 }, /TTL must be an integer number of seconds >= 1/],
    [{ ttlSeconds: 1.5 }, /TTL must be an integer/],
    [{ ttlSeconds: 2, renewIntervalMs: 1_000 }, /less than half the lease TTL/],
    [{ ttlSeconds: 2, renewIntervalMs: 0 }, /renew interval must be a positive integer/],
    [{ ttlSeconds: 2, renewIntervalMs: 500, marginMs: 1_600 }, /leaves no time to renew/],
    [{ ttlSeconds: 2, marginMs: -1 }, /margin must be a non-negative integer/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(Session.create(client, options), (error: unknown) => {
      assert.ok(error instanceof RecipeConfigError);
      assert.match(error.message, message);
      return true;
    });
  }
});
