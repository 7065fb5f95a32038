/**
 * etcd's Watch service: one bidirectional stream carries any number of watches, each a watch
 * of this member's WatchHub (src/kv/watch.ts), which does the ordering, history replay,
 * fragmenting, progress notifications and compaction / overload cancellation. This file owns
 * the stream: watch ids (the client's when non-zero, else the next free one from 0, as etcd),
 * the created / canceled responses, progress requests, pacing every watch by the stream
 * (a response is written only once the previous one has drained, so a client that does not
 * read is cancelled by the hub as overloaded instead of being buffered without bound) and
 * cancelling every watch when the stream ends.
 *
 * Responses are encoded by watch-encoding.ts, each published event once however many watches
 * receive it; the pumps of all watches that wait for the stream to drain share one "drain"
 * listener.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import type { GrpcCall, ServiceHandlers } from "./grpc-server.js";
import { compareBytes } from "../../kv/bytes.js";
import type { Watch, WatchFilter, WatchResponse as KvWatchResponse } from "../../kv/watch.js";
import type { EtcdContext } from "./context.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import {
  Watch as WatchService,
  WatchCreateRequest_FilterType,
  type WatchCreateRequest,
  type WatchRequest,
} from "./gen/rpc_pb.js";
import {
  encodeWatchResponse,
  eventField,
  HeaderFieldCache,
  type EncodedWatchResponse,
} from "./watch-encoding.js";

/** etcd's watch id for "none": responses that belong to no single watch. */
const NO_WATCH_ID = -1n;

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

/** The Watch streams open on a member, and their watches (etcd's watch stream and watcher gauges). */
export class OpenWatchStreams {
  private readonly streams = new Set<WatchStream>();

  add(stream: WatchStream): void {
    this.streams.add(stream);
  }

  delete(stream: WatchStream): void {
    this.streams.delete(stream);
  }

  get streamCount(): number {
    return this.streams.size;
  }

  get watchCount(): number {
    let watches = 0;
    for (const stream of this.streams) watches += stream.watchCount;
    return watches;
  }
}

class WatchStream {
  /** Open watches by their etcd watch id on this stream. */
  private readonly watches = new Map<bigint, Watch>();
  private nextWatchId = 0n;
  private closed = false;
  /** Pumps waiting for the stream to drain (or close). */
  private readonly drainWaiters: (() => void)[] = [];

  constructor(
    private readonly ctx: EtcdContext,
    private readonly headers: HeaderFieldCache,
    private readonly call: GrpcCall,
    private readonly open: OpenWatchStreams,
  ) {
    open.add(this);
    call.on("data", (request: WatchRequest) => this.receive(request));
    call.on("drain", () => this.resumeWriters());
    call.on("end", () => this.close(true));
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

  private refuse(reason: string): void {
    this.write({ watchId: NO_WATCH_ID, created: true, canceled: true, cancelReason: reason });
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
      watch = this.ctx.kv().watch({
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
    this.write({ watchId: id, created: true });
    this.pump(id, watch);
  }

  private cancel(id: bigint): void {
    const watch = this.watches.get(id);
    // etcd answers nothing for a watch id that is not open on the stream.
    if (watch === undefined) return;
    this.watches.delete(id);
    watch.cancel();
    this.write({ watchId: id, canceled: true });
  }

  /**
   * Every open watch answers with an empty response at the revision it has reached once it is
   * caught up; with no watch open, one response not tied to a watch carries the applied revision.
   */
  private requestProgress(): void {
    if (this.watches.size === 0) {
      this.write({ watchId: NO_WATCH_ID });
      return;
    }
    for (const watch of this.watches.values()) watch.requestProgress();
  }

  private writeWatchResponse(id: bigint, response: KvWatchResponse): boolean {
    return this.write(
      {
        watchId: id,
        events: response.events.map(eventField),
        compactRevision: response.compactRevision,
        canceled: response.canceled,
        cancelReason: response.cancelReason,
        fragment: response.fragment,
      },
      response.revision,
    );
  }

  /**
   * Writes a watch's responses as they come: woken by the watch (Watch.listen), it writes
   * what the watch has, each response once the stream has drained the last. A response it
   * cannot write (a bug) cancels the watch, saying why, instead of failing the stream.
   */
  private pump(id: bigint, watch: Watch): void {
    let waitingForDrain = false;
    const writeAll = (): void => {
      if (waitingForDrain) return;
      try {
        for (let response = watch.poll(); response !== undefined; response = watch.poll()) {
          if (this.watches.get(id) !== watch) return;
          if (response.canceled) this.watches.delete(id);
          if (!this.writeWatchResponse(id, response)) {
            waitingForDrain = true;
            void this.drained().then(() => {
              waitingForDrain = false;
              writeAll();
            });
            return;
          }
        }
      } catch (error) {
        if (this.watches.get(id) !== watch) return;
        this.watches.delete(id);
        watch.cancel();
        const reason = `concord: watch failed: ${error instanceof Error ? error.message : String(error)}`;
        this.write({ watchId: id, canceled: true, cancelReason: reason });
      }
    };
    watch.listen(writeAll);
  }

  /**
   * Writes a response (with this member's header at `revision`, else the applied one) unless
   * the stream is closed; false when the caller should wait for drain.
   */
  private write(fields: Omit<EncodedWatchResponse, "header">, revision?: bigint): boolean {
    if (this.closed) return true;
    const header = this.headers.field(this.ctx.headerFields(revision));
    return this.call.write(encodeWatchResponse({ header, ...fields }));
  }

  /** Resolves when the stream drains or goes away (never rejects). */
  private drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private resumeWriters(): void {
    for (const resume of this.drainWaiters.splice(0)) resume();
  }

  get watchCount(): number {
    return this.watches.size;
  }

  private close(endStream: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.open.delete(this);
    for (const watch of this.watches.values()) watch.cancel();
    this.watches.clear();
    this.resumeWriters();
    if (endStream) this.call.end();
  }
}

export function watchService(ctx: EtcdContext, open: OpenWatchStreams): ServiceHandlers {
  // Shared by every stream: the responses of one publish carry one header.
  const headers = new HeaderFieldCache();
  return {
    Watch: (call: GrpcCall) => {
      new WatchStream(ctx, headers, call, open);
    },
  };
}

/**
 * The Watch service's definition: grpcServiceDefinition(Watch), but its responses are the wire
 * bytes encodeWatchResponse wrote (every response this service writes), sent as they are.
 */
export function watchServiceDefinition(): ServiceDefinition {
  const definition = grpcServiceDefinition(WatchService);
  const method = definition.Watch;
  if (method === undefined) throw new Error("the generated Watch service has no Watch method");
  return {
    ...definition,
    Watch: {
      ...method,
      responseSerialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    },
  };
}
