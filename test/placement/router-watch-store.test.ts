// RoutedWatch over real ranges: three MvccStore + WatchHub pairs (one per route), written with
// HLC-like stamps so revisions interleave across ranges. Without revision floors the merged
// stream delivers exactly the events every range has shown it is past (at or below the lowest
// last revision), in revision order, asking idle hubs for progress to get there.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  compactRequest,
  putRequest,
  revisionFloorRequest,
  splitRequest,
  type KvCommand,
} from "../../src/kv/commands.js";
import { rangeNamespace } from "../../src/kv/keys.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import { WatchHub, type WatchResponse } from "../../src/kv/watch.js";
import { RoutedWatch } from "../../src/placement/router/watch.js";
import { KvHarness } from "../kv/kv-harness.js";
import { split } from "./arbitraries.js";
import { FakeCluster, ManualTimers, b, collect, eventTexts, settle } from "./router-watch-fakes.js";

const RANGE_KEYS = [
  ["a", "c", "e"],
  ["h", "k", "n"],
  ["p", "s", "v"],
];

interface StoreWrite {
  readonly range: number;
  readonly key: number;
  readonly stamp: number;
}

function realRanges(): { harnesses: KvHarness[]; hubs: WatchHub[] } {
  const harnesses = [0, 1, 2].map(() => new KvHarness({ enforceLeases: false }));
  const hubs = harnesses.map((h) => {
    const hub = new WatchHub(h.store);
    h.feed(hub);
    return hub;
  });
  return { harnesses, hubs };
}

describe("RoutedWatch over MvccStore + WatchHub ranges", () => {
  it("property: delivers, in revision order, every event at or below the lowest range revision", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            range: fc.integer({ min: 0, max: 2 }),
            key: fc.integer({ min: 0, max: 2 }),
            stamp: fc.integer({ min: 1, max: 200 }),
          }),
          { maxLength: 30 },
        ),
        fc.nat({ max: 8 }),
        fc.boolean(),
        async (writes: StoreWrite[], before, fromStart) => {
          const { harnesses, hubs } = realRanges();
          const routes = new FakeCluster(split(["h", "p"])).table;
          const written: { revision: bigint; key: string }[] = [];
          const apply = (w: StoreWrite) => {
            const key = RANGE_KEYS[w.range]![w.key]!;
            const h = harnesses[w.range]!;
            h.ok(putRequest({ key: b(key), value: b("v") }), "put", BigInt(w.stamp));
            written.push({ revision: h.store.revision, key });
          };
          writes.slice(0, before).forEach(apply);
          const watch = new RoutedWatch(
            { key: b("a"), rangeEnd: b("z"), ...(fromStart ? { startRevision: 1n } : {}) },
            {
              routes,
              reload: () => Promise.resolve(),
              openRangeWatch: (rangeId, request) => hubs[rangeId - 1]!.watch(request),
              timers: new ManualTimers(),
            },
          );
          const out: WatchResponse[] = [];
          const done = collect(watch, out);
          writes.slice(before).forEach(apply);
          for (let round = 0; round < 10; round++) await settle();
          const lowest = harnesses.map((h) => h.store.revision).reduce((x, y) => (x < y ? x : y));
          const expected = (fromStart ? written : written.slice(Math.min(before, writes.length)))
            .filter((e) => e.revision <= lowest)
            .sort((x, y) =>
              x.revision === y.revision ? x.key.localeCompare(y.key) : x.revision < y.revision ? -1 : 1,
            )
            .map((e) => `${e.revision} ${e.key}`);
          assert.deepEqual(eventTexts(out), expected);
          let last = 0n;
          for (const response of out) {
            assert.ok(response.revision >= last);
            last = response.revision;
          }
          watch.cancel();
          await done;
          assert.deepEqual(
            hubs.map((hub) => hub.size),
            [0, 0, 0],
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});

