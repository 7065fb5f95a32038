/**
 * etcd's Watch service: one bidirectional stream carries any number of watches, each a watch
 * of this member's WatchHub (src/kv/watch.ts), which does the ordering, history replay,
 * fragmenting, progress notifications and compaction / overload cancellation. This file owns
 * the stream: watch ids (the client's when non-zero, else the next free one from 0, as etcd),
 * the created / canceled responses, progress requests, pacing every watch by the stream
 * (a response is written only once the previous one has drained, so a client that does not
 * read is cancelled by the hub as overloaded instead of being buffered without bound) and
 * cancelling every watch when the stream ends.
 */
import { create } from "@bufbuild/protobuf";
import type { ServerDuplexStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { compareBytes } from "../../kv/bytes.js";
import type { KvEvent } from "../../kv/results.js";
import type { Watch, WatchFilter, WatchResponse as KvWatchResponse } from "../../kv/watch.js";
import { toKeyValue } from "./convert.js";
import type { EtcdContext } from "./context.js";
import { EventSchema, Event_EventType, type Event } from "./gen/kv_pb.js";
import {
  WatchCreateRequest_FilterType,
  WatchResponseSchema,
  type WatchCreateRequest,
  type WatchRequest,
  type WatchResponse,
} from "./gen/rpc_pb.js";

/** etcd's watch id for "none": responses that belong to no single watch. */
const NO_WATCH_ID = -1n;

function toEvent(event: KvEvent): Event {
  return create(EventSchema, {
    type: event.type === "put" ? Event_EventType.Put : Event_EventType.Delete,
    kv: toKeyValue(event.kv),
    ...(event.prevKv === null ? {} : { prevKv: toKeyValue(event.prevKv) }),
  });
}

function filtersOf(request: WatchCreateRequest): WatchFilter[] {
  const filters: WatchFilter[] = [];
  for (const filter of request.filters) {
    if (filter === WatchCreateRequest_FilterType.Noput) filters.push("noPut");
    else if (filter === WatchCreateRequest_FilterType.Nodelete) filters.push("noDelete");
  }
  return filters;
}

/** etcd refuses a watch whose range end is set (and not "\0") but not above its key. */
function isEmptyRange(request: WatchCreateRequest): boolean {
  const end = request.rangeEnd;
  if (end.length === 0 || (end.length === 1 && end[0] === 0)) return false;
  return compareBytes(request.key, end) >= 0;
}

class WatchStream {
  /** Open watches by their etcd watch id on this stream. */
  private readonly watches = new Map<bigint, Watch>();
  private nextWatchId = 0n;
  private closed = false;

  constructor(
    private readonly ctx: EtcdContext,
    private readonly call: ServerDuplexStream<WatchRequest, WatchResponse>,
  ) {
    call.on("data", (request: WatchRequest) => this.receive(request));
    call.on("end", () => this.close(true));
    call.on("error", () => this.close(false));
    call.on("close", () => this.close(false));
  }

  private receive(request: WatchRequest): void {
    if (this.closed) return;
    const union = request.requestUnion;
    switch (union.case) {
      case "createRequest":
        this.create(union.value);
        return;
      case "cancelRequest":
        this.cancel(union.value.watchId);
        return;
      case "progressRequest":
        this.requestProgress();
        return;
      case undefined:
        return;
    }
  }

  private response(
    fields: Partial<Omit<WatchResponse, "$typeName" | "$unknown">>,
    revision?: bigint,
  ): WatchResponse {
    return create(WatchResponseSchema, { header: this.ctx.header(revision), ...fields });
  }

  private refuse(reason: string): void {
    this.write(this.response({ watchId: NO_WATCH_ID, created: true, canceled: true, cancelReason: reason }));
  }

  private create(request: WatchCreateRequest): void {
    let id = request.watchId;
    if (id !== 0n && this.watches.has(id)) {
      this.refuse("mvcc: duplicate watch ID provided on the WatchStream");
      return;
    }
    if (isEmptyRange(request)) {
      this.refuse("mvcc: watcher range is empty");
      return;
    }
    let watch: Watch;
    try {
      watch = this.ctx.replica().watch({
        key: request.key,
        rangeEnd: request.rangeEnd,
        startRevision: request.startRevision > 0n ? request.startRevision : 0n,
        prevKv: request.prevKv,
        filters: filtersOf(request),
        progressNotify: request.progressNotify,
        fragment: request.fragment,
      });
    } catch (error) {
      this.refuse(error instanceof Error ? error.message : String(error));
      return;
    }
    if (id === 0n) {
      while (this.watches.has(this.nextWatchId)) this.nextWatchId++;
      id = this.nextWatchId++;
    }
    this.watches.set(id, watch);
    // Written before the pump starts: the created response precedes every event of the watch.
    this.write(this.response({ watchId: id, created: true }));
    void this.pump(id, watch);
  }

  private cancel(id: bigint): void {
    const watch = this.watches.get(id);
    // etcd answers nothing for a watch id that is not open on the stream.
    if (watch === undefined) return;
    this.watches.delete(id);
    watch.cancel();
    this.write(this.response({ watchId: id, canceled: true }));
  }

  /**
   * Every open watch answers with an empty response at the revision it has reached once it is
   * caught up; with no watch open, one response not tied to a watch carries the applied revision.
   */
  private requestProgress(): void {
    if (this.watches.size === 0) {
      this.write(this.response({ watchId: NO_WATCH_ID }));
      return;
    }
    for (const watch of this.watches.values()) watch.requestProgress();
  }

  private toResponse(id: bigint, response: KvWatchResponse): WatchResponse {
    return this.response(
      {
        watchId: id,
        events: response.events.map(toEvent),
        compactRevision: response.compactRevision,
        canceled: response.canceled,
        cancelReason: response.cancelReason,
        fragment: response.fragment,
      },
      response.revision,
    );
  }

  /** Writes a watch's responses as they come, each once the stream has drained the last. */
  private async pump(id: bigint, watch: Watch): Promise<void> {
    try {
      for await (const response of watch) {
        if (this.watches.get(id) !== watch) return;
        if (response.canceled) this.watches.delete(id);
        if (!this.write(this.toResponse(id, response))) await this.drained();
      }
    } finally {
      if (this.watches.get(id) === watch) this.watches.delete(id);
    }
  }

  /** Writes unless the stream is closed; false when the caller should wait for drain. */
  private write(response: WatchResponse): boolean {
    if (this.closed) return true;
    return this.call.write(response);
  }

  /** Resolves when the stream drains or goes away (never rejects). */
  private drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.call.off("drain", done);
        this.call.off("close", done);
        this.call.off("error", done);
        resolve();
      };
      this.call.on("drain", done);
      this.call.on("close", done);
      this.call.on("error", done);
    });
  }

  private close(endStream: boolean): void {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.watches.values()) watch.cancel();
    this.watches.clear();
    if (endStream) this.call.end();
  }
}

export function watchService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    Watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) => {
      new WatchStream(ctx, call);
    },
  };
}
