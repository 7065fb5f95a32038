// LmdbOrderedKv against the same sorted-map model as MemoryOrderedKv (gets and scans in both
// directions with bounds and limits, empty keys included), views that never see later
// writes, atomic batches, released views; and durability: data and an MvccStore (applied
// index, revision, contents) survive closing and reopening the environment after sync.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { open } from "lmdb";
import { putRequest, rangeRequest } from "../../src/kv/commands.js";
import { WriteBatch, type KvReader, type ScanOptions } from "../../src/kv/engine.js";
import { LmdbOrderedKv } from "../../src/kv/lmdb-engine.js";
import { checkViewIsolation, key, ModelKv, scanArb } from "./ordered-kv-model.js";
import { MvccStore } from "../../src/kv/store.js";
import { systemTimers } from "../../src/transport/timers.js";

const directories: string[] = [];
after(() => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

function freshPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "concord-lmdb-kv-"));
  directories.push(dir);
  return dir;
}

type Op = { put: Uint8Array; value: Uint8Array } | { del: Uint8Array };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ put: key, value: fc.uint8Array({ maxLength: 4 }) }),
  fc.record({ del: key }),
);

function batchOf(ops: readonly Op[]): WriteBatch {
  const batch = new WriteBatch();
  for (const o of ops) {
    if ("put" in o) batch.put(o.put, o.value);
    else batch.delete(o.del);
  }
  return batch;
}

function collect(reader: KvReader, start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}) {
  return [...reader.scan(start, end, options)].map((p) => ({ key: p.key, value: p.value }));
}

function clear(engine: LmdbOrderedKv): void {
  const view = engine.view();
  const batch = new WriteBatch();
  for (const { key: k } of view.scan(new Uint8Array(0), null)) batch.delete(k);
  view.release();
  engine.write(batch);
}

/** An engine on real timers. */
function openKv(path: string): LmdbOrderedKv {
  return LmdbOrderedKv.open({
    path,
    commitTimer: (commit, delayMs) => systemTimers.setTimeout(commit, delayMs),
  });
}

const enc = (text: string) => new TextEncoder().encode(text);

type KvPairs = { key: Uint8Array; value: Uint8Array }[];

