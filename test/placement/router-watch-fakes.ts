// Fake ranges for the RoutedWatch tests, driven by the test: each range has bounds, a
// revision, a history and watches that behave like WatchHub's (history replay for a past
// start, progress answered at once with the range's revision, a cancelled response that
// drops what was unread and carries what was read). A split moves keys and history to a new
// range and ends the watches that reach past the new bounds with KeyOutsideRange; the route
// table only learns of it when the test publishes the catalog and the watch reloads.
import { boundsContainSpan, spanOfRequest, type KeySpan } from "../../src/kv/bounds.js";
import { compareBytes } from "../../src/kv/bytes.js";
import { KV_ERROR_MESSAGES, KvError, KvErrorCode } from "../../src/kv/errors.js";
import { PullStream } from "../../src/kv/pull-stream.js";
import type { KvEvent } from "../../src/kv/results.js";
import type { Watch, WatchRequest, WatchResponse } from "../../src/kv/watch.js";
import type { RouteDescriptor } from "../../src/placement/catalog/descriptor.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import type { TimerHandle, Timers } from "../../src/transport/timers.js";

import { b, s } from "../kv/helpers.js";

export { b, s };

export function putEvent(key: string, revision: bigint): KvEvent {
  return {
    type: "put",
    kv: {
      key: b(key),
      value: b(`v${revision}`),
      createRevision: revision,
      modRevision: revision,
      version: 1n,
      lease: 0n,
    },
    prevKv: null,
  };
}

/** "revision key" of each event, the form the tests compare. */
export function eventTexts(responses: readonly WatchResponse[]): string[] {
  return responses.flatMap((r) => r.events.map((e) => `${e.kv.modRevision} ${s(e.kv.key)}`));
}

export function inSpan(span: KeySpan, key: Uint8Array): boolean {
  return compareBytes(span.start, key) <= 0 && (span.end === null || compareBytes(key, span.end) < 0);
}

export class FakeWatch implements Watch {
  readonly span: KeySpan;
  private readonly queue: WatchResponse[] = [];
  private readonly stream = new PullStream<WatchResponse>(
    () => this.poll(),
    () => this.cancelled,
    () => this.cancel(),
  );
  private next: bigint;
  private queuedThrough: bigint;
  private readThrough: bigint;
  cancelled = false;
  progressRequests = 0;

  constructor(
    readonly id: number,
    readonly range: FakeRange,
    readonly request: WatchRequest,
  ) {
    this.span = spanOfRequest(request.key, request.rangeEnd ?? new Uint8Array(0));
    const start = request.startRevision ?? 0n;
    this.next = start === 0n ? range.revision + 1n : start;
    this.queuedThrough = this.next - 1n;
    this.readThrough = this.next - 1n;
    const byRevision = new Map<bigint, KvEvent[]>();
    for (const event of range.history) {
      if (event.kv.modRevision < this.next || !inSpan(this.span, event.kv.key)) continue;
      const list = byRevision.get(event.kv.modRevision) ?? [];
      list.push(event);
      byRevision.set(event.kv.modRevision, list);
    }
    for (const [revision, events] of byRevision) this.push(events, revision);
    if (range.revision >= this.next) this.next = range.revision + 1n;
  }

  deliver(revision: bigint, events: readonly KvEvent[]): void {
    if (this.cancelled || revision < this.next) return;
    this.next = revision + 1n;
    const mine = events.filter((e) => inSpan(this.span, e.kv.key));
    if (mine.length > 0) this.push(mine, revision);
  }

  /** Ends like WatchHub's finish: unread responses dropped, the final one carries what was read. */
  endWith(reason: string, compactRevision = 0n): void {
    this.queue.length = 0;
    this.queue.push({
      ...this.response([], this.readThrough),
      canceled: true,
      cancelReason: reason,
      compactRevision,
    });
    this.range.watches.delete(this);
    this.pump();
  }

