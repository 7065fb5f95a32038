/**
 * RoutedWatch: one etcd watch over keys that may live in several ranges, made of one range
 * watch per route the keys touch (each clipped to its route), merged into one stream in
 * revision order, and kept whole across splits. It is a `Watch` like WatchHub's.
 *
 * Merging. Each sub-watch has a frontier F: it has shown every event of its part at or below
 * F (a response's revision says so). Received events wait, grouped by revision, until every
 * sub-watch's frontier reaches their revision; then each revision leaves as one response, its
 * events in key order. So one command's events stay together, and events of several ranges
 * that share a revision (HLC timestamps of independent ranges may collide) do too. A watch of
 * one part with nothing held passes its range watch's responses on as they are. When
 * events wait on a sub-watch that shows nothing, the watch asks it for progress; a range that
 * is idle below the waiting revision can only prove it will commit nothing there by a
 * revision floor (`floorRevision`, one Raft entry on that range): after the floor applies
 * locally the watch asks for progress again, and the range's progress reports the floor
 * (which needs its WatchHub to count a publish without events as progress). Idle ranges are
 * the price of order: without floors, events wait until every range has written above them.
 *
 * Start revision. An explicit start S opens every sub-watch at S. Without one (start 0) each
 * sub-watch opens at 0, "after its own range's current revision", instead of at one shared
 * revision: any shared S would be either above some range's current revision (losing its
 * next writes if they were stamped below S, unless every range were first floored to S, a
 * Raft round trip per range before the watch could exist) or below it (reporting writes made
 * before the watch). Per-range starts lose nothing written after the watch was created,
 * report nothing written before, need no round trip, and merge the same way: a sub-watch's
 * frontier is unknown until its first response, so the watch asks each for progress when
 * events wait. A response's revision R still means every event of the watch at or below R
 * has been delivered, so resuming at R + 1 is right. One exception: a part whose route was
 * stale when the watch was created (its open failed with KeyOutsideRange) opens at 0 after
 * the route table is reloaded, so writes to it in between are not reported.
 *
 * Splits. A sub-watch that ends with KeyOutsideRange (its range no longer holds all of its
 * part) is replaced, after a reload of the routes, by sub-watches of the routes that now hold
 * the part, from the cancelled response's revision + 1 (its range had shown it every event
 * through that revision: for a live range watch, through the range's last publish, so an idle
 * part does not resume from an old revision a compaction may have removed meanwhile): every
 * event once, in order. Its events already received stay. Opens that
 * fail the same way are retried with capped backoff, `maxAttempts` rounds in all. Any other
 * end (compacted, overloaded, an error) ends the merged watch with that reason, as etcd
 * reports it: a cancelled response whose revision is the last one delivered.
 *
 * Merges. A range fenced for a merge commits nothing more and refuses floors (RangeFenced);
 * its watch stays open until its node destroys it. Events waiting on its part do not wait for
 * that: once the reloaded routes put the part in the merged range, the part is reopened there
 * from its frontier + 1, as after a split (the merged range holds the fenced one's history).
 *
 * Flow control: each range watch wakes this one when it may have a response (Watch.listen),
 * and this one polls it only while the consumer has read everything queued
 * (or when events wait on them), so a slow consumer leaves events in the range watches,
 * which bound them as WatchHub does; sub-watches ahead of the rest stop being read once
 * `maxBufferedEvents` events wait. Responses are never fragmented.
 */
import { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "../../kv/errors.js";
import type { KvEvent } from "../../kv/results.js";
import type { Watch, WatchRequest, WatchResponse } from "../../kv/watch.js";
import type { TimerHandle, Timers } from "../../transport/timers.js";
import type { KeySpan } from "../../kv/bounds.js";
import type { RouteDescriptor } from "../catalog/descriptor.js";
import { PullStream } from "../../kv/pull-stream.js";
import { PendingEvents } from "./watch-pending.js";
import { planSubSpans, subWatchRequest, watchSpans, type RouteLookup } from "./watch-plan.js";
import { positiveInteger } from "../option-checks.js";

export interface RoutedWatchOptions {
  /** The node's route table (read at creation and after each reload). */
  readonly routes: RouteLookup;
  /** Brings `routes` up to date (e.g. the RouteWatcher's refresh). */
  readonly reload: () => Promise<void>;
  /** A watch of range `rangeId` on this node (e.g. `host.replica(id).watch(request)`). */
  readonly openRangeWatch: (rangeId: number, request: WatchRequest) => Watch;
  /**
   * Makes range `rangeId` commit nothing more at or below `revision` (a revision-floor
   * command), resolving once the replica whose watches `openRangeWatch` opens has applied
   * it. Without it an idle range holds back the events of the others.
   */
  readonly floorRevision?: (rangeId: number, revision: bigint) => Promise<unknown>;
  /** Backoff between reopen or floor attempts. */
  readonly timers: Timers;
  /** Whether an error thrown by `openRangeWatch` means stale routes (default: KvError KeyOutsideRange / RangeFenced). */
  readonly isRetryable?: (error: unknown) => boolean;
  readonly watchId?: number;
  /** Events held for sub-watches ahead of the others before they stop being read (default 10,000). */
  readonly maxBufferedEvents?: number;
  /** Reopen rounds of one part without a response, or floor attempts in a row, before giving up (default 8). */
  readonly maxAttempts?: number;
  /** Wait before the second attempt, doubled per attempt (default 10 ms). */
  readonly baseDelayMs?: number;
  /** Longest wait between attempts (default 1,000 ms). */
  readonly maxDelayMs?: number;
}

const KEY_OUTSIDE_RANGE = KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange];

