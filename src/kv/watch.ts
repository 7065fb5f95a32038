/**
 * Watches, served by any replica from its applied state. The WatchHub is handed the events
 * of every applied write (`publish`) and gives each watcher the ones it asked for, in
 * revision order and, within a revision, key order, without ever dropping one silently:
 *
 * - a watch that starts in the past reads the store's history page by page as its consumer
 *   reads, then follows the published events from exactly the revision where the history
 *   ended, with no gap and no duplicate (the switch happens synchronously, between applies);
 * - a watch that cannot be served is cancelled with a final response saying why: its start
 *   revision was compacted away, or it left more events unread than the hub keeps for it.
 *
 * The contract with the node: call `publish(revision, events)` with each ApplyOutcome that
 * has events, in apply order, right after the store write that applied it and before the
 * next write (a missed publish would be a gap in every live watch; a watcher that catches up
 * from history meanwhile reads through the store's revision and skips what it already read); call `resync()` after restoring a snapshot (the events in
 * between were never published: live watchers catch up from the history instead); call
 * `progress()` periodically for the watches that asked for progress notifications.
 */
import { boundsContainSpan, spanOfRequest, type RangeBounds } from "./bounds.js";
import { compareBytes, latin1 } from "./bytes.js";
import { KvError, KvErrorCode } from "./errors.js";
import type { HistoryPage } from "./history.js";
import type { KvEvent } from "./results.js";
import type { HistoryRequest } from "./store.js";
import { Watcher, type WatcherHost, type WatchLimits } from "./watcher.js";

export type WatchFilter = "noPut" | "noDelete";

export interface WatchRequest {
  readonly key: Uint8Array;
  /** etcd's range end: empty (default) for `key` alone, "\0" for every key from `key` on. */
  readonly rangeEnd?: Uint8Array;
  /** The first revision to report; 0 (default): changes after the current revision. */
  readonly startRevision?: bigint;
  /** Report the key-value each event replaced (etcd's prev_kv). */
  readonly prevKv?: boolean;
  readonly filters?: readonly WatchFilter[];
  /** Receive an empty response carrying the current revision whenever the node asks (`progress()`). */
  readonly progressNotify?: boolean;
  /** Split responses larger than the hub's fragmentBytes into fragments. */
  readonly fragment?: boolean;
  /**
   * A watch nobody waits on (the route catalog's): on a follower its events may come as late
   * as the node learns of commits when nothing else there waits (NodeHostOptions.commitNoticeDelayMs).
   */
  readonly background?: boolean;
}

export interface WatchResponse {
  readonly watchId: number;
  /** In revision order, key order within a revision. */
  readonly events: readonly KvEvent[];
  /**
   * Every event of this watch at or below this revision has been delivered once this
   * response has been read (for a fragment: once the last fragment has). An empty,
   * uncancelled response is a progress notification. A cancelled watch's last response
   * carries the revision to resume after: watch again from revision + 1.
   */
  readonly revision: bigint;
  /** On a watch cancelled because its start was compacted: the lowest revision a watch can start from; else 0. */
  readonly compactRevision: bigint;
  readonly canceled: boolean;
  readonly cancelReason: string;
  /** More responses for the same revision follow (only on watches that asked for fragments). */
  readonly fragment: boolean;
}

/**
 * One watch: iterate it, or listen to it, for its responses (once, by one consumer). Iteration
 * ends after a cancelled response, or at once after cancel(); leaving a for-await loop
 * cancels the watch.
 */
export interface Watch extends AsyncIterable<WatchResponse> {
  readonly id: number;
  /**
   * The next response if one can be had without waiting for a new write (reading a page of
   * history when the watch is behind), else undefined. For consumers that push responses
   * into a stream of their own instead of awaiting them.
   */
  poll(): WatchResponse | undefined;
  /**
   * Push instead of iteration: `wake` is called from a microtask, soon after the call and
   * whenever the watch may have a response again (one call for any number of responses),
   * and the consumer polls until poll() has nothing. The watch then ends with a cancelled
   * response, or when its consumer cancels it. A watch is iterated or listened to, not both;
   * `wake` must not throw.
   */
  listen(wake: () => void): void;
  /** etcd's RequestProgress: an empty response with the revision the watch has reached, once it has caught up. */
  requestProgress(): void;
  /** Stops the watch; responses not read yet are dropped and iteration ends. */
  cancel(): void;
}

