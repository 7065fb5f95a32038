/**
 * RouteWatcher: keeps a RouteTable current with the route catalog. Event-driven first: it
 * watches the catalog's prefix in the meta range and applies each delta record as its put
 * arrives (a save writes the delta of the new version in the same transaction). Polling is
 * the fallback: every `pollIntervalMs` while there is no watch (`watchedPollIntervalMs`
 * while one is open) it asks the catalog for the deltas after the table's version, and
 * reopens the watch if it ended. Whatever does not fit — a delta that is not the next
 * version, an invalid result, deltas pruned away — leads to a full snapshot reload.
 * Refreshes run one at a time; a request during one runs it again once it ends. A read that
 * fails because no leader is known yet (every start) is retried quietly at first
 * (QUIET_RETRYABLE_FAILURES).
 *
 * Why polls are rare while watching: each is a linearizable read of the meta range, which
 * keeps that range from quiescing: on an idle three-member cluster, polling every second cost
 * about 7.7 ms of CPU per second in all. An open watch misses nothing, and when it ends the
 * next poll comes after the short interval.
 */
import type { KvEvent } from "../../kv/results.js";
import type { Watch } from "../../kv/watch.js";
import type { TimerHandle, Timers } from "../../transport/timers.js";
import type { Logger } from "../../transport/transport.js";
import type { CatalogSnapshot, DeltaRead } from "../catalog/catalog.js";
import { decodeDelta, type CatalogKeys } from "../catalog/codec.js";
import type { MetaRangeWatch } from "../catalog/meta-kv.js";
import { RouteTable } from "./table.js";
import { positiveInteger } from "../option-checks.js";

/** What the watcher reads from the catalog (RouteCatalog implements it). */
export interface CatalogSource {
  readonly keys: CatalogKeys;
  snapshot(): Promise<CatalogSnapshot>;
  deltasSince(version: number): Promise<DeltaRead>;
}

export interface RouteWatcherOptions {
  readonly catalog: CatalogSource;
  /** Watches on the meta range; without it the watcher only polls. */
  readonly watch?: MetaRangeWatch;
  readonly timers: Timers;
  /** The table to keep current (default: a new one). */
  readonly table?: RouteTable;
  /** Milliseconds between polls while no watch is open (default 1,000). */
  readonly pollIntervalMs?: number;
  /** Milliseconds between polls while the watch is open (default 10,000). */
  readonly watchedPollIntervalMs?: number;
  readonly logger?: Logger;
}

export interface RouteWatcherCounters {
  snapshotsApplied: number;
  deltasApplied: number;
  /** Of deltasApplied: those taken straight from watch events. */
  deltasFromWatch: number;
  /** Updates the table refused as a gap or invalid (each followed by a reload). */
  refusals: number;
  watchesOpened: number;
  /** Failed reads, watch failures and undecodable records (each logged). */
  errors: number;
}

/** Delta reads one refresh makes at most before leaving the rest to the next one. */
const MAX_DELTA_ROUNDS = 100;
/**
 * Retryable failures in a row (no leader known here yet: the meta range is electing one, as
 * on every start) logged at debug level before they become warnings: an election takes a
 * fraction of the poll interval, so only failures that last several polls say something is wrong.
 */
export const QUIET_RETRYABLE_FAILURES = 4;

const silentLogger: Logger = { warn: () => undefined, info: () => undefined };

export class RouteWatcher {
  readonly table: RouteTable;
  readonly counters: RouteWatcherCounters = {
    snapshotsApplied: 0,
    deltasApplied: 0,
    deltasFromWatch: 0,
    refusals: 0,
    watchesOpened: 0,
    errors: 0,
  };
  private readonly pollIntervalMs: number;
  private readonly watchedPollIntervalMs: number;
  private readonly logger: Logger;
  private started = false;
  private stopped = false;
  private timer: TimerHandle | null = null;
  private watch: Watch | null = null;
  private watchLoop: Promise<void> | null = null;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  /** Retryable failures since the last refresh that succeeded (see QUIET_RETRYABLE_FAILURES). */
  private retryableFailuresInARow = 0;

  constructor(private readonly options: RouteWatcherOptions) {
    this.table = options.table ?? new RouteTable();
    this.pollIntervalMs = positiveInteger("pollIntervalMs", options.pollIntervalMs ?? 1_000);
    this.watchedPollIntervalMs = positiveInteger(
      "watchedPollIntervalMs",
      options.watchedPollIntervalMs ?? 10_000,
    );
    this.logger = options.logger ?? silentLogger;
  }

  /** Opens the watch, loads the table and starts polling. Once per watcher. */
  start(): void {
    if (this.started) throw new Error("the route watcher was already started");
    this.started = true;
    this.openWatch();
    this.refreshQuietly();
    this.schedulePoll();
  }