function defaultRetryable(error: unknown): boolean {
  return (
    error instanceof KvError &&
    (error.code === KvErrorCode.KeyOutsideRange || error.code === KvErrorCode.RangeFenced)
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

let lastWatchId = 0;

/**
 * Lag handling of one sub-watch: `asked` a progress answer is awaited, `flooring` a revision
 * floor is being applied, `backoff` a failed floor waits for its retry.
 */
type LagState = "none" | "asked" | "flooring" | "backoff";

/** One range watch over one part of the watched keys, or that part between two range watches. */
class SubWatch {
  /** `reopening`: no range watch right now (after a split, or a stale route); `done`: replaced or cancelled. */
  state: "open" | "reopening" | "done" = "reopening";
  watch: Watch | null = null;
  /** The range watch woke this one since it last had nothing to poll: it may have a response. */
  woken = false;
  lag: LagState = "none";
  /** The lowest waiting revision this sub-watch was last asked for progress about (-1: never). */
  askedFor = -1n;
  /** The highest revision floor asked of its range (0: none). */
  floorTarget = 0n;
  floorFailures = 0;
  /** The consumer asked for progress and this sub-watch has not answered since. */
  awaitingUser = false;

  constructor(
    readonly span: KeySpan,
    readonly route: RouteDescriptor | null,
    /** Every event of this part at or below it has been received; null: not known yet (start 0). */
    public frontier: bigint | null,
    /** Reopen rounds in a row that produced no response. */
    public failures: number,
  ) {}
}

export class RoutedWatch implements Watch {
  readonly id: number;
  private subs: SubWatch[] = [];
  private readonly pending = new PendingEvents();
  private readonly outbound: WatchResponse[] = [];
  private readonly stream = new PullStream<WatchResponse>(
    () => this.poll(),
    () => this.phase === "closed",
    () => this.cancel(),
  );
  private phase: "open" | "closing" | "closed" = "open";
  /** The revision of the last response queued. */
  private queuedThrough: bigint;
  private progressWanted = false;
  /** `readMore` is running; `readAgain`: a step inside it asked for another pass. */
  private readingMore = false;
  private readAgain = false;
  private readonly timers = new Set<TimerHandle>();
  private readonly maxBufferedEvents: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly isRetryable: (error: unknown) => boolean;

  /**
   * Opens the range watches of the routes the request's keys meet. Throws, opening nothing,
   * what WatchHub.watch throws for a bad request, SystemKeyError for system keys only, and
   * any error of `openRangeWatch` that is not retryable.
   */
  constructor(
    private readonly request: WatchRequest,
    private readonly options: RoutedWatchOptions,
  ) {
    this.maxBufferedEvents = positiveInteger("maxBufferedEvents", options.maxBufferedEvents ?? 10_000);
    this.maxAttempts = positiveInteger("maxAttempts", options.maxAttempts ?? 8);
    this.baseDelayMs = nonNegative(options.baseDelayMs ?? 10, "baseDelayMs");
    this.maxDelayMs = nonNegative(options.maxDelayMs ?? 1_000, "maxDelayMs");
    this.isRetryable = options.isRetryable ?? defaultRetryable;
    const spans = watchSpans(request);
    this.id = options.watchId ?? ++lastWatchId;
    const start = request.startRevision ?? 0n;
    const frontier = start === 0n ? null : start - 1n;
    this.queuedThrough = frontier ?? 0n;
    const stale: SubWatch[] = [];
    try {
      for (const span of spans) {
        const parts = planSubSpans(options.routes, [span]);
        if (parts.length === 0) stale.push(this.addSub(new SubWatch(span, null, frontier, 0)));
        for (const part of parts) {
          const sub = new SubWatch(part.span, part.route, frontier, 0);
          this.addSub(sub);
          if (!this.tryOpen(sub)) stale.push(sub);
        }
      }
    } catch (error) {
      for (const sub of this.subs) sub.watch?.cancel();
      throw error;
    }
    for (const sub of stale) this.reopen(sub);
    this.readMore();
  }

  poll(): WatchResponse | undefined {
    const response = this.outbound.shift();
    if (response?.canceled) this.phase = "closed";
    if (this.outbound.length === 0 && this.phase === "open") this.readMore();
    return response;
  }

  /**
   * etcd's RequestProgress: once every sub-watch has answered, an empty response whose
   * revision is the lowest frontier (every event at or below it delivered).
   */
  requestProgress(): void {
    if (this.phase !== "open") return;
    this.progressWanted = true;
    for (const sub of this.subs) {
      sub.awaitingUser = true;
      if (sub.state !== "open") continue;
      if (sub.lag !== "asked") sub.watch!.requestProgress();
    }
    this.advance(false);
  }

  cancel(): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.stopAll();
    this.outbound.length = 0;
    this.stream.endAll();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return this.stream.iterator();
  }

  listen(wake: () => void): void {
    this.stream.listen(wake);
  }

  private pump(): void {
    this.stream.pump();
  }

  private addSub(sub: SubWatch): SubWatch {
    this.subs.push(sub);
    return sub;
  }

  /** Opens the range watch of `sub`; false when the route was stale (retry after a reload). */
  private tryOpen(sub: SubWatch): boolean {
    const start = sub.frontier === null ? 0n : sub.frontier + 1n;
    try {
      sub.watch = this.options.openRangeWatch(
        sub.route!.groupId,
        subWatchRequest(sub.span, this.request, start),
      );
    } catch (error) {
      if (this.isRetryable(error)) return false;
      throw error;
    }
    sub.state = "open";
    const watch = sub.watch;
    watch.listen(() =>
      this.guarded(() => {
        if (sub.watch !== watch || sub.state !== "open") return;
        sub.woken = true;
        this.readMore();
      }),
    );
    return true;
  }

  /**
   * Takes the responses of every sub-watch the consumer or the merge is waiting for and that
   * may have one, until none does. Steps inside it that would read again (a response taken, a
   * response queued) ask for another pass instead of recursing, however many responses wait.
   */
  private readMore(): void {
    if (this.readingMore) {
      this.readAgain = true;
      return;
    }
    this.readingMore = true;
    try {
      do {
        this.readAgain = false;
        const through = this.mergedFrontier();
        const consumerWaits = this.outbound.length === 0;
        for (const sub of this.subs) {
          if (this.phase !== "open") return;
          if (sub.state !== "open" || !sub.woken || !this.wants(sub, through, consumerWaits)) continue;
          const response = sub.watch!.poll();
          if (response === undefined) {
            sub.woken = false;
            continue;
          }
          this.readAgain = true;
          this.received(sub, response);
        }
      } while (this.readAgain && this.phase === "open");
    } catch (error) {
      this.end(`concord: watch failed: ${errorText(error)}`);
    } finally {
      this.readingMore = false;
    }
  }

  /** Whether the consumer or the merge waits for what the range watch of `sub` has. */
  private wants(sub: SubWatch, through: bigint | null, consumerWaits: boolean): boolean {
    const behind = sub.frontier === null || through === null || sub.frontier <= through;
    const waitedOn = this.pending.lowest !== undefined && (sub.frontier ?? -1n) < this.pending.lowest;
    return (
      waitedOn ||
      sub.awaitingUser ||
      (consumerWaits && (behind || this.pending.size < this.maxBufferedEvents))
    );
  }

  private received(sub: SubWatch, response: WatchResponse): void {
    if (response.canceled) {
      if (response.cancelReason === KEY_OUTSIDE_RANGE) {
        // Its revision: every event of the part through it was delivered (maybe more recent
        // than the last response, when the part was idle).
        if (sub.frontier === null || response.revision > sub.frontier) sub.frontier = response.revision;
        this.startReopen(sub);
        return;
      }
      this.end(response.cancelReason, response.compactRevision);
      return;
    }
    if (
      this.subs.length === 1 &&
      this.pending.size === 0 &&
      response.events.length > 0 &&
      !response.fragment
    ) {
      // One part and nothing held: a range watch answers one revision per response, in order,
      // so the response leaves as it is, without the merge's bookkeeping.
      if (sub.frontier === null || response.revision > sub.frontier) sub.frontier = response.revision;
      sub.failures = 0;
      this.queue(response.events, response.revision);
      this.readMore();
      this.pump();
      return;
    }
    this.pending.add(response.events);
    if (!response.fragment && (sub.frontier === null || response.revision > sub.frontier)) {
      sub.frontier = response.revision;
    }
    let unasked = false;
    if (response.events.length === 0) {
      unasked = sub.lag !== "asked" && !sub.awaitingUser;
      if (sub.lag === "asked") sub.lag = "none";
      sub.awaitingUser = false;
    }
    sub.failures = 0;
    this.advance(unasked);
  }

  /** The range watch of `sub` no longer serves its part (a split): reopen the part from its frontier. */
  private startReopen(sub: SubWatch): void {
    sub.watch?.cancel();
    sub.watch = null;
    sub.woken = false;
    sub.state = "reopening";
    sub.lag = "none";
    this.reopen(sub);
    this.advance(false);
  }

  /** After a delay that grows with its failures, reloads the routes and reopens the part of `sub`. */
  private reopen(sub: SubWatch): void {
    const run = () => {
      void this.options.reload().then(
        () => this.guarded(() => this.replan(sub)),
        (error: unknown) => this.guarded(() => this.retryReopen(sub, errorText(error))),
      );
    };
    if (sub.failures === 0) run();
    else this.after(this.delay(sub.failures), run);
  }

  /** One more failed round for the part of `sub`: try again, or end the watch after `maxAttempts`. */
  private retryReopen(sub: SubWatch, reason: string): void {
    if (sub.state !== "reopening" || this.phase !== "open") return;
    sub.failures += 1;
    if (sub.failures >= this.maxAttempts) this.end(reason);
    else this.reopen(sub);
  }

  /** Opens the range watches of the routes that now hold the part of `sub`, in its place. */
  private replan(sub: SubWatch): void {
    if (sub.state !== "reopening" || this.phase !== "open") return;
    const parts = planSubSpans(this.options.routes, [sub.span]).map(
      (part) => new SubWatch(part.span, part.route, sub.frontier, sub.failures + 1),
    );
    if (parts.length === 0) {
      this.retryReopen(sub, KEY_OUTSIDE_RANGE);
      return;
    }
    for (const part of parts) {
      let opened: boolean;
      try {
        opened = this.tryOpen(part);
      } catch (error) {
        for (const other of parts) other.watch?.cancel();
        this.end(errorText(error));
        return;
      }
      if (!opened) {
        for (const other of parts) other.watch?.cancel();
        this.retryReopen(sub, KEY_OUTSIDE_RANGE);
        return;
      }
    }
    sub.state = "done";
    this.subs.splice(this.subs.indexOf(sub), 1, ...parts);
    if (this.progressWanted) {
      for (const part of parts) {
        part.awaitingUser = true;
        part.watch!.requestProgress();
      }
    }
    this.advance(false);
  }

  /** The lowest frontier of all parts: every event at or below it has been received; null: unknown. */
  private mergedFrontier(): bigint | null {
    let through: bigint | null = null;
    for (const sub of this.subs) {
      if (sub.frontier === null) return null;
      if (through === null || sub.frontier < through) through = sub.frontier;
    }
    return through;
  }

  /** Delivers what can be, answers progress, chases the sub-watches events wait on. */
  private advance(unaskedProgress: boolean): void {
    if (this.phase !== "open") return;
    const through = this.mergedFrontier();
    if (through !== null) {
      for (const { revision, events } of this.pending.takeThrough(through)) this.queue(events, revision);
      const answered = this.subs.every((sub) => sub.state === "open" && !sub.awaitingUser);
      if (this.progressWanted && answered) {
        this.progressWanted = false;
        this.queue([], through);
      } else if (
        unaskedProgress &&
        this.request.progressNotify === true &&
        (through > this.queuedThrough || this.subs.length === 1)
      ) {
        this.queue([], through);
      }
    } else if (this.progressWanted && this.subs.length === 0) {
      this.progressWanted = false;
      this.queue([], this.queuedThrough);
    }
    this.chaseLagging();
    this.readMore();
    this.pump();
  }

  private queue(events: readonly KvEvent[], revision: bigint): void {
    const at = revision > this.queuedThrough ? revision : this.queuedThrough;
    this.outbound.push({
      watchId: this.id,
      events,
      revision: at,
      compactRevision: 0n,
      canceled: false,
      cancelReason: "",
      fragment: false,
    });
    this.queuedThrough = at;
  }

  /** Asks each sub-watch that holds back waiting events for progress, then for a floor. */
  private chaseLagging(): void {
    const lowest = this.pending.lowest;
    const highest = this.pending.highest;
    if (lowest === undefined || highest === undefined) return;
    for (const sub of this.subs) {
      if (sub.state !== "open" || (sub.frontier !== null && sub.frontier >= lowest)) continue;
      if (sub.lag !== "none") continue;
      if (sub.askedFor < lowest) {
        sub.lag = "asked";
        sub.askedFor = lowest;
        sub.watch!.requestProgress();
      } else if (this.options.floorRevision !== undefined && sub.floorTarget < highest) {
        this.floor(sub, highest);
      }
    }
  }

  private floor(sub: SubWatch, target: bigint): void {
    const previous = sub.floorTarget;
    sub.lag = "flooring";
    sub.floorTarget = target;
    void this.options.floorRevision!(sub.route!.groupId, target).then(
      () =>
        this.guarded(() => {
          if (sub.state !== "open" || this.phase !== "open") return;
          sub.floorFailures = 0;
          sub.lag = "asked";
          sub.watch!.requestProgress();
        }),
      (error: unknown) =>
        this.guarded(() => {
          if (sub.state !== "open" || this.phase !== "open") return;
          sub.floorTarget = previous;
          if (error instanceof KvError && error.code === KvErrorCode.RangeFenced) {
            this.followFenced(sub);
            return;
          }
          sub.floorFailures += 1;
          if (sub.floorFailures >= this.maxAttempts) {
            this.end(`concord: could not order the watch's events across ranges: ${errorText(error)}`);
            return;
          }
          sub.lag = "backoff";
          this.after(this.delay(sub.floorFailures), () => {
            if (sub.lag === "backoff") sub.lag = "none";
            this.advance(false);
          });
        }),
    );
  }

  /**
   * The range of `sub` refused a floor as fenced: it commits nothing more until a split or a
   * merge moves its keys elsewhere, so events waiting on its part wait for that. Once the
   * reloaded routes put the part in other ranges, it is reopened there from its frontier + 1
   * (a merged range holds the fenced range's history); until then the floor is asked again
   * every `maxDelayMs`, for as long as the fence lasts (a fence does not end the watch).
   */
  private followFenced(sub: SubWatch): void {
    sub.lag = "backoff";
    const again = () =>
      this.after(this.maxDelayMs, () => {
        if (sub.lag === "backoff") sub.lag = "none";
        this.advance(false);
      });
    const moved = () => {
      const parts = planSubSpans(this.options.routes, [sub.span]);
      return parts.length !== 1 || parts[0]!.route.groupId !== sub.route!.groupId;
    };
    void this.options.reload().then(
      () =>
        this.guarded(() => {
          if (sub.state !== "open" || this.phase !== "open") return;
          if (moved()) this.startReopen(sub);
          else again();
        }),
      () =>
        this.guarded(() => {
          if (sub.state === "open" && this.phase === "open") again();
        }),
    );
  }

  /** Ends the watch: what is queued stays, then a cancelled response saying why. */
  private end(reason: string, compactRevision = 0n): void {
    if (this.phase !== "open") return;
    this.phase = "closing";
    this.stopAll();
    this.outbound.push({
      watchId: this.id,
      events: [],
      revision: this.queuedThrough,
      compactRevision,
      canceled: true,
      cancelReason: reason,
      fragment: false,
    });
    this.pump();
  }

  private stopAll(): void {
    for (const sub of this.subs) {
      sub.state = "done";
      sub.watch?.cancel();
    }
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    this.pending.clear();
  }

  private delay(failures: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures - 1, 30));
  }

  private after(delayMs: number, callback: () => void): void {
    const handle = this.options.timers.setTimeout(() => {
      this.timers.delete(handle);
      if (this.phase === "open") this.guarded(callback);
    }, delayMs);
    this.timers.add(handle);
  }

  /** Runs a step of the watch; a bug in it ends the watch with its message instead of escaping. */
  private guarded(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.end(`concord: watch failed: ${errorText(error)}`);
    }
  }
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}
