// WatchHub, one behaviour per test: ordering, history replay switching to live events, start
// revisions, filters, prev_kv, compaction and overload cancellation, cancel, progress
// notifications, fragments, and catching up after a snapshot restore.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compactRequest,
  deleteRangeRequest,
  leaseGrantRequest,
  leaseRevokeRequest,
  putRequest,
  txnRequest,
} from "../../src/kv/commands.js";
import { KvError, KvErrorCode } from "../../src/kv/errors.js";
import type { KvEvent } from "../../src/kv/results.js";
import { WatchHub, type Watch, type WatchHubOptions, type WatchResponse } from "../../src/kv/watch.js";
import { FROM_KEY, b, s } from "./helpers.js";
import { KvHarness } from "./kv-harness.js";

const COMPACTED = "mvcc: required revision has been compacted";

function setup(options: WatchHubOptions = {}): { h: KvHarness; hub: WatchHub } {
  const h = new KvHarness();
  const hub = new WatchHub(h.store, options);
  h.feed(hub);
  return { h, hub };
}

function put(h: KvHarness, key: string, value: string, timestamp = 0n): void {
  h.ok(putRequest({ key: b(key), value: b(value) }), "put", timestamp);
}

function eventText(event: KvEvent): string {
  const prev = event.prevKv === null ? "" : ` (was ${s(event.prevKv.value)})`;
  const value = event.type === "put" ? `=${s(event.kv.value)}` : "";
  return `${event.kv.modRevision} ${event.type} ${s(event.kv.key)}${value}${prev}`;
}

/** Every response that can be had now. */
function drain(watch: Watch): WatchResponse[] {
  const out: WatchResponse[] = [];
  for (let response = watch.poll(); response !== undefined; response = watch.poll()) out.push(response);
  return out;
}

function drainEvents(watch: Watch): string[] {
  return drain(watch).flatMap((r) => r.events.map(eventText));
}

