// Splits by size: MvccStore.sizeEstimate against the bytes written, the same measurement in
// steps (what a node runs, so a large range's scan does not stall its requests), when a node
// measures a range again (sizeMeasurementDue: time, the last scan's cost, the changes since),
// and a one-node store whose range grows past maxRangeBytes splitting by itself at its size
// median.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Concord } from "../../src/api/index.js";
import { putRequest } from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { MvccStore } from "../../src/kv/store.js";
import {
  SIZE_MEASUREMENT_CHANGE_SHARE,
  SIZE_MEASUREMENT_COST_RATIO,
  sizeMeasurementDue,
} from "../../src/placement/node-ranges.js";
import { text, waitFor } from "../api/helpers.js";

const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

test("a range is measured again after the refresh interval (or 500 times its last scan's running time if longer), once a twentieth of its versions changed", () => {
  assert.equal(SIZE_MEASUREMENT_COST_RATIO, 500);
  assert.equal(SIZE_MEASUREMENT_CHANGE_SHARE, 0.05);
  assert.equal(sizeMeasurementDue(undefined, 0, 30_000, 0), true, "never measured");
  // Measured at 1,000 ms with 10 changes counted; 1,000 versions unless said otherwise.
  const changed = 10 + 50;
  const cases: [
    costMs: number,
    versions: number,
    now: number,
    changedOps: number,
    due: boolean,
    why: string,
  ][] = [
    [2, 1_000, 30_999, changed, false, "before the refresh"],
    [2, 1_000, 31_000, changed, true, "a cheap scan: the refresh decides"],
    [400, 1_000, 31_000, changed, false, "a 400 ms scan: not after the refresh"],
    [400, 1_000, 200_999, changed, false, "a 400 ms scan: not before 200 s"],
    [400, 1_000, 201_000, changed, true, "a 400 ms scan: 200 s later"],
    [2, 1_000, 31_000, changed - 1, false, "under a twentieth changed"],
    [2, 1_000, 99_000, 10, false, "nothing written: never again"],
    [2, 0, 31_000, 11, true, "an empty range: any write"],
    [2, 1_000, 31_000, 3, true, "a replica hosted anew counts from zero"],
  ];
  for (const [costMs, versions, now, changedOps, due, why] of cases) {
    const known = { at: 1_000, costMs, bytes: 1, versions, medianKey: null, changedOps: 10 };
    assert.equal(sizeMeasurementDue(known, now, 30_000, changedOps), due, why);
  }
});

test("sizeEstimate counts every stored version and finds the key with half the bytes below it", () => {
  const store = new MvccStore(new MemoryOrderedKv());
  assert.deepEqual(store.sizeEstimate(), { bytes: 0, versions: 0, medianKey: null });
  const value = new Uint8Array(10_000);
  for (let i = 0; i < 100; i++) {
    store.apply(i + 1, {
      clientId: "",
      sequence: 0,
      timestamp: BigInt(i + 1),
      command: putRequest({ key: bytes(`s/${String(i).padStart(3, "0")}`), value }),
    });
  }
  const { bytes: total, versions, medianKey } = store.sizeEstimate();
  assert.ok(total >= 100 * 10_000 && total < 100 * 10_200, `bytes ${total}`);
  assert.equal(versions, 100);
  assert.ok(store.changedOps() >= 100, "every put changed the store");
  const index = Number(text(medianKey ?? undefined)?.slice(2));
  assert.ok(index >= 40 && index <= 60, `median key index ${index}`);
});

test("sizeEstimateSteps yields between steps, answers what sizeEstimate does, and reads one view", () => {
  const store = new MvccStore(new MemoryOrderedKv());
  const put = (index: number, key: string): void => {
    store.apply(index, {
      clientId: "",
      sequence: 0,
      timestamp: BigInt(index),
      command: putRequest({ key: bytes(key), value: new Uint8Array(1_000) }),
    });
  };
  for (let i = 0; i < 10; i++) put(i + 1, `s/${i}`);
  const whole = store.sizeEstimate();
  const steps = store.sizeEstimateSteps(3);
  let yields = 0;
  let step = steps.next();
  // A write applied between two steps is not counted: the steps read the view they began with.
  put(11, "s/late");
  for (; step.done !== true; step = steps.next()) yields += 1;
  assert.equal(yields, 3, "10 versions in steps of 3: it yields after the 3rd, 6th and 9th");
  assert.deepEqual(step.value, whole);
  assert.ok(store.sizeEstimate().bytes > whole.bytes, "the late write is counted by a new measurement");
  assert.throws(() => store.sizeEstimateSteps(0).next(), RangeError);
});

test("a range over maxRangeBytes splits by itself at its size median", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "concord-size-split-"));
  const db = await Concord.open({
    dataDir,
    tickMs: 10,
    splitPolicy: { maxRangeBytes: 200_000, loadSplitOpsPerSecond: 1e12, cooldownMs: 0 },
    rangeSizeRefreshMs: 50,
  });
  try {
    const value = "x".repeat(5_000);
    for (let i = 0; i < 100; i++) await db.put(`big/${String(i).padStart(3, "0")}`, value);
    await waitFor(() => (db.ranges?.list().length ?? 0) >= 2, "a split by size");
    const listed = db.ranges!.list();
    for (let i = 1; i < listed.length; i++) {
      assert.deepEqual(listed[i]!.start, listed[i - 1]!.end, "ranges are contiguous");
    }
    for (let i = 0; i < 100; i += 7) {
      assert.equal((await db.get(`big/${String(i).padStart(3, "0")}`))?.value.length, 5_000);
    }
    assert.equal((await db.range("big/", { prefix: true, countOnly: true })).count, 100);
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
