/**
 * The native client protocol: framing of the client byte stream and the protobuf-wire codec
 * of its three messages (Request, Response, Goodbye). See README.md in this directory for the
 * field tables. Commands and results inside a message travel in the kv layer's own versioned,
 * strictly checked encoding (`encodeCommand`, `encodeCommandResult`), so the protocol never
 * re-describes etcd's command shapes.
 *
 * Frame: u32 big-endian payload length | u8 protocol version | u8 frame kind | payload.
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { DecodeError } from "../../kv/bytes.js";
import {
  decodeCommand,
  encodeCommand,
  txnRequest,
  type KvCommand,
  type RangeRequest,
} from "../../kv/commands.js";
import {
  decodeCommandResult,
  encodeCommandResult,
  type CommandResult,
  type RangeResult,
} from "../../kv/results.js";
import type { LeaseSummary } from "../../kv/leases.js";
import type { WatchRequest, WatchResponse } from "../../kv/watch.js";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
  type Frame,
  type FrameFormat,
} from "../../transport/frame.js";
import { NativeProtocolError } from "./errors.js";
import {
  leaseOfSummary,
  readLease,
  readU64,
  readWatchCreate,
  readWatchEvents,
  writeLease,
  writeU64,
  writeWatchCreate,
  writeWatchEvents,
  type LeaseInfo,
} from "./values.js";
import {
  decodeFields,
  TransportDecodeError,
  writeBool,
  writeBytes,
  writeMessage,
  writeString,
  writeUint,
  writeUintList,
  type MessageSchema,
} from "../../transport/wire.js";

export const NATIVE_PROTOCOL_VERSION = 1;
export const NATIVE_FRAME_HEADER_BYTES = FRAME_HEADER_BYTES;
export const DEFAULT_MAX_NATIVE_FRAME_BYTES = 16 * 1024 * 1024;

export enum NativeFrameKind {
  Request = 1,
  Response = 2,
  /** The reason the sender closes the connection; nothing follows it. */
  Goodbye = 3,
}

export enum Method {
  /** Propose a write command (Put, DeleteRange, Txn, Compact, LeaseGrant, LeaseRevoke). */
  Write = 1,
  /** Read a key range. */
  Range = 2,
  /** The serving member's view of a range. */
  Status = 3,
  /** Renew a lease (on the range's leader). */
  LeaseKeepAlive = 4,
  /** A lease's granted and remaining TTL (on the range's leader). */
  LeaseTimeToLive = 5,
  /** Every live lease. */
  Leases = 6,
  /** Open a watch: answered by a stream of responses with this request's id. */
  Watch = 7,
  /** Cancel the watch opened by request `target_id`; no response for it follows this one's. */
  WatchCancel = 8,
}

/** What became of a request. Codes 1-5 mirror the node's errors; see README.md. */
export enum ResponseCode {
  Ok = 0,
  NotLeader = 1,
  ProposalDropped = 2,
  Ambiguous = 3,
  ReadTimeout = 4,
  Stopped = 5,
  /** A read failed with a KvError; `kvErrorCode` says which. */
  KvError = 6,
  /** The request was well-formed protobuf but asked for something invalid. */
  BadRequest = 7,
  UnknownRange = 8,
  /** The server failed unexpectedly; the request's effect is unknown. */
  Internal = 9,
}

export type NativeRequest =
  | {
      readonly id: number;
      readonly method: Method.Write;
      readonly rangeId: number;
      readonly command: KvCommand;
      readonly clientId: string;
      readonly sequence: number;
    }
  | {
      readonly id: number;
      readonly method: Method.Range;
      readonly rangeId: number;
      readonly range: RangeRequest;
      readonly serializable: boolean;
    }
  | { readonly id: number; readonly method: Method.Status | Method.Leases; readonly rangeId: number }
  | {
      readonly id: number;
      readonly method: Method.LeaseKeepAlive;
      readonly rangeId: number;
      readonly leaseId: bigint;
    }
  | {
      readonly id: number;
      readonly method: Method.LeaseTimeToLive;
      readonly rangeId: number;
      readonly leaseId: bigint;
      readonly withKeys: boolean;
    }
  | {
      readonly id: number;
      readonly method: Method.Watch;
      readonly rangeId: number;
      readonly watch: WatchRequest;
    }
  | {
      readonly id: number;
      readonly method: Method.WatchCancel;
      readonly rangeId: number;
      readonly targetId: number;
    };

