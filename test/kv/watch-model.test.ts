// Model-based test of watches: random writes (and compactions) interleaved with watch
// creations at random start revisions (past, current, future), partial reads, progress
// requests and notifications. Every watcher must see exactly the events the store produced
// for its range from its start revision on — in order, none missing, none twice — whether it
// got them from history, from the live feed or from both; or, when compaction overtook it,
// exactly those up to the revision its cancellation names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { compactRequest, putRequest, txnRequest, type KvCommand } from "../../src/kv/commands.js";
import type { KvEvent } from "../../src/kv/results.js";
import { WatchHub, type Watch, type WatchFilter, type WatchResponse } from "../../src/kv/watch.js";
import { deleteRangeArb, putArb, txnArb, type KeySpace } from "./arbitraries.js";
import { KvHarness, type Published } from "./kv-harness.js";

const text = (t: string) => new TextEncoder().encode(t);

const SPACE: KeySpace = {
  key: fc.constantFrom("a", "ab", "b", "c", "c\0", "d").map(text),
  rangeEnd: fc.oneof(
    { weight: 3, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.constant(Uint8Array.of(0)) },
    { weight: 2, arbitrary: fc.constantFrom("b", "c", "d", "e").map(text) },
  ),
  value: fc.constantFrom("", "x", "yy").map(text),
  revision: fc.bigInt({ min: 0n, max: 30n }),
  lease: fc.constant(0n),
};

/** Several keys written by one command: events that share a revision. */
const multiPutArb: fc.Arbitrary<KvCommand> = fc
  .uniqueArray(SPACE.key, { minLength: 2, maxLength: 4, selector: (key) => Buffer.from(key).toString("hex") })
  .chain((keys) =>
    fc
      .array(SPACE.value, { minLength: keys.length, maxLength: keys.length })
      .map((values) =>
        txnRequest({ success: keys.map((key, i) => putRequest({ key, value: values[i]!, prevKv: false })) }),
      ),
  );

const writeArb: fc.Arbitrary<KvCommand> = fc.oneof(
  { weight: 4, arbitrary: putArb(SPACE) },
  { weight: 2, arbitrary: deleteRangeArb(SPACE) },
  { weight: 2, arbitrary: multiPutArb },
  { weight: 1, arbitrary: txnArb(SPACE, 1) },
);

interface WatchSpec {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  /**
   * Where the watch starts relative to the current revision R when it is made: 0 is start
   * revision 0; -k is R - k + 1 (in the past, at least 1); +k is R + k (in the future).
   */
  readonly startOffset: number;
  readonly prevKv: boolean;
  readonly filters: WatchFilter[];
  readonly fragment: boolean;
}

type Step =
  | { readonly kind: "write"; readonly command: KvCommand; readonly timestamp: bigint }
  | { readonly kind: "compact"; readonly fraction: number }
  | { readonly kind: "watch"; readonly spec: WatchSpec }
  | { readonly kind: "read"; readonly watcher: number; readonly responses: number }
  | { readonly kind: "progress" }
  | { readonly kind: "requestProgress"; readonly watcher: number };

const specArb: fc.Arbitrary<WatchSpec> = fc.record(
  {
    key: SPACE.key,
    rangeEnd: SPACE.rangeEnd,
    startOffset: fc.oneof(
      { weight: 2, arbitrary: fc.constant(0) },
      { weight: 4, arbitrary: fc.integer({ min: -30, max: -1 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }) },
    ),
    prevKv: fc.boolean(),
    filters: fc.subarray<WatchFilter>(["noPut", "noDelete"]),
    fragment: fc.boolean(),
  },
  { noNullPrototype: true },
);

function stepArb(withCompaction: boolean): fc.Arbitrary<Step> {
  const compaction: fc.WeightedArbitrary<Step>[] = withCompaction
    ? [
        {
          weight: 1,
          arbitrary: fc.record({
            kind: fc.constant("compact" as const),
            fraction: fc.double({ min: 0, max: 1, noNaN: true }),
          }),
        },
      ]
    : [];
  const steps: fc.WeightedArbitrary<Step>[] = [
    ...compaction,
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant("write" as const),
        command: writeArb,
        // Mostly one revision after the last; sometimes a leader stamp that jumps ahead.
        timestamp: fc.oneof(
          { weight: 4, arbitrary: fc.constant(0n) },
          { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 60n }) },
        ),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("watch" as const), spec: specArb }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant("read" as const),
        watcher: fc.nat(),
        responses: fc.integer({ min: 1, max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("progress" as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("requestProgress" as const), watcher: fc.nat() }) },
  ];
  return fc.oneof(...steps);
}

function compare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function inRange(key: Uint8Array, start: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (rangeEnd.length === 0) return compare(key, start) === 0;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return compare(key, start) >= 0;
  return compare(key, start) >= 0 && compare(key, rangeEnd) < 0;
}

