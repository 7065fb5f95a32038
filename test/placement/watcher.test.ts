// RouteWatcher over an in-memory meta range on virtual time: deltas applied straight from the
// watch (no time passes), rare polls while watching, polling alone when there is no watch, a
// full reload when deltas are gone, a cancelled or failing watch reopened by the next poll,
// random saves followed exactly, undecodable or gapped deltas from the watch answered by a
// refresh, a stop that leaves no timer behind, and reads failing while no leader is known
// retried quietly before they are warned about.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { deleteRangeRequest, putRequest } from "../../src/kv/commands.js";
import type { Watch, WatchRequest } from "../../src/kv/watch.js";
import { RouteCatalog } from "../../src/placement/catalog/catalog.js";
import { encodeDelta } from "../../src/placement/catalog/codec.js";
import { MemoryMetaKv } from "../../src/placement/catalog/memory-meta-kv.js";
import type { MetaRangeWatch } from "../../src/placement/catalog/meta-kv.js";
import { NotLeaderError } from "../../src/node/errors.js";
import {
  QUIET_RETRYABLE_FAILURES,
  RouteWatcher,
  type CatalogSource,
} from "../../src/placement/routes/watcher.js";
import { RecordingLogger, VirtualTime } from "../node/harness.js";
import { plain, split, validCatalog } from "./arbitraries.js";

const POLL_MS = 500;

/** Lets promises and watch deliveries run until `predicate` holds (bounded). */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`not reached: ${what}`);
}

/** A watch source that remembers the watches it opened and can be told to fail. */
class TrackedWatches implements MetaRangeWatch {
  readonly opened: Watch[] = [];
  failures = 0;
  constructor(private readonly kv: MemoryMetaKv) {}
  watch(request: WatchRequest): Watch {
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error("the meta range replica is not running");
    }
    const watch = this.kv.watch(request);
    this.opened.push(watch);
    return watch;
  }
}

const WATCHED_POLL_MS = 5_000;

/** The catalog, counting the reads the watcher makes of it. */
class CountedCatalog implements CatalogSource {
  reads = 0;
  constructor(private readonly catalog: RouteCatalog) {}
  get keys() {
    return this.catalog.keys;
  }
  snapshot() {
    this.reads += 1;
    return this.catalog.snapshot();
  }
  deltasSince(version: number) {
    this.reads += 1;
    return this.catalog.deltasSince(version);
  }
}

async function setup(withWatch: boolean) {
  const kv = new MemoryMetaKv();
  const catalog = new RouteCatalog(kv);
  await catalog.initialize();
  const counted = new CountedCatalog(catalog);
  const time = new VirtualTime();
  const watches = new TrackedWatches(kv);
  const logger = new RecordingLogger();
  const watcher = new RouteWatcher({
    catalog: counted,
    timers: time.timers,
    pollIntervalMs: POLL_MS,
    watchedPollIntervalMs: WATCHED_POLL_MS,
    logger,
    ...(withWatch ? { watch: watches } : {}),
  });
  watcher.start();
  await until(() => watcher.table.version === 1, "the initial load");
  return { kv, catalog, counted, time, watches, watcher, logger };
}

async function matchesCatalog(watcher: RouteWatcher, catalog: RouteCatalog): Promise<void> {
  const snapshot = await catalog.snapshot();
  assert.equal(watcher.table.version, snapshot.version);
  assert.deepEqual(watcher.table.routes.map(plain), snapshot.routes.map(plain));
}

test("saves reach the table through the watch, with no time passing", async () => {
  const { catalog, watcher, time } = await setup(true);
  await catalog.save(1, split(["m"], 2));
  await catalog.save(2, split(["g", "m"], 4));
  await until(() => watcher.table.version === 3, "version 3 from the watch");
  await matchesCatalog(watcher, catalog);
  assert.equal(watcher.counters.deltasFromWatch, 2);
  assert.equal(watcher.counters.snapshotsApplied, 1);
  assert.equal(time.pendingTimers, 1, "only the poll timer is armed");
  await watcher.stop();
  assert.equal(time.pendingTimers, 0);
  assert.equal(watcher.counters.errors, 0);
});

