/**
 * Protobuf encoding of the Raft values that cross the network — Envelope, Message, Entry,
 * Snapshot, SnapshotMetadata, ConfState — and of the RaftBatch that carries one flush's
 * envelopes for one peer. Field numbers are those of peer.proto. Decoding validates beyond the
 * wire format: known MessageType/EntryType values, positive node ids, a Snap message carries a
 * snapshot, a snapshot carries metadata and membership.
 */
import {
  EntryType,
  MessageType,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Snapshot,
  type SnapshotMetadata,
} from "../raft/types.js";
import type { Envelope } from "./transport.js";
import {
  BinaryWriter,
  checkUint,
  decodeFields,
  encodeWithKeptWriter,
  TransportDecodeError,
  writeBool,
  writeBytes,
  writeEncodedMessage,
  writeMessage,
  writeUint,
  writeUintList,
  type DecodedFields,
  type MessageSchema,
} from "./wire.js";

export { TransportDecodeError } from "./wire.js";

const ENVELOPE: MessageSchema = {
  name: "Envelope",
  fields: {
    1: { name: "groupId", kind: "uint" },
    2: { name: "from", kind: "uint" },
    3: { name: "to", kind: "uint" },
    4: { name: "messages", kind: "message", repeated: true },
  },
};

const MESSAGE: MessageSchema = {
  name: "Message",
  fields: {
    1: { name: "type", kind: "uint" },
    2: { name: "to", kind: "uint" },
    3: { name: "from", kind: "uint" },
    4: { name: "term", kind: "uint" },
    5: { name: "logTerm", kind: "uint" },
    6: { name: "index", kind: "uint" },
    7: { name: "entries", kind: "message", repeated: true },
    8: { name: "commit", kind: "uint" },
    9: { name: "snapshot", kind: "message" },
    10: { name: "reject", kind: "bool" },
    11: { name: "rejectHint", kind: "uint" },
    12: { name: "context", kind: "bytes" },
  },
};

const ENTRY: MessageSchema = {
  name: "Entry",
  fields: {
    1: { name: "term", kind: "uint" },
    2: { name: "index", kind: "uint" },
    3: { name: "type", kind: "uint" },
    4: { name: "data", kind: "bytes" },
  },
};

const SNAPSHOT: MessageSchema = {
  name: "Snapshot",
  fields: {
    1: { name: "metadata", kind: "message" },
    2: { name: "data", kind: "bytes" },
  },
};

const SNAPSHOT_METADATA: MessageSchema = {
  name: "SnapshotMetadata",
  fields: {
    1: { name: "index", kind: "uint" },
    2: { name: "term", kind: "uint" },
    3: { name: "confState", kind: "message" },
  },
};

const CONF_STATE: MessageSchema = {
  name: "ConfState",
  fields: {
    1: { name: "voters", kind: "uintList" },
    2: { name: "learners", kind: "uintList" },
    3: { name: "votersOutgoing", kind: "uintList" },
    4: { name: "learnersNext", kind: "uintList" },
    5: { name: "autoLeave", kind: "bool" },
  },
};

const RAFT_BATCH: MessageSchema = {
  name: "RaftBatch",
  fields: { 1: { name: "envelopes", kind: "message", repeated: true } },
};

/** Bytes a RaftBatch adds around each encoded envelope: a 1-byte tag and a length of at most 5. */
export const BATCH_ENTRY_OVERHEAD_BYTES = 6;

// ---------------------------------------------------------------------------------- encoding

function checkNodeId(id: NodeId, path: string): void {
  checkUint(id, path);
  if (id === 0) throw new Error(`cannot encode ${path}: node id 0 means "no node"`);
}

function encodeConfState(w: BinaryWriter, cs: ConfState, path: string): void {
  const lists = [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext] as const;
  lists.forEach((ids, i) => {
    const name = `${path}.${CONF_STATE.fields[i + 1]?.name}`;
    ids.forEach((id, j) => checkNodeId(id, `${name}[${j}]`));
    writeUintList(w, i + 1, ids, name);
  });
  writeBool(w, 5, cs.autoLeave);
}

function encodeSnapshotMetadata(w: BinaryWriter, md: SnapshotMetadata, path: string): void {
  writeUint(w, 1, md.index, `${path}.index`);
  writeUint(w, 2, md.term, `${path}.term`);
  writeMessage(w, 3, (inner) => encodeConfState(inner, md.confState, `${path}.confState`));
}

function encodeSnapshot(w: BinaryWriter, snapshot: Snapshot, path: string): void {
  writeMessage(w, 1, (inner) => encodeSnapshotMetadata(inner, snapshot.metadata, `${path}.metadata`));
  writeBytes(w, 2, snapshot.data);
}

function encodeEntry(w: BinaryWriter, entry: Entry, path: string): void {
  if (EntryType[entry.type] === undefined) throw new Error(`cannot encode ${path}.type: ${entry.type}`);
  writeUint(w, 1, entry.term, `${path}.term`);
  writeUint(w, 2, entry.index, `${path}.index`);
  writeUint(w, 3, entry.type, `${path}.type`);
  writeBytes(w, 4, entry.data);
}

function encodeMessageBody(w: BinaryWriter, m: Message, path: string): void {
  if (MessageType[m.type] === undefined) throw new Error(`cannot encode ${path}.type: ${m.type}`);
  checkNodeId(m.to, `${path}.to`);
  checkNodeId(m.from, `${path}.from`);
  writeUint(w, 1, m.type, `${path}.type`);
  writeUint(w, 2, m.to, `${path}.to`);
  writeUint(w, 3, m.from, `${path}.from`);
  writeUint(w, 4, m.term, `${path}.term`);
  writeUint(w, 5, m.logTerm, `${path}.logTerm`);
  writeUint(w, 6, m.index, `${path}.index`);
  m.entries.forEach((e, i) => writeMessage(w, 7, (inner) => encodeEntry(inner, e, `${path}.entries[${i}]`)));
  writeUint(w, 8, m.commit, `${path}.commit`);
  const snapshot = m.snapshot;
  if (snapshot !== null) writeMessage(w, 9, (inner) => encodeSnapshot(inner, snapshot, `${path}.snapshot`));
  writeBool(w, 10, m.reject);
  writeUint(w, 11, m.rejectHint, `${path}.rejectHint`);
  writeBytes(w, 12, m.context);
}

