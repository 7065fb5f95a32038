// Model-based tests of MvccStore: random sequences of put / delete / txn / compact (from
// several clients, with retries and stale requests, and leader stamps that jump or lag) are
// applied to the store and to a simple reference model. Every result and event must match,
// and afterwards every range read at every revision — full scans and random ranges — must
// give the model's answer or the model's error. A second store applying the same entries in
// batches of random sizes (applyEntries: one engine write per batch) must give the same
// outcomes and end byte-identical, also with a dedup table small enough to evict mid-batch
// and with an index of newest versions (what a put replaces) that keeps almost nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { rangeRequest, type CommandEnvelope, type RangeRequest } from "../../src/kv/commands.js";
import { KvError } from "../../src/kv/errors.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import { commandArb, rangeArb, type KeySpace } from "./arbitraries.js";
import { dump } from "./helpers.js";
import { ModelStore, isFailure } from "./model.js";

const text = (t: string) => new TextEncoder().encode(t);

/** Few, colliding keys, including ones with 0x00 bytes and prefixes of each other. */
const SMALL: KeySpace = {
  key: fc.oneof(
    { weight: 60, arbitrary: fc.constantFrom("a", "ab", "b", "c", "\0", "a\0", "b\0c").map(text) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  ),
  rangeEnd: fc.oneof(
    { weight: 3, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.constant(Uint8Array.of(0)) },
    { weight: 2, arbitrary: fc.constantFrom("b", "c", "d", "a\0", "ab").map(text) },
  ),
  value: fc.constantFrom("", "x", "y", "zz").map(text),
  revision: fc.bigInt({ min: 0n, max: 40n }),
  lease: fc.constantFrom(1n, 2n),
};

interface Step {
  readonly client: "" | "c1" | "c2";
  /** next: a new request; retry: the client's last one again; stale: an older sequence. */
  readonly kind: "next" | "retry" | "stale";
  readonly timestamp: bigint;
  readonly command: CommandEnvelope["command"];
}

const stepArb: fc.Arbitrary<Step> = fc.record(
  {
    client: fc.constantFrom("" as const, "c1" as const, "c2" as const),
    kind: fc.oneof(
      { weight: 8, arbitrary: fc.constant("next" as const) },
      { weight: 1, arbitrary: fc.constant("retry" as const) },
      { weight: 1, arbitrary: fc.constant("stale" as const) },
    ),
    // Mostly 0 (revision = last + 1), sometimes a jump ahead of the last revision.
    timestamp: fc.oneof(
      { weight: 3, arbitrary: fc.constant(0n) },
      { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 30n }) },
    ),
    command: commandArb(SMALL),
  },
  { noNullPrototype: true },
);

/** Turns steps into envelopes, giving each client increasing sequence numbers (and retries/stale ones). */
function envelopes(steps: readonly Step[]): CommandEnvelope[] {
  const sent = new Map<string, CommandEnvelope[]>();
  const out: CommandEnvelope[] = [];
  for (const step of steps) {
    const history = sent.get(step.client) ?? [];
    const last = history[history.length - 1];
    let envelope: CommandEnvelope;
    if (step.client !== "" && step.kind === "retry" && last !== undefined) envelope = last;
    else if (step.client !== "" && step.kind === "stale" && history.length >= 2) {
      envelope = { ...history[0]!, command: step.command };
    } else {
      const sequence = step.client === "" ? 0 : history.length + 1;
      envelope = { clientId: step.client, sequence, timestamp: step.timestamp, command: step.command };
      history.push(envelope);
    }
    sent.set(step.client, history);
    out.push(envelope);
  }
  return out;
}

function storeRange(store: MvccStore, request: RangeRequest): unknown {
  try {
    const { revision, ...response } = store.range(request);
    assert.equal(revision, store.revision, "the header revision is the current revision");
    return response;
  } catch (error) {
    if (error instanceof KvError) return { error: error.code };
    throw error;
  }
}

function modelRange(model: ModelStore, request: RangeRequest): unknown {
  const answer = model.range(request);
  return isFailure(answer) ? { error: answer.code } : answer;
}

const replica = () => new MemoryOrderedKv();

