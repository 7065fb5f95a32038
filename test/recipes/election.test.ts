// The election against a real embedded store: terms across campaign / resign / re-campaign,
// election order (registered priority, then FIFO), preemption, guard() fencing, proclaim.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConcordDb } from "../../src/api/index.js";
import { putRequest } from "../../src/kv/commands.js";
import { Election, LeadershipLostError, NotLeaderError, type Leadership } from "../../src/recipes/index.js";
import { isPending, text, waitFor, withStore, within } from "./helpers.js";

const FAST = { leaseSeconds: 2, renewIntervalMs: 200, candidateTimeoutMs: 500 };

function candidate(db: ConcordDb, id: string, subspace = "svc"): Election {
  return new Election(db, { subspace, candidateId: id });
}

async function registered(db: ConcordDb, id: string, subspace = "svc"): Promise<void> {
  await waitFor(async () => (await db.get(`${subspace}/candidates/${id}`)) !== null, `${id} registered`);
}

function lossReason(leadership: Leadership): string | undefined {
  const reason: unknown = leadership.lost.reason;
  return reason instanceof LeadershipLostError ? reason.reason : undefined;
}

test("campaign, resign and campaign again: the term only grows, lost fires on resign", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    try {
      await a.configure(FAST);
      const first = await within(a.campaign("a-1"), "a elected");
      assert.equal(first.term, 1n);
      assert.equal(text(first.leaderKey), "svc/candidates/a");
      const info = await a.leader();
      assert.equal(info?.holder, "a");
      assert.equal(info?.term, 1n);
      assert.equal(text(info?.value), "a-1");
      assert.equal(first.lost.aborted, false);
      assert.equal(a.leadership, first);

      await a.resign();
      assert.equal(lossReason(first), "resigned");
      assert.equal(a.leadership, null);
      assert.equal(await a.leader(), null);
      assert.equal(text((await db.get("svc/term"))?.value), "00000000000000000001", "resign keeps the term");

      const second = await within(a.campaign("a-2"), "a elected again");
      assert.equal(second.term, 2n);
      await a.resign();
      const third = await within(b.campaign("b-1"), "b elected");
      assert.equal(third.term, 3n);
      assert.equal((await b.leader())?.holder, "b");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test("election order: highest registered priority first, equal priorities in registration order", async () => {
  await withStore(async (db) => {
    const holder = candidate(db, "holder");
    const waiters = ["b", "c", "d", "e"].map((id) => candidate(db, id));
    try {
      await holder.configure(FAST);
      const held = await within(holder.campaign("h"), "holder elected");
      const priorities: Record<string, number> = { b: 1, c: 5, d: 5, e: 1 };
      const campaigns = new Map<string, Promise<Leadership>>();
      for (const election of waiters) {
        const id = election.candidateId;
        campaigns.set(id, election.campaign(id, { priority: priorities[id]! }));
        await registered(db, id);
      }
      const order: string[] = [];
      const terms: bigint[] = [held.term];
      await holder.resign();
      for (let i = 0; i < waiters.length; i++) {
        const winner = await within(
          Promise.race([...campaigns].map(([id, p]) => p.then(() => id))),
          `winner ${i}`,
        );
        const leadership = await campaigns.get(winner)!;
        campaigns.delete(winner);
        order.push(winner);
        terms.push(leadership.term);
        for (const [id, pending] of campaigns)
          assert.ok(await isPending(pending, 0), `${id} not elected too`);
        await waiters.find((w) => w.candidateId === winner)!.resign();
      }
      assert.deepEqual(order, ["c", "d", "b", "e"]);
      assert.deepEqual(terms, [1n, 2n, 3n, 4n, 5n]);
    } finally {
      await holder.close();
      for (const election of waiters) await election.close();
    }
  });
});

test("the priority that counts is the registered one, not the caller's", async () => {
  await withStore(async (db) => {
    const holder = candidate(db, "holder");
    const low = candidate(db, "low");
    const high = candidate(db, "high");
    try {
      await holder.configure(FAST);
      await within(holder.campaign("h"), "holder elected");
      const lowCampaign = low.campaign("low", { priority: 1 });
      await registered(db, "low");
      const highCampaign = high.campaign("high", { priority: 2 });
      await registered(db, "high");
      // Someone rewrites low's registration to a higher priority: the election reads that record.
      const record = await db.get("svc/candidates/low");
      const rewritten = JSON.parse(text(record!.value)!) as Record<string, unknown>;
      rewritten.priority = 9;
      await db.txn({
        success: [
          putRequest({
            key: record!.key,
            value: new TextEncoder().encode(JSON.stringify(rewritten)),
            lease: record!.lease,
          }),
        ],
      });
      await holder.resign();
      const elected = await within(lowCampaign, "low elected");
      assert.equal(elected.term, 2n);
      assert.ok(await isPending(highCampaign, 0));
      await low.resign();
      assert.equal((await within(highCampaign, "high elected")).term, 3n);
    } finally {
      await holder.close();
      await low.close();
      await high.close();
    }
  });
});

test("preemption: a strictly higher priority takes over and the holder is told first", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    const c = candidate(db, "c");
    try {
      await a.configure({ ...FAST, preemptionAllowed: true });
      const held = await within(a.campaign("a", { priority: 3 }), "a elected");
      const equal = c.campaign("c", { priority: 3 });
      await registered(db, "c");
      // An equal priority never preempts: several renewals pass and a still leads.
      assert.ok(await isPending(equal, 1_000));
      assert.equal(held.lost.aborted, false);

      const higher = await within(b.campaign("b", { priority: 7 }), "b elected by preemption");
      assert.equal(lossReason(held), "preempted", "the holder was told before b was elected");
      assert.equal(higher.term, 2n);
      assert.equal((await a.leader())?.holder, "b");
      assert.equal(await db.get("svc/candidates/a"), null, "the preempted holder withdrew");
      const ended = assert.rejects(equal);
      await c.close();
      await ended;
    } finally {
      await a.close();
      await b.close();
      await c.close();
    }
  });
});