describe("WatchHub: ordering and start revisions", () => {
  it("delivers events in revision order, and a transaction's events in key order", () => {
    const { h, hub } = setup();
    const watch = hub.watch({ key: b("a"), rangeEnd: b("z") });
    put(h, "m", "1");
    h.ok(
      txnRequest({
        success: [putRequest({ key: b("q"), value: b("2") }), putRequest({ key: b("c"), value: b("2") })],
      }),
      "txn",
    );
    put(h, "zz", "outside");
    h.ok(deleteRangeRequest({ key: b("a"), rangeEnd: b("z") }), "deleteRange");
    const responses = drain(watch);
    assert.deepEqual(
      responses.map((r) => [r.revision, r.events.map(eventText)]),
      [
        [1n, ["1 put m=1"]],
        [2n, ["2 put c=2", "2 put q=2"]],
        [4n, ["4 delete c", "4 delete m", "4 delete q"]],
      ],
    );
  });

  it("start 0 reports only changes after the current revision", () => {
    const { h, hub } = setup();
    put(h, "a", "old");
    const watch = hub.watch({ key: b("a") });
    assert.deepEqual(drain(watch), []);
    put(h, "a", "new");
    assert.deepEqual(drainEvents(watch), ["2 put a=new"]);
  });

  it("a start revision in the past replays history, then follows live events without a gap or a duplicate", () => {
    const { h, hub } = setup({ historyPageEvents: 2 });
    for (let i = 1; i <= 6; i++) put(h, `k${i % 3}`, `v${i}`);
    const watch = hub.watch({ key: b("k"), rangeEnd: b("l"), startRevision: 2n });
    const first = watch.poll();
    assert.deepEqual(first?.events.map(eventText), ["2 put k2=v2", "3 put k0=v3"], "one page of two events");
    assert.equal(first?.revision, 3n, "a page's revision is how far it reaches");
    put(h, "k1", "v7"); // published while the watch is still reading history
    assert.deepEqual(drainEvents(watch), ["4 put k1=v4", "5 put k2=v5", "6 put k0=v6", "7 put k1=v7"]);
    put(h, "k2", "v8");
    assert.deepEqual(drainEvents(watch), ["8 put k2=v8"]);
  });

  it("a history page never ends inside a revision", () => {
    const { h, hub } = setup({ historyPageEvents: 2 });
    put(h, "k0", "1");
    h.ok(
      txnRequest({ success: ["k1", "k2", "k3"].map((k) => putRequest({ key: b(k), value: b("2") })) }),
      "txn",
    );
    put(h, "k4", "3");
    const watch = hub.watch({ key: b("k"), rangeEnd: b("l"), startRevision: 1n });
    assert.deepEqual(
      drain(watch).map((r) => [r.revision, r.events.map(eventText)]),
      [
        [2n, ["1 put k0=1", "2 put k1=2", "2 put k2=2", "2 put k3=2"]],
        [3n, ["3 put k4=3"]],
      ],
    );
  });

  it("start 0 means after the store's current revision, even if its events are published later", () => {
    const { h, hub } = setup();
    const outcome = h.store.apply(h.store.appliedIndex + 1, {
      clientId: "",
      sequence: 0,
      timestamp: 0n,
      command: putRequest({ key: b("a"), value: b("applied, not yet published") }),
    });
    const watch = hub.watch({ key: b("a") });
    hub.publish(outcome.result.revision, outcome.events);
    assert.deepEqual(drain(watch), []);
  });

  it("a start revision in the future reports from that revision on", () => {
    const { h, hub } = setup();
    put(h, "a", "1");
    const watch = hub.watch({ key: b("a"), startRevision: 3n });
    put(h, "a", "2");
    put(h, "a", "3");
    put(h, "a", "4");
    assert.deepEqual(drainEvents(watch), ["3 put a=3", "4 put a=4"]);
  });

  it("history keeps HLC revisions and gives the same events as the live feed", () => {
    const { h, hub } = setup();
    const live = hub.watch({ key: b("a"), rangeEnd: FROM_KEY, prevKv: true });
    put(h, "a", "1", 5000n);
    h.ok(deleteRangeRequest({ key: b("a") }), "deleteRange", 7000n);
    put(h, "a", "2", 7000n);
    const replay = hub.watch({ key: b("a"), rangeEnd: FROM_KEY, prevKv: true, startRevision: 1n });
    const liveEvents = drain(live).flatMap((r) => r.events);
    assert.deepEqual(liveEvents.map(eventText), ["5000 put a=1", "7000 delete a (was 1)", "7001 put a=2"]);
    assert.deepEqual(
      drain(replay).flatMap((r) => r.events),
      liveEvents,
    );
  });

  it("refuses an empty key without a range end, and a negative start", () => {
    const { hub } = setup();
    assert.throws(
      () => hub.watch({ key: new Uint8Array(0) }),
      (error: unknown) => error instanceof KvError && error.code === KvErrorCode.EmptyKey,
    );
    assert.throws(() => hub.watch({ key: b("a"), startRevision: -1n }), RangeError);
    hub.watch({ key: new Uint8Array(0), rangeEnd: FROM_KEY });
  });
});

describe("WatchHub: filters and prev_kv", () => {
  it("noPut and noDelete drop those events, live and replayed", () => {
    const { h, hub } = setup();
    const noPut = hub.watch({ key: b("a"), filters: ["noPut"] });
    const noDelete = hub.watch({ key: b("a"), filters: ["noDelete"] });
    put(h, "a", "1");
    h.ok(deleteRangeRequest({ key: b("a") }), "deleteRange");
    put(h, "a", "2");
    assert.deepEqual(drainEvents(noPut), ["2 delete a"]);
    assert.deepEqual(drainEvents(noDelete), ["1 put a=1", "3 put a=2"]);
    const replayed = hub.watch({ key: b("a"), filters: ["noPut"], startRevision: 1n });
    assert.deepEqual(drainEvents(replayed), ["2 delete a"]);
  });

  it("prev_kv reports the replaced key-value only when asked for", () => {
    const { h, hub } = setup();
    const withPrev = hub.watch({ key: b("a"), prevKv: true });
    const without = hub.watch({ key: b("a") });
    put(h, "a", "1");
    put(h, "a", "2");
    assert.deepEqual(drainEvents(withPrev), ["1 put a=1", "2 put a=2 (was 1)"]);
    assert.deepEqual(drainEvents(without), ["1 put a=1", "2 put a=2"]);
    assert.deepEqual(drainEvents(hub.watch({ key: b("a"), startRevision: 1n })), ["1 put a=1", "2 put a=2"]);
  });
});