/** Applies `entries` (indexes 1, 2, ...) with applyEntries, in consecutive batches of the given sizes (cycled). */
function applyInBatches(store: MvccStore, entries: readonly CommandEnvelope[], sizes: readonly number[]) {
  const outcomes = [];
  for (let at = 0, turn = 0; at < entries.length; turn++) {
    const batch = entries.slice(at, at + sizes[turn % sizes.length]!);
    const applied = store.applyEntries(batch.map((envelope, i) => ({ index: at + i + 1, envelope })));
    outcomes.push(...applied);
    at += batch.length;
  }
  return outcomes;
}

describe("MvccStore against the reference model", () => {
  it("gives the model's results, events and reads at every revision, and replicas stay byte-identical", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 40 }),
        fc.array(rangeArb(SMALL), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 10 }),
        (steps, ranges, batchSizes, removalSteps) => {
          const model = new ModelStore();
          const kv = new MemoryOrderedKv();
          const store = new MvccStore(kv);
          const entries = envelopes(steps);
          const outcomes = entries.map((envelope, i) => {
            const expected = model.apply(envelope);
            const actual = store.apply(i + 1, envelope);
            assert.deepEqual(actual.result, expected.result, `entry ${i + 1}`);
            assert.deepEqual(actual.events, expected.events, `events of entry ${i + 1}`);
            assert.equal(store.revision, model.revision);
            assert.equal(store.compactedRevision, model.compacted);
            return actual;
          });
          const everything = rangeRequest({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) });
          for (let revision = 0n; revision <= store.revision + 1n; revision++) {
            for (const request of [everything, ...ranges]) {
              const atRevision = { ...request, revision };
              assert.deepEqual(
                storeRange(store, atRevision),
                modelRange(model, atRevision),
                `revision ${revision}`,
              );
            }
          }
          for (const request of ranges)
            assert.deepEqual(storeRange(store, request), modelRange(model, request));

          assert.deepEqual(applyInBatches(new MvccStore(replica()), entries, batchSizes), outcomes);
          // An index of newest versions so small that it forgets all the time answers alike,
          // with the set of keys that have a version (an apply's look for any other key skips
          // the engine) and without it (every look the index cannot answer goes to the engine).
          for (const maxKnownKeys of [1_000, 2]) {
            const forgetful = { newestVersions: { maxEntries: 2, maxBytes: 64, maxKnownKeys } };
            assert.deepEqual(
              applyInBatches(new MvccStore(replica(), forgetful), entries, batchSizes),
              outcomes,
            );
          }
          const batched = replica();
          applyInBatches(new MvccStore(batched), entries, batchSizes);
          assert.deepEqual(dump(batched), dump(kv));

          const oneByOne = replica();
          const evicting = { maxDedupClients: 1 };
          const oneByOneStore = new MvccStore(oneByOne, evicting);
          const singly = entries.map((envelope, i) => oneByOneStore.apply(i + 1, envelope));
          const evictingBatched = replica();
          assert.deepEqual(
            applyInBatches(new MvccStore(evictingBatched, evicting), entries, batchSizes),
            singly,
          );
          assert.deepEqual(dump(evictingBatched), dump(oneByOne));

          // A replica that removes compacted versions in steps of 1..4 versions (0: none) between
          // entries answers alike at every revision the compaction still allows, and once both
          // have finished removing, it holds what the replica that removed nothing yet does.
          const removingKv = replica();
          const removing = new MvccStore(removingKv);
          const removingOutcomes = entries.map((envelope, i) => {
            const outcome = removing.apply(i + 1, envelope);
            const size = removalSteps[i % removalSteps.length]!;
            if (size > 0) removing.removalStep(size);
            return outcome;
          });
          assert.deepEqual(removingOutcomes, outcomes);
          for (let revision = store.compactedRevision; revision <= store.revision; revision++) {
            const atRevision = { ...everything, revision };
            assert.deepEqual(
              storeRange(removing, atRevision),
              storeRange(store, atRevision),
              `revision ${revision}`,
            );
          }
          assert.deepEqual(removing.hashKv(0n), store.hashKv(0n));
          while (removing.removalStep(3));
          while (store.removalStep(1000));
          assert.deepEqual(dump(removingKv), dump(kv));
        },
      ),
      { numRuns: 200 },
    );
  });
});
