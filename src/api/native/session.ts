/**
 * One client connection on the server side: decodes its requests, runs them against the
 * node's replicas concurrently, answers each by request id, and pumps its open watches (a
 * stream of responses per watch request id, paced by the socket so that a slow reader shows
 * up as unread events at the watch hub, which cancels it as overloaded rather than buffering
 * without bound). Any protocol violation closes this connection only.
 */
import type { Socket } from "node:net";
import { KvError } from "../../kv/errors.js";
import type { Watch } from "../../kv/watch.js";
import {
  AmbiguousResultError,
  NotLeaderError,
  ProposalDroppedError,
  ReadTimeoutError,
  ReplicaStoppedError,
} from "../../node/errors.js";
import type { NodeHost } from "../../node/host.js";
import type { Replica } from "../../node/replica.js";
import { withLeaseKeys, type RoutedKv } from "../../placement/node-ranges.js";
import { NativeProtocolError } from "./errors.js";
import { FramedSocket, type CloseCause } from "./framed-socket.js";
import {
  decodeRequest,
  encodeResponse,
  Method,
  NativeFrameKind,
  ResponseCode,
  type NativeFrame,
  type NativeRequest,
  type RangeStatus,
  type ResponseBody,
} from "./protocol.js";

/** A replica's status in the protocol's terms. */
export function rangeStatus(replica: Replica): RangeStatus {
  const status = replica.status();
  return {
    rangeId: status.rangeId,
    nodeId: status.nodeId,
    leader: status.leader,
    term: status.term,
    role: status.role,
    commit: status.commit,
    applied: status.applied,
    revision: status.revision,
    voters: status.confState.voters,
  };
}

function failure(code: ResponseCode, message: string, kvErrorCode = 0): ResponseBody {
  return { kind: "failure", code, message, kvErrorCode };
}

/** The failure response for an error a replica request failed with. */
function failureOf(error: unknown): ResponseBody {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof NotLeaderError) return failure(ResponseCode.NotLeader, message);
  if (error instanceof ProposalDroppedError) return failure(ResponseCode.ProposalDropped, message);
  if (error instanceof AmbiguousResultError) return failure(ResponseCode.Ambiguous, message);
  if (error instanceof ReadTimeoutError) return failure(ResponseCode.ReadTimeout, message);
  if (error instanceof ReplicaStoppedError) return failure(ResponseCode.Stopped, message);
  if (error instanceof KvError) return failure(ResponseCode.KvError, message, error.code);
  if (error instanceof RangeError) return failure(ResponseCode.BadRequest, message);
  return failure(ResponseCode.Internal, message);
}

export class ClientSession {
  private readonly framed: FramedSocket;
  /** Open watches by the id of the request that opened them. */
  private readonly watches = new Map<number, Watch>();
  /** The highest request id read: a client numbers its requests upwards on a connection. */
  private lastReadId = 0;

  constructor(
    socket: Socket,
    maxFrameBytes: number,
    private readonly host: NodeHost,
    /** Routes writes, reads and watches over the ranges; without it they go to the named range. */
    private readonly kv: RoutedKv | undefined,
    onClosed: (session: ClientSession, reason: string, cause: CloseCause) => void,
  ) {
    this.framed = new FramedSocket(socket, maxFrameBytes, {
      frame: (frame) => this.receive(frame),
      closed: (reason, cause) => {
        for (const watch of this.watches.values()) watch.cancel();
        this.watches.clear();
        onClosed(this, reason, cause);
      },
    });
  }

  /** Closes the session; its Goodbye tells the client which of its requests were never read. */
  close(reason: string): void {
    this.framed.close(reason, "local", this.lastReadId + 1);
  }

  private receive(frame: NativeFrame): void {
    if (frame.kind !== NativeFrameKind.Request) {
      throw new NativeProtocolError(
        `a client may only send Request frames, got ${NativeFrameKind[frame.kind]}`,
      );
    }
    const request = decodeRequest(frame.payload);
    this.lastReadId = Math.max(this.lastReadId, request.id);
    if (this.watches.has(request.id)) {
      throw new NativeProtocolError(`request id ${request.id} belongs to an open watch`);
    }
    const replica = this.host.replica(request.rangeId);
    if (replica === undefined) {
      this.respond(
        request.id,
        failure(ResponseCode.UnknownRange, `range ${request.rangeId} has no replica here`),
      );
      return;
    }
    switch (request.method) {
      case Method.Watch:
        this.openWatch(request.id, () => (this.kv ?? replica).watch(request.watch));
        return;
      case Method.WatchCancel:
        this.watches.get(request.targetId)?.cancel();
        // Deleted before answering: the pump sends nothing for a watch that is not in the map.
        this.watches.delete(request.targetId);
        this.respond(request.id, { kind: "watchCancelled" });
        return;
      default:
        void this.serve(replica, request).then((body) => this.respond(request.id, body));
    }
  }

  private respond(id: number, body: ResponseBody): void {
    let payload: Uint8Array;
    try {
      payload = encodeResponse({ id, body });
    } catch (error) {
      // An answer the protocol cannot carry is a server bug; the client still gets an answer.
      payload = encodeResponse({
        id,
        body: failure(ResponseCode.Internal, `unencodable response: ${String(error)}`),
      });
    }
    this.framed.send(NativeFrameKind.Response, payload);
  }

  private openWatch(id: number, open: () => Watch): void {
    let watch: Watch;
    try {
      watch = open();
    } catch (error) {
      this.respond(id, failureOf(error));
      return;
    }
    this.watches.set(id, watch);
    void this.pump(id, watch);
  }

  /** Sends a watch's responses as they come, waiting for the socket to drain between them. */
  private async pump(id: number, watch: Watch): Promise<void> {
    try {
      for await (const response of watch) {
        if (this.watches.get(id) !== watch) return;
        this.respond(id, { kind: "watch", response });
        await this.framed.whenWritable();
      }
    } catch (error) {
      if (this.watches.get(id) === watch) this.respond(id, failureOf(error));
    } finally {
      if (this.watches.get(id) === watch) this.watches.delete(id);
    }
  }

  /** Runs one request; never rejects (every failure becomes a failure response). */
  private async serve(replica: Replica, request: NativeRequest): Promise<ResponseBody> {
    try {
      switch (request.method) {
        case Method.Write: {
          const { clientId, sequence } = request;
          const kv = this.kv ?? replica;
          return { kind: "write", result: await kv.propose(request.command, { clientId, sequence }) };
        }
        case Method.Range: {
          const consistency = request.serializable ? "serializable" : "linearizable";
          return { kind: "range", result: await (this.kv ?? replica).range(request.range, consistency) };
        }
        case Method.Status:
          return { kind: "status", status: rangeStatus(replica) };
        case Method.Leases:
          return { kind: "leases", leases: replica.leases() };
        case Method.LeaseKeepAlive: {
          const ttl = await replica.leaseKeepAlive(request.leaseId);
          const lease =
            ttl === null
              ? null
              : { id: request.leaseId, grantedTtlSeconds: ttl, remainingTtlSeconds: ttl, keys: [] };
          return { kind: "lease", method: request.method, lease };
        }
        case Method.LeaseTimeToLive: {
          const timeToLive = replica.leaseTimeToLive(request.leaseId);
          const lease = await withLeaseKeys(timeToLive, request.withKeys, this.kv ?? replica);
          return { kind: "lease", method: request.method, lease };
        }
        case Method.Watch:
        case Method.WatchCancel:
          throw new Error(`method ${Method[request.method]} is not a single request`);
      }
    } catch (error) {
      return failureOf(error);
    }
  }
}