  poll(): WatchResponse | undefined {
    if (this.cancelled) return undefined;
    const response = this.queue.shift();
    if (response !== undefined && !response.canceled) this.readThrough = response.revision;
    return response;
  }

  /** WatchHub.progress(): a notification for a watch that asked for them and has nothing unread. */
  tick(): void {
    if (this.cancelled || this.request.progressNotify !== true || this.queue.length > 0) return;
    this.push([], this.range.revision > this.queuedThrough ? this.range.revision : this.queuedThrough);
  }

  /** Responses queued and not read yet. */
  get unread(): number {
    return this.queue.length;
  }

  requestProgress(): void {
    this.progressRequests += 1;
    if (this.cancelled) return;
    const revision = this.range.revision > this.queuedThrough ? this.range.revision : this.queuedThrough;
    this.push([], revision);
  }

  cancel(): void {
    this.cancelled = true;
    this.queue.length = 0;
    this.range.watches.delete(this);
    this.stream.endAll();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return this.stream.iterator();
  }

  listen(wake: () => void): void {
    this.stream.listen(wake);
  }

  private push(events: readonly KvEvent[], revision: bigint): void {
    this.queue.push(this.response(events, revision));
    this.queuedThrough = revision;
    this.pump();
  }

  private pump(): void {
    this.stream.pump();
  }

  private response(events: readonly KvEvent[], revision: bigint): WatchResponse {
    return {
      watchId: this.id,
      events,
      revision,
      compactRevision: 0n,
      canceled: false,
      cancelReason: "",
      fragment: false,
    };
  }
}

export class FakeRange {
  readonly history: KvEvent[] = [];
  readonly watches = new Set<FakeWatch>();
  opened = 0;
  /** Fenced for a merge: it commits nothing more, and refuses floors (KvError RangeFenced). */
  fenced = false;

  constructor(
    readonly id: number,
    public bounds: KeySpan,
    public revision = 0n,
  ) {}

  /**
   * One command stamped `stamp` putting `keys` (each inside the bounds); it applies at
   * max(stamp, current + 1), as revisionForApply does (a floor pushes it up). Returns that.
   */
  write(stamp: bigint, keys: readonly string[]): bigint {
    const revision = stamp > this.revision ? stamp : this.revision + 1n;
    const events = keys.map((key) => putEvent(key, revision));
    for (const event of events) {
      if (!inSpan(this.bounds, event.kv.key)) throw new Error(`range ${this.id}: ${s(event.kv.key)} outside`);
    }
    this.revision = revision;
    this.history.push(...events);
    for (const watch of [...this.watches]) watch.deliver(revision, events);
    return revision;
  }

  /** A revision floor: nothing later commits at or below `revision`; progress reports it. */
  floorTo(revision: bigint): void {
    if (this.fenced) throw new KvError(KvErrorCode.RangeFenced);
    if (revision > this.revision) this.revision = revision;
  }

  watch(request: WatchRequest, id: number): FakeWatch {
    const span = spanOfRequest(request.key, request.rangeEnd ?? new Uint8Array(0));
    if (!boundsContainSpan(this.bounds, span.start, span.end)) throw new KvError(KvErrorCode.KeyOutsideRange);
    const watch = new FakeWatch(id, this, request);
    this.watches.add(watch);
    this.opened += 1;
    return watch;
  }
}

/** Fake ranges, the route table the watch reads, and the catalog a reload copies into it. */
export class FakeCluster {
  readonly ranges = new Map<number, FakeRange>();
  readonly table = new RouteTable();
  catalog: RouteDescriptor[];
  catalogVersion = 1;
  reloads = 0;
  floors: [number, bigint][] = [];
  private nextWatchId = 1;

  constructor(routes: RouteDescriptor[]) {
    this.catalog = routes;
    for (const route of routes) this.ranges.set(route.groupId, new FakeRange(route.groupId, route));
    this.table.applySnapshot(this.catalogVersion, routes);
  }

  range(id: number): FakeRange {
    const range = this.ranges.get(id);
    if (range === undefined) throw new Error(`no range ${id}`);
    return range;
  }