/** A member's view of one range, as the Status method reports it. */
export interface RangeStatus {
  readonly rangeId: number;
  readonly nodeId: number;
  /** 0 when no leader is known. */
  readonly leader: number;
  readonly term: number;
  readonly role: string;
  readonly commit: number;
  readonly applied: number;
  readonly revision: bigint;
  readonly voters: readonly number[];
}

export type ResponseBody =
  | { readonly kind: "write"; readonly result: CommandResult }
  | { readonly kind: "range"; readonly result: RangeResult }
  | { readonly kind: "status"; readonly status: RangeStatus }
  /** LeaseKeepAlive and LeaseTimeToLive: null when the lease does not exist (or has expired). */
  | {
      readonly kind: "lease";
      readonly method: Method.LeaseKeepAlive | Method.LeaseTimeToLive;
      readonly lease: LeaseInfo | null;
    }
  | { readonly kind: "leases"; readonly leases: readonly LeaseSummary[] }
  | { readonly kind: "watch"; readonly response: WatchResponse }
  | { readonly kind: "watchCancelled" }
  | {
      readonly kind: "failure";
      readonly code: ResponseCode;
      readonly message: string;
      readonly kvErrorCode: number;
    };

export interface NativeResponse {
  readonly id: number;
  readonly body: ResponseBody;
}

const REQUEST: MessageSchema = {
  name: "Request",
  fields: {
    1: { name: "id", kind: "uint" },
    2: { name: "range_id", kind: "uint" },
    3: { name: "method", kind: "uint" },
    4: { name: "command", kind: "bytes" },
    5: { name: "client_id", kind: "string" },
    6: { name: "sequence", kind: "uint" },
    7: { name: "serializable", kind: "bool" },
    8: { name: "lease_id", kind: "string" },
    9: { name: "with_keys", kind: "bool" },
    10: { name: "watch", kind: "message" },
    11: { name: "target_id", kind: "uint" },
  },
};

const RESPONSE: MessageSchema = {
  name: "Response",
  fields: {
    1: { name: "id", kind: "uint" },
    2: { name: "code", kind: "uint" },
    3: { name: "message", kind: "string" },
    4: { name: "result", kind: "bytes" },
    5: { name: "status", kind: "message" },
    6: { name: "kv_error_code", kind: "uint" },
    7: { name: "method", kind: "uint" },
    8: { name: "lease", kind: "message" },
    9: { name: "leases", kind: "message", repeated: true },
    10: { name: "watch_events", kind: "message" },
  },
};

const STATUS: MessageSchema = {
  name: "Status",
  fields: {
    1: { name: "range_id", kind: "uint" },
    2: { name: "node_id", kind: "uint" },
    3: { name: "leader", kind: "uint" },
    4: { name: "term", kind: "uint" },
    5: { name: "role", kind: "string" },
    6: { name: "commit", kind: "uint" },
    7: { name: "applied", kind: "uint" },
    8: { name: "revision", kind: "string" },
    9: { name: "voters", kind: "uintList" },
  },
};

const GOODBYE: MessageSchema = {
  name: "Goodbye",
  fields: { 1: { name: "reason", kind: "string" }, 2: { name: "first_unread_id", kind: "uint" } },
};

// ------------------------------------------------------------------------------- framing

export type NativeFrame = Frame<NativeFrameKind>;

/** The native protocol uses the transport's frame layout with its own version and kinds. */
export const NATIVE_FRAMES: FrameFormat<NativeFrameKind> = {
  version: NATIVE_PROTOCOL_VERSION,
  isKind: (kind): kind is NativeFrameKind => NativeFrameKind[kind] !== undefined,
  nameOf: (kind) => NativeFrameKind[kind],
};

