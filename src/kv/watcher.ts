/**
 * One watch of the WatchHub: where it stands in the change stream, the responses its
 * consumer has not read yet, and the async iteration over them.
 *
 * A watcher is first catching up (its start revision is in the past: it reads the store's
 * history, one page each time its consumer has read everything queued, so a slow consumer
 * costs no memory), then live (the hub hands it published events), then closing (a final
 * cancelled response is queued) and closed. Catching up ends, and the watcher goes live,
 * in the same synchronous step that read the last page through the store's current
 * revision; live delivery skips revisions below `nextRevision`, so the switch has no gap
 * and no duplicate. A live watcher whose unread backlog would exceed the hub's bound is
 * cancelled as overloaded rather than allowed to grow without end.
 */
import { compareBytes } from "./bytes.js";
import { KV_ERROR_MESSAGES, KvErrorCode } from "./errors.js";
import { keyInterval, type KeyInterval } from "./range.js";
import { PullStream } from "./pull-stream.js";
import type { KvEvent } from "./results.js";
import type { Watch, WatchResponse, WatchSource } from "./watch.js";

export interface WatchLimits {
  readonly maxUnreadEvents: number;
  readonly historyPageEvents: number;
  readonly fragmentBytes: number;
}

/** What a watcher needs from its hub. */
export interface WatcherHost {
  readonly source: WatchSource;
  readonly limits: WatchLimits;
  /** The revision of the hub's last publish: every live watcher has queued its events up to it. */
  readonly published: bigint;
  /** The watcher caught up: the hub starts handing it published events. */
  goLive(watcher: Watcher): void;
  /** The watcher was cancelled: the hub forgets it. */
  detach(watcher: Watcher): void;
}

/** A WatchRequest with its defaults filled in. */
export interface WatcherSpec {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  readonly startRevision: bigint;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
}

type Phase = "catching-up" | "live" | "closing" | "closed";

