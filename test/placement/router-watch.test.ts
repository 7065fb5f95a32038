// RoutedWatch over fake range watches driven by the test: merged revision order across three
// ranges (property), idle ranges answered by progress and by revision floors, a split in the
// middle of the stream (the part reopened on the two routes from its frontier + 1), a range
// fenced for a merge followed into its left neighbour, stale routes retried with backoff,
// errors ending the merged watch, cancel, progress, bad input, a long backlog taken without
// recursion.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "../../src/kv/errors.js";
import type { WatchRequest, WatchResponse } from "../../src/kv/watch.js";
import { SystemKeyError, SYSTEM_PREFIX } from "../../src/placement/router/system-keys.js";
import { RoutedWatch, type RoutedWatchOptions } from "../../src/placement/router/watch.js";
import { split } from "./arbitraries.js";
import { FakeCluster, ManualTimers, b, collect, eventTexts, settle } from "./router-watch-fakes.js";

const COMPACTED = KV_ERROR_MESSAGES[KvErrorCode.Compacted];
const OUTSIDE = KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange];
const ALL: WatchRequest = { key: b("a"), rangeEnd: b("z") };

function open(
  cluster: FakeCluster,
  request: WatchRequest,
  extra: Partial<RoutedWatchOptions> = {},
): { watch: RoutedWatch; timers: ManualTimers; out: WatchResponse[]; done: Promise<void> } {
  const timers = new ManualTimers();
  const watch = new RoutedWatch(request, {
    routes: cluster.table,
    reload: cluster.reload,
    openRangeWatch: cluster.openRangeWatch,
    floorRevision: cluster.floorRevision,
    timers,
    ...extra,
  });
  const out: WatchResponse[] = [];
  return { watch, timers, out, done: collect(watch, out) };
}

/** Checks the merged-stream rules every response list must keep. */
function assertWellFormed(responses: readonly WatchResponse[]): void {
  let last = -1n;
  const seen = new Set<bigint>();
  for (const response of responses) {
    assert.ok(response.revision >= last, `revision ${response.revision} after ${last}`);
    last = response.revision;
    for (const event of response.events) assert.equal(event.kv.modRevision, response.revision);
    const keys = response.events.map((e) => Buffer.from(e.kv.key).toString("latin1"));
    assert.deepEqual(keys, [...keys].sort());
    if (response.events.length > 0) {
      assert.ok(!seen.has(response.revision), `revision ${response.revision} in two responses`);
      seen.add(response.revision);
    }
  }
}

/** Keys of each of three ranges split at "h" and "p". */
const RANGE_KEYS = [
  ["a", "c", "e", "g"],
  ["h", "j", "l", "n"],
  ["p", "r", "t", "v"],
];

interface Write {
  readonly range: number;
  readonly revision: bigint;
  readonly keys: string[];
}

/** Per range: strictly increasing revisions (shared across ranges at times), one or two keys each. */
const rangeWrites = (range: number) =>
  fc
    .uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 8 })
    .chain((revisions) =>
      fc.tuple(
        ...[...revisions]
          .sort((x, y) => x - y)
          .map((revision) =>
            fc
              .uniqueArray(fc.constantFrom(...RANGE_KEYS[range]!), { minLength: 1, maxLength: 2 })
              .map((keys): Write => ({ range, revision: BigInt(revision), keys })),
          ),
      ),
    );