test("without preemption a higher priority waits for the holder to go", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    try {
      await a.configure(FAST);
      const held = await within(a.campaign("a", { priority: 1 }), "a elected");
      const waiting = b.campaign("b", { priority: 9 });
      await registered(db, "b");
      assert.ok(await isPending(waiting, 1_000));
      assert.equal(held.lost.aborted, false);
      await a.resign();
      assert.equal((await within(waiting, "b elected")).term, 2n);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test("guard(): a write under a stale term fails, the current holder's succeeds", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    try {
      await a.configure(FAST);
      const first = await within(a.campaign("a"), "a elected");
      const write = (leadership: Leadership, value: string) =>
        db.txn({
          compares: leadership.guard(),
          success: [
            putRequest({ key: new TextEncoder().encode("data"), value: new TextEncoder().encode(value) }),
          ],
        });
      assert.equal((await write(first, "by a")).succeeded, true);
      await a.resign();
      assert.equal((await write(first, "by a after resigning")).succeeded, false, "no holder: stale");
      const second = await within(b.campaign("b"), "b elected");
      assert.equal((await write(first, "by a, deposed")).succeeded, false);
      assert.equal((await write(second, "by b")).succeeded, true);
      assert.equal(text((await db.get("data"))?.value), "by b");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test("proclaim changes the value and keeps the term; only the holder may", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    try {
      await a.configure(FAST);
      const held = await within(a.campaign("one"), "a elected");
      await a.proclaim("two");
      const info = await b.leader();
      assert.equal(text(info?.value), "two");
      assert.equal(info?.term, held.term);
      assert.equal(held.lost.aborted, false, "a proclaim is not a change of holder");
      await assert.rejects(b.proclaim("three"), NotLeaderError);
      assert.equal(text((await b.leader())?.value), "two");
    } finally {
      await a.close();
      await b.close();
    }
  });
});