describe("WatchHub: cancellation", () => {
  it("a start at or below the compacted revision is cancelled with compactRevision set", async () => {
    const { h, hub } = setup();
    for (let i = 1; i <= 4; i++) put(h, "a", `${i}`);
    const early = hub.watch({ key: b("a"), startRevision: 1n }); // not read before the compaction
    h.ok(compactRequest(3n), "compact");
    const responses: WatchResponse[] = [];
    for await (const response of hub.watch({ key: b("a"), startRevision: 3n })) responses.push(response);
    assert.deepEqual(responses, [
      {
        watchId: 2,
        events: [],
        revision: 2n,
        compactRevision: 4n,
        canceled: true,
        cancelReason: COMPACTED,
        fragment: false,
      },
    ]);
    assert.equal(early.poll()?.cancelReason, COMPACTED);
    assert.equal(early.poll(), undefined);
    assert.deepEqual(drainEvents(hub.watch({ key: b("a"), startRevision: 4n })), ["4 put a=4"]);
  });

  it("a watcher that leaves too many events unread is cancelled as overloaded, and can resume without loss", () => {
    const { h, hub } = setup({ maxUnreadEvents: 3 });
    const watch = hub.watch({ key: b("k"), rangeEnd: b("l") });
    put(h, "k1", "1");
    assert.deepEqual(drainEvents(watch), ["1 put k1=1"]);
    put(h, "k1", "2");
    put(h, "k2", "3");
    put(h, "k3", "4");
    assert.equal(hub.size, 1);
    put(h, "k4", "5"); // a fourth unread event
    assert.equal(hub.size, 0, "the hub forgot the watcher");
    const [last, ...more] = drain(watch);
    assert.deepEqual(more, []);
    assert.ok(last !== undefined);
    assert.equal(last.canceled, true);
    assert.match(last.cancelReason, /overloaded/);
    assert.equal(last.revision, 1n, "the last revision the consumer read");
    put(h, "k5", "6");
    const resumed = hub.watch({ key: b("k"), rangeEnd: b("l"), startRevision: last.revision + 1n });
    assert.deepEqual(drainEvents(resumed), [
      "2 put k1=2",
      "3 put k2=3",
      "4 put k3=4",
      "5 put k4=5",
      "6 put k5=6",
    ]);
  });

  it("one large response into an empty queue is not an overload", () => {
    const { h, hub } = setup({ maxUnreadEvents: 2 });
    const watch = hub.watch({ key: b("k"), rangeEnd: b("l") });
    h.ok(
      txnRequest({ success: ["k1", "k2", "k3", "k4"].map((k) => putRequest({ key: b(k), value: b("v") })) }),
      "txn",
    );
    assert.equal(drainEvents(watch).length, 4);
  });

  it("cancel ends iteration: a waiting next() resolves done and later writes are not delivered", async () => {
    const { h, hub } = setup();
    const watch = hub.watch({ key: b("a") });
    const iterator = watch[Symbol.asyncIterator]();
    const pending = iterator.next();
    watch.cancel();
    assert.deepEqual(await pending, { done: true, value: undefined });
    put(h, "a", "1");
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    assert.equal(watch.poll(), undefined);
    assert.equal(hub.size, 0);
  });

  it("for-await receives live events and leaving the loop cancels the watch", async () => {
    const { h, hub } = setup();
    const watch = hub.watch({ key: b("a") });
    const seen: string[] = [];
    const consumer = (async () => {
      for await (const response of watch) {
        seen.push(...response.events.map(eventText));
        if (seen.length === 2) break;
      }
    })();
    put(h, "a", "1");
    put(h, "a", "2");
    await consumer;
    assert.deepEqual(seen, ["1 put a=1", "2 put a=2"]);
    assert.equal(hub.size, 0);
  });
});

