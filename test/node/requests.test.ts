// The request bookkeeping on its own: proposals settle exactly once (by request id, by a
// foreign entry at their expected index, by a snapshot passing it, by timeout), and reads move
// from queued to awaiting their index to servable.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { rangeRequest } from "../../src/kv/commands.js";
import { PendingReads, PendingRequests, commandKey, type Waiter } from "../../src/node/requests.js";

interface Outcome {
  resolved: number[];
  rejected: string[];
}

function waiter(key: string, expectedIndex: number, deadline: number, outcome: Outcome): Waiter<number> {
  return {
    key,
    deadline,
    expectedIndex,
    resolve: (value) => outcome.resolved.push(value),
    reject: (error) => outcome.rejected.push(error.message),
  };
}

test("a proposal resolves when an entry with its request id applies, wherever that entry is", () => {
  const pending = new PendingRequests<number>();
  const outcome: Outcome = { resolved: [], rejected: [] };
  pending.add(waiter(commandKey("c", 1), 5, 100, outcome));
  pending.add(waiter(commandKey("c", 1), 0, 100, outcome));
  pending.resolve(commandKey("c", 1), 42);
  pending.indexTaken(5, () => new Error("overwritten"));
  assert.deepEqual(outcome, { resolved: [42, 42], rejected: [] });
  assert.equal(pending.size, 0);
});

test("a proposal whose expected index applies with another request is told it was overwritten", () => {
  const pending = new PendingRequests<number>();
  const outcome: Outcome = { resolved: [], rejected: [] };
  pending.add(waiter(commandKey("c", 1), 5, 100, outcome));
  pending.resolve(commandKey("other", 9), 1);
  pending.indexTaken(5, () => new Error("overwritten"));
  // Settled once: a later entry with its id changes nothing.
  pending.resolve(commandKey("c", 1), 2);
  assert.deepEqual(outcome, { resolved: [], rejected: ["overwritten"] });
});

test("snapshots and deadlines end the proposals they pass", () => {
  const pending = new PendingRequests<number>();
  const outcome: Outcome = { resolved: [], rejected: [] };
  pending.add(waiter("a", 3, 1_000, outcome));
  pending.add(waiter("b", 9, 1_000, outcome));
  pending.add(waiter("c", 0, 50, outcome));
  pending.passed(5, () => new Error("snapshot"));
  assert.equal(
    pending.expire(49, () => new Error("timeout")),
    0,
  );
  assert.equal(
    pending.expire(50, () => new Error("timeout")),
    1,
  );
  pending.failAll(() => new Error("stopped"));
  assert.deepEqual(outcome.rejected, ["snapshot", "timeout", "stopped"]);
  assert.equal(pending.size, 0);
});

test("a newer proposal at the same log index takes the index over; the older waits by request id", () => {
  const pending = new PendingRequests<number>();
  const outcome: Outcome = { resolved: [], rejected: [] };
  pending.add(waiter("old", 3, 100, outcome));
  pending.add(waiter("new", 3, 100, outcome));
  pending.resolve("new", 1);
  pending.indexTaken(3, () => new Error("overwritten"));
  assert.deepEqual(outcome, { resolved: [1], rejected: [] });
  pending.resolve("old", 2);
  assert.deepEqual(outcome, { resolved: [1, 2], rejected: [] });
});

test("every proposal settles exactly once, whatever happens to it", () => {
  const event = fc.oneof(
    fc.record({ kind: fc.constant("resolve" as const), key: fc.nat(4) }),
    fc.record({ kind: fc.constant("taken" as const), index: fc.nat(8) }),
    fc.record({ kind: fc.constant("passed" as const), index: fc.nat(8) }),
    fc.record({ kind: fc.constant("expire" as const), now: fc.nat(20) }),
  );
  fc.assert(
    fc.property(
      fc.array(fc.nat(8), { maxLength: 6 }),
      fc.array(fc.nat(4), { maxLength: 6 }),
      fc.array(event, { maxLength: 20 }),
      (indexes, keys, events) => {
        const pending = new PendingRequests<number>();
        const settledCount = new Map<number, number>();
        const all = [
          ...indexes.map((index, i) => ({ key: i % 5, index })),
          ...keys.map((key) => ({ key, index: 0 })),
        ];
        all.forEach(({ key, index }, id) => {
          const bump = () => settledCount.set(id, (settledCount.get(id) ?? 0) + 1);
          pending.add({
            key: `${key}`,
            deadline: 10 + id,
            expectedIndex: index,
            resolve: bump,
            reject: bump,
          });
        });
        for (const e of events) {
          if (e.kind === "resolve") pending.resolve(`${e.key}`, 1);
          else if (e.kind === "taken") pending.indexTaken(e.index, () => new Error("taken"));
          else if (e.kind === "passed") pending.passed(e.index, () => new Error("passed"));
          else pending.expire(e.now, () => new Error("timeout"));
        }
        const open = pending.size;
        pending.failAll(() => new Error("stopped"));
        assert.equal(pending.size, 0);
        assert.equal(settledCount.size, all.length, `open before failAll: ${open}`);
        for (const count of settledCount.values()) assert.equal(count, 1);
      },
    ),
  );
});

test("reads wait for their batch's read index, then for application of it", () => {
  const reads = new PendingReads();
  const served: string[] = [];
  const failed: string[] = [];
  const read = (name: string, deadline = 100) => ({
    request: rangeRequest({ key: new Uint8Array([1]) }),
    deadline,
    resolve: () => served.push(name),
    reject: (error: Error) => failed.push(`${name}: ${error.message}`),
  });
  reads.add(read("a"));
  reads.add(read("b"));
  assert.equal(reads.hasQueued, true);
  reads.awaitIndex("ctx1", reads.takeQueued(), 0);
  reads.add(read("late", 10));
  reads.indexKnown("stale", 1);
  assert.deepEqual(reads.takeServable(1_000), []);
  reads.indexKnown("ctx1", 7);
  assert.deepEqual(reads.takeServable(6), []);
  const servable = reads.takeServable(7);
  assert.equal(servable.length, 2);
  assert.equal(
    reads.expire(10, () => new Error("timeout")),
    1,
  );
  assert.deepEqual(failed, ["late: timeout"]);
  assert.equal(reads.size, 0);
});

test("a ReadIndex request unanswered for the retry interval is due again, once per interval, until answered", () => {
  const reads = new PendingReads();
  const read = (deadline: number) => ({
    request: rangeRequest({ key: new Uint8Array([1]) }),
    deadline,
    resolve: () => undefined,
    reject: () => undefined,
  });
  reads.add(read(1_000));
  reads.awaitIndex("ctx1", reads.takeQueued(), 0);
  reads.add(read(1_000));
  reads.awaitIndex("ctx2", reads.takeQueued(), 300);
  assert.deepEqual(reads.resendDue(499, 500), []);
  assert.deepEqual(reads.resendDue(500, 500), ["ctx1"]);
  assert.deepEqual(reads.resendDue(800, 500), ["ctx2"]);
  assert.deepEqual(reads.resendDue(900, 500), [], "each was just sent again");
  reads.indexKnown("ctx1", 4);
  assert.deepEqual(reads.resendDue(1_300, 500), ["ctx2"], "an answered request is not sent again");
  assert.equal(
    reads.expire(1_000, () => new Error("timeout")),
    1,
    "the unanswered read still expires",
  );
  assert.deepEqual(reads.resendDue(2_000, 500), []);
});