/** A rough size of an event on the wire, for fragmenting. */
function eventBytes(event: KvEvent): number {
  const prev = event.prevKv === null ? 0 : event.prevKv.key.length + event.prevKv.value.length + 48;
  return event.kv.key.length + event.kv.value.length + 48 + prev;
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

export class Watcher implements Watch {
  private readonly interval: KeyInterval;
  private phase: Phase;
  /** Catching up: the revision the next history page starts at. Live: the lowest revision still to deliver. */
  private nextRevision: bigint;
  /** The revision of the last response queued. */
  private queuedThrough: bigint;
  /** The revision of the last complete response read: a cancelled watch can resume after it. */
  private deliveredThrough: bigint;
  private readonly queue: WatchResponse[] = [];
  private unreadEvents = 0;
  private progressRequested = false;
  private readonly stream = new PullStream<WatchResponse>(
    () => this.poll(),
    () => this.phase === "closed",
    () => this.cancel(),
  );

  constructor(
    readonly id: number,
    readonly spec: WatcherSpec,
    private readonly host: WatcherHost,
  ) {
    this.interval = keyInterval(spec.key, spec.rangeEnd);
    const current = host.source.revision;
    const start = spec.startRevision;
    if (start === 0n || start > current) {
      this.phase = "live";
      this.nextRevision = start === 0n ? current + 1n : start;
      this.queuedThrough = current;
    } else {
      this.phase = "catching-up";
      this.nextRevision = start;
      this.queuedThrough = start - 1n;
    }
    this.deliveredThrough = this.nextRevision - 1n;
  }

  get isLive(): boolean {
    return this.phase === "live";
  }

  get singleKey(): boolean {
    return this.interval.single;
  }

  get key(): Uint8Array {
    return this.interval.start;
  }

  matches(key: Uint8Array): boolean {
    const { start, end, single } = this.interval;
    if (single) return compareBytes(key, start) === 0;
    return compareBytes(key, start) >= 0 && (end === null || compareBytes(key, end) < 0);
  }

  /** The published events of `revision` in this watcher's interval, in key order. */
  deliver(revision: bigint, events: readonly KvEvent[]): void {
    if (this.phase !== "live" || revision < this.nextRevision) return;
    this.nextRevision = revision + 1n;
    const selected = this.select(events);
    if (selected.length > 0) {
      if (this.unreadEvents > 0 && this.unreadEvents + selected.length > this.host.limits.maxUnreadEvents) {
        this.finish(KvErrorCode.WatchOverloaded, 0n, this.deliveredThrough);
      } else {
        this.enqueue(selected, revision);
      }
    }
    this.pump();
  }

  /** The hub's periodic progress: only for caught-up watches that asked and have nothing unread. */
  progressTick(): void {
    if (this.phase !== "live" || !this.spec.progressNotify || this.queue.length > 0) return;
    this.enqueueProgress();
    this.pump();
  }

  /** The store moved on without publishing (a snapshot restore): read history from where the watch was. */
  fallBehind(published: bigint): void {
    if (this.phase !== "live") return;
    this.phase = "catching-up";
    this.nextRevision = maxOf(this.nextRevision, published + 1n);
    this.pump();
  }

  poll(): WatchResponse | undefined {
    if (this.queue.length === 0 && this.phase === "catching-up") this.catchUp();
    const response = this.queue.shift();
    if (response === undefined) return undefined;
    this.unreadEvents -= response.events.length;
    if (response.canceled) this.phase = "closed";
    else if (!response.fragment) this.deliveredThrough = response.revision;
    return response;
  }

  requestProgress(): void {
    if (this.phase === "catching-up") this.progressRequested = true;
    if (this.phase !== "live") return;
    this.enqueueProgress();
    this.pump();
  }

  cancel(): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.queue.length = 0;
    this.unreadEvents = 0;
    this.host.detach(this);
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

  /** Reads history pages until one has events for this watch, or the watch is caught up or cancelled. */
  private catchUp(): void {
    const { source, limits } = this.host;
    while (this.phase === "catching-up" && this.queue.length === 0) {
      const compacted = source.compactedRevision;
      if (this.nextRevision <= compacted) {
        this.finish(KvErrorCode.Compacted, compacted + 1n, this.nextRevision - 1n);
        return;
      }
      const page = source.history({
        key: this.spec.key,
        rangeEnd: this.spec.rangeEnd,
        fromRevision: this.nextRevision,
        maxEvents: limits.historyPageEvents,
      });
      const events = this.select(page.changes.flatMap((change) => change.events));
      this.nextRevision = maxOf(this.nextRevision, page.through + 1n);
      if (events.length > 0) this.enqueue(events, page.through);
      if (page.complete) {
        this.phase = "live";
        this.host.goLive(this);
        if (this.progressRequested) {
          this.progressRequested = false;
          this.enqueueProgress();
        }
      }
    }
  }

  /** Applies the filters and drops prevKv unless it was asked for. */
  private select(events: readonly KvEvent[]): KvEvent[] {
    const out: KvEvent[] = [];
    for (const event of events) {
      if (event.type === "put" ? this.spec.noPut : this.spec.noDelete) continue;
      out.push(this.spec.prevKv || event.prevKv === null ? event : { ...event, prevKv: null });
    }
    return out;
  }

  private enqueue(events: KvEvent[], revision: bigint): void {
    const pieces = this.spec.fragment ? this.fragments(events) : [events];
    pieces.forEach((piece, i) => this.queue.push(this.response(piece, revision, i < pieces.length - 1)));
    this.unreadEvents += events.length;
    this.queuedThrough = revision;
  }

  private enqueueProgress(): void {
    const revision = maxOf(this.host.published, this.queuedThrough);
    this.queue.push(this.response([], revision, false));
    this.queuedThrough = revision;
  }

  /**
   * Ends the watch because its range no longer holds all its keys (a split): what is queued
   * stays (those events are complete), then a cancelled response with KeyOutsideRange whose
   * revision is the last one this watcher has every event through — a live watcher the hub's
   * last publish, one catching up the last revision queued — so watching again from revision
   * + 1 on the ranges that hold the keys now misses nothing and repeats nothing. Resuming
   * from the publish, not from the watcher's last event, matters to a watch idle over its
   * keys: its older start may have been compacted away meanwhile, and it missed nothing there.
   */
  endOutsideRange(): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    const through =
      this.phase === "live" ? maxOf(this.host.published, this.queuedThrough) : this.queuedThrough;
    this.queue.push({
      ...this.response([], through, false),
      canceled: true,
      cancelReason: KV_ERROR_MESSAGES[KvErrorCode.KeyOutsideRange],
    });
    this.phase = "closing";
    this.host.detach(this);
    this.pump();
  }

  /** Cancels the watch from the hub's side: what is unread goes, one cancelled response stays. */
  private finish(code: KvErrorCode, compactRevision: bigint, revision: bigint): void {
    this.queue.length = 0;
    this.unreadEvents = 0;
    this.queue.push({
      ...this.response([], revision, false),
      compactRevision,
      canceled: true,
      cancelReason: KV_ERROR_MESSAGES[code],
    });
    this.phase = "closing";
    this.host.detach(this);
  }

  private response(events: readonly KvEvent[], revision: bigint, fragment: boolean): WatchResponse {
    return {
      watchId: this.id,
      events,
      revision,
      compactRevision: 0n,
      canceled: false,
      cancelReason: "",
      fragment,
    };
  }

  private fragments(events: KvEvent[]): KvEvent[][] {
    const pieces: KvEvent[][] = [];
    let piece: KvEvent[] = [];
    let bytes = 0;
    for (const event of events) {
      const size = eventBytes(event);
      if (piece.length > 0 && bytes + size > this.host.limits.fragmentBytes) {
        pieces.push(piece);
        piece = [];
        bytes = 0;
      }
      piece.push(event);
      bytes += size;
    }
    pieces.push(piece);
    return pieces;
  }
}
