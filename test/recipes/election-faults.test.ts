// The election under faults, against a real embedded store: a holder that cannot renew loses
// (lost fires at its local deadline, before the store expires its lease and a successor is
// elected); campaigns abort on their signal and on session loss; ambiguous acquire answers
// are settled by reading the state again.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CampaignAbortedError,
  Election,
  LeadershipLostError,
  Session,
  type Leadership,
} from "../../src/recipes/index.js";
import { FaultyClient, puts } from "./faulty-client.js";
import { waitFor, withStore, within } from "./helpers.js";

const SHORT = { leaseSeconds: 1, renewIntervalMs: 200, candidateTimeoutMs: 300 };

function lossReason(leadership: Leadership): string | undefined {
  const reason: unknown = leadership.lost.reason;
  return reason instanceof LeadershipLostError ? reason.reason : undefined;
}

test("a holder that cannot renew: lost fires, the leader vanishes with its lease, the next is elected", async () => {
  await withStore(async (db) => {
    const faulty = new FaultyClient(db);
    const a = new Election(faulty, { subspace: "svc", candidateId: "a" });
    const b = new Election(db, { subspace: "svc", candidateId: "b" });
    try {
      await a.configure(SHORT);
      const held = await within(a.campaign("a"), "a elected");
      const successor = b.campaign("b");
      await waitFor(async () => (await db.get("svc/candidates/b")) !== null, "b registered");
      faulty.keepAliveFails = true;
      const elected = await within(successor, "b elected after a's lease expired");
      assert.equal(lossReason(held), "deadline-passed", "a was told before b was elected");
      assert.equal(elected.term, 2n);
      assert.equal(await db.get("svc/candidates/a"), null, "a's records went with its lease");
      const writeByA = await db.txn({ compares: held.guard() });
      assert.equal(writeByA.succeeded, false);
    } finally {
      faulty.keepAliveFails = false;
      await a.close();
      await b.close();
    }
  });
});

test("a revoked lease: the holder's keep-alive hears it is gone", async () => {
  await withStore(async (db) => {
    const a = new Election(db, { subspace: "svc", candidateId: "a" });
    try {
      await a.configure(SHORT);
      const held = await within(a.campaign("a"), "a elected");
      await db.leaseRevoke(held.lease);
      await waitFor(() => held.lost.aborted, "a's lost");
      assert.ok(["lease-gone", "leader-changed"].includes(lossReason(held) ?? ""), lossReason(held));
      assert.equal(await a.leader(), null);
    } finally {
      await a.close();
    }
  });
});

test("a campaign aborts on its signal and withdraws", async () => {
  await withStore(async (db) => {
    const a = new Election(db, { subspace: "svc", candidateId: "a" });
    const b = new Election(db, { subspace: "svc", candidateId: "b" });
    try {
      await a.configure(SHORT);
      await within(a.campaign("a"), "a elected");
      const controller = new AbortController();
      const waiting = b.campaign("b", { signal: controller.signal });
      await waitFor(async () => (await db.get("svc/candidates/b")) !== null, "b registered");
      controller.abort();
      await assert.rejects(within(waiting, "b's campaign to end"), (error: unknown) => {
        assert.ok(error instanceof CampaignAbortedError);
        assert.equal(error.reason, "signal");
        return true;
      });
      assert.equal(await db.get("svc/candidates/b"), null);
      const already = new AbortController();
      already.abort();
      await assert.rejects(b.campaign("b", { signal: already.signal }), CampaignAbortedError);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test("a campaign aborts when its session is lost while waiting (no phantom leader)", async () => {
  await withStore(async (db) => {
    const a = new Election(db, { subspace: "svc", candidateId: "a" });
    const faulty = new FaultyClient(db);
    const b = new Election(faulty, { subspace: "svc", candidateId: "b" });
    try {
      await a.configure(SHORT);
      await within(a.campaign("a"), "a elected");
      const waiting = b.campaign("b");
      await waitFor(async () => (await db.get("svc/candidates/b")) !== null, "b registered");
      faulty.keepAliveFails = true;
      await assert.rejects(within(waiting, "b's campaign to end"), (error: unknown) => {
        assert.ok(error instanceof CampaignAbortedError);
        assert.equal(error.reason, "deadline-passed");
        return true;
      });
      faulty.keepAliveFails = false;
      await a.resign();
      await waitFor(async () => (await db.get("svc/candidates/b")) === null, "b's record to expire");
      assert.equal(await a.leader(), null, "nobody leads: b gave up");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test("an acquire whose answer is lost after it applied: the re-read finds it elected", async () => {
  await withStore(async (db) => {
    const faulty = new FaultyClient(db);
    let armed = true;
    faulty.loseAnswer = (spec) => (armed && puts(spec, "svc/leader") ? ((armed = false), "after") : null);
    const a = new Election(faulty, { subspace: "svc", candidateId: "a" });
    try {
      await a.configure(SHORT);
      const held = await within(a.campaign("a"), "a elected");
      assert.equal(faulty.ambiguousAnswers, 1);
      assert.equal(held.term, 1n, "applied once, not twice");
      assert.equal((await a.leader())?.holder, "a");
      assert.equal((await db.txn({ compares: held.guard() })).succeeded, true);
    } finally {
      await a.close();
    }
  });
});

test("an acquire whose answer is lost before it applied: the campaign tries again", async () => {
  await withStore(async (db) => {
    const faulty = new FaultyClient(db);
    let remaining = 2;
    faulty.loseAnswer = (spec) =>
      remaining > 0 && puts(spec, "svc/leader") ? (remaining--, "before") : null;
    const a = new Election(faulty, { subspace: "svc", candidateId: "a" });
    try {
      await a.configure(SHORT);
      const held = await within(a.campaign("a"), "a elected");
      assert.equal(faulty.ambiguousAnswers, 2);
      assert.equal(held.term, 1n);
    } finally {
      await a.close();
    }
  });
});

test("close ends a waiting campaign and a held leadership", async () => {
  await withStore(async (db) => {
    const a = new Election(db, { subspace: "svc", candidateId: "a" });
    const b = new Election(db, { subspace: "svc", candidateId: "b" });
    await a.configure(SHORT);
    const held = await within(a.campaign("a"), "a elected");
    const waiting = b.campaign("b");
    await waitFor(async () => (await db.get("svc/candidates/b")) !== null, "b registered");
    const ended = assert.rejects(within(waiting, "b's campaign to end"), CampaignAbortedError);
    await b.close();
    await ended;
    assert.equal(held.lost.aborted, false);
    await a.close();
    assert.equal(lossReason(held), "closed");
    assert.equal(await db.get("svc/leader"), null, "the revoked lease took the leader record");
  });
});

test("a campaign under a lease the store no longer has aborts as lease-gone", async () => {
  await withStore(async (db) => {
    const granted = await db.leaseGrant(5);
    const session = await Session.attach(db, granted.id, {
      ttlSeconds: granted.ttlSeconds,
      keepAlive: false,
    });
    const a = new Election(db, { subspace: "svc", candidateId: "a", session });
    try {
      await a.configure(SHORT);
      await db.leaseRevoke(granted.id);
      await assert.rejects(within(a.campaign("a"), "the campaign to end"), (error: unknown) => {
        assert.ok(error instanceof CampaignAbortedError, String(error));
        assert.equal(error.reason, "lease-gone");
        return true;
      });
      assert.equal(await db.get("svc/candidates/a"), null, "nothing registered");
    } finally {
      await a.close();
    }
  });
});