test("while the watch is open the catalog is polled at the watched interval only", async () => {
  const { catalog, counted, watcher, time } = await setup(true);
  const readsAfterLoad = counted.reads;
  for (let i = 0; i < 9; i++) time.advance(POLL_MS);
  assert.equal(counted.reads, readsAfterLoad, "no poll before the watched interval");
  time.advance(POLL_MS);
  await until(() => counted.reads > readsAfterLoad, "one poll at the watched interval");
  await catalog.save(1, split(["m"], 2));
  await until(() => watcher.table.version === 2, "version 2 from the watch");
  await watcher.stop();
  assert.equal(time.pendingTimers, 0);
});

test("without a watch the table follows by polling", async () => {
  const { catalog, watcher, time } = await setup(false);
  await catalog.save(1, split(["m"], 2));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(watcher.table.version, 1, "changed without a poll");
  time.advance(POLL_MS);
  await until(() => watcher.table.version === 2, "version 2 by polling");
  await matchesCatalog(watcher, catalog);
  assert.equal(watcher.counters.deltasApplied, 1);
  await watcher.stop();
});

test("deltas that are gone lead to a full reload", async () => {
  const { kv, catalog, watcher, time } = await setup(false);
  for (let v = 1; v <= 3; v++) await catalog.save(v, split([`k${v}`], 10 * v));
  kv.apply(deleteRangeRequest({ key: catalog.keys.delta(1), rangeEnd: catalog.keys.delta(3) }));
  time.advance(POLL_MS);
  await until(() => watcher.table.version === 4, "version 4 by reload");
  await matchesCatalog(watcher, catalog);
  assert.equal(watcher.counters.snapshotsApplied, 2);
  await watcher.stop();
});

test("a cancelled watch is reopened by the next poll; a failing one falls back to polling", async () => {
  const { catalog, watcher, time, watches, logger } = await setup(true);
  assert.equal(watches.opened.length, 1);
  watches.opened[0]!.cancel();
  await catalog.save(1, split(["m"], 2));
  time.advance(POLL_MS);
  await until(() => watcher.table.version === 2 && watches.opened.length === 2, "reopened and caught up");
  await catalog.save(2, split(["q"], 4));
  await until(() => watcher.table.version === 3, "version 3 through the new watch");
  assert.equal(watcher.counters.deltasFromWatch, 1);
  watches.failures = 1;
  watches.opened[1]!.cancel();
  await catalog.save(3, split(["r"], 6));
  time.advance(POLL_MS);
  await until(() => watcher.table.version === 4, "version 4 by polling");
  assert.equal(watcher.counters.errors, 1);
  assert.ok(logger.warnings.some((w) => w.includes("cannot watch the route catalog")));
  time.advance(POLL_MS);
  await until(() => watches.opened.length === 3, "the watch reopened");
  await matchesCatalog(watcher, catalog);
  await watcher.stop();
});

test("random saves: the watched table ends equal to the catalog after each", async () => {
  const { catalog, watcher } = await setup(true);
  const catalogs = fc.sample(validCatalog({ maxRoutes: 8, idMax: 15 }), { numRuns: 25, seed: 7 });
  let version = 1;
  for (const routes of catalogs) {
    await catalog.save(version, routes);
    version += 1;
    await until(() => watcher.table.version === version, `version ${version}`);
    await matchesCatalog(watcher, catalog);
  }
  assert.equal(watcher.counters.deltasFromWatch, catalogs.length);
  await watcher.stop();
});