export function encodeNativeFrame(kind: NativeFrameKind, payload: Uint8Array): Uint8Array {
  return encodeFrame(kind, payload, NATIVE_PROTOCOL_VERSION);
}

/**
 * Turns stream chunks split anywhere into whole frames (the transport's FrameDecoder). A bad
 * header (version, kind, size) fails the decoder for good with a NativeProtocolError: the
 * stream cannot be resynchronised.
 */
export class NativeFrameDecoder {
  private readonly frames: FrameDecoder<NativeFrameKind>;

  constructor(maxFrameBytes = DEFAULT_MAX_NATIVE_FRAME_BYTES) {
    this.frames = new FrameDecoder({ maxFrameBytes, format: NATIVE_FRAMES });
  }

  push(chunk: Uint8Array): NativeFrame[] {
    try {
      return this.frames.push(chunk);
    } catch (error) {
      if (error instanceof FrameError) throw new NativeProtocolError(error.reason);
      throw error;
    }
  }
}

// ------------------------------------------------------------------------------ messages

/** Runs a decoder, turning every decoding failure of peer bytes into NativeProtocolError. */
function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof TransportDecodeError || error instanceof DecodeError) {
      throw new NativeProtocolError(`${what}: ${error.message}`);
    }
    throw error;
  }
}

/**
 * A read travels in the kv command encoding as a transaction whose success branch is the one
 * range op: that encoding already validates every field of a RangeRequest.
 */
function encodeRangeRequest(range: RangeRequest): Uint8Array {
  return encodeCommand(txnRequest({ success: [range] }));
}

function decodeRangeRequest(bytes: Uint8Array): RangeRequest {
  const command = decodeCommand(bytes);
  const op = command.kind === "txn" && command.success.length === 1 ? command.success[0] : undefined;
  if (
    op?.kind !== "range" ||
    command.kind !== "txn" ||
    command.compares.length > 0 ||
    command.failure.length > 0
  ) {
    throw new NativeProtocolError("Request.command of a Range request must be a txn holding one range op");
  }
  return op;
}

/** A range result travels as a command result whose response is a one-op txn response. */
function encodeRangeResult(result: RangeResult): Uint8Array {
  const { revision, kvs, more, count } = result;
  return encodeCommandResult({
    revision,
    response: { kind: "txn", succeeded: true, responses: [{ kind: "range", kvs, more, count }] },
  });
}

function decodeRangeResult(bytes: Uint8Array): RangeResult {
  const result = decodeCommandResult(bytes);
  const response = result.response;
  const op = response.kind === "txn" && response.responses.length === 1 ? response.responses[0] : undefined;
  if (op?.kind !== "range")
    throw new NativeProtocolError("Response.result of a Range request is not a range result");
  return { ...op, revision: result.revision };
}

export function encodeRequest(request: NativeRequest): Uint8Array {
  const writer = new BinaryWriter();
  writeUint(writer, 1, request.id, "Request.id");
  writeUint(writer, 2, request.rangeId, "Request.range_id");
  writeUint(writer, 3, request.method, "Request.method");
  if (request.method === Method.Write) {
    writeBytes(writer, 4, encodeCommand(request.command));
    writeString(writer, 5, request.clientId);
    writeUint(writer, 6, request.sequence, "Request.sequence");
  } else if (request.method === Method.Range) {
    writeBytes(writer, 4, encodeRangeRequest(request.range));
    writeBool(writer, 7, request.serializable);
  } else if (request.method === Method.LeaseKeepAlive || request.method === Method.LeaseTimeToLive) {
    writeU64(writer, 8, request.leaseId, "Request.lease_id");
    if (request.method === Method.LeaseTimeToLive) writeBool(writer, 9, request.withKeys);
  } else if (request.method === Method.Watch) {
    const watch = request.watch;
    writeMessage(writer, 10, (w) => writeWatchCreate(w, watch));
  } else if (request.method === Method.WatchCancel) {
    writeUint(writer, 11, request.targetId, "Request.target_id");
  }
  return writer.finish();
}

