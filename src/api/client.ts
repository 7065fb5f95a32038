/**
 * `connectRemote` (exposed as `Concord.connect`): a ConcordDb whose requests travel over the
 * native protocol to any member of a cluster. One connection at a time, requests multiplexed
 * on it by request id. When the connection cannot be made or breaks, the next request goes to
 * the next endpoint (failover). A write whose connection broke after it was sent may or may
 * not have applied: it fails with AmbiguousWriteError (never retried behind the caller's
 * back); a read in the same situation is simply retried. Errors the server reports are turned
 * back into the node's and the store's typed errors.
 */
import { connect, type Socket } from "node:net";
import type { KvCommand, RangeRequest } from "../kv/commands.js";
import { KvError, isKvErrorCode } from "../kv/errors.js";
import type { TimeToLive } from "../kv/lease-clock.js";
import type { LeaseSummary } from "../kv/leases.js";
import type { CommandResult, RangeResult } from "../kv/results.js";
import type { WatchRequest } from "../kv/watch.js";
import {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaStoppedError,
} from "../node/errors.js";
import type { ReadConsistency, RequestId } from "../node/types.js";
import { ConcordDb, type Backend, type RetryPolicy } from "./db.js";
import { parseAddress } from "./address.js";
import {
  ambiguityReason,
  ConnectionLostError,
  EndpointsUnavailableError,
  ServerProtocolError,
} from "./errors.js";
import { FramedSocket } from "./native/framed-socket.js";
import { RemoteWatch, type ConcordWatch } from "./watch.js";
import { NativeProtocolError } from "./native/errors.js";
import {
  DEFAULT_MAX_NATIVE_FRAME_BYTES,
  decodeResponse,
  encodeRequest,
  Method,
  NativeFrameKind,
  ResponseCode,
  type NativeRequest,
  type RangeStatus,
  type ResponseBody,
} from "./native/protocol.js";

export interface ConnectOptions {
  /** Members' client addresses, "host:port"; tried in order, starting with the first. */
  readonly endpoints: readonly string[];
  readonly retry?: Partial<RetryPolicy>;
  /** Give up on a connection attempt after this long (default 5,000 ms). */
  readonly connectTimeoutMs?: number;
  readonly maxFrameBytes?: number;
}

/**
 * What a request is, for its failures: a write's lost answer is ambiguous, a read's is not;
 * the lease clock is served by the range's leader only.
 */
type CallKind = "write" | "read" | "leaseClock";

/** The request may have reached the server; its connection broke before the answer came. */
class ConnectionDropped extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "ConnectionDropped";
  }
}

type OutgoingRequest = NativeRequest extends infer R
  ? R extends NativeRequest
    ? Omit<R, "id">
    : never
  : never;

/** Whoever waits for responses to one request id: one response, or a watch's stream. */
interface Waiting {
  /** Takes a response; true when no more can follow for this id. */
  readonly deliver: (body: ResponseBody) => boolean;
  readonly fail: (error: Error) => void;
}

/** One connection to one member, with the requests waiting for answers on it. */
class NativeConnection {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private readonly framed: FramedSocket;
  private closeReason: string | null = null;
  /** No new requests will come: close once the ones in flight are answered. */
  private retired = false;

  constructor(socket: Socket, maxFrameBytes: number) {
    this.framed = new FramedSocket(socket, maxFrameBytes, {
      frame: (frame) => {
        if (frame.kind !== NativeFrameKind.Response) {
          throw new NativeProtocolError(
            `a server may only send Response frames, got ${NativeFrameKind[frame.kind]}`,
          );
        }
        const response = decodeResponse(frame.payload);
        const waiter = this.waiting.get(response.id);
        if (waiter === undefined) throw new NativeProtocolError(`response to unknown request ${response.id}`);
        if (waiter.deliver(response.body)) this.waiting.delete(response.id);
        if (this.retired && this.waiting.size === 0) this.close();
      },
      closed: (reason, _cause, firstUnreadId) => {
        this.closeReason = reason;
        // A request the server says it never read had no effect: it is as if never sent (a
        // write may go elsewhere), which a member shutting down gracefully can promise.
        for (const [id, waiter] of this.waiting) {
          const unread = firstUnreadId !== undefined && id >= firstUnreadId;
          waiter.fail(unread ? new ConnectionLostError(reason) : new ConnectionDropped(reason));
        }
        this.waiting.clear();
      },
    });
  }