/** What a watcher must see: every published event in its range from its first revision, as asked. */
function expectedEvents(published: readonly Published[], spec: WatchSpec, first: bigint): KvEvent[] {
  return published
    .filter(({ revision }) => revision >= first)
    .flatMap(({ events }) => events)
    .filter((e) => inRange(e.kv.key, spec.key, spec.rangeEnd))
    .filter((e) => !spec.filters.includes(e.type === "put" ? "noPut" : "noDelete"))
    .map((e) => (spec.prevKv ? e : { ...e, prevKv: null }));
}

interface Opened {
  readonly spec: WatchSpec;
  readonly watch: Watch;
  /** The first revision it must report. */
  readonly first: bigint;
  readonly responses: WatchResponse[];
}

function checkResponses(opened: Opened): void {
  let last = -1n;
  let lastEvent: KvEvent | null = null;
  for (const response of opened.responses) {
    assert.ok(response.revision >= last, "response revisions never go back");
    last = response.revision;
    for (const event of response.events) {
      assert.ok(event.kv.modRevision <= response.revision, "an event is at or below its response's revision");
      if (lastEvent !== null) {
        const order = event.kv.modRevision - lastEvent.kv.modRevision;
        assert.ok(
          order > 0n || (order === 0n && compare(lastEvent.kv.key, event.kv.key) < 0),
          "revision, then key order",
        );
      }
      lastEvent = event;
    }
  }
}

function run(steps: readonly Step[], pageEvents: number, fragmentBytes: number): void {
  const h = new KvHarness();
  const hub = new WatchHub(h.store, {
    historyPageEvents: pageEvents,
    fragmentBytes,
    maxUnreadEvents: 1_000_000,
  });
  h.feed(hub);
  const opened: Opened[] = [];
  const read = (o: Opened, limit: number) => {
    for (let i = 0; i < limit; i++) {
      const response = o.watch.poll();
      if (response === undefined) return;
      o.responses.push(response);
    }
  };
  for (const step of steps) {
    switch (step.kind) {
      case "write":
        h.apply(step.command, step.timestamp);
        break;
      case "compact": {
        const { revision, compactedRevision } = h.store;
        const target =
          compactedRevision + BigInt(Math.floor(Number(revision - compactedRevision) * step.fraction));
        if (target > compactedRevision) h.ok(compactRequest(target), "compact");
        break;
      }
      case "watch": {
        const current = h.store.revision;
        const offset = BigInt(step.spec.startOffset);
        const past = current + offset + 1n;
        const startRevision = offset === 0n ? 0n : offset > 0n ? current + offset : past < 1n ? 1n : past;
        const first = startRevision === 0n ? current + 1n : startRevision;
        const watch = hub.watch({ ...step.spec, startRevision });
        opened.push({ spec: step.spec, watch, first, responses: [] });
        break;
      }
      case "read": {
        const o = opened[step.watcher % Math.max(opened.length, 1)];
        if (o !== undefined) read(o, step.responses);
        break;
      }
      case "progress":
        hub.progress();
        break;
      case "requestProgress":
        opened[step.watcher % Math.max(opened.length, 1)]?.watch.requestProgress();
        break;
    }
  }
  for (const o of opened) {
    read(o, Infinity);
    checkResponses(o);
    const events = o.responses.flatMap((r) => r.events);
    const cancel = o.responses.find((r) => r.canceled);
    const expected = expectedEvents(h.published, o.spec, o.first);
    if (cancel === undefined) {
      assert.deepEqual(events, expected);
      const progress = o.responses.filter((r) => r.events.length === 0);
      for (const p of progress) assert.ok(p.revision <= h.store.revision);
    } else {
      assert.equal(cancel, o.responses.at(-1), "a cancelled response is the last");
      assert.equal(cancel.cancelReason, "mvcc: required revision has been compacted");
      assert.ok(
        cancel.revision + 1n <= cancel.compactRevision - 1n,
        "compaction passed where the watch stood",
      );
      assert.ok(cancel.compactRevision - 1n <= h.store.compactedRevision);
      assert.deepEqual(
        events,
        expected.filter((e) => e.kv.modRevision <= cancel.revision),
        "everything up to the revision named in the cancellation",
      );
    }
  }
}

describe("watches against the events the store produced", () => {
  it("every watcher sees exactly its range's events from its start revision, history and live alike", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb(false), { minLength: 1, maxLength: 60, size: "max" }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 40, max: 400 }),
        (steps, pageEvents, fragmentBytes) => run(steps, pageEvents, fragmentBytes),
      ),
      { numRuns: 300 },
    );
  });

  it("with compactions, a watcher sees its events up to where it was cancelled, and no further", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb(true), { minLength: 1, maxLength: 60, size: "max" }),
        fc.integer({ min: 1, max: 4 }),
        (steps, pageEvents) => run(steps, pageEvents, 1024),
      ),
      { numRuns: 300 },
    );
  });
});