export function decodeRequest(bytes: Uint8Array): NativeRequest {
  return decoding("Request", () => {
    const fields = decodeFields(bytes, REQUEST, "Request");
    const id = fields.uint(1);
    const rangeId = fields.uint(2);
    // Any number may arrive; the switch's default case rejects the unknown ones.
    const method = fields.uint(3) as Method;
    if (id === 0) throw new NativeProtocolError("Request.id must be non-zero");
    if (rangeId === 0) throw new NativeProtocolError("Request.range_id must be non-zero");
    switch (method) {
      case Method.Write: {
        const clientId = fields.string(5);
        const sequence = fields.uint(6);
        if (clientId === "" || sequence === 0) {
          throw new NativeProtocolError("a Write request needs client_id and a non-zero sequence");
        }
        return { id, method, rangeId, command: decodeCommand(fields.bytes(4)), clientId, sequence };
      }
      case Method.Range:
        return {
          id,
          method,
          rangeId,
          range: decodeRangeRequest(fields.bytes(4)),
          serializable: fields.bool(7),
        };
      case Method.Status:
      case Method.Leases:
        return { id, method, rangeId };
      case Method.LeaseKeepAlive:
        return { id, method, rangeId, leaseId: readU64(fields.string(8), "Request.lease_id") };
      case Method.LeaseTimeToLive:
        return {
          id,
          method,
          rangeId,
          leaseId: readU64(fields.string(8), "Request.lease_id"),
          withKeys: fields.bool(9),
        };
      case Method.Watch:
        return { id, method, rangeId, watch: readWatchCreate(fields.requiredMessage(10), "Request.watch") };
      case Method.WatchCancel: {
        const targetId = fields.uint(11);
        if (targetId === 0) throw new NativeProtocolError("a WatchCancel request needs target_id");
        return { id, method, rangeId, targetId };
      }
      default:
        throw new NativeProtocolError(`Request.method ${fields.uint(3)} is unknown`);
    }
  });
}

function writeStatus(writer: BinaryWriter, status: RangeStatus): void {
  writeUint(writer, 1, status.rangeId, "Status.range_id");
  writeUint(writer, 2, status.nodeId, "Status.node_id");
  writeUint(writer, 3, status.leader, "Status.leader");
  writeUint(writer, 4, status.term, "Status.term");
  writeString(writer, 5, status.role);
  writeUint(writer, 6, status.commit, "Status.commit");
  writeUint(writer, 7, status.applied, "Status.applied");
  writeU64(writer, 8, status.revision, "Status.revision");
  writeUintList(writer, 9, status.voters, "Status.voters");
}

function decodeStatus(bytes: Uint8Array): RangeStatus {
  const fields = decodeFields(bytes, STATUS, "Response.status");
  return {
    rangeId: fields.uint(1),
    nodeId: fields.uint(2),
    leader: fields.uint(3),
    term: fields.uint(4),
    role: fields.string(5),
    commit: fields.uint(6),
    applied: fields.uint(7),
    revision: readU64(fields.string(8), "Response.status.revision"),
    voters: fields.uints(9),
  };
}