  static open(address: string, timeoutMs: number, maxFrameBytes: number): Promise<NativeConnection> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const fail = (error: Error): void => {
        socket.destroy();
        reject(error);
      };
      socket.setTimeout(timeoutMs, () => fail(new Error(`no connection within ${timeoutMs} ms`)));
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.setTimeout(0);
        socket.off("error", fail);
        resolve(new NativeConnection(socket, maxFrameBytes));
      });
    });
  }

  get isOpen(): boolean {
    return this.framed.isOpen;
  }

  /**
   * Sends a request and waits for its answer. Rejects with ConnectionLostError when nothing
   * was sent, and with ConnectionDropped when the request was sent but no answer came.
   */
  request(request: OutgoingRequest): Promise<ResponseBody> {
    return new Promise((resolve, reject) => {
      this.send(request, {
        deliver: (body) => {
          resolve(body);
          return true;
        },
        fail: reject,
      });
    });
  }

  /**
   * Opens a watch whose responses go to `watch` until it ends; throws ConnectionLostError
   * when nothing could be sent. Cancelling the watch sends a WatchCancel on this connection.
   */
  watch(rangeId: number, request: WatchRequest): RemoteWatch {
    let id = 0;
    const watch = new RemoteWatch(() => {
      if (!this.waiting.has(id)) return;
      // Responses the server sent before it saw the cancel may still arrive: drop them. The
      // cancel's answer comes after all of them, and nothing for the watch follows it.
      this.waiting.set(id, { deliver: () => false, fail: () => undefined });
      this.request({ method: Method.WatchCancel, rangeId, targetId: id })
        .catch(() => undefined)
        .finally(() => this.forget(id));
    });
    id = this.send(
      { method: Method.Watch, rangeId, watch: request },
      {
        deliver: (body) => {
          if (body.kind === "watch") {
            watch.push(body.response);
            return body.response.canceled;
          }
          watch.fail(body.kind === "failure" ? errorOf(rangeId, body, false) : unexpected("a watch", body));
          return true;
        },
        fail: (error) =>
          watch.fail(error instanceof ConnectionDropped ? new ConnectionLostError(error.reason) : error),
      },
    );
    return watch;
  }

  private forget(id: number): void {
    this.waiting.delete(id);
    if (this.retired && this.waiting.size === 0) this.close();
  }

  /** Sends a request registered with `waiting`; returns its id. */
  private send(request: OutgoingRequest, waiting: Waiting): number {
    const id = ++this.nextId;
    const payload = encodeRequest({ ...request, id });
    if (!this.framed.send(NativeFrameKind.Request, payload)) {
      throw new ConnectionLostError(this.closeReason ?? "the connection is closed");
    }
    this.waiting.set(id, waiting);
    return id;
  }

  close(): void {
    this.framed.close("the client is closing");
  }

  /** Closes once every request in flight has its answer (their outcomes stay knowable). */
  retire(): void {
    this.retired = true;
    if (this.waiting.size === 0) this.close();
  }
}

function unexpected(what: string, body: ResponseBody): ServerProtocolError {
  return new ServerProtocolError(`${what} was answered with a ${body.kind} response`);
}

/** The node's or the store's error for a failure response. */
function errorOf(rangeId: number, body: Extract<ResponseBody, { kind: "failure" }>, write: boolean): Error {
  switch (body.code) {
    case ResponseCode.NotLeader:
      return new NotLeaderError(rangeId);
    case ResponseCode.ProposalDropped:
      return new ProposalDroppedError(rangeId, body.message);
    case ResponseCode.Ambiguous:
      return new AmbiguousResultError(rangeId, ambiguityReason(rangeId, body.message));
    case ResponseCode.ReadTimeout:
      return new ReadTimeoutError(rangeId);
    case ResponseCode.Stopped:
      return new ReplicaStoppedError(rangeId);
    case ResponseCode.KvError:
      return isKvErrorCode(body.kvErrorCode)
        ? new KvError(body.kvErrorCode)
        : new ServerProtocolError(`unknown kv error code ${body.kvErrorCode}: ${body.message}`);
    case ResponseCode.Internal:
      // The server failed while handling it: a write may have gone through.
      return write
        ? new AmbiguousResultError(rangeId, `server failure: ${body.message}`)
        : new ServerProtocolError(`server failure: ${body.message}`);
    case ResponseCode.BadRequest:
    case ResponseCode.UnknownRange:
    case ResponseCode.Ok:
      return new ServerProtocolError(body.message);
  }
}