function encodeEnvelopeBody(w: BinaryWriter, envelope: Envelope): void {
  checkNodeId(envelope.from, "envelope.from");
  checkNodeId(envelope.to, "envelope.to");
  writeUint(w, 1, envelope.groupId, "envelope.groupId");
  writeUint(w, 2, envelope.from, "envelope.from");
  writeUint(w, 3, envelope.to, "envelope.to");
  envelope.messages.forEach((m, i) =>
    writeMessage(w, 4, (inner) => encodeMessageBody(inner, m, `envelope.messages[${i}]`)),
  );
}

/** Encodes one envelope; throws a plain Error (a caller bug) on values the contract forbids. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encodeWithKeptWriter((w) => encodeEnvelopeBody(w, envelope));
}

export function encodeMessage(message: Message): Uint8Array {
  return encodeWithKeptWriter((w) => encodeMessageBody(w, message, "message"));
}

/** A RaftBatch of envelopes already encoded with `encodeEnvelope`. */
export function encodeRaftBatch(encodedEnvelopes: readonly Uint8Array[]): Uint8Array {
  return encodeWithKeptWriter((w) => {
    for (const encoded of encodedEnvelopes) writeEncodedMessage(w, 1, encoded);
  });
}

// ---------------------------------------------------------------------------------- decoding

function nodeId(fields: DecodedFields, field: number): NodeId {
  const id = fields.uint(field);
  if (id === 0) throw fields.fail(field, "is missing (node ids are positive)");
  return id;
}

function enumValue<T extends number>(
  fields: DecodedFields,
  field: number,
  names: Record<number, string | undefined>,
): T {
  const value = fields.uint(field);
  if (names[value] === undefined) throw fields.fail(field, `has unknown value ${value}`);
  return value as T;
}

function decodeConfState(bytes: Uint8Array, path: string): ConfState {
  const f = decodeFields(bytes, CONF_STATE, path);
  const ids = (field: number): NodeId[] => {
    const list = f.uints(field);
    if (list.includes(0)) throw f.fail(field, "contains node id 0");
    return list;
  };
  return {
    voters: ids(1),
    learners: ids(2),
    votersOutgoing: ids(3),
    learnersNext: ids(4),
    autoLeave: f.bool(5),
  };
}

function decodeSnapshot(bytes: Uint8Array, path: string): Snapshot {
  const f = decodeFields(bytes, SNAPSHOT, path);
  const mdPath = `${path}.metadata`;
  const md = decodeFields(f.requiredMessage(1), SNAPSHOT_METADATA, mdPath);
  return {
    metadata: {
      index: md.uint(1),
      term: md.uint(2),
      confState: decodeConfState(md.requiredMessage(3), `${mdPath}.confState`),
    },
    data: f.bytes(2),
  };
}

function decodeEntry(bytes: Uint8Array, path: string): Entry {
  const f = decodeFields(bytes, ENTRY, path);
  return {
    term: f.uint(1),
    index: f.uint(2),
    type: enumValue<EntryType>(f, 3, EntryType),
    data: f.bytes(4),
  };
}

function decodeMessageAt(bytes: Uint8Array, path: string): Message {
  const f = decodeFields(bytes, MESSAGE, path);
  const type = enumValue<MessageType>(f, 1, MessageType);
  const snapshotBytes = f.message(9);
  const snapshot = snapshotBytes === undefined ? null : decodeSnapshot(snapshotBytes, `${path}.snapshot`);
  if (type === MessageType.Snap && snapshot === null) throw f.fail(9, "is required in a Snap message");
  return {
    type,
    to: nodeId(f, 2),
    from: nodeId(f, 3),
    term: f.uint(4),
    logTerm: f.uint(5),
    index: f.uint(6),
    entries: f.messages(7).map((e, i) => decodeEntry(e, `${path}.entries[${i}]`)),
    commit: f.uint(8),
    snapshot,
    reject: f.bool(10),
    rejectHint: f.uint(11),
    context: f.bytes(12),
  };
}

function decodeEnvelopeAt(bytes: Uint8Array, path: string): Envelope {
  const f = decodeFields(bytes, ENVELOPE, path);
  return {
    groupId: f.uint(1),
    from: nodeId(f, 2),
    to: nodeId(f, 3),
    messages: f.messages(4).map((m, i) => decodeMessageAt(m, `${path}.messages[${i}]`)),
  };
}

/**
 * Decodes and validates one envelope; throws TransportDecodeError with the reason, naming the
 * offending field under `path`.
 */
export function decodeEnvelope(bytes: Uint8Array, path = "envelope"): Envelope {
  return decodeEnvelopeAt(bytes, path);
}

export function decodeMessage(bytes: Uint8Array): Message {
  return decodeMessageAt(bytes, "message");
}

export function decodeRaftBatch(bytes: Uint8Array): Envelope[] {
  const f = decodeFields(bytes, RAFT_BATCH, "batch");
  const envelopes = f.messages(1);
  if (envelopes.length === 0) throw new TransportDecodeError("batch holds no envelopes");
  return envelopes.map((e, i) => decodeEnvelopeAt(e, `batch.envelopes[${i}]`));
}