  /** Stops polling and watching; resolves once nothing of the watcher runs any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.watch?.cancel();
    await this.watchLoop;
    await this.refreshing?.catch(() => undefined);
  }

  /**
   * Brings the table up to the catalog's current version now (deltas, or a snapshot when they
   * do not fit). Rejects with the catalog's error when a read fails; the table is then as far
   * as it got. Concurrent calls share one refresh (run once more if asked during one).
   */
  refresh(): Promise<void> {
    if (this.refreshing !== null) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.refreshAgain = false;
          await this.catchUp();
        } while (this.refreshAgain && !this.stopped);
        this.retryableFailuresInARow = 0;
      } finally {
        this.refreshing = null;
      }
    };
    this.refreshing = run();
    return this.refreshing;
  }

  private refreshQuietly(): void {
    this.refresh().catch((error: unknown) => this.fail(error, "route refresh failed"));
  }

  private async catchUp(): Promise<void> {
    if (this.table.version === 0) return this.reload();
    for (let round = 0; round < MAX_DELTA_ROUNDS && !this.stopped; round++) {
      const read = await this.options.catalog.deltasSince(this.table.version);
      if (read.kind === "gap") return this.reload();
      for (const delta of read.deltas) {
        const result = this.table.applyDelta(delta);
        if (result.applied) this.counters.deltasApplied += 1;
        else if (result.reason !== "stale") {
          this.counters.refusals += 1;
          return this.reload();
        }
      }
      if (!read.more) return;
    }
  }

  private async reload(): Promise<void> {
    const snapshot = await this.options.catalog.snapshot();
    if (snapshot.version === 0) return;
    const result = this.table.applySnapshot(snapshot.version, snapshot.routes);
    if (result.applied) this.counters.snapshotsApplied += 1;
    else if (result.reason !== "stale") {
      this.counters.refusals += 1;
      this.fail(new Error(result.detail), "the catalog snapshot was refused");
    }
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.timer = this.options.timers.setTimeout(
      () => {
        this.timer = null;
        this.openWatch();
        this.refresh()
          .catch((error: unknown) => this.fail(error, "route poll failed"))
          .finally(() => this.schedulePoll());
      },
      this.watch === null ? this.pollIntervalMs : this.watchedPollIntervalMs,
    );
  }

  /** The watch ended: the poll that reopens it comes after the short interval. */
  private pollSoon(): void {
    if (this.timer === null) return; // a poll is running; it schedules the next one
    this.timer.cancel();
    this.timer = null;
    this.schedulePoll();
  }

  private openWatch(): void {
    const source = this.options.watch;
    if (source === undefined || this.stopped || this.watch !== null) return;
    const { keys } = this.options.catalog;
    let watch: Watch;
    try {
      // Routes a follower learns a commit-notice delay late are still served: a stale route is
      // retried (see the router), so nobody waits on these events.
      watch = source.watch({ key: keys.prefix, rangeEnd: keys.end, background: true });
    } catch (error) {
      this.fail(error, "cannot watch the route catalog; polling until the next try");
      return;
    }
    this.watch = watch;
    this.counters.watchesOpened += 1;
    this.watchLoop = this.follow(watch);
  }

  private async follow(watch: Watch): Promise<void> {
    try {
      for await (const response of watch) {
        if (response.canceled) {
          this.logger.warn(
            { reason: response.cancelReason },
            "route catalog watch cancelled; reopening at the next poll",
          );
          break;
        }
        for (const event of response.events) this.onEvent(event);
      }
    } catch (error) {
      this.fail(error, "route catalog watch failed; reopening at the next poll");
    } finally {
      if (this.watch === watch) this.watch = null;
    }
    // Events may have been missed while the watch was down.
    if (!this.stopped) {
      this.refreshQuietly();
      this.pollSoon();
    }
  }

  private onEvent(event: KvEvent): void {
    if (event.type !== "put") return;
    try {
      if (this.options.catalog.keys.deltaVersionOf(event.kv.key) === null) return;
      const result = this.table.applyDelta(decodeDelta(event.kv.value));
      if (result.applied) {
        this.counters.deltasApplied += 1;
        this.counters.deltasFromWatch += 1;
      } else if (result.reason !== "stale") {
        this.counters.refusals += 1;
        this.refreshQuietly();
      }
    } catch (error) {
      this.fail(error, "cannot apply a catalog delta from the watch; reloading");
      this.refreshQuietly();
    }
  }

  private fail(error: unknown, message: string): void {
    this.counters.errors += 1;
    const fields = { error: error instanceof Error ? error.message : String(error) };
    const retryable = (error as { retryable?: unknown } | null)?.retryable === true;
    if (retryable && ++this.retryableFailuresInARow <= QUIET_RETRYABLE_FAILURES) {
      this.logger.debug?.(fields, message);
    } else {
      this.logger.warn(fields, message);
    }
  }
}