describe("LmdbOrderedKv", () => {
  it("matches a sorted-map model for gets and scans after any sequence of batches", async () => {
    const engine = openKv(freshPath());
    try {
      fc.assert(
        fc.property(
          fc.array(fc.array(op, { maxLength: 200 }), { maxLength: 8 }),
          fc.array(scanArb, { maxLength: 10 }),
          (batches, scans) => {
            clear(engine);
            const model = new ModelKv();
            for (const ops of batches) {
              const batch = batchOf(ops);
              engine.write(batch);
              model.apply(batch);
            }
            const view = engine.view();
            try {
              for (const { key: k, value } of model.entries.values()) assert.deepEqual(view.get(k), value);
              assert.equal(view.get(Uint8Array.of(9, 9, 9, 9)), undefined);
              assert.deepEqual(collect(view, new Uint8Array(0), null), model.scan(new Uint8Array(0), null));
              for (const s of scans) {
                const options = { reverse: s.reverse, limit: s.limit };
                assert.deepEqual(collect(view, s.start, s.end, options), model.scan(s.start, s.end, options));
              }
            } finally {
              view.release();
            }
          },
        ),
        { numRuns: 80 },
      );
    } finally {
      await engine.close();
    }
  });

  it("tells its commit observer each commit's operations and duration, one observer at a time", async () => {
    const engine = openKv(freshPath());
    try {
      let now = 100;
      const told: [number, number][] = [];
      const stop = engine.observeCommits(
        () => (now += 5),
        (operations, milliseconds) => told.push([operations, milliseconds]),
      );
      assert.throws(
        () =>
          engine.observeCommits(
            () => 0,
            () => undefined,
          ),
        /observed already/,
      );
      engine.write(
        batchOf([
          { put: Uint8Array.of(1), value: Uint8Array.of(1) },
          { put: Uint8Array.of(2), value: Uint8Array.of(2) },
        ]),
      );
      await engine.sync();
      // Two puts and the commit's generation record; the clock was read at its start and end.
      assert.deepEqual(told, [[3, 5]]);
      stop();
      engine.write(batchOf([{ put: Uint8Array.of(3), value: Uint8Array.of(3) }]));
      await engine.sync();
      assert.equal(told.length, 1, "a removed observer hears of no more commits");
      engine.observeCommits(
        () => 0,
        () => {
          throw new Error("a broken observer");
        },
      );
      engine.write(batchOf([{ put: Uint8Array.of(4), value: Uint8Array.of(4) }]));
      await engine.sync();
      const view = engine.view();
      assert.deepEqual(view.get(Uint8Array.of(4)), Uint8Array.of(4), "its commit landed all the same");
      view.release();
    } finally {
      await engine.close();
    }
  });

  it("gives views that never see writes made after they were opened", async () => {
    const engine = openKv(freshPath());
    checkViewIsolation(engine);
    await engine.close();
  });

  it("a commit lmdb refuses leaves the writes readable and fails sync and later writes with its error", async () => {
    const engine = openKv(freshPath());
    const batch = new WriteBatch();
    batch.put(Uint8Array.of(1), Uint8Array.of(1));
    // lmdb stores keys of at most 1,978 bytes: the commit fails, and none of its batch lands.
    batch.put(new Uint8Array(3000).fill(2), Uint8Array.of(2));
    engine.write(batch);
    await assert.rejects(engine.sync(), /maximum key size/);
    const view = engine.view();
    assert.deepEqual(view.get(Uint8Array.of(1)), Uint8Array.of(1));
    view.release();
    assert.throws(() => engine.write(new WriteBatch()), /maximum key size/);
    await assert.rejects(engine.close(), /maximum key size/);
  });

  it("reads with keys and bounds longer than lmdb's longest key as if such keys could exist", async () => {
    const engine = openKv(freshPath());
    // Keys of up to 1,977 bytes (lmdb's 1,978 with the engine's prefix byte) sharing a long prefix.
    const prefix = new Uint8Array(1970).fill(7);
    const near = fc
      .uint8Array({ minLength: 0, maxLength: 7 })
      .map((tail) => Uint8Array.of(...prefix, ...tail.map((b) => (b % 4) + 6)));
    const bound = fc
      .uint8Array({ minLength: 0, maxLength: 40 })
      .map((tail) => Uint8Array.of(...prefix, ...tail.map((b) => (b % 4) + 6)));
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(near, { maxLength: 30, selector: (k) => Buffer.from(k).toString("hex") }),
          bound,
          fc.option(bound, { nil: null }),
          fc.boolean(),
          async (keys, start, end, reverse) => {
            clear(engine);
            const batch = new WriteBatch();
            for (const k of keys) batch.put(k, Uint8Array.of(1));
            engine.write(batch);
            // Both read paths: the waiting layers on top of lmdb, then lmdb alone once committed.
            for (const committed of [false, true]) {
              if (committed) await engine.sync();
              const model = new ModelKv();
              model.apply(batch);
              const view = engine.view();
              assert.deepEqual(collect(view, start, end, { reverse }), model.scan(start, end, { reverse }));
              assert.equal(view.get(Uint8Array.of(...prefix, ...new Uint8Array(20).fill(6))), undefined);
              view.release();
            }
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await engine.close();
    }
  });

  it("refuses a non-positive scan limit, use of a released view and use after close", async () => {
    const engine = openKv(freshPath());
    const view = engine.view();
    assert.throws(() => view.scan(new Uint8Array(0), null, { limit: 0 }), RangeError);
    view.release();
    assert.throws(() => view.get(Uint8Array.of(1)), /after release/);
    // A view over writes still waiting in memory (one layer), whose key the layer answers.
    const batch = new WriteBatch();
    batch.put(Uint8Array.of(1), Uint8Array.of(1));
    engine.write(batch);
    const layered = engine.view();
    assert.throws(() => layered.scan(new Uint8Array(0), null, { limit: 0 }), RangeError);
    layered.release();
    assert.throws(() => layered.get(Uint8Array.of(1)), /after release/);
    await engine.close();
    assert.throws(() => engine.view(), /closed/);
  });

  it("keeps synced data across a close and reopen", async () => {
    const path = freshPath();
    const engine = openKv(path);
    const batch = new WriteBatch();
    for (let i = 0; i < 300; i++) batch.put(enc(`k${String(i).padStart(3, "0")}`), enc(`v${i}`));
    batch.put(new Uint8Array(0), enc("the empty key"));
    engine.write(batch);
    await engine.sync();
    await engine.close();

    const reopened = openKv(path);
    const view = reopened.view();
    assert.deepEqual(view.get(enc("k123")), enc("v123"));
    assert.deepEqual(view.get(new Uint8Array(0)), enc("the empty key"));
    assert.equal([...view.scan(enc("k"), enc("l"))].length, 300);
    view.release();
    await reopened.close();
  });

  // The engine hands lmdb-js's bytes on without copying them (plainBytes): this fails if an
  // lmdb-js version reused a buffer for the bytes of a get or a scan step.
  it("hands out keys and values from lmdb that later reads leave alone, as plain Uint8Arrays", async () => {
    const engine = openKv(freshPath());
    try {
      // Sizes on both sides of lmdb-js's shared read buffer and of its large-value path.
      const sizes = [0, 1, 200, 4_000, 5_000, 40_000, 70_000, 300];
      const written = sizes.map((size, i) => ({
        key: enc(`k${i}`),
        value: Uint8Array.from({ length: size }, (_, j) => (i * 31 + j) & 0xff),
      }));
      const batch = new WriteBatch();
      for (const { key: k, value } of written) batch.put(k, value);
      engine.write(batch);
      await engine.sync();

      const view = engine.view();
      try {
        const got = written.map(({ key: k }) => view.get(k));
        const scanned = collect(view, enc("k"), enc("l"));
        const scannedBackwards = collect(view, enc("k"), enc("l"), { reverse: true });
        for (let round = 0; round < 3; round++) {
          for (const { key: k } of [...written].reverse()) view.get(k);
          collect(view, enc("k"), enc("l"));
        }
        // Compared as hex digests: a diff of 70 kB arrays would not fit in a failure message.
        const digest = (bytes: Uint8Array | undefined) =>
          bytes === undefined ? "missing" : createHash("sha256").update(bytes).digest("hex");
        const pairDigests = (pairs: KvPairs) => pairs.map((p) => [digest(p.key), digest(p.value)]);
        assert.deepEqual(
          got.map(digest),
          written.map(({ value }) => digest(value)),
        );
        assert.deepEqual(pairDigests(scanned), pairDigests(written));
        assert.deepEqual(pairDigests(scannedBackwards), pairDigests([...written].reverse()));
        for (const bytes of [...got, ...scanned.flatMap(({ key: k, value }) => [k, value])])
          assert.equal(bytes?.constructor, Uint8Array);
      } finally {
        view.release();
      }
    } finally {
      await engine.close();
    }
  });

  it("keeps writes in memory until a delayed commit, and every view its picture across commits and releases", async () => {
    type Step =
      | { kind: "write"; ops: Op[] }
      | { kind: "view" }
      | { kind: "release" }
      | { kind: "timer" }
      | { kind: "settle" }
      | { kind: "sync" };
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant("write" as const), ops: fc.array(op, { maxLength: 40 }) }),
      },
      { weight: 2, arbitrary: fc.constant({ kind: "view" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "release" as const }) },
      { weight: 2, arbitrary: fc.constant({ kind: "timer" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "settle" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "sync" as const }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), scanArb, async (steps, s) => {
        const timers: (() => void)[] = [];
        const path = freshPath();
        const engine = LmdbOrderedKv.open({
          path,
          commitAtOps: 60,
          commitTimer: (run) => {
            timers.push(run);
            return { cancel: () => timers.splice(timers.indexOf(run) >>> 0, 1) };
          },
        });
        const model = new ModelKv();
        const views: { view: ReturnType<LmdbOrderedKv["view"]>; expected: KvPairs }[] = [];
        const picture = (reader: KvReader) => collect(reader, new Uint8Array(0), null);
        try {
          for (const next of steps) {
            if (next.kind === "write") {
              const batch = batchOf(next.ops);
              engine.write(batch);
              model.apply(batch);
            } else if (next.kind === "view") {
              const view = engine.view();
              assert.deepEqual(picture(view), model.scan(new Uint8Array(0), null));
              views.push({ view, expected: model.scan(new Uint8Array(0), null) });
            } else if (next.kind === "release") {
              // Views opened between the same two commits share a read transaction: releasing
              // one leaves the others (and views of later commits) reading their pictures.
              const oldest = views.shift();
              if (oldest !== undefined) {
                assert.deepEqual(picture(oldest.view), oldest.expected, "an old view changed");
                oldest.view.release();
              }
            } else if (next.kind === "timer") {
              timers.shift()?.();
            } else if (next.kind === "settle") {
              await new Promise((resolve) => setTimeout(resolve, 1));
            } else {
              await engine.sync();
            }
          }
          for (const { view, expected } of views) {
            assert.deepEqual(picture(view), expected, "an old view changed");
            view.release();
          }
          const options = { reverse: s.reverse, limit: s.limit };
          const last = engine.view();
          assert.deepEqual(collect(last, s.start, s.end, options), model.scan(s.start, s.end, options));
          last.release();
          await engine.close();
          // Everything written reached the disk: a reopened engine holds it all.
          const reopened = openKv(path);
          const view = reopened.view();
          assert.deepEqual(picture(view), model.scan(new Uint8Array(0), null));
          view.release();
          await reopened.close();
        } finally {
          for (const { view } of views) view.release();
          await engine.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it("commits a written batch after the commit delay, synced, and keeps it in memory until then", async () => {
    const path = freshPath();
    const delays: number[] = [];
    let fire: (() => void) | null = null;
    const engine = LmdbOrderedKv.open({
      path,
      commitDelayMs: 250,
      commitTimer: (run, ms) => {
        delays.push(ms);
        fire = run;
        return { cancel: () => (fire = null) };
      },
    });
    const batch = new WriteBatch();
    batch.put(enc("k"), enc("v"));
    engine.write(batch);
    engine.write(batch);
    assert.deepEqual(delays, [250], "one timer for everything waiting");
    const raw = open<Uint8Array, Uint8Array>({ path, maxDbs: 8, overlappingSync: false });
    const db = raw.openDB<Uint8Array, Uint8Array>({
      name: "state-machine",
      keyEncoding: "binary",
      encoding: "binary",
    });
    const stored = Uint8Array.of(0, ...enc("k"));
    assert.equal(db.get(stored), undefined, "not committed before the delay");
    const view = engine.view();
    assert.deepEqual(view.get(enc("k")), enc("v"));
    view.release();
    (fire as (() => void) | null)?.();
    await engine.sync();
    db.resetReadTxn();
    const committed = db.get(stored);
    assert.deepEqual(committed && new Uint8Array(committed), enc("v"));
    await engine.close();
    await raw.close();
  });

  it("backs an MvccStore that reopens with its applied index, revision and data", async () => {
    const path = freshPath();
    const engine = openKv(path);
    const store = new MvccStore(engine);
    for (let index = 1; index <= 20; index++) {
      store.apply(index, {
        clientId: "c",
        sequence: index,
        timestamp: BigInt(index) << 16n,
        command: putRequest({ key: enc(`key${index % 5}`), value: enc(`value${index}`) }),
      });
    }
    const revision = store.revision;
    assert.ok(revision > 0n);
    await engine.sync();
    await engine.close();

    const reopenedEngine = openKv(path);
    const reopened = new MvccStore(reopenedEngine);
    assert.equal(reopened.appliedIndex, 20);
    assert.equal(reopened.revision, revision);
    const result = reopened.range(rangeRequest({ key: enc("key0") }));
    assert.deepEqual(result.kvs[0]?.value, enc("value20"));
    const duplicate = reopened.apply(21, {
      clientId: "c",
      sequence: 20,
      timestamp: 21n << 16n,
      command: putRequest({ key: enc("key0"), value: enc("again") }),
    });
    assert.equal(duplicate.duplicate, true, "the dedup table survived the reopen too");
    await reopenedEngine.close();
  });
});