/** What the hub reads from the applied state (MvccStore implements it). */
export interface WatchSource {
  readonly revision: bigint;
  /** The keys the range holds (absent: all of them); watches must stay inside. */
  readonly bounds?: RangeBounds;
  readonly compactedRevision: bigint;
  history(request: HistoryRequest): HistoryPage;
}

export interface WatchHubOptions {
  /** Events a watcher may leave unread before it is cancelled as overloaded (default 10,000). */
  readonly maxUnreadEvents?: number;
  /** About how many events one history page of a watch that is behind holds (default 1,000). */
  readonly historyPageEvents?: number;
  /** Responses larger than this (estimated bytes) are split for watches that ask for fragments (default 1 MiB). */
  readonly fragmentBytes?: number;
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Adds `event` to what `watcher` is handed. A function of its own rather than a closure in
 * `publish`: under tsx every closure made gets its name set at run time (esbuild's keepNames),
 * and publish runs for every applied write on every replica.
 */
function select(selected: Map<Watcher, KvEvent[]>, watcher: Watcher, event: KvEvent): void {
  const list = selected.get(watcher);
  if (list === undefined) selected.set(watcher, [event]);
  else list.push(event);
}

export class WatchHub {
  private publishedRevision: bigint;
  private nextWatchId = 1;
  private readonly watchers = new Map<number, Watcher>();
  /** Ids of open watches that asked to be `background`. */
  private readonly backgroundIds = new Set<number>();
  /** Live single-key watchers by latin1(key). */
  private readonly liveByKey = new Map<string, Set<Watcher>>();
  /** Live watchers of a key range. */
  private readonly liveRanges = new Set<Watcher>();
  private readonly host: WatcherHost;

  constructor(
    private readonly source: WatchSource,
    options: WatchHubOptions = {},
  ) {
    this.publishedRevision = source.revision;
    const limits: WatchLimits = {
      maxUnreadEvents: positive(options.maxUnreadEvents ?? 10_000, "maxUnreadEvents"),
      historyPageEvents: positive(options.historyPageEvents ?? 1_000, "historyPageEvents"),
      fragmentBytes: positive(options.fragmentBytes ?? 1024 * 1024, "fragmentBytes"),
    };
    const published = () => this.publishedRevision;
    this.host = {
      source,
      limits,
      get published() {
        return published();
      },
      goLive: (watcher) => this.index(watcher),
      detach: (watcher) => this.remove(watcher),
    };
  }

  /** Open watches (cancelled ones leave once their final response is queued). */
  get size(): number {
    return this.watchers.size;
  }

  /** Open watches that are not `background`: someone waits on their events. */
  get foregroundSize(): number {
    return this.watchers.size - this.backgroundIds.size;
  }

  /** The revision of the last publish (or of the store when the hub was made or resynced). */
  get revision(): bigint {
    return this.publishedRevision;
  }

  /**
   * Throws KvError(EmptyKey) for an empty key without a range end, KvError(KeyOutsideRange)
   * for a span not inside the range's bounds, RangeError for a negative start.
   */
  watch(request: WatchRequest): Watch {
    const rangeEnd = request.rangeEnd ?? new Uint8Array(0);
    if (request.key.length === 0 && rangeEnd.length === 0) throw new KvError(KvErrorCode.EmptyKey);
    if (!this.insideBounds(request.key, rangeEnd)) throw new KvError(KvErrorCode.KeyOutsideRange);
    const startRevision = request.startRevision ?? 0n;
    if (startRevision < 0n) throw new RangeError(`startRevision must not be negative, got ${startRevision}`);
    const filters = request.filters ?? [];
    const watcher = new Watcher(
      this.nextWatchId++,
      {
        key: request.key,
        rangeEnd,
        startRevision,
        prevKv: request.prevKv ?? false,
        noPut: filters.includes("noPut"),
        noDelete: filters.includes("noDelete"),
        progressNotify: request.progressNotify ?? false,
        fragment: request.fragment ?? false,
      },
      this.host,
    );
    this.watchers.set(watcher.id, watcher);
    if (request.background === true) this.backgroundIds.add(watcher.id);
    if (watcher.isLive) this.index(watcher);
    return watcher;
  }

  /**
   * The events one applied command produced, all at `revision` (ApplyOutcome.events). Call
   * in apply order for every outcome with events; an empty list is ignored.
   */
  publish(revision: bigint, events: readonly KvEvent[]): void {
    if (events.length === 0) {
      // A command that moved the revision without changing a key (a revision floor, the left
      // side of a split): nothing to deliver, but progress reports it from now on, so a
      // routed watch waiting on this range's progress is not held back.
      if (revision > this.publishedRevision && revision <= this.source.revision) {
        this.publishedRevision = revision;
      }
      return;
    }
    if (revision <= this.publishedRevision || revision > this.source.revision) {
      throw new Error(
        `invariant violated: published revision ${revision} is not above the last one ` +
          `(${this.publishedRevision}) or is ahead of the store (${this.source.revision})`,
      );
    }
    for (const event of events) {
      if (event.kv.modRevision !== revision) {
        throw new Error(
          `invariant violated: an event of revision ${event.kv.modRevision} published at ${revision}`,
        );
      }
    }
    this.publishedRevision = revision;
    // Most applies have no live watch to deliver to; this is on every replica's write path.
    if (this.liveByKey.size === 0 && this.liveRanges.size === 0) return;
    const sorted =
      events.length === 1 ? events : [...events].sort((a, b) => compareBytes(a.kv.key, b.kv.key));
    const selected = new Map<Watcher, KvEvent[]>();
    for (const event of sorted) {
      for (const watcher of this.liveByKey.get(latin1(event.kv.key)) ?? []) select(selected, watcher, event);
      for (const watcher of this.liveRanges)
        if (watcher.matches(event.kv.key)) select(selected, watcher, event);
    }
    for (const [watcher, list] of selected) watcher.deliver(revision, list);
  }

  /** Periodic progress: each caught-up watch with progressNotify and nothing unread gets an empty response. */
  progress(): void {
    for (const watcher of this.watchers.values()) watcher.progressTick();
  }

  /**
   * After a snapshot restore: the store jumped ahead without publishing, so every live watch
   * goes back to reading history from where it was (and is cancelled if that was compacted).
   */
  resync(): void {
    const revision = this.source.revision;
    if (revision < this.publishedRevision) {
      throw new Error(
        `invariant violated: the store went back from ${this.publishedRevision} to ${revision}`,
      );
    }
    const before = this.publishedRevision;
    this.publishedRevision = revision;
    const live = [...this.liveRanges, ...[...this.liveByKey.values()].flatMap((set) => [...set])];
    this.liveRanges.clear();
    this.liveByKey.clear();
    for (const watcher of live) watcher.fallBehind(before);
    this.boundsChanged();
  }

  /**
   * The range's bounds shrank (a split applied, or a restored image holds fewer keys): every
   * watch whose span is no longer inside them ends with a cancelled response carrying
   * KeyOutsideRange and the revision to resume after, on the ranges that hold its keys now.
   * Call after the write that changed the bounds, before the next publish.
   */
  boundsChanged(): void {
    for (const watcher of [...this.watchers.values()]) {
      if (!this.insideBounds(watcher.spec.key, watcher.spec.rangeEnd)) watcher.endOutsideRange();
    }
  }

  private insideBounds(key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const bounds = this.source.bounds;
    if (bounds === undefined) return true;
    const span = spanOfRequest(key, rangeEnd);
    return boundsContainSpan(bounds, span.start, span.end);
  }

  private index(watcher: Watcher): void {
    if (!watcher.singleKey) {
      this.liveRanges.add(watcher);
      return;
    }
    const key = latin1(watcher.key);
    let set = this.liveByKey.get(key);
    if (set === undefined) this.liveByKey.set(key, (set = new Set()));
    set.add(watcher);
  }

  private remove(watcher: Watcher): void {
    this.watchers.delete(watcher.id);
    this.backgroundIds.delete(watcher.id);
    this.liveRanges.delete(watcher);
    const key = latin1(watcher.key);
    const set = this.liveByKey.get(key);
    if (set !== undefined && set.delete(watcher) && set.size === 0) this.liveByKey.delete(key);
  }
}
