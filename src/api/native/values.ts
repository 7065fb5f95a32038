/**
 * Protobuf-wire codecs of the native protocol's value messages: 64-bit numbers, KeyValue,
 * watch requests and responses, and leases. 64-bit values (revisions, versions, lease ids)
 * travel as decimal strings, because the shared wire helpers read integers only up to 2^53.
 */
import type { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { TimeToLive } from "../../kv/lease-clock.js";
import type { LeaseSummary } from "../../kv/leases.js";
import type { KeyValue, KvEvent } from "../../kv/results.js";
import type { WatchFilter, WatchRequest, WatchResponse } from "../../kv/watch.js";
import {
  decodeFields,
  writeBool,
  writeBytes,
  writeEncodedMessage,
  writeMessage,
  writeString,
  writeUint,
  type MessageSchema,
} from "../../transport/wire.js";
import { NativeProtocolError } from "./errors.js";

const MAX_U64 = (1n << 64n) - 1n;

export function writeU64(writer: BinaryWriter, field: number, value: bigint, path: string): void {
  if (value < 0n || value > MAX_U64)
    throw new Error(`cannot encode ${path}: ${value} is not an unsigned 64-bit value`);
  if (value !== 0n) writeString(writer, field, value.toString());
}

export function readU64(text: string, path: string): bigint {
  if (text === "") return 0n;
  if (!/^(0|[1-9][0-9]{0,19})$/.test(text) || BigInt(text) > MAX_U64) {
    throw new NativeProtocolError(`${path} "${text}" is not an unsigned 64-bit decimal`);
  }
  return BigInt(text);
}

const KEY_VALUE: MessageSchema = {
  name: "KeyValue",
  fields: {
    1: { name: "key", kind: "bytes" },
    2: { name: "value", kind: "bytes" },
    3: { name: "create_revision", kind: "string" },
    4: { name: "mod_revision", kind: "string" },
    5: { name: "version", kind: "string" },
    6: { name: "lease", kind: "string" },
  },
};

function writeKeyValue(writer: BinaryWriter, kv: KeyValue): void {
  writeBytes(writer, 1, kv.key);
  writeBytes(writer, 2, kv.value);
  writeU64(writer, 3, kv.createRevision, "KeyValue.create_revision");
  writeU64(writer, 4, kv.modRevision, "KeyValue.mod_revision");
  writeU64(writer, 5, kv.version, "KeyValue.version");
  writeU64(writer, 6, kv.lease, "KeyValue.lease");
}

function readKeyValue(bytes: Uint8Array, path: string): KeyValue {
  const fields = decodeFields(bytes, KEY_VALUE, path);
  return {
    key: fields.bytes(1),
    value: fields.bytes(2),
    createRevision: readU64(fields.string(3), `${path}.create_revision`),
    modRevision: readU64(fields.string(4), `${path}.mod_revision`),
    version: readU64(fields.string(5), `${path}.version`),
    lease: readU64(fields.string(6), `${path}.lease`),
  };
}

const EVENT: MessageSchema = {
  name: "Event",
  fields: {
    1: { name: "type", kind: "uint" },
    2: { name: "kv", kind: "message" },
    3: { name: "prev_kv", kind: "message" },
  },
};

const EVENT_PUT = 0;
const EVENT_DELETE = 1;

function writeEvent(writer: BinaryWriter, event: KvEvent): void {
  writeUint(writer, 1, event.type === "put" ? EVENT_PUT : EVENT_DELETE, "Event.type");
  writeMessage(writer, 2, (w) => writeKeyValue(w, event.kv));
  const prevKv = event.prevKv;
  if (prevKv !== null) writeMessage(writer, 3, (w) => writeKeyValue(w, prevKv));
}

function readEvent(bytes: Uint8Array, path: string): KvEvent {
  const fields = decodeFields(bytes, EVENT, path);
  const type = fields.uint(1);
  if (type !== EVENT_PUT && type !== EVENT_DELETE)
    throw new NativeProtocolError(`${path}.type ${type} is unknown`);
  const prevKv = fields.message(3);
  return {
    type: type === EVENT_PUT ? "put" : "delete",
    kv: readKeyValue(fields.requiredMessage(2), `${path}.kv`),
    prevKv: prevKv === undefined ? null : readKeyValue(prevKv, `${path}.prev_kv`),
  };
}

export const WATCH_CREATE: MessageSchema = {
  name: "WatchCreate",
  fields: {
    1: { name: "key", kind: "bytes" },
    2: { name: "range_end", kind: "bytes" },
    3: { name: "start_revision", kind: "string" },
    4: { name: "prev_kv", kind: "bool" },
    5: { name: "no_put", kind: "bool" },
    6: { name: "no_delete", kind: "bool" },
    7: { name: "progress_notify", kind: "bool" },
  },
};

export function writeWatchCreate(writer: BinaryWriter, request: WatchRequest): void {
  const filters = request.filters ?? [];
  writeBytes(writer, 1, request.key);
  writeBytes(writer, 2, request.rangeEnd ?? new Uint8Array(0));
  writeU64(writer, 3, request.startRevision ?? 0n, "WatchCreate.start_revision");
  writeBool(writer, 4, request.prevKv ?? false);
  writeBool(writer, 5, filters.includes("noPut"));
  writeBool(writer, 6, filters.includes("noDelete"));
  writeBool(writer, 7, request.progressNotify ?? false);
}

export function readWatchCreate(bytes: Uint8Array, path: string): WatchRequest {
  const fields = decodeFields(bytes, WATCH_CREATE, path);
  const filters: WatchFilter[] = [];
  if (fields.bool(5)) filters.push("noPut");
  if (fields.bool(6)) filters.push("noDelete");
  return {
    key: fields.bytes(1),
    rangeEnd: fields.bytes(2),
    startRevision: readU64(fields.string(3), `${path}.start_revision`),
    prevKv: fields.bool(4),
    filters,
    progressNotify: fields.bool(7),
  };
}

const WATCH_EVENTS: MessageSchema = {
  name: "WatchEvents",
  fields: {
    1: { name: "watch_id", kind: "uint" },
    2: { name: "revision", kind: "string" },
    3: { name: "compact_revision", kind: "string" },
    4: { name: "canceled", kind: "bool" },
    5: { name: "cancel_reason", kind: "string" },
    6: { name: "fragment", kind: "bool" },
    7: { name: "events", kind: "message", repeated: true },
  },
};

export function writeWatchEvents(writer: BinaryWriter, response: WatchResponse): void {
  writeUint(writer, 1, response.watchId, "WatchEvents.watch_id");
  writeU64(writer, 2, response.revision, "WatchEvents.revision");
  writeU64(writer, 3, response.compactRevision, "WatchEvents.compact_revision");
  writeBool(writer, 4, response.canceled);
  writeString(writer, 5, response.cancelReason);
  writeBool(writer, 6, response.fragment);
  for (const event of response.events) writeMessage(writer, 7, (w) => writeEvent(w, event));
}

export function readWatchEvents(bytes: Uint8Array, path: string): WatchResponse {
  const fields = decodeFields(bytes, WATCH_EVENTS, path);
  return {
    watchId: fields.uint(1),
    revision: readU64(fields.string(2), `${path}.revision`),
    compactRevision: readU64(fields.string(3), `${path}.compact_revision`),
    canceled: fields.bool(4),
    cancelReason: fields.string(5),
    fragment: fields.bool(6),
    events: fields.messages(7).map((event, i) => readEvent(event, `${path}.events[${i}]`)),
  };
}

const LEASE: MessageSchema = {
  name: "Lease",
  fields: {
    1: { name: "id", kind: "string" },
    2: { name: "granted_ttl", kind: "uint" },
    3: { name: "remaining_ttl", kind: "uint" },
    4: { name: "keys", kind: "message", repeated: true },
  },
};

/** A lease as the lease methods answer it; `keys` only from TimeToLive when asked for. */
export type LeaseInfo = TimeToLive;

export function writeLease(writer: BinaryWriter, lease: LeaseInfo): void {
  writeU64(writer, 1, lease.id, "Lease.id");
  writeUint(writer, 2, lease.grantedTtlSeconds, "Lease.granted_ttl");
  writeUint(writer, 3, lease.remainingTtlSeconds, "Lease.remaining_ttl");
  // `repeated bytes` on the wire: each key is one length-delimited field 4.
  for (const key of lease.keys) writeEncodedMessage(writer, 4, key);
}

export function readLease(bytes: Uint8Array, path: string): LeaseInfo {
  const fields = decodeFields(bytes, LEASE, path);
  return {
    id: readU64(fields.string(1), `${path}.id`),
    grantedTtlSeconds: fields.uint(2),
    remainingTtlSeconds: fields.uint(3),
    keys: fields.messages(4),
  };
}

export function leaseOfSummary(summary: LeaseSummary): LeaseInfo {
  return { id: summary.id, grantedTtlSeconds: summary.ttlSeconds, remainingTtlSeconds: 0, keys: [] };
}