test("refresh on demand, a second start refused, a bad poll interval refused", async () => {
  const { catalog, watcher } = await setup(false);
  await catalog.save(1, split(["m"], 2));
  await watcher.refresh();
  assert.equal(watcher.table.version, 2);
  assert.throws(() => watcher.start(), /already started/);
  await watcher.stop();
  assert.throws(
    () => new RouteWatcher({ catalog, timers: new VirtualTime().timers, pollIntervalMs: 0 }),
    RangeError,
  );
});

test("an undecodable or gapped delta from the watch is counted and answered by a refresh", async () => {
  const { kv, catalog, watcher, logger } = await setup(true);
  kv.apply(putRequest({ key: catalog.keys.delta(2), value: Uint8Array.of(1, 2, 3) }));
  await until(() => watcher.counters.errors === 1, "the bad delta counted");
  assert.ok(logger.warnings.some((w) => w.includes("cannot apply a catalog delta")));
  // A well-formed delta two versions ahead of the table: refused as a gap, then a refresh.
  const ahead = { version: 3, upserts: split(["m"], 2), removed: [1] };
  kv.apply(putRequest({ key: catalog.keys.delta(3), value: encodeDelta(ahead) }));
  await until(() => watcher.counters.refusals === 1, "the gap refused");
  await catalog.save(1, split(["q"], 8));
  await until(() => watcher.table.version === 2, "version 2 after the refusals");
  await matchesCatalog(watcher, catalog);
  await watcher.stop();
});

/** The catalog, whose next `failures` reads fail as a replica with no known leader does. */
class LeaderlessCatalog implements CatalogSource {
  failures = 0;
  failed = 0;
  constructor(private readonly catalog: RouteCatalog) {}
  get keys() {
    return this.catalog.keys;
  }
  snapshot() {
    return this.read(() => this.catalog.snapshot());
  }
  deltasSince(version: number) {
    return this.read(() => this.catalog.deltasSince(version));
  }
  private read<T>(run: () => Promise<T>): Promise<T> {
    if (this.failures === 0) return run();
    this.failures -= 1;
    this.failed += 1;
    return Promise.reject(new NotLeaderError(1));
  }
}

test("reads failing while no leader is known are retried quietly, then warned about; a success resets the count", async () => {
  const kv = new MemoryMetaKv();
  const catalog = new RouteCatalog(kv);
  await catalog.initialize();
  const source = new LeaderlessCatalog(catalog);
  const time = new VirtualTime();
  const logger = new RecordingLogger();
  const watcher = new RouteWatcher({ catalog: source, timers: time.timers, pollIntervalMs: POLL_MS, logger });
  /** Polls until `count` reads in all have failed, each poll once the last one has ended. */
  const pollUntilFailed = async (count: number) => {
    while (source.failed < count) {
      const failed = source.failed;
      time.advance(POLL_MS);
      await until(() => source.failed === failed + 1, `failed read ${failed + 1}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  // A start while the meta range elects its leader: every read fails for a while.
  source.failures = QUIET_RETRYABLE_FAILURES;
  watcher.start();
  await until(() => source.failed === 1, "the first failed read");
  await new Promise((resolve) => setImmediate(resolve));
  await pollUntilFailed(QUIET_RETRYABLE_FAILURES);
  time.advance(POLL_MS);
  await until(() => watcher.table.version === 1, "the load once a leader is known");
  assert.deepEqual(logger.warnings, [], "an election at start is no cause for a warning");

  // Failures that go on past the quiet ones are warned about, each of them.
  source.failures = QUIET_RETRYABLE_FAILURES + 2;
  await new Promise((resolve) => setImmediate(resolve));
  await pollUntilFailed(2 * QUIET_RETRYABLE_FAILURES + 2);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(logger.warnings.length, 2);
  assert.match(logger.warnings[0]!, /route poll failed.*no leader is known here/);
  assert.equal(watcher.counters.errors, 2 * QUIET_RETRYABLE_FAILURES + 2);
  await watcher.stop();
});