/**
 * Ranges 1 and 2 as MvccStore + WatchHub pairs over one engine. `apply` publishes each
 * outcome, and after a split hosts the new range and ends the watches that left the old one.
 */
function storeRanges() {
  const kv = new MemoryOrderedKv();
  const stores = new Map<number, MvccStore>();
  const hubs = new Map<number, WatchHub>();
  const host = (rangeId: number) => {
    const store = new MvccStore(kv, { namespace: rangeNamespace(rangeId) });
    stores.set(rangeId, store);
    hubs.set(rangeId, new WatchHub(store));
  };
  host(1);
  host(2);
  const apply = (rangeId: number, command: KvCommand, stamp: bigint) => {
    const store = stores.get(rangeId)!;
    const envelope = { clientId: "", sequence: 0, timestamp: stamp, command };
    const outcome = store.apply(store.appliedIndex + 1, envelope);
    hubs.get(rangeId)!.publish(outcome.result.revision, outcome.events);
    if (outcome.split !== undefined) {
      host(outcome.split.rhsRangeId);
      hubs.get(rangeId)!.boundsChanged();
    }
    return outcome;
  };
  const put = (rangeId: number, key: string, stamp: bigint) =>
    apply(rangeId, putRequest({ key: b(key), value: b(`v${stamp}`) }), stamp);
  return { hubs, apply, put };
}

describe("RoutedWatch over a real split", () => {
  it("a store split mid-stream: the watch ends on the left range, reopens on both sides, nothing lost or repeated", async () => {
    const { hubs, apply, put } = storeRanges();
    const cluster = new FakeCluster(split(["m"]));
    const timers = new ManualTimers();
    const watch = new RoutedWatch(
      { key: b("a"), rangeEnd: b("z"), startRevision: 1n },
      {
        routes: cluster.table,
        reload: cluster.reload,
        openRangeWatch: (rangeId, request) => hubs.get(rangeId)!.watch(request),
        timers,
      },
    );
    const out: WatchResponse[] = [];
    const done = collect(watch, out);
    put(1, "b", 10n);
    put(2, "n", 11n);
    put(1, "g", 12n);
    put(2, "q", 13n);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["10 b", "11 n", "12 g"]);
    put(1, "h", 14n);
    assert.equal(apply(1, splitRequest(b("f"), 3), 15n).split?.rhsRangeId, 3);
    put(3, "k", 16n);
    put(1, "c", 17n);
    put(2, "r", 18n);
    put(3, "j", 19n);
    cluster.publishSplit(1, "f", 3);
    for (let i = 0; i < 10; i++) await settle();
    // 18 r waits: the left range is at 17 and has not shown it is past 18 (no floors here).
    assert.deepEqual(eventTexts(out), ["10 b", "11 n", "12 g", "13 q", "14 h", "16 k", "17 c"]);
    put(1, "d", 20n);
    put(2, "s", 21n);
    for (let i = 0; i < 10; i++) await settle();
    // Ranges at 20, 21 and 19: everything up to 19 is out, "20 d" waits on the right range.
    const released = ["18 r", "19 j"];
    assert.deepEqual(eventTexts(out), ["10 b", "11 n", "12 g", "13 q", "14 h", "16 k", "17 c", ...released]);
    watch.cancel();
    await done;
    assert.deepEqual(
      [...hubs.values()].map((hub) => hub.size),
      [0, 0, 0],
    );
    assert.equal(timers.size, 0);
  });

  it("a watch idle over its keys survives a compaction at the split's revision before its part reopens", async () => {
    const { hubs, apply, put } = storeRanges();
    put(1, "b", 5n);
    const cluster = new FakeCluster(split(["m"]));
    const watch = new RoutedWatch(
      { key: b("a"), rangeEnd: b("k") },
      {
        routes: cluster.table,
        reload: cluster.reload,
        openRangeWatch: (rangeId, request) => hubs.get(rangeId)!.watch(request),
        timers: new ManualTimers(),
      },
    );
    const out: WatchResponse[] = [];
    const done = collect(watch, out);
    put(1, "c", 8n);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(eventTexts(out), ["8 c"]);
    // Writes outside the watched keys move range 1 on; then it splits at "f" (revision 15) and
    // both sides compact at 15 before the watch reopens its part on them.
    for (const stamp of [10n, 11n, 12n]) put(1, "l", stamp);
    assert.equal(apply(1, splitRequest(b("f"), 3), 15n).split?.rhsRangeId, 3);
    for (const rangeId of [1, 3]) apply(rangeId, compactRequest(15n), 16n);
    cluster.publishSplit(1, "f", 3);
    for (let i = 0; i < 10; i++) await settle();
    put(3, "h", 20n);
    put(1, "d", 21n);
    for (let i = 0; i < 10; i++) await settle();
    // The watch had seen everything through 15 on range 1: it reopens after it, not after its
    // last event (8, which the compaction removed), and goes on.
    assert.deepEqual(
      out.filter((r) => r.canceled),
      [],
    );
    assert.deepEqual(eventTexts(out), ["8 c", "20 h"]);
    watch.cancel();
    await done;
  });
});

