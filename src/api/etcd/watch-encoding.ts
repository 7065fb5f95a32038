/**
 * The wire bytes of etcd's WatchResponse, built by hand from pre-encoded parts, so a watch
 * fan-out encodes each event once instead of once per watch: one put seen by a hundred
 * watches is one Event encoding (cached per event, shared by every watch and every stream)
 * and a hundred small concatenations of header, watch id and the cached event bytes.
 *
 * The output is byte-for-byte what protobuf-es `toBinary(WatchResponseSchema, ...)` writes
 * for the same message (fields in number order, zero values of implicit-presence fields
 * left out, negative int64s as ten-byte varints); test/api/etcd/watch-encoding.test.ts
 * checks it against toBinary. The Watch method's serializer (watchServiceDefinition in
 * watch-service.ts) writes these bytes as they are.
 */
import type { KvEvent, KeyValue as KvKeyValue } from "../../kv/results.js";
import {
  ProtoWriter,
  WIRE_VARINT,
  headerFieldSize,
  tag,
  writeHeaderField,
  writeKeyValue,
  type HeaderFields,
} from "./proto-writer.js";

const textEncoder = new TextEncoder();

function encodeKeyValue(kv: KvKeyValue): Uint8Array {
  return writeKeyValue(new ProtoWriter(), kv).finish();
}

/** mvccpb.Event: type 1 (PUT = 0, DELETE = 1), kv 2, prev_kv 3. */
export function encodeEvent(event: KvEvent): Uint8Array {
  const writer = new ProtoWriter();
  if (event.type === "delete") writer.uint32(tag(1, WIRE_VARINT)).uint32(1);
  writer.bytesField(2, encodeKeyValue(event.kv));
  if (event.prevKv !== null) writer.bytesField(3, encodeKeyValue(event.prevKv));
  return writer.finish();
}

/** WatchResponse.events is field 11. */
const EVENTS_FIELD = 11;

/** The events field (tag, length, Event bytes) of one event, as a response carries it. */
function encodeEventField(event: KvEvent): Uint8Array {
  return new ProtoWriter().bytesField(EVENTS_FIELD, encodeEvent(event)).finish();
}

interface CachedEvent {
  readonly type: KvEvent["type"];
  /** The previous key-value the `withPrevKv` bytes carry. */
  readonly prevKv: KvKeyValue | null;
  withPrevKv: Uint8Array | undefined;
  withoutPrevKv: Uint8Array | undefined;
}

/**
 * Encoded events, keyed by the event's key-value object. A watch that did not ask for
 * prev_kv receives a copy of the published event without it (kv/watcher.ts), so the event
 * object differs per watch while its `kv` is the one the hub published: keying on `kv` lets
 * both kinds share one entry. An entry is used only when the event's type (and, for the
 * prev_kv form, its previous key-value object) is the one it was made for; anything else is
 * encoded afresh. Entries go with their key-values (a WeakMap), so the cache holds nothing
 * that the watch queues do not.
 */
const eventCache = new WeakMap<KvKeyValue, CachedEvent>();

/** The events field bytes of `event`, encoded at most once per published event. */
export function eventField(event: KvEvent): Uint8Array {
  let cached = eventCache.get(event.kv);
  if (cached === undefined || cached.type !== event.type) {
    cached = { type: event.type, prevKv: event.prevKv, withPrevKv: undefined, withoutPrevKv: undefined };
    eventCache.set(event.kv, cached);
  }
  if (event.prevKv === null) return (cached.withoutPrevKv ??= encodeEventField(event));
  if (cached.prevKv !== event.prevKv) return encodeEventField(event);
  return (cached.withPrevKv ??= encodeEventField(event));
}

/**
 * The header field (tag 1, length, ResponseHeader bytes) of a response, reusing the last
 * encoding while the header stays the same: every response of one publish carries the same
 * header, so a fan-out encodes it once.
 */
export class HeaderFieldCache {
  private last: { readonly fields: HeaderFields; readonly bytes: Uint8Array } | undefined;

  field(header: HeaderFields): Uint8Array {
    const last = this.last;
    if (
      last !== undefined &&
      last.fields.revision === header.revision &&
      last.fields.raftTerm === header.raftTerm &&
      last.fields.clusterId === header.clusterId &&
      last.fields.memberId === header.memberId
    ) {
      return last.bytes;
    }
    const bytes = writeHeaderField(new ProtoWriter(headerFieldSize(header)), header).finish();
    this.last = {
      fields: {
        clusterId: header.clusterId,
        memberId: header.memberId,
        revision: header.revision,
        raftTerm: header.raftTerm,
      },
      bytes,
    };
    return bytes;
  }
}

/** A WatchResponse's fields other than the header, with the events already encoded. */
export interface EncodedWatchResponse {
  /** The header field bytes (HeaderFieldCache.field). */
  readonly header: Uint8Array;
  readonly watchId: bigint;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compactRevision?: bigint;
  readonly cancelReason?: string;
  readonly fragment?: boolean;
  /** Events field bytes (eventField), in order. */
  readonly events?: readonly Uint8Array[];
}

/** The WatchResponse message bytes (what toBinary writes for the same fields). */
export function encodeWatchResponse(response: EncodedWatchResponse): Uint8Array {
  const events = response.events ?? [];
  const reason = response.cancelReason ?? "";
  const reasonBytes = reason.length > 0 ? textEncoder.encode(reason) : undefined;
  // Enough for every field at its longest (a 10-byte varint per int64), so one allocation.
  let capacity = response.header.length + 40 + (reasonBytes === undefined ? 0 : reasonBytes.length + 6);
  for (const event of events) capacity += event.length;
  const writer = new ProtoWriter(capacity)
    .raw(response.header)
    .int64Field(2, response.watchId)
    .boolField(3, response.created ?? false)
    .boolField(4, response.canceled ?? false)
    .int64Field(5, response.compactRevision ?? 0n);
  if (reasonBytes !== undefined) writer.bytesField(6, reasonBytes);
  writer.boolField(7, response.fragment ?? false);
  for (const event of events) writer.raw(event);
  return writer.view();
}