describe("RoutedWatch: merging", () => {
  it("property: events from 3 ranges, written in any interleaving, arrive once each in revision order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(rangeWrites(0), rangeWrites(1), rangeWrites(2)),
        fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 40 }),
        fc.nat({ max: 10 }),
        fc.boolean(),
        fc.array(fc.boolean(), { maxLength: 40 }),
        async (perRange, picks, before, fromStart, settles) => {
          const cluster = new FakeCluster(split(["h", "p"]));
          const queues = perRange.map((writes) => [...writes]);
          // The interleaving: the picked ranges in turn, then whatever is left, range by range.
          const order: Write[] = [];
          for (const pick of [...picks, ...queues.flatMap((q, i) => q.map(() => i))]) {
            const next = queues[pick]!.shift();
            if (next !== undefined) order.push(next);
          }
          const applied: Write[] = [];
          const apply = (write: Write) =>
            applied.push({
              ...write,
              revision: cluster.range(write.range + 1).write(write.revision, write.keys),
            });
          order.slice(0, before).forEach(apply);
          const request = fromStart ? { ...ALL, startRevision: 1n } : ALL;
          const { watch, out } = open(cluster, request);
          for (const [i, write] of order.slice(before).entries()) {
            apply(write);
            if (settles[i] === true) await settle();
          }
          for (let round = 0; round < 20; round++) await settle();
          const expected = (fromStart ? applied : applied.slice(before))
            .flatMap((w) => w.keys.map((key) => ({ revision: w.revision, key })))
            .sort((x, y) =>
              x.revision === y.revision ? x.key.localeCompare(y.key) : x.revision < y.revision ? -1 : 1,
            )
            .map(({ revision, key }) => `${revision} ${key}`);
          assertWellFormed(out);
          assert.deepEqual(eventTexts(out), expected);
          watch.cancel();
          assert.equal(cluster.openWatches, 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a span inside one route is one range watch, its responses passed through", async () => {
    const cluster = new FakeCluster(split(["h", "p"]));
    const { watch, out } = open(cluster, { key: b("b"), rangeEnd: b("f") });
    assert.equal(cluster.openWatches, 1);
    cluster.range(1).write(5n, ["c"]);
    cluster.range(1).write(6n, ["g"]);
    cluster.range(1).write(9n, ["b", "e"]);
    await settle();
    assert.deepEqual(
      out.map((r) => [r.revision, eventTexts([r])]),
      [
        [5n, ["5 c"]],
        [9n, ["9 b", "9 e"]],
      ],
    );
    watch.cancel();
  });

  it("events of several ranges at one revision leave in one response, in key order", async () => {
    const cluster = new FakeCluster(split(["h", "p"]));
    const { watch, out } = open(cluster, { ...ALL, startRevision: 1n });
    cluster.range(3).write(4n, ["r"]);
    cluster.range(1).write(4n, ["c"]);
    cluster.range(2).write(4n, ["j"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(
      out.filter((r) => r.events.length > 0).map((r) => eventTexts([r])),
      [["4 c", "4 j", "4 r"]],
    );
    watch.cancel();
  });

  it("20,000 responses waiting in one range watch are taken in one pass, not one call deeper each", async () => {
    const cluster = new FakeCluster(split(["m"]));
    const { watch, out } = open(
      cluster,
      { ...ALL, startRevision: 1n },
      { floorRevision: undefined, maxBufferedEvents: 30_000 },
    );
    const backlog = 20_000;
    for (let revision = 1; revision <= backlog; revision++) cluster.range(1).write(BigInt(revision), ["a"]);
    for (let i = 0; i < 3; i++) await settle();
    assert.equal(out.length, 0, "held back by the idle range");
    cluster.range(2).write(BigInt(backlog + 1), ["x"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.ok(
      out.every((r) => !r.canceled),
      out.find((r) => r.canceled)?.cancelReason,
    );
    // Range 2's frontier lets the whole backlog go (its own event waits for range 1 to pass it).
    const texts = eventTexts(out);
    assert.equal(texts.length, backlog);
    assert.equal(texts[0], "1 a");
    assert.equal(texts[backlog - 1], `${backlog} a`);
    watch.cancel();
  });
});

describe("RoutedWatch: idle ranges", () => {
  it("an idle range is asked for progress, and its answer lets the waiting event go", async () => {
    const cluster = new FakeCluster(split(["m"]));
    cluster.range(2).write(50n, ["x"]);
    const { watch, out } = open(cluster, ALL, { floorRevision: undefined });
    cluster.range(1).write(10n, ["a"]);
    await settle();
    await settle();
    assert.deepEqual(eventTexts(out), ["10 a"]);
    const idle = [...cluster.range(2).watches][0]!;
    assert.ok(idle.progressRequests >= 1);
    watch.cancel();
  });

  it("without floors an idle range below the waiting event holds it back; a later write releases it", async () => {
    const cluster = new FakeCluster(split(["m"]));
    cluster.range(2).write(5n, ["x"]);
    const { watch, out } = open(cluster, { ...ALL, startRevision: 1n }, { floorRevision: undefined });
    cluster.range(1).write(10n, ["a"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["5 x"]);
    cluster.range(2).write(12n, ["y"]);
    cluster.range(1).write(13n, ["b"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["5 x", "10 a", "12 y"]);
    watch.cancel();
  });

  it("with floors an idle range is floored at the waiting revision and answers progress above it", async () => {
    const cluster = new FakeCluster(split(["m"]));
    cluster.range(2).write(5n, ["x"]);
    const { watch, out } = open(cluster, { ...ALL, startRevision: 1n });
    cluster.range(1).write(10n, ["a"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["5 x", "10 a"]);
    assert.deepEqual(cluster.floors, [[2, 10n]]);
    watch.cancel();
  });

  it("a floor that fails is retried after a backoff; too many failures end the watch", async () => {
    const cluster = new FakeCluster(split(["m"]));
    let failures = 0;
    const { watch, timers, out, done } = open(
      cluster,
      { ...ALL, startRevision: 1n },
      {
        maxAttempts: 3,
        floorRevision: () => {
          failures += 1;
          return Promise.reject(new Error("no leader"));
        },
      },
    );
    cluster.range(1).write(10n, ["a"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(failures, 1);
    assert.equal(timers.size, 1);
    timers.fireAll();
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(failures, 2);
    timers.fireAll();
    for (let i = 0; i < 5; i++) await settle();
    await done;
    assert.equal(failures, 3);
    const last = out[out.length - 1]!;
    assert.equal(last.canceled, true);
    assert.match(last.cancelReason, /no leader/);
    assert.deepEqual(eventTexts(out), []);
    assert.equal(cluster.openWatches, 0);
    assert.equal(timers.size, 0);
    watch.cancel();
  });
});

describe("RoutedWatch: splits", () => {
  it("a split mid-stream: the part is reopened on both routes from its frontier + 1, nothing lost or repeated", async () => {
    const cluster = new FakeCluster(split(["m"]));
    const { watch, out } = open(cluster, { ...ALL, startRevision: 1n });
    cluster.range(1).write(3n, ["b", "k"]);
    cluster.range(2).write(4n, ["n"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["3 b", "3 k", "4 n"]);
    // Written, not yet read by the watch, when the split ends range 1's watch.
    cluster.range(1).write(6n, ["c", "f"]);
    cluster.split(1, "f", 3);
    cluster.range(3).write(8n, ["g"]);
    cluster.range(1).write(9n, ["a"]);
    cluster.range(2).write(10n, ["q"]);
    cluster.publishSplit(1, "f", 3);
    for (let i = 0; i < 10; i++) await settle();
    assertWellFormed(out);
    assert.deepEqual(eventTexts(out), ["3 b", "3 k", "4 n", "6 c", "6 f", "8 g", "9 a", "10 q"]);
    assert.ok(cluster.reloads >= 1);
    assert.equal(cluster.range(3).watches.size, 1);
    assert.equal(cluster.range(1).watches.size, 1);
    watch.cancel();
    assert.equal(cluster.openWatches, 0);
  });

  it("routes still stale after the split: reopening backs off and retries until the catalog has it", async () => {
    const cluster = new FakeCluster(split(["m"]));
    const { watch, timers, out } = open(cluster, { ...ALL, startRevision: 1n });
    cluster.range(1).write(3n, ["b"]);
    cluster.range(2).write(3n, ["n"]);
    for (let i = 0; i < 5; i++) await settle();
    cluster.split(1, "f", 3);
    cluster.range(3).write(5n, ["g"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(cluster.reloads, 1);
    assert.equal(timers.size, 1, "a retry waits");
    timers.fireAll();
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(cluster.reloads, 2);
    cluster.publishSplit(1, "f", 3);
    timers.fireAll();
    cluster.range(2).write(7n, ["p"]);
    for (let i = 0; i < 10; i++) await settle();
    assert.deepEqual(eventTexts(out), ["3 b", "3 n", "5 g", "7 p"]);
    watch.cancel();
    assert.equal(timers.size, 0);
  });

  it("a split before the sub-watch showed anything (start 0) resumes from the cancelled response's revision", async () => {
    const cluster = new FakeCluster(split(["m"]));
    cluster.range(1).write(20n, ["b"]);
    const { watch, out } = open(cluster, ALL);
    cluster.split(1, "f", 3);
    cluster.publishSplit(1, "f", 3);
    cluster.range(3).write(21n, ["g"]);
    cluster.range(2).write(30n, ["n"]);
    for (let i = 0; i < 10; i++) await settle();
    assert.deepEqual(eventTexts(out), ["21 g", "30 n"]);
    watch.cancel();
  });

  it("a route stale at creation is opened after a reload", async () => {
    const cluster = new FakeCluster(split(["m"]));
    cluster.split(1, "f", 3);
    const { watch, timers, out } = open(cluster, { ...ALL, startRevision: 1n });
    await settle();
    assert.equal(cluster.reloads, 1);
    assert.equal(timers.size, 1, "the reload did not have the split yet: a retry waits");
    cluster.publishSplit(1, "f", 3);
    timers.fireAll();
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(cluster.reloads, 2);
    cluster.range(3).write(4n, ["h"]);
    cluster.range(1).write(5n, ["a"]);
    cluster.range(2).write(6n, ["x"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["4 h", "5 a", "6 x"]);
    watch.cancel();
  });
});

describe("RoutedWatch: merges", () => {
  it("a range fenced for a merge is followed into its left neighbour once the routes show the merge", async () => {
    const cluster = new FakeCluster(split(["m"]));
    const { watch, timers, out } = open(cluster, { ...ALL, startRevision: 1n });
    cluster.range(2).write(4n, ["n"]);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["4 n"]);
    // Range 2 is fenced and merged: it will write nothing more, and refuses the floor that
    // the event at 10 needs; its keys are range 1's from now on.
    cluster.range(1).write(10n, ["a"]);
    cluster.merge(1, 2);
    for (let i = 0; i < 5; i++) await settle();
    cluster.publishMerge(2);
    cluster.range(1).write(12n, ["x"]);
    for (let round = 0; round < 3 && eventTexts(out).length < 3; round++) {
      timers.fireAll();
      for (let i = 0; i < 10; i++) await settle();
    }
    assertWellFormed(out);
    assert.deepEqual(eventTexts(out), ["4 n", "10 a", "12 x"]);
    assert.ok(out.every((response) => !response.canceled));
    assert.equal(cluster.range(2).watches.size, 0, "the fenced range's watch was given up");
    watch.cancel();
    assert.equal(cluster.openWatches, 0);
  });
});

describe("RoutedWatch: ends, cancel, progress, input", () => {
  it("an error of one range ends the merged watch with that error; the other watches are cancelled", async () => {
    const cluster = new FakeCluster(split(["h", "p"]));
    const { out, done } = open(cluster, { ...ALL, startRevision: 1n });
    cluster.range(1).write(2n, ["a"]);
    cluster.range(2).write(3n, ["j"]);
    cluster.range(3).write(4n, ["r"]);
    for (let i = 0; i < 5; i++) await settle();
    [...cluster.range(2).watches][0]!.endWith(COMPACTED, 7n);
    await done;
    const last = out[out.length - 1]!;
    assert.equal(last.canceled, true);
    assert.equal(last.cancelReason, COMPACTED);
    assert.equal(last.compactRevision, 7n);
    const delivered = out.filter((r) => r.events.length > 0);
    assert.equal(last.revision, delivered[delivered.length - 1]!.revision);
    assert.equal(cluster.openWatches, 0);
  });

  it("cancel cancels every range watch, leaves no timer and ends the iteration", async () => {
    const cluster = new FakeCluster(split(["h", "p"]));
    const { watch, timers, done } = open(cluster, ALL);
    cluster.split(1, "d", 4);
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(timers.size, 1);
    watch.cancel();
    await done;
    assert.equal(cluster.openWatches, 0);
    assert.equal(timers.size, 0);
    assert.equal(watch.poll(), undefined);
  });

  it("requestProgress answers with the lowest frontier once every range answered", async () => {
    const cluster = new FakeCluster(split(["h", "p"]));
    cluster.range(1).write(40n, ["a"]);
    cluster.range(2).write(20n, ["j"]);
    cluster.range(3).write(30n, ["r"]);
    const { watch, out } = open(cluster, ALL, { floorRevision: undefined });
    watch.requestProgress();
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(
      out.map((r) => [r.revision, r.events.length]),
      [[20n, 0]],
    );
    watch.cancel();
  });

  it("periodic progress passes through a one-range watch, and across ranges only when the lowest frontier moves", async () => {
    const cluster = new FakeCluster(split(["m"]));
    cluster.range(1).write(7n, ["a"]);
    cluster.range(2).write(9n, ["x"]);
    const one = open(cluster, { key: b("b"), progressNotify: true });
    const both = open(cluster, { ...ALL, progressNotify: true }, { floorRevision: undefined });
    const rangeWatches = (id: number) => [...cluster.range(id).watches];
    for (const w of [...rangeWatches(1), ...rangeWatches(2)]) w.tick();
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(
      one.out.map((r) => r.revision),
      [7n],
    );
    assert.deepEqual(
      both.out.map((r) => r.revision),
      [7n],
    );
    for (const w of [...rangeWatches(1), ...rangeWatches(2)]) w.tick();
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(
      one.out.map((r) => r.revision),
      [7n, 7n],
    );
    assert.deepEqual(
      both.out.map((r) => r.revision),
      [7n],
      "the lowest frontier did not move",
    );
    one.watch.cancel();
    both.watch.cancel();
  });

  it("a consumer that reads nothing leaves the events in the range watch", async () => {
    const cluster = new FakeCluster(split(["m"]));
    const watch = new RoutedWatch(
      { key: b("a"), rangeEnd: b("c") },
      {
        routes: cluster.table,
        reload: cluster.reload,
        openRangeWatch: cluster.openRangeWatch,
        timers: new ManualTimers(),
      },
    );
    for (let revision = 1n; revision <= 6n; revision++) cluster.range(1).write(revision, ["b"]);
    for (let i = 0; i < 5; i++) await settle();
    const rangeWatch = [...cluster.range(1).watches][0]!;
    assert.equal(rangeWatch.unread, 5, "one response read, then reading stops");
    const revisions: bigint[] = [];
    for (let i = 0; i < 6; i++) {
      for (let round = 0; round < 3; round++) await settle();
      const response = watch.poll();
      assert.ok(response !== undefined);
      revisions.push(response.revision);
    }
    assert.deepEqual(revisions, [1n, 2n, 3n, 4n, 5n, 6n]);
    watch.cancel();
  });

  it("refuses bad requests and opens nothing", () => {
    const cluster = new FakeCluster(split(["m"]));
    const make = (request: WatchRequest) =>
      new RoutedWatch(request, {
        routes: cluster.table,
        reload: cluster.reload,
        openRangeWatch: cluster.openRangeWatch,
        timers: new ManualTimers(),
      });
    assert.throws(() => make({ key: new Uint8Array(0) }), KvError);
    assert.throws(() => make({ key: b("a"), startRevision: -1n }), RangeError);
    assert.throws(() => make({ key: SYSTEM_PREFIX }), SystemKeyError);
    assert.equal(cluster.openWatches, 0);
  });

  it("a span over the system keys leaves them out", () => {
    const cluster = new FakeCluster(split(["m"]));
    const { watch } = open(cluster, { key: new Uint8Array(0), rangeEnd: Uint8Array.of(0) });
    const spans = [...cluster.range(1).watches].map((w) => Buffer.from(w.span.start).toString("latin1"));
    assert.equal(spans.length, 2);
    assert.equal(spans[0], "");
    assert.ok(spans[1]!.startsWith("\x00\x00concord0"));
    watch.cancel();
  });

  it("an end other than KeyOutsideRange is never retried", async () => {
    const cluster = new FakeCluster(split(["m"]));
    const { out, done } = open(cluster, ALL);
    [...cluster.range(1).watches][0]!.endWith("etcdserver: something else");
    await done;
    assert.equal(out[out.length - 1]!.cancelReason, "etcdserver: something else");
    assert.equal(cluster.reloads, 0);
    assert.notEqual(out[out.length - 1]!.cancelReason, OUTSIDE);
  });
});
