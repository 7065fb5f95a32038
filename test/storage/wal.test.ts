// WalStorageEngine: the shared storage conformance suite (with default sizes, and with tiny
// segments and checkpoints so that rollovers and checkpoints happen under the random model
// test) and the durable-engine tests (durable-engine.ts), then group commit, what the disk may
// hold after a crash (torn tails, torn checkpoints, damage) and disk faults.
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { entriesFrom, observe } from "../../src/storage/conformance-model.js";
import { StorageUsageError } from "../../src/storage/contracts.js";
import { DiskFullError, StorageCorruptionError, StorageFatalError } from "../../src/storage/errors.js";
import { WalStorageEngine, type WalStorageOptions } from "../../src/storage/wal/engine.js";
import { NodeWalDirectory, segmentName, type SegmentFile } from "../../src/storage/wal/files.js";
import { InlineWriteBudget } from "../../src/storage/wal/inline-write-budget.js";
import { SEGMENT_HEADER_BYTES, encodeFrame, segmentHeader } from "../../src/storage/wal/records.js";
import { describeDurableEngine, runDurableConformance, type OpenDurableEngine } from "./durable-engine.js";
import { RecordingLogger, systemError, withDir } from "./support.js";

const TINY = { segmentBytes: 256, checkpointBytes: 512 } as const;

/** The write-ahead log at `path`, with `sizes` for its segments and checkpoints. */
function openWal(sizes: Partial<WalStorageOptions> = {}): OpenDurableEngine {
  return (path, logger) =>
    WalStorageEngine.open({ path, ...(logger === undefined ? {} : { logger }), ...sizes });
}

runDurableConformance("WalStorageEngine", openWal());
runDurableConformance("WalStorageEngine (tiny segments and checkpoints)", openWal(TINY));
describeDurableEngine("WalStorageEngine", "wal", openWal());

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith(".wal"))
    .sort();
}

/** Two groups with synced data: three frames in segment 1. */
async function writeThreeFrames(dir: string): Promise<ReturnType<typeof observe>> {
  const engine = await WalStorageEngine.open({ path: dir });
  const r = engine.replica(1);
  r.append(entriesFrom(1, [1, 1], 30));
  r.setHardState({ term: 1, vote: 1, commit: 1 });
  await engine.sync();
  engine.replica(2).append(entriesFrom(1, [2]));
  await engine.sync();
  r.append(entriesFrom(3, [1]));
  await engine.sync();
  const seen = observe(r);
  await engine.close();
  return seen;
}

