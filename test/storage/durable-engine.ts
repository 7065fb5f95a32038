// What every durable engine (lmdb, the write-ahead log) must show beyond the conformance
// suite, written once: the conformance suite over a real directory (a crash abandons the
// engine and reopens the directory), visibility before and durability after a sync, close
// and reuse after close, one engine per directory, large entries and snapshots across a
// restart, and the timing printout of many small syncs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runStorageConformance } from "../../src/storage/conformance.js";
import { entriesFrom } from "../../src/storage/conformance-model.js";
import { StorageUsageError, type StorageEngine } from "../../src/storage/contracts.js";
import type { StorageLogger } from "../../src/storage/errors.js";
import { RecordingLogger, freshDir, removeDir, reportSmallSyncs, withDir } from "./support.js";

export interface DurableEngine extends StorageEngine {
  close(): Promise<void>;
  /** Closes without the unsynced writes, as a process death would. */
  abandon(): Promise<void>;
  stats(): { readonly commits: number };
}

export type OpenDurableEngine = (path: string, logger?: StorageLogger) => Promise<DurableEngine>;

/** The conformance suite over a fresh directory per test; a crash abandons and reopens it. */
export function runDurableConformance(name: string, open: OpenDurableEngine): void {
  runStorageConformance(
    name,
    {
      open: async () => {
        const dir = freshDir();
        const logger = new RecordingLogger();
        let engine = await open(dir, logger);
        return {
          engine,
          crashAndReopen: async () => {
            await engine.abandon();
            engine = await open(dir, logger);
            return engine;
          },
          close: async () => {
            await engine.close();
            removeDir(dir);
            assert.deepEqual(logger.warnings, [], "a crash between commits never needs repairs");
          },
        };
      },
    },
    { propertyRuns: 100 },
  );
}

/** The tests every durable engine passes; `label` prefixes the timing printout. */
export function describeDurableEngine(name: string, label: string, open: OpenDurableEngine): void {
  describe(`${name}: durable engine`, () => {
    it("writes are readable at once, and durable only once a sync has committed them", () =>
      withDir(async (dir) => {
        let engine = await open(dir);
        engine.replica(1).append(entriesFrom(1, [1, 1]));
        engine.replica(2).setHardState({ term: 3, vote: 2, commit: 0 });
        assert.equal(engine.replica(1).lastIndex(), 2);
        assert.deepEqual(engine.replica(2).hardState(), { term: 3, vote: 2, commit: 0 });
        await engine.abandon();

        engine = await open(dir);
        assert.deepEqual(engine.groups(), [], "nothing was synced");
        engine.replica(1).append(entriesFrom(1, [1, 1]));
        engine.replica(2).setHardState({ term: 3, vote: 2, commit: 0 });
        await engine.sync();
        engine.replica(1).append(entriesFrom(3, [2]));
        await engine.abandon();

        engine = await open(dir);
        assert.deepEqual(engine.groups(), [1, 2]);
        assert.equal(engine.replica(1).lastIndex(), 2, "the write after the sync is lost");
        assert.deepEqual(engine.replica(2).hardState(), { term: 3, vote: 2, commit: 0 });
        await engine.close();
      }));

    it("close makes the pending writes durable; a closed engine refuses to be used", () =>
      withDir(async (dir) => {
        let engine = await open(dir);
        const r = engine.replica(3);
        r.append(entriesFrom(1, [1, 1, 1]));
        await engine.close();
        assert.throws(() => r.lastIndex(), StorageUsageError);
        assert.throws(() => engine.replica(3), StorageUsageError);
        await assert.rejects(engine.sync(), StorageUsageError);

        engine = await open(dir);
        assert.equal(engine.replica(3).lastIndex(), 3);
        await engine.close();
      }));

    it("refuses a second engine on a directory that is already open in this process", () =>
      withDir(async (dir) => {
        const engine = await open(dir);
        await assert.rejects(open(`${dir}/.`), StorageUsageError);
        await engine.close();
        const again = await open(dir);
        await again.close();
      }));

    it("keeps large entries and snapshots intact across a restart", () =>
      withDir(async (dir) => {
        let engine = await open(dir);
        const r = engine.replica(1);
        r.append(entriesFrom(1, [1, 1], 1 << 20));
        r.setHardState({ term: 1, vote: 1, commit: 2 });
        const image = new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff);
        r.saveSnapshot({
          metadata: { index: 2, term: 1, confState: { ...r.confState(), voters: [1] } },
          data: image,
        });
        await engine.close();

        engine = await open(dir);
        const after = engine.replica(1);
        assert.deepEqual(Buffer.from(after.snapshot().data), Buffer.from(image));
        assert.equal(after.firstIndex(), 3);
        assert.deepEqual(after.initialState().confState.voters, [1]);
        await engine.close();
      }));

    it("reports how long 1,000 syncs of 10 entries x 3 groups take (printed, not asserted)", () =>
      withDir(async (dir) => {
        const engine = await open(dir);
        await reportSmallSyncs(label, engine);
        assert.equal(engine.stats().commits, 1000, "one commit per sync");
        await engine.close();
      }));
  });
}
