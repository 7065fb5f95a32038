// The backup image of a split keyspace (src/kv/backup.ts): two ranges of one engine become one
// store of the whole keyspace — every key with its history, the lease with its keys from both
// ranges, the newest revision, no bounds, none of the skipped system keys — and a single
// range's image restores to the same data.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FULL_BOUNDS, boundsEqual } from "../../src/kv/bounds.js";
import { backupSnapshot } from "../../src/kv/backup.js";
import { leaseGrantRequest, rangeRequest } from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import { b, s } from "./helpers.js";
import { Ranges } from "./split-helpers.js";

async function restored(ranges: Ranges, ids: readonly number[]): Promise<MvccStore> {
  const image = backupSnapshot(
    ids.map((id) => ranges.store(id).imageView()),
    b("sys/"),
  );
  const store = new MvccStore(new MemoryOrderedKv());
  await store.restore(image);
  return store;
}

function everything(store: MvccStore, revision = 0n): string[] {
  const request = rangeRequest({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0), revision });
  return store.range(request).kvs.map((kv) => `${s(kv.key)}=${s(kv.value)}`);
}

test("a backup of two ranges restores as one store of the whole keyspace", async () => {
  const ranges = new Ranges();
  ranges.apply(1, leaseGrantRequest(60, 7n));
  ranges.put(1, "a", "1", 7n);
  ranges.put(1, "sys/catalog", "the old split");
  ranges.put(1, "x", "1", 7n);
  const beforeSplit = ranges.store(1).revision;
  ranges.split(1, "m", 2);
  ranges.put(2, "x", "2", 7n);
  ranges.put(2, "y", "2");
  ranges.put(2, "y", "3");
  const newest = ranges.store(2).revision;
  assert.ok(newest > ranges.store(1).revision, "the right-hand range wrote last");

  const store = await restored(ranges, [1, 2]);
  assert.deepEqual(everything(store), ["a=1", "x=2", "y=3"], "no system key, every user key");
  assert.deepEqual(everything(store, beforeSplit), ["a=1", "x=1"], "history from before the split");
  assert.equal(store.revision, newest);
  assert.ok(boundsEqual(store.bounds, FULL_BOUNDS), "the whole keyspace");
  assert.equal(store.rangeState.kind, "active");
  assert.deepEqual(
    store.lease(7n, { keys: true })?.keys.map(s),
    ["a", "x"],
    "the lease once, with its keys of both ranges",
  );
  assert.equal(store.leases().length, 1);
});

test("a backup of one range restores its data", async () => {
  const ranges = new Ranges();
  ranges.put(1, "k", "v");
  ranges.put(1, "sys/catalog", "routes");
  const store = await restored(ranges, [1]);
  assert.deepEqual(everything(store), ["k=v"]);
  assert.equal(store.revision, ranges.store(1).revision);
});