describe("WalStorageEngine", () => {
  it("one sync appends one frame for every group; syncs during an append share one follow-up", () =>
    withDir(async (dir) => {
      // Writes on the thread pool only: with a write in flight, later syncs queue behind it.
      const directory = new NodeWalDirectory(dir, new InlineWriteBudget({ now: () => 0, share: 0 }));
      let engine = await WalStorageEngine.open({ path: dir, directory });
      for (const groupId of [4, 8, 15]) engine.replica(groupId).append(entriesFrom(1, [1, 1, 1]));
      await engine.sync();
      assert.equal(engine.stats().commits, 1);
      await engine.sync();
      assert.equal(engine.stats().commits, 1, "a sync with nothing to write appends nothing");
      const [a, b] = [engine.replica(1), engine.replica(2)];
      a.append(entriesFrom(1, [1]));
      const first = engine.sync();
      b.append(entriesFrom(1, [1]));
      const second = engine.sync();
      a.append(entriesFrom(2, [1]));
      const third = engine.sync();
      await Promise.all([first, second, third]);
      assert.equal(engine.stats().commits, 3, "the first append, then one follow-up for the two behind it");
      await engine.abandon();
      engine = await WalStorageEngine.open({ path: dir });
      assert.deepEqual([engine.replica(1).lastIndex(), engine.replica(2).lastIndex()], [2, 1]);
      await engine.close();
    }));

  it("syncNow appends at once when it need not wait, and otherwise writes nothing", () =>
    withDir(async (dir) => {
      const alwaysInline = new InlineWriteBudget({ now: () => 0, share: 1, capMs: 1, maxBytes: 2 ** 20 });
      const directory = new ControlledDirectory(dir, alwaysInline);
      let engine = await WalStorageEngine.open({ path: dir, directory });
      const log = engine.replica(1);
      log.append(entriesFrom(1, [1]));
      assert.equal(engine.syncNow(), false, "the first frame starts a segment, which waits");
      await engine.sync();
      assert.equal(engine.syncNow(), true, "nothing queued: durable already");
      log.append(entriesFrom(2, [1]));
      assert.equal(engine.syncNow(), true);
      assert.equal(engine.stats().commits, 2);
      directory.writesAtOnce = false;
      log.append(entriesFrom(3, [1]));
      assert.equal(engine.syncNow(), false, "the file cannot write at once");
      await engine.sync();
      log.append(entriesFrom(4, [1]));
      assert.equal(engine.syncNow(), false);
      log.append(entriesFrom(5, [1]));
      const inFlight = engine.sync();
      directory.writesAtOnce = true;
      log.append(entriesFrom(6, [1]));
      assert.equal(engine.syncNow(), false, "an append is in flight");
      assert.equal(engine.stats().commits, 3, "refused syncs appended nothing");
      await inFlight;
      assert.equal(engine.syncNow(), true);
      assert.equal(engine.stats().commits, 5);
      await engine.abandon();
      engine = await WalStorageEngine.open({ path: dir });
      assert.equal(engine.replica(1).lastIndex(), 6, "every append made durable survives");
      await engine.close();
    }));

  it("observeAppends times each append on the given clock; one observer at a time; one that throws is warned about", () =>
    withDir(async (dir) => {
      const logger = new RecordingLogger();
      const engine = await WalStorageEngine.open({ path: dir, logger });
      let now = 0;
      // Each read of the clock moves it 7 ms: every append took 7 ms by it.
      const clock = () => (now += 7);
      const appends: [number, number][] = [];
      const stop = engine.observeAppends(clock, (bytes, milliseconds) => appends.push([bytes, milliseconds]));
      assert.throws(() => engine.observeAppends(clock, () => undefined), StorageUsageError);
      for (const index of [1, 2, 3]) {
        engine.replica(1).append(entriesFrom(index, [1]));
        await engine.sync();
      }
      assert.deepEqual(
        appends.map(([, milliseconds]) => milliseconds),
        [7, 7, 7],
      );
      assert.equal(
        appends.reduce((total, [bytes]) => total + bytes, 0),
        engine.stats().bytesCommitted,
      );
      stop();
      engine.replica(1).append(entriesFrom(4, [1]));
      await engine.sync();
      assert.equal(appends.length, 3, "a removed observer is told nothing");
      engine.observeAppends(clock, () => {
        throw new Error("observer broke");
      });
      engine.replica(1).append(entriesFrom(5, [1]));
      await engine.sync();
      assert.equal(engine.stats().commits, 5, "the append stands");
      assert.match(logger.warnings.join("\n"), /an append observer failed: Error: observer broke/);
      await engine.close();
    }));

  it("refuses a segment size that is not positive", () =>
    withDir(async (dir) => {
      await assert.rejects(WalStorageEngine.open({ path: dir, segmentBytes: 0 }), StorageUsageError);
    }));

  it("rolls segments over, checkpoints, deletes what the checkpoint replaced, and replays the same state", () =>
    withDir(async (dir) => {
      let engine = await WalStorageEngine.open({ path: dir, segmentBytes: 4096, checkpointBytes: 16_384 });
      for (let round = 0; round < 200; round++) {
        for (const groupId of round <= 120 ? [1, 2, 3] : [1, 2]) {
          const r = engine.replica(groupId);
          r.append(entriesFrom(round + 1, [1], 100));
          r.setHardState({ term: 1, vote: 1, commit: round + 1 });
          if (round % 50 === 49) r.compact(round - 10);
        }
        if (round === 120) engine.dropGroup(3);
        await engine.sync();
      }
      const { checkpoints, liveSegments } = engine.stats();
      assert.ok(checkpoints >= 2, `checkpoints: ${checkpoints}`);
      const before = [1, 2].map((groupId) => observe(engine.replica(groupId)));
      await engine.close();
      assert.equal(segmentFiles(dir).length, liveSegments, "only the live segments are left");

      engine = await WalStorageEngine.open({ path: dir, segmentBytes: 4096, checkpointBytes: 16_384 });
      assert.deepEqual(engine.groups(), [1, 2]);
      assert.deepEqual(
        [1, 2].map((groupId) => observe(engine.replica(groupId))),
        before,
      );
      await engine.close();
    }));

  it("writes made inline and on the thread pool leave the same files", async () => {
    const now = () => performance.now();
    const alwaysInline = new InlineWriteBudget({ now, share: 1, capMs: 1e9, maxBytes: 2 ** 30 });
    const neverInline = new InlineWriteBudget({ now, share: 0 });
    const filesWith = async (budget: InlineWriteBudget) => {
      let files: (readonly [string, Buffer])[] = [];
      await withDir(async (dir) => {
        const sizes = { segmentBytes: 4096, checkpointBytes: 16_384 };
        const directory = new NodeWalDirectory(dir, budget);
        const engine = await WalStorageEngine.open({ path: dir, directory, ...sizes });
        for (let round = 0; round < 150; round++) {
          const r = engine.replica(1);
          r.append(entriesFrom(round + 1, [1], 100));
          r.setHardState({ term: 1, vote: 1, commit: round + 1 });
          if (round % 20 === 19) r.compact(round - 5);
          await engine.sync();
        }
        assert.ok(engine.stats().checkpoints >= 1, "a checkpoint was written");
        await engine.close();
        files = segmentFiles(dir).map((file) => [file, readFileSync(join(dir, file))] as const);
      });
      return files;
    };
    const inline = await filesWith(alwaysInline);
    assert.ok(alwaysInline.remainingMs < 1e9, "the writes ran inline");
    assert.deepEqual(await filesWith(neverInline), inline);
    assert.equal(neverInline.remainingMs, 0, "no write ran inline");
  });

  it("cuts a torn last frame with a warning and keeps every synced one", () =>
    withDir(async (dir) => {
      const seen = await writeThreeFrames(dir);
      const file = join(dir, segmentName(1));
      const size = readFileSync(file).findLastIndex((byte) => byte !== 0) + 1;
      truncateSync(file, size);
      appendFileSync(file, encodeFrame([{ kind: "drop", groupId: 1 }]).subarray(0, 12));
      const logger = new RecordingLogger();
      const engine = await WalStorageEngine.open({ path: dir, logger });
      assert.deepEqual(observe(engine.replica(1)), seen);
      assert.match(logger.warnings.join("\n"), /torn write/);
      engine.replica(1).append(entriesFrom(4, [1]));
      await engine.sync();
      await engine.close();
      const again = await WalStorageEngine.open({ path: dir, logger });
      assert.equal(again.replica(1).lastIndex(), 4, "writes after the repair land where the torn frame was");
      await again.close();
    }));

  it("a last frame cut short or damaged anywhere is dropped, and everything synced before it is kept", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 10 }),
        fc.nat(),
        fc.boolean(),
        (batches, where, truncate) =>
          withDir(async (dir) => {
            const engine = await WalStorageEngine.open({ path: dir });
            const r = engine.replica(1);
            let before = observe(r);
            let lastFrameStart = SEGMENT_HEADER_BYTES;
            for (const [i, count] of batches.entries()) {
              before = observe(r);
              lastFrameStart = SEGMENT_HEADER_BYTES + engine.stats().bytesCommitted;
              r.append(entriesFrom(r.lastIndex() + 1, Array<number>(count).fill(1), 16 * (i + 1)));
              r.setHardState({ term: 1, vote: 1, commit: r.lastIndex() - 1 });
              await engine.sync();
            }
            const frameBytes = SEGMENT_HEADER_BYTES + engine.stats().bytesCommitted - lastFrameStart;
            await engine.close();
            const file = join(dir, segmentName(1));
            const at = lastFrameStart + (where % frameBytes);
            // A cut that leaves only zero bytes of the frame (its length's high bytes) looks
            // like no write at all: nothing to repair, so no warning.
            const leftOnlyZeros =
              truncate &&
              readFileSync(file)
                .subarray(lastFrameStart, at)
                .every((byte) => byte === 0);
            if (truncate) {
              truncateSync(file, at);
            } else {
              const bytes = readFileSync(file);
              bytes.writeUInt8(bytes.readUInt8(at) ^ 0x5a, at);
              writeFileSync(file, bytes);
            }
            const logger = new RecordingLogger();
            const reopened = await WalStorageEngine.open({ path: dir, logger });
            assert.deepEqual(observe(reopened.replica(1)), before);
            assert.equal(logger.warnings.length, leftOnlyZeros ? 0 : 1);
            await reopened.close();
          }),
      ),
      { numRuns: 60 },
    );
  });

  it("a torn checkpoint segment is deleted and replay starts from the previous one", () =>
    withDir(async (dir) => {
      const seen = await writeThreeFrames(dir);
      const torn = new Uint8Array(SEGMENT_HEADER_BYTES + 100);
      torn.set(segmentHeader(true));
      torn.fill(7, SEGMENT_HEADER_BYTES);
      writeFileSync(join(dir, segmentName(2)), torn);
      const logger = new RecordingLogger();
      const engine = await WalStorageEngine.open({ path: dir, logger });
      assert.deepEqual(observe(engine.replica(1)), seen);
      assert.match(logger.warnings.join("\n"), /checkpoint in segment 2 was torn/);
      assert.deepEqual(segmentFiles(dir), [segmentName(1)]);
      await engine.close();
    }));

  it("refuses to open when acknowledged data is damaged or missing, or the files are not a log", async () => {
    const cases: [string, (dir: string) => void][] = [
      [
        "a damaged frame with later segments after it",
        (dir) => {
          const file = join(dir, segmentName(1));
          const bytes = readFileSync(file);
          bytes.writeUInt8(bytes.readUInt8(SEGMENT_HEADER_BYTES + 20) ^ 0xff, SEGMENT_HEADER_BYTES + 20);
          writeFileSync(file, bytes);
          const next = new Uint8Array(SEGMENT_HEADER_BYTES);
          next.set(segmentHeader(false));
          writeFileSync(join(dir, segmentName(2)), next);
        },
      ],
      [
        "a missing segment",
        (dir) => {
          writeFileSync(join(dir, segmentName(3)), segmentHeader(false));
        },
      ],
      [
        "a foreign file",
        (dir) => {
          writeFileSync(join(dir, segmentName(1)), "not a log, but not zeros either");
        },
      ],
    ];
    for (const [what, damage] of cases) {
      await withDir(async (dir) => {
        await writeThreeFrames(dir);
        damage(dir);
        await assert.rejects(WalStorageEngine.open({ path: dir }), StorageCorruptionError, what);
      });
    }
  });

  it("a full disk refuses writes and keeps serving reads; an I/O error stops the engine", async () => {
    for (const [code, expected] of [
      ["ENOSPC", DiskFullError],
      ["EIO", StorageFatalError],
    ] as const) {
      await withDir(async (dir) => {
        const directory = new ControlledDirectory(dir);
        const engine = await WalStorageEngine.open({ path: dir, directory });
        engine.replica(1).append(entriesFrom(1, [1]));
        await engine.sync();
        directory.failWrites = systemError(`write failed: ${code}`, code === "ENOSPC" ? 28 : 5);
        directory.free = 1 << 30;
        engine.replica(1).append(entriesFrom(2, [1]));
        await assert.rejects(engine.sync(), expected);
        if (expected === DiskFullError) {
          assert.equal(engine.replica(1).lastIndex(), 2, "reads are still served");
          assert.throws(() => engine.replica(1).append(entriesFrom(3, [1])), DiskFullError);
        } else {
          assert.throws(() => engine.replica(1).lastIndex(), StorageFatalError);
        }
        await engine.close();
      });
    }
  });
});

/** The real directory, with segment writes that fail on demand or cannot be made at once. */
class ControlledDirectory extends NodeWalDirectory {
  failWrites: Error | null = null;
  free: number | null = null;
  /** Whether SegmentFile.writeNow may write (it returns false otherwise). */
  writesAtOnce = true;

  override openSegment(sequence: number): SegmentFile {
    return this.#controlled(super.openSegment(sequence));
  }

  override async createSegment(sequence: number): Promise<SegmentFile> {
    return this.#controlled(await super.createSegment(sequence));
  }

  override freeBytes(): number {
    return this.free ?? super.freeBytes();
  }

  #controlled(file: SegmentFile): SegmentFile {
    return {
      write: (bytes, position) =>
        this.failWrites === null ? file.write(bytes, position) : Promise.reject(this.failWrites),
      writeNow: (bytes, position) => {
        if (this.failWrites !== null) throw this.failWrites;
        return this.writesAtOnce && file.writeNow(bytes, position);
      },
      close: () => file.close(),
    };
  }
}
