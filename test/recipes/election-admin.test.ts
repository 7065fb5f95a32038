// The election's moves of the term and its observers, against a real embedded store:
// transferTo, evict, fenceAll, disable / enable, observe (resumable from a revision).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConcordDb } from "../../src/api/index.js";
import {
  CampaignAbortedError,
  Election,
  LeadershipLostError,
  RecipeConfigError,
  type LeaderChange,
  type Leadership,
} from "../../src/recipes/index.js";
import { isPending, text, waitFor, withStore, within } from "./helpers.js";

const FAST = { leaseSeconds: 2, renewIntervalMs: 200, candidateTimeoutMs: 500 };

function candidate(db: ConcordDb, id: string): Election {
  return new Election(db, { subspace: "svc", candidateId: id });
}

async function registered(db: ConcordDb, id: string): Promise<void> {
  await waitFor(async () => (await db.get(`svc/candidates/${id}`)) !== null, `${id} registered`);
}

function lossReason(leadership: Leadership): string | undefined {
  const reason: unknown = leadership.lost.reason;
  return reason instanceof LeadershipLostError ? reason.reason : undefined;
}

test("transferTo hands leadership to the named candidate with term + 1", async () => {
  await withStore(async (db) => {
    const [a, b, c] = ["a", "b", "c"].map((id) => candidate(db, id)) as [Election, Election, Election];
    try {
      await a.configure(FAST);
      const held = await within(a.campaign("a"), "a elected");
      const bCampaign = b.campaign("b-value", { priority: 1 });
      const cCampaign = c.campaign("c-value", { priority: 9 });
      await registered(db, "b");
      await registered(db, "c");
      await assert.rejects(a.transferTo("nobody"), RecipeConfigError);
      assert.equal(held.lost.aborted, false, "a failed hand-off to an unknown candidate changes nothing");

      assert.equal(await a.transferTo("b"), 2n);
      assert.equal(lossReason(held), "transferred");
      const bLeads = await within(bCampaign, "b elected by hand-off");
      assert.equal(bLeads.term, 2n);
      const info = await a.leader();
      assert.equal(info?.holder, "b");
      assert.equal(text(info?.value), "b-value");
      assert.equal(info?.lease, bLeads.lease);
      assert.ok(await isPending(cCampaign, 0), "c, though higher, waits: b was named");
      assert.equal((await db.txn({ compares: held.guard() })).succeeded, false);
      assert.equal((await db.txn({ compares: bLeads.guard() })).succeeded, true);
      await b.resign();
      assert.equal((await within(cCampaign, "c elected")).term, 3n);
    } finally {
      for (const election of [a, b, c]) await election.close();
    }
  });
});

test("evict removes a waiting candidate, and the holder with a term bump", async () => {
  await withStore(async (db) => {
    const [a, b, c, admin] = ["a", "b", "c", "admin"].map((id) => candidate(db, id));
    try {
      await a!.configure(FAST);
      const held = await within(a!.campaign("a"), "a elected");
      const bCampaign = b!.campaign("b");
      await registered(db, "b");
      const bEnded = assert.rejects(within(bCampaign, "b's campaign to end"), (error: unknown) => {
        assert.ok(error instanceof CampaignAbortedError);
        assert.equal(error.reason, "evicted");
        return true;
      });
      assert.equal(await admin!.evict("b"), true);
      await bEnded;

      const cCampaign = c!.campaign("c");
      await registered(db, "c");
      assert.equal(await admin!.evict("a"), true);
      await waitFor(() => held.lost.aborted, "a's lost");
      assert.ok(["leader-changed", "term-changed"].includes(lossReason(held) ?? ""), lossReason(held));
      const cLeads = await within(cCampaign, "c elected");
      assert.equal(cLeads.term, 3n, "1 (a) + 1 (eviction) + 1 (c)");
      assert.equal(await admin!.evict("nobody"), false);
    } finally {
      for (const election of [a, b, c, admin]) await election!.close();
    }
  });
});

test("fenceAll makes every token stale and removes the holder", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    try {
      await a.configure(FAST);
      const held = await within(a.campaign("a"), "a elected");
      assert.equal(await b.fenceAll(), 2n);
      assert.equal((await db.txn({ compares: held.guard() })).succeeded, false);
      await waitFor(() => held.lost.aborted, "a's lost");
      assert.equal(await b.leader(), null);
      assert.equal(await b.fenceAll(), 3n, "with nobody leading the term still moves");
      assert.equal((await within(b.campaign("b"), "b elected")).term, 4n);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test("disable removes the holder and stops elections until enable", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    try {
      await a.configure(FAST);
      const held = await within(a.campaign("a"), "a elected");
      await b.disable();
      assert.equal((await b.config()).electionEnabled, false);
      await waitFor(() => held.lost.aborted, "a's lost");
      const waiting = b.campaign("b");
      await registered(db, "b");
      assert.ok(await isPending(waiting, 800), "nobody is elected while disabled");
      assert.equal(await b.leader(), null);
      await a.enable();
      assert.equal((await within(waiting, "b elected after enable")).term, 3n);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

async function take(iterator: AsyncIterator<LeaderChange>, count: number): Promise<LeaderChange[]> {
  const changes: LeaderChange[] = [];
  while (changes.length < count) {
    const next = await within(iterator.next(), `change ${changes.length + 1}`);
    if (next.done === true) assert.fail("the observer ended early");
    changes.push(next.value);
  }
  return changes;
}

const summary = (change: LeaderChange) =>
  `${change.leader ?? "-"}:${change.term}:${text(change.value ?? undefined) ?? ""}`;

test("observe reports the current state, then every change, and resumes from a revision", async () => {
  await withStore(async (db) => {
    const a = candidate(db, "a");
    const b = candidate(db, "b");
    const watcher = candidate(db, "watcher");
    const stop = new AbortController();
    try {
      await a.configure(FAST);
      const live = watcher.observe({ signal: stop.signal })[Symbol.asyncIterator]();
      const [initial] = await take(live, 1);
      assert.equal(summary(initial!), "-:0:");

      await within(a.campaign("one"), "a elected");
      await a.proclaim("two");
      await a.resign();
      await within(b.campaign("three"), "b elected");
      await b.fenceAll();
      const changes = await take(live, 5);
      assert.deepEqual(changes.map(summary), ["a:1:one", "a:1:two", "-:1:", "b:2:three", "-:3:"]);
      for (let i = 1; i < changes.length; i++) assert.ok(changes[i]!.revision > changes[i - 1]!.revision);

      const resumed = watcher.observe({ fromRevision: changes[1]!.revision + 1n, signal: stop.signal });
      const again = await take(resumed[Symbol.asyncIterator](), 3);
      assert.deepEqual(again.map(summary), ["-:1:", "b:2:three", "-:3:"]);
      assert.deepEqual(
        again.map((change) => change.revision),
        changes.slice(2).map((change) => change.revision),
      );
      stop.abort();
      assert.equal((await within(live.next(), "the observer to end")).done, true);
    } finally {
      stop.abort();
      for (const election of [a, b, watcher]) await election.close();
    }
  });
});