export function encodeResponse(response: NativeResponse): Uint8Array {
  const writer = new BinaryWriter();
  writeUint(writer, 1, response.id, "Response.id");
  const body = response.body;
  switch (body.kind) {
    case "write":
      writeUint(writer, 7, Method.Write, "Response.method");
      writeBytes(writer, 4, encodeCommandResult(body.result));
      break;
    case "range":
      writeUint(writer, 7, Method.Range, "Response.method");
      writeBytes(writer, 4, encodeRangeResult(body.result));
      break;
    case "status":
      writeUint(writer, 7, Method.Status, "Response.method");
      writeMessage(writer, 5, (w) => writeStatus(w, body.status));
      break;
    case "lease": {
      const lease = body.lease;
      writeUint(writer, 7, body.method, "Response.method");
      if (lease !== null) writeMessage(writer, 8, (w) => writeLease(w, lease));
      break;
    }
    case "leases":
      writeUint(writer, 7, Method.Leases, "Response.method");
      for (const lease of body.leases) writeMessage(writer, 9, (w) => writeLease(w, leaseOfSummary(lease)));
      break;
    case "watch":
      writeUint(writer, 7, Method.Watch, "Response.method");
      writeMessage(writer, 10, (w) => writeWatchEvents(w, body.response));
      break;
    case "watchCancelled":
      writeUint(writer, 7, Method.WatchCancel, "Response.method");
      break;
    case "failure":
      writeUint(writer, 2, body.code, "Response.code");
      writeString(writer, 3, body.message);
      writeUint(writer, 6, body.kvErrorCode, "Response.kv_error_code");
      break;
  }
  return writer.finish();
}

export function decodeResponse(bytes: Uint8Array): NativeResponse {
  return decoding("Response", () => {
    const fields = decodeFields(bytes, RESPONSE, "Response");
    const id = fields.uint(1);
    const code = fields.uint(2) as ResponseCode;
    if (code !== ResponseCode.Ok) {
      if (ResponseCode[code] === undefined) throw new NativeProtocolError(`Response.code ${code} is unknown`);
      return {
        id,
        body: { kind: "failure", code, message: fields.string(3), kvErrorCode: fields.uint(6) },
      };
    }
    // Any number may arrive; the switch's default case rejects the unknown ones.
    const method = fields.uint(7) as Method;
    switch (method) {
      case Method.Write:
        return { id, body: { kind: "write", result: decodeCommandResult(fields.bytes(4)) } };
      case Method.Range:
        return { id, body: { kind: "range", result: decodeRangeResult(fields.bytes(4)) } };
      case Method.Status:
        return { id, body: { kind: "status", status: decodeStatus(fields.requiredMessage(5)) } };
      case Method.LeaseKeepAlive:
      case Method.LeaseTimeToLive: {
        const lease = fields.message(8);
        return {
          id,
          body: {
            kind: "lease",
            method,
            lease: lease === undefined ? null : readLease(lease, "Response.lease"),
          },
        };
      }
      case Method.Leases: {
        const leases = fields.messages(9).map((bytes, i) => readLease(bytes, `Response.leases[${i}]`));
        return {
          id,
          body: {
            kind: "leases",
            leases: leases.map((l) => ({ id: l.id, ttlSeconds: l.grantedTtlSeconds })),
          },
        };
      }
      case Method.Watch:
        return {
          id,
          body: {
            kind: "watch",
            response: readWatchEvents(fields.requiredMessage(10), "Response.watch_events"),
          },
        };
      case Method.WatchCancel:
        return { id, body: { kind: "watchCancelled" } };
      default:
        throw new NativeProtocolError(`Response.method ${fields.uint(7)} is unknown`);
    }
  });
}

export interface Goodbye {
  readonly reason: string;
  /**
   * Set by a side that stops reading requests (a server closing a session): every request
   * whose id is this or above was never read, so it had no effect. Absent when unknown.
   */
  readonly firstUnreadId?: number;
}

export function encodeGoodbye(goodbye: Goodbye): Uint8Array {
  const writer = new BinaryWriter();
  writeString(writer, 1, goodbye.reason);
  if (goodbye.firstUnreadId !== undefined) {
    if (goodbye.firstUnreadId < 1)
      throw new RangeError("Goodbye.first_unread_id starts at 1 (request ids do)");
    writeUint(writer, 2, goodbye.firstUnreadId, "Goodbye.first_unread_id");
  }
  return writer.finish();
}

export function decodeGoodbye(bytes: Uint8Array): Goodbye {
  return decoding("Goodbye", () => {
    const fields = decodeFields(bytes, GOODBYE, "Goodbye");
    const reason = fields.string(1);
    const firstUnreadId = fields.uint(2);
    return firstUnreadId === 0 ? { reason } : { reason, firstUnreadId };
  });
}