class RemoteBackend implements Backend {
  private connection: NativeConnection | null = null;
  private connecting: Promise<NativeConnection> | null = null;
  /** The endpoint tried first by the next connection attempt. */
  private current = 0;
  private closed = false;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly connectTimeoutMs: number,
    private readonly maxFrameBytes: number,
  ) {}

  async write(rangeId: number, command: KvCommand, request: RequestId): Promise<CommandResult> {
    const { clientId, sequence } = request;
    const body = await this.call(
      rangeId,
      { method: Method.Write, rangeId, command, clientId, sequence },
      "write",
    );
    if (body.kind !== "write") throw unexpected("a write", body);
    return body.result;
  }

  async read(rangeId: number, range: RangeRequest, consistency: ReadConsistency): Promise<RangeResult> {
    const serializable = consistency === "serializable";
    const body = await this.call(rangeId, { method: Method.Range, rangeId, range, serializable }, "read");
    if (body.kind !== "range") throw unexpected("a read", body);
    return body.result;
  }

  async status(rangeId: number): Promise<RangeStatus> {
    const body = await this.call(rangeId, { method: Method.Status, rangeId }, "read");
    if (body.kind !== "status") throw unexpected("a status request", body);
    return body.status;
  }

  async watch(rangeId: number, request: WatchRequest): Promise<ConcordWatch> {
    const connection = await this.connect();
    try {
      return connection.watch(rangeId, request);
    } catch (error) {
      this.failOver(connection);
      connection.close();
      throw error;
    }
  }

  async leaseKeepAlive(rangeId: number, id: bigint): Promise<number | null> {
    const body = await this.call(
      rangeId,
      { method: Method.LeaseKeepAlive, rangeId, leaseId: id },
      "leaseClock",
    );
    if (body.kind !== "lease") throw unexpected("a lease keep-alive", body);
    return body.lease?.grantedTtlSeconds ?? null;
  }

  async leaseTimeToLive(rangeId: number, id: bigint, withKeys: boolean): Promise<TimeToLive | null> {
    const request = { method: Method.LeaseTimeToLive, rangeId, leaseId: id, withKeys } as const;
    const body = await this.call(rangeId, request, "leaseClock");
    if (body.kind !== "lease") throw unexpected("a lease time-to-live request", body);
    return body.lease;
  }

  async leases(rangeId: number): Promise<readonly LeaseSummary[]> {
    const body = await this.call(rangeId, { method: Method.Leases, rangeId }, "read");
    if (body.kind !== "leases") throw unexpected("a leases request", body);
    return body.leases;
  }

  close(): Promise<void> {
    this.closed = true;
    this.connection?.close();
    this.connection = null;
    return Promise.resolve();
  }

  /** Sends one request and returns its successful response or throws its error. */
  private async call(rangeId: number, request: OutgoingRequest, kind: CallKind): Promise<ResponseBody> {
    const connection = await this.connect();
    const write = kind === "write";
    let body: ResponseBody;
    try {
      body = await connection.request(request);
    } catch (error) {
      this.failOver(connection);
      connection.close();
      if (!(error instanceof ConnectionDropped)) throw error;
      if (write) {
        throw new AmbiguousResultError(rangeId, `connection lost after the write was sent: ${error.reason}`);
      }
      throw new ConnectionLostError(error.reason);
    }
    if (body.kind !== "failure") return body;
    // A stopped member will not serve anything again, and a member that does not lead cannot
    // serve the lease clock: the next attempt goes elsewhere, the requests in flight finish.
    const elsewhere =
      body.code === ResponseCode.Stopped || (kind === "leaseClock" && body.code === ResponseCode.NotLeader);
    if (elsewhere && this.failOver(connection)) connection.retire();
    throw errorOf(rangeId, body, write);
  }

  /**
   * Stops using `connection` for new requests; the next attempt starts at the next endpoint.
   * False when it was no longer the current connection (another request failed over first).
   */
  private failOver(connection: NativeConnection): boolean {
    if (this.connection !== connection) return false;
    this.connection = null;
    this.current = (this.current + 1) % this.endpoints.length;
    return true;
  }

  private connect(): Promise<NativeConnection> {
    if (this.closed) return Promise.reject(new ConnectionLostError("the client is closed"));
    if (this.connection?.isOpen === true) return Promise.resolve(this.connection);
    this.connection = null;
    this.connecting ??= this.tryEndpoints().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Each endpoint once, starting at the current one. */
  private async tryEndpoints(): Promise<NativeConnection> {
    let lastError: unknown = null;
    for (let tried = 0; tried < this.endpoints.length; tried++) {
      const index = (this.current + tried) % this.endpoints.length;
      try {
        const connection = await NativeConnection.open(
          this.endpoints[index]!,
          this.connectTimeoutMs,
          this.maxFrameBytes,
        );
        if (this.closed) {
          connection.close();
          throw new ConnectionLostError("the client is closed");
        }
        this.current = index;
        this.connection = connection;
        return connection;
      } catch (error) {
        lastError = error;
      }
    }
    throw new EndpointsUnavailableError(this.endpoints, { cause: lastError });
  }
}

/** A client handle on a cluster reachable at `options.endpoints`. */
export function connectRemote(options: ConnectOptions): ConcordDb {
  if (options.endpoints.length === 0) throw new RangeError("connect needs at least one endpoint");
  for (const endpoint of options.endpoints) parseAddress(endpoint);
  const backend = new RemoteBackend(
    options.endpoints,
    options.connectTimeoutMs ?? 5_000,
    options.maxFrameBytes ?? DEFAULT_MAX_NATIVE_FRAME_BYTES,
  );
  return new ConcordDb(backend, options.retry);
}