  readonly reload = (): Promise<void> => {
    this.reloads += 1;
    this.table.applySnapshot(this.catalogVersion, this.catalog);
    return Promise.resolve();
  };

  readonly openRangeWatch = (rangeId: number, request: WatchRequest): Watch =>
    this.range(rangeId).watch(request, this.nextWatchId++);

  readonly floorRevision = (rangeId: number, revision: bigint): Promise<void> => {
    this.floors.push([rangeId, revision]);
    // A refused floor (a fenced range) rejects.
    return new Promise((resolve) => {
      this.range(rangeId).floorTo(revision);
      resolve();
    });
  };

  /**
   * Merges range `rightId` (fenced first) into its left neighbour `leftId`: the left range
   * holds both spans and the right one's history; the right range stays, fenced, with its
   * watches open (until a node would destroy it).
   */
  merge(leftId: number, rightId: number): void {
    const left = this.range(leftId);
    const right = this.range(rightId);
    right.fenced = true;
    left.bounds = { start: left.bounds.start, end: right.bounds.end };
    left.history.push(...right.history);
    left.history.sort((x, y) =>
      x.kv.modRevision < y.kv.modRevision ? -1 : x.kv.modRevision > y.kv.modRevision ? 1 : 0,
    );
    if (right.revision > left.revision) left.revision = right.revision;
  }

  /** Publishes the catalog after route `rightId` merged into its left neighbour (the next reload sees it). */
  publishMerge(rightId: number): void {
    const index = this.catalog.findIndex((r) => r.routeId === rightId);
    const left = this.catalog[index - 1]!;
    const merged = { ...left, end: this.catalog[index]!.end };
    this.catalog = [...this.catalog.slice(0, index - 1), merged, ...this.catalog.slice(index + 1)];
    this.catalogVersion += 1;
  }

  /** Splits range `id` at `splitKey` into a new range `newId` (same revision, the history above moves). */
  split(id: number, splitKey: string, newId: number): void {
    const left = this.range(id);
    const key = b(splitKey);
    const right = new FakeRange(newId, { start: key, end: left.bounds.end }, left.revision);
    right.history.push(...left.history.filter((e) => inSpan(right.bounds, e.kv.key)));
    left.bounds = { start: left.bounds.start, end: key };
    this.ranges.set(newId, right);
    for (const watch of [...left.watches]) {
      if (!boundsContainSpan(left.bounds, watch.span.start, watch.span.end)) {
        watch.endWith(KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange]);
      }
    }
  }

  /** Publishes the catalog after a split of route `id` (the next reload sees it). */
  publishSplit(id: number, splitKey: string, newId: number): void {
    const index = this.catalog.findIndex((r) => r.routeId === id);
    const old = this.catalog[index]!;
    const key = b(splitKey);
    const left = { ...old, end: key };
    const right = { ...old, routeId: newId, groupId: newId, start: key, parentRouteId: id };
    this.catalog = [...this.catalog.slice(0, index), left, right, ...this.catalog.slice(index + 1)];
    this.catalogVersion += 1;
  }

  /** Open fake watches over every range. */
  get openWatches(): number {
    let n = 0;
    for (const range of this.ranges.values()) n += range.watches.size;
    return n;
  }
}

/** Timers the test fires by hand. */
export class ManualTimers implements Timers {
  private readonly pending = new Set<{ callback: () => void; delayMs: number }>();

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const entry = { callback, delayMs };
    this.pending.add(entry);
    return { cancel: () => this.pending.delete(entry) };
  }

  get size(): number {
    return this.pending.size;
  }

  /** Runs every timer set so far. */
  fireAll(): void {
    const due = [...this.pending];
    this.pending.clear();
    for (const entry of due) entry.callback();
  }
}

/** Lets every promise continuation queued so far run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Reads `watch` in the background into `out` until it ends. */
export function collect(watch: Watch, out: WatchResponse[]): Promise<void> {
  return (async () => {
    for await (const response of watch) out.push(response);
  })();
}
