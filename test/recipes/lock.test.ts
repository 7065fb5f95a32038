// Fenced locks against a real embedded store: several contenders exclude each other, every
// holder's fencing token is greater than the previous holder's, a stale token's write fails,
// a waiter gives up on its signal.
import assert from "node:assert/strict";
import { test } from "node:test";
import { putRequest } from "../../src/kv/commands.js";
import { acquireLock, CampaignAbortedError, Session, type HeldLock } from "../../src/recipes/index.js";
import { text, waitFor, withStore, within } from "./helpers.js";

const encoder = new TextEncoder();

test("locks: mutual exclusion among contenders, fencing tokens strictly increase", async () => {
  await withStore(async (db) => {
    const contenders = 5;
    const roundsEach = 3;
    let holders = 0;
    let maxHolders = 0;
    const tokens: bigint[] = [];
    const contender = async (name: string): Promise<void> => {
      for (let round = 0; round < roundsEach; round++) {
        const lock = await within(acquireLock(db, "locks/job", { ttlSeconds: 2 }), `${name} round ${round}`);
        holders++;
        maxHolders = Math.max(maxHolders, holders);
        tokens.push(lock.fencingToken);
        // A read-modify-write of shared data, fenced: it commits only under the current token.
        const counter = await db.get("counter");
        const next = Number(text(counter?.value) ?? "0") + 1;
        const write = await db.txn({
          compares: lock.guard(),
          success: [putRequest({ key: encoder.encode("counter"), value: encoder.encode(String(next)) })],
        });
        assert.equal(write.succeeded, true);
        holders--;
        await lock.release();
        assert.ok(lock.lost.aborted, "release ends the holder's claim");
      }
    };
    await Promise.all(Array.from({ length: contenders }, (_, i) => contender(`c${i}`)));
    assert.equal(maxHolders, 1);
    assert.equal(tokens.length, contenders * roundsEach);
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `token ${i} grows`);
    assert.equal(text((await db.get("counter"))?.value), String(contenders * roundsEach));
  });
});

test("locks: a released holder's token no longer passes guard; a waiter can give up", async () => {
  await withStore(async (db) => {
    const first = await within(acquireLock(db, "locks/x", { ttlSeconds: 2 }), "first lock");
    const controller = new AbortController();
    const waiter = acquireLock(db, "locks/x", { ttlSeconds: 2, signal: controller.signal });
    await waitFor(
      async () => (await db.range("locks/x/candidates/", { prefix: true })).kvs.length === 2,
      "a waiter",
    );
    const gaveUp = assert.rejects(within(waiter, "the waiter to give up"), CampaignAbortedError);
    controller.abort();
    await gaveUp;
    assert.equal(
      (await db.range("locks/x/candidates/", { prefix: true })).kvs.length,
      1,
      "the waiter withdrew",
    );
    assert.equal((await db.leases()).length, 1, "the waiter's own session was revoked");

    const second = acquireLock(db, "locks/x", { ttlSeconds: 2 });
    await first.release();
    const next: HeldLock = await within(second, "second lock");
    assert.ok(next.fencingToken > first.fencingToken);
    assert.equal((await db.txn({ compares: first.guard() })).succeeded, false);
    assert.equal((await db.txn({ compares: next.guard() })).succeeded, true);
    assert.equal(text(next.key), `locks/x/candidates/${next.lease.toString(16)}`);
    await next.release();
  });
});

test("locks under a caller's lease: release leaves the lease alone; revoking it ends a waiter", async () => {
  await withStore(async (db) => {
    const holderLease = await db.leaseGrant(5);
    const holderSession = await Session.attach(db, holderLease.id, { ttlSeconds: 5, keepAlive: false });
    const held = await within(
      acquireLock(db, "locks/y", { session: holderSession }),
      "lock under a given lease",
    );
    assert.equal(held.lease, holderLease.id);

    const waiterLease = await db.leaseGrant(5);
    const waiterSession = await Session.attach(db, waiterLease.id, { ttlSeconds: 5, keepAlive: false });
    const waiter = acquireLock(db, "locks/y", { session: waiterSession });
    await waitFor(
      async () => (await db.range("locks/y/candidates/", { prefix: true })).kvs.length === 2,
      "a waiter",
    );
    const ended = assert.rejects(within(waiter, "the waiter to end"), (error: unknown) => {
      assert.ok(error instanceof CampaignAbortedError);
      assert.equal(error.reason, "lease-gone");
      return true;
    });
    await db.leaseRevoke(waiterLease.id);
    await ended;

    await held.release();
    assert.ok(held.lost.aborted);
    assert.ok(
      (await db.leases()).some((lease) => lease.id === holderLease.id),
      "the caller's lease lives on",
    );
    assert.equal((await db.range("locks/y/candidates/", { prefix: true })).kvs.length, 0);
  });
});
