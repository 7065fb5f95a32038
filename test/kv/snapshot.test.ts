// Snapshots of an MvccStore: a large store round-trips into a fresh engine (under another
// namespace too) byte for byte, the image is the state when snapshot() was called, chunk
// boundaries do not matter, and corrupt, truncated or extended snapshots are rejected
// without touching the store they were to be restored into.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DecodeError, concatBytes } from "../../src/kv/bytes.js";
import { compactRequest, deleteRangeRequest, putRequest, rangeRequest } from "../../src/kv/commands.js";
import { MemoryOrderedKv } from "../../src/kv/memory-engine.js";
import { FROM_KEY, Harness, b, collect, dump, kvText } from "./helpers.js";

/** A store with history, tombstones, a compaction and dedup records of seven clients. */
function populated(keys: number): Harness {
  const h = new Harness();
  let sequence = 0;
  const put = (k: string, v: string) => {
    sequence += 1;
    const command = putRequest({ key: b(k), value: b(v) });
    h.applyEnvelope({ clientId: `client-${sequence % 7}`, sequence, timestamp: 0n, command });
  };
  for (let i = 0; i < keys; i++) put(`key/${String(i).padStart(6, "0")}`, `v${i}`);
  for (let i = 0; i < keys; i += 3) put(`key/${String(i).padStart(6, "0")}`, `w${i}`);
  h.apply(deleteRangeRequest({ key: b("key/000100"), rangeEnd: b("key/000200") }));
  h.apply(compactRequest(BigInt(keys)));
  for (let i = 0; i < keys; i += 5) put(`key/${String(i).padStart(6, "0")}`, `x${i}`);
  return h;
}

function allKeys(h: Harness, revision = 0n): string[] {
  return h.store.range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: FROM_KEY, revision })).kvs.map(kvText);
}

describe("MvccStore snapshots", () => {
  it("round-trip a large store into a fresh engine byte for byte", async () => {
    const source = populated(12_000);
    const snapshot = source.store.snapshot(64 * 1024);
    assert.equal(snapshot.appliedIndex, source.store.appliedIndex);
    assert.equal(snapshot.revision, source.store.revision);
    const chunks = await collect(snapshot);
    assert.ok(chunks.length > 10, `${chunks.length} chunks`);
    const target = new Harness();
    target.apply(putRequest({ key: b("stale"), value: b("gone after restore") }));
    await target.store.restore(chunks);
    assert.deepEqual(dump(target.kv), dump(source.kv));
    assert.equal(target.store.appliedIndex, source.store.appliedIndex);
    assert.equal(target.store.revision, source.store.revision);
    assert.equal(target.store.compactedRevision, source.store.compactedRevision);
    assert.deepEqual(allKeys(target), allKeys(source));
  });

  it("restore under another namespace and carry the dedup table along", async () => {
    const source = populated(300);
    const kv = new MemoryOrderedKv();
    const target = new Harness({ namespace: b("group-0007/") }, kv);
    await target.store.restore(source.store.snapshot(1000));
    assert.deepEqual(allKeys(target), allKeys(source));
    assert.deepEqual(
      allKeys(target, source.store.compactedRevision),
      allKeys(source, source.store.compactedRevision),
    );
    const replay = { clientId: "client-1", sequence: 1, timestamp: 0n, command: putRequest({ key: b("z") }) };
    assert.equal(target.store.apply(target.store.appliedIndex + 1, replay).duplicate, true);
  });

  it("is the state at the time snapshot() was called, whatever is applied while it is read", async () => {
    const source = populated(500);
    const expected = dump(source.kv);
    const snapshot = source.store.snapshot(512);
    const chunks: Uint8Array[] = [];
    for await (const chunk of snapshot) {
      chunks.push(chunk);
      source.apply(putRequest({ key: b(`late/${chunks.length}`), value: b("x") }));
    }
    const target = new Harness();
    await target.store.restore(chunks);
    assert.deepEqual(dump(target.kv), expected);
  });

  it("decodes whatever the chunk boundaries", async () => {
    const source = populated(200);
    const whole = concatBytes(...(await collect(source.store.snapshot())));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: whole.length }), { maxLength: 20 }),
        async (cuts) => {
          const points = [0, ...[...cuts].sort((x, y) => x - y), whole.length];
          const pieces = points.slice(1).map((end, i) => whole.subarray(points[i], end));
          const target = new Harness();
          await target.store.restore(pieces);
          assert.deepEqual(dump(target.kv), dump(source.kv));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("rejects a corrupted, truncated or extended snapshot and leaves the store as it was", async () => {
    const source = populated(100);
    const whole = concatBytes(...(await collect(source.store.snapshot())));
    const target = new Harness();
    target.apply(putRequest({ key: b("keep"), value: b("me") }));
    const before = dump(target.kv);
    const flippedChecksum = whole.slice();
    flippedChecksum[whole.length - 1] = whole[whole.length - 1]! ^ 0x01;
    const wrongFormat = whole.slice();
    wrongFormat[10] = 9;
    const cases: [string, Uint8Array, string][] = [
      ["checksum", flippedChecksum, "checksum-mismatch"],
      ["truncated", whole.subarray(0, whole.length - 3), "truncated"],
      ["extended", concatBytes(whole, Uint8Array.of(0)), "trailing-bytes"],
      ["unknown format", wrongFormat, "unknown-version"],
      ["empty", new Uint8Array(0), "truncated"],
    ];
    for (const [name, bytes, failure] of cases) {
      await assert.rejects(target.store.restore([bytes]), (error: unknown) => {
        assert.ok(error instanceof DecodeError, name);
        assert.equal(error.failure, failure, name);
        return true;
      });
      assert.deepEqual(dump(target.kv), before, name);
    }
  });

  it("detects any single flipped bit", async () => {
    const source = populated(40);
    const whole = concatBytes(...(await collect(source.store.snapshot())));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: whole.length - 1 }),
        fc.integer({ min: 0, max: 7 }),
        async (at, bit) => {
          const flipped = whole.slice();
          flipped[at] = whole[at]! ^ (1 << bit);
          const target = new Harness();
          await assert.rejects(target.store.restore([flipped]), DecodeError);
          assert.equal(target.store.appliedIndex, 0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("releases its read view when abandoned, and refuses a second iteration", async () => {
    const source = populated(50);
    const snapshot = source.store.snapshot();
    snapshot.release();
    await assert.rejects(collect(snapshot), /after release/);
  });
});