describe("WatchHub: progress", () => {
  it("progress() sends caught-up progressNotify watchers an empty response with the current revision", () => {
    const { h, hub } = setup();
    const notified = hub.watch({ key: b("a"), progressNotify: true });
    const quiet = hub.watch({ key: b("a") });
    put(h, "b", "1");
    hub.progress();
    assert.deepEqual(
      drain(notified).map((r) => [r.revision, r.events.length, r.canceled]),
      [[1n, 0, false]],
    );
    assert.deepEqual(drain(quiet), []);
    put(h, "a", "2");
    hub.progress();
    assert.deepEqual(
      drain(notified).map((r) => [r.revision, r.events.length]),
      [[2n, 1]],
      "no progress notification while events are unread",
    );
  });

  it("requestProgress answers once the watcher has caught up with the history", () => {
    const { h, hub } = setup({ historyPageEvents: 1 });
    put(h, "a", "1");
    put(h, "a", "2");
    const watch = hub.watch({ key: b("a"), startRevision: 1n });
    watch.requestProgress();
    assert.deepEqual(
      drain(watch).map((r) => [r.revision, r.events.map(eventText)]),
      [
        [1n, ["1 put a=1"]],
        [2n, ["2 put a=2"]],
        [2n, []],
      ],
    );
    put(h, "b", "3");
    watch.requestProgress();
    assert.deepEqual(
      drain(watch).map((r) => [r.revision, r.events.length]),
      [[3n, 0]],
    );
  });
});

describe("WatchHub: fragments, leases and snapshots", () => {
  it("splits a large response into fragments for watches that ask for them", () => {
    const { h, hub } = setup({ fragmentBytes: 200 });
    const fragmented = hub.watch({ key: b("k"), rangeEnd: b("l"), fragment: true });
    const whole = hub.watch({ key: b("k"), rangeEnd: b("l") });
    const big = "x".repeat(100);
    h.ok(
      txnRequest({ success: ["k1", "k2", "k3"].map((k) => putRequest({ key: b(k), value: b(big) })) }),
      "txn",
    );
    const pieces = drain(fragmented);
    assert.deepEqual(
      pieces.map((r) => [r.revision, r.events.length, r.fragment]),
      [
        [1n, 1, true],
        [1n, 1, true],
        [1n, 1, false],
      ],
    );
    assert.deepEqual(
      drain(whole).map((r) => [r.events.length, r.fragment]),
      [[3, false]],
    );
  });

  it("a lease revocation reaches watchers as deletes at one revision", () => {
    const { h, hub } = setup();
    h.ok(leaseGrantRequest(10, 1n), "leaseGrant");
    const watch = hub.watch({ key: b("k"), rangeEnd: b("l") });
    h.ok(putRequest({ key: b("k1"), value: b("1"), lease: 1n }), "put");
    h.ok(putRequest({ key: b("k2"), value: b("1"), lease: 1n }), "put");
    h.ok(leaseRevokeRequest(1n), "leaseRevoke");
    assert.deepEqual(
      drain(watch).map((r) => r.events.map(eventText)),
      [["1 put k1=1"], ["2 put k2=1"], ["3 delete k1", "3 delete k2"]],
    );
  });

  it("after a snapshot restore, resync() makes live watchers read what they missed from history", async () => {
    const source = new KvHarness();
    const { h: target, hub } = setup();
    put(source, "a", "1");
    put(target, "a", "1");
    const watch = hub.watch({ key: b("a"), rangeEnd: FROM_KEY });
    const compactedOut = hub.watch({ key: b("a"), rangeEnd: FROM_KEY });
    const future = hub.watch({ key: b("a"), rangeEnd: FROM_KEY, startRevision: 3n });
    put(source, "b", "2");
    put(source, "a", "3");
    await target.store.restore(source.store.snapshot());
    hub.resync();
    assert.deepEqual(drainEvents(watch), ["2 put b=2", "3 put a=3"]);
    assert.deepEqual(drainEvents(future), ["3 put a=3"], "still nothing below its start");
    // Next, the restored state has compacted past where both watchers stand.
    put(source, "c", "4");
    put(source, "d", "5");
    source.ok(compactRequest(4n), "compact");
    await target.store.restore(source.store.snapshot());
    hub.resync();
    assert.deepEqual(
      drain(watch).map((r) => [r.revision, r.compactRevision, r.cancelReason]),
      [[3n, 5n, COMPACTED]],
    );
    assert.deepEqual(
      drain(compactedOut).map((r) => [r.revision, r.cancelReason]),
      [[1n, COMPACTED]],
      "it never read past revision 1",
    );
  });

  it("refuses a publish out of revision order or ahead of the store", () => {
    const { h, hub } = setup();
    put(h, "a", "1");
    const [event] = h.published[0]!.events;
    assert.throws(() => hub.publish(1n, [event!]), /invariant violated/);
    assert.throws(() => hub.publish(2n, [event!]), /invariant violated/);
  });
});
