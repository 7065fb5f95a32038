/**
 * Protobuf encoding of the connection-level payloads of peer.proto: Handshake, Goodbye,
 * SnapshotChunk and SnapshotStatus. (Raft values and batches are in codec.ts.)
 */
import type { NodeId } from "../raft/types.js";
import { decodeEnvelope, encodeEnvelope } from "./codec.js";
import type { Envelope } from "./transport.js";
import {
  BinaryWriter,
  decodeFields,
  writeBool,
  writeBytes,
  writeEncodedMessage,
  writeFixed32,
  writeString,
  writeUint,
  type DecodedFields,
  type MessageSchema,
} from "./wire.js";

export interface Handshake {
  readonly clusterId: string;
  /** The sender's node id. */
  readonly nodeId: NodeId;
  /** The node id the sender believes it is talking to. */
  readonly peerNodeId: NodeId;
  readonly protocolVersion: number;
}

export interface Goodbye {
  readonly reason: string;
}

export interface SnapshotChunk {
  /** Chosen by the sender, unique among its transfers on one connection. */
  readonly transferId: number;
  /** 0, 1, 2, ... within the transfer. */
  readonly seq: number;
  /** Only in chunk 0: group, nodes and the Snap message (its snapshot data empty). */
  readonly header: Envelope | null;
  readonly data: Uint8Array;
  /** CRC-32 of `data`. */
  readonly crc32: number;
  readonly last: boolean;
  /** Only meaningful when `last`: the whole snapshot's length and CRC-32. */
  readonly totalBytes: number;
  readonly totalCrc32: number;
}

export enum SnapshotOutcome {
  /** Receiver → sender: verified and handed to the receive handler. */
  Accepted = 1,
  /** Receiver → sender: discarded (checksum, size, order, or the handler failed). */
  Rejected = 2,
  /** Sender → receiver: the sender gave up; discard what arrived. */
  Cancelled = 3,
}

export interface SnapshotStatus {
  readonly transferId: number;
  readonly outcome: SnapshotOutcome;
  readonly reason: string;
}

const HANDSHAKE: MessageSchema = {
  name: "Handshake",
  fields: {
    1: { name: "clusterId", kind: "string" },
    2: { name: "nodeId", kind: "uint" },
    3: { name: "peerNodeId", kind: "uint" },
    4: { name: "protocolVersion", kind: "uint" },
  },
};

const GOODBYE: MessageSchema = { name: "Goodbye", fields: { 1: { name: "reason", kind: "string" } } };

const SNAPSHOT_CHUNK: MessageSchema = {
  name: "SnapshotChunk",
  fields: {
    1: { name: "transferId", kind: "uint" },
    2: { name: "seq", kind: "uint" },
    3: { name: "header", kind: "message" },
    4: { name: "data", kind: "bytes" },
    5: { name: "crc32", kind: "fixed32" },
    6: { name: "last", kind: "bool" },
    7: { name: "totalBytes", kind: "uint" },
    8: { name: "totalCrc32", kind: "fixed32" },
  },
};

const SNAPSHOT_STATUS: MessageSchema = {
  name: "SnapshotStatus",
  fields: {
    1: { name: "transferId", kind: "uint" },
    2: { name: "outcome", kind: "uint" },
    3: { name: "reason", kind: "string" },
  },
};

function positive(fields: DecodedFields, field: number): number {
  const value = fields.uint(field);
  if (value === 0) throw fields.fail(field, "is missing (must be positive)");
  return value;
}

export function encodeHandshake(h: Handshake): Uint8Array {
  const w = new BinaryWriter();
  writeString(w, 1, h.clusterId);
  writeUint(w, 2, h.nodeId, "handshake.nodeId");
  writeUint(w, 3, h.peerNodeId, "handshake.peerNodeId");
  writeUint(w, 4, h.protocolVersion, "handshake.protocolVersion");
  return w.finish();
}

export function decodeHandshake(bytes: Uint8Array): Handshake {
  const f = decodeFields(bytes, HANDSHAKE, "handshake");
  const clusterId = f.string(1);
  if (clusterId === "") throw f.fail(1, "is missing");
  return {
    clusterId,
    nodeId: positive(f, 2),
    peerNodeId: positive(f, 3),
    protocolVersion: positive(f, 4),
  };
}

export function encodeGoodbye(g: Goodbye): Uint8Array {
  const w = new BinaryWriter();
  writeString(w, 1, g.reason);
  return w.finish();
}

export function decodeGoodbye(bytes: Uint8Array): Goodbye {
  return { reason: decodeFields(bytes, GOODBYE, "goodbye").string(1) };
}

export function encodeSnapshotChunk(c: SnapshotChunk): Uint8Array {
  if ((c.seq === 0) !== (c.header !== null)) throw new Error("a snapshot header travels in chunk 0 only");
  const w = new BinaryWriter();
  writeUint(w, 1, c.transferId, "chunk.transferId");
  writeUint(w, 2, c.seq, "chunk.seq");
  if (c.header !== null) writeEncodedMessage(w, 3, encodeEnvelope(c.header));
  writeBytes(w, 4, c.data);
  writeFixed32(w, 5, c.crc32, "chunk.crc32");
  writeBool(w, 6, c.last);
  writeUint(w, 7, c.totalBytes, "chunk.totalBytes");
  writeFixed32(w, 8, c.totalCrc32, "chunk.totalCrc32");
  return w.finish();
}

export function decodeSnapshotChunk(bytes: Uint8Array): SnapshotChunk {
  const f = decodeFields(bytes, SNAPSHOT_CHUNK, "chunk");
  const seq = f.uint(2);
  const headerBytes = f.message(3);
  if (seq === 0 && headerBytes === undefined) throw f.fail(3, "is required in chunk 0");
  if (seq !== 0 && headerBytes !== undefined) throw f.fail(3, `is not allowed in chunk ${seq}`);
  const last = f.bool(6);
  if (!last && (f.has(7) || f.has(8))) throw f.fail(7, "is only allowed in the last chunk");
  return {
    transferId: positive(f, 1),
    seq,
    header: headerBytes === undefined ? null : decodeEnvelope(headerBytes, "chunk.header"),
    data: f.bytes(4),
    crc32: f.fixed32(5),
    last,
    totalBytes: f.uint(7),
    totalCrc32: f.fixed32(8),
  };
}

export function encodeSnapshotStatus(s: SnapshotStatus): Uint8Array {
  const w = new BinaryWriter();
  writeUint(w, 1, s.transferId, "status.transferId");
  writeUint(w, 2, s.outcome, "status.outcome");
  writeString(w, 3, s.reason);
  return w.finish();
}

export function decodeSnapshotStatus(bytes: Uint8Array): SnapshotStatus {
  const f = decodeFields(bytes, SNAPSHOT_STATUS, "status");
  const outcome = f.uint(2);
  if (SnapshotOutcome[outcome] === undefined) throw f.fail(2, `has unknown value ${outcome}`);
  return { transferId: positive(f, 1), outcome, reason: f.string(3) };
}