/** Whether a WatchHub counts a publish without events (a revision floor) as progress. */
function hubReportsFloors(): boolean {
  const kv = new MemoryOrderedKv();
  const store = new MvccStore(kv);
  const hub = new WatchHub(store);
  const outcome = store.apply(1, {
    clientId: "",
    sequence: 0,
    timestamp: 0n,
    command: revisionFloorRequest(5n),
  });
  hub.publish(outcome.result.revision, outcome.events);
  return hub.revision === 5n;
}

describe("RoutedWatch over real ranges with revision floors", () => {
  it(
    "an idle range is floored at the waiting revision and its progress releases the event",
    { skip: hubReportsFloors() ? false : "WatchHub.publish does not yet count an empty publish as progress" },
    async () => {
      const kv = new MemoryOrderedKv();
      const stores = [1, 2].map((id) => new MvccStore(kv, { namespace: rangeNamespace(id) }));
      const hubs = stores.map((store) => new WatchHub(store));
      const apply = (index: number, command: KvCommand, stamp: bigint) => {
        const store = stores[index]!;
        const envelope = { clientId: "", sequence: 0, timestamp: stamp, command };
        const outcome = store.apply(store.appliedIndex + 1, envelope);
        hubs[index]!.publish(outcome.result.revision, outcome.events);
      };
      const put = (index: number, key: string, stamp: bigint) =>
        apply(index, putRequest({ key: b(key), value: b("v") }), stamp);
      const floors: [number, bigint][] = [];
      const watch = new RoutedWatch(
        { key: b("a"), rangeEnd: b("z"), startRevision: 1n },
        {
          routes: new FakeCluster(split(["m"])).table,
          reload: () => Promise.resolve(),
          openRangeWatch: (rangeId, request) => hubs[rangeId - 1]!.watch(request),
          floorRevision: (rangeId, revision) => {
            floors.push([rangeId, revision]);
            apply(rangeId - 1, revisionFloorRequest(revision), 0n);
            return Promise.resolve();
          },
          timers: new ManualTimers(),
        },
      );
      const out: WatchResponse[] = [];
      const done = collect(watch, out);
      put(1, "x", 5n);
      put(0, "a", 10n);
      for (let i = 0; i < 10; i++) await settle();
      assert.deepEqual(eventTexts(out), ["5 x", "10 a"]);
      assert.deepEqual(floors, [[2, 10n]]);
      // Stamped 7, the floor makes it apply above 10.
      put(1, "y", 7n);
      for (let i = 0; i < 10; i++) await settle();
      assert.deepEqual(eventTexts(out), ["5 x", "10 a", "11 y"]);
      assert.deepEqual(floors, [
        [2, 10n],
        [1, 11n],
      ]);
      watch.cancel();
      await done;
    },
  );
});
