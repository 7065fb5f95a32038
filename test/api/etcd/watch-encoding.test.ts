// The hand-built WatchResponse bytes (src/api/etcd/watch-encoding.ts) against protobuf-es
// toBinary of the same message, byte for byte: events of both types with and without prev_kv,
// empty and large fields, int64 extremes and HLC-sized revisions, negative watch ids, cancel
// reasons with non-ASCII text; the event and header caches; and the wrapper grpc-js writes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { KvEvent, KeyValue as KvKeyValue } from "../../../src/kv/results.js";
import { toKeyValue } from "../../../src/api/etcd/convert.js";
import { EventSchema, Event_EventType } from "../../../src/api/etcd/gen/kv_pb.js";
import {
  ResponseHeaderSchema,
  Watch,
  WatchCancelRequestSchema,
  WatchRequestSchema,
  WatchResponseSchema,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { grpcServiceDefinition } from "../../../src/api/etcd/grpc-service.js";
import { watchServiceDefinition } from "../../../src/api/etcd/watch-service.js";
import {
  encodeEvent,
  encodeWatchResponse,
  eventField,
  HeaderFieldCache,
} from "../../../src/api/etcd/watch-encoding.js";
import type { HeaderFields } from "../../../src/api/etcd/proto-writer.js";

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
/** A revision the size Concord's HLC timestamps have (48-bit milliseconds, 16-bit logical). */
const HLC_REVISION = (1_790_000_000_000n << 16n) | 0x1234n;

/** A deterministic generator, so a failure names a reproducible case. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

const INT64_SAMPLES = [
  0n,
  1n,
  127n,
  128n,
  300n,
  2n ** 32n,
  2n ** 53n + 1n,
  HLC_REVISION,
  INT64_MAX,
  -1n,
  INT64_MIN,
];

function bytes(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

function keyValue(next: () => number): KvKeyValue {
  return {
    key: bytes(next, pick(next, [0, 1, 5, 200])),
    value: bytes(next, pick(next, [0, 3, 256, 17_000])),
    createRevision: pick(next, INT64_SAMPLES),
    modRevision: pick(next, INT64_SAMPLES),
    version: pick(next, INT64_SAMPLES),
    lease: pick(next, INT64_SAMPLES),
  };
}

function kvEvent(next: () => number): KvEvent {
  return {
    type: next() < 0.5 ? "put" : "delete",
    kv: keyValue(next),
    prevKv: next() < 0.5 ? null : keyValue(next),
  };
}

function protoEvent(event: KvEvent) {
  return create(EventSchema, {
    type: event.type === "put" ? Event_EventType.Put : Event_EventType.Delete,
    kv: toKeyValue(event.kv),
    ...(event.prevKv === null ? {} : { prevKv: toKeyValue(event.prevKv) }),
  });
}

function headerFields(next: () => number): HeaderFields {
  return {
    clusterId: pick(next, [0n, 0xdeadbeefcafef00dn, 1n]),
    memberId: pick(next, [0n, 1n, 3n, 2n ** 64n - 1n]),
    revision: pick(next, INT64_SAMPLES),
    raftTerm: pick(next, [0n, 1n, 77n]),
  };
}

test("an encoded WatchResponse is byte for byte what toBinary writes", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const header = headerFields(next);
    const events = Array.from({ length: pick(next, [0, 1, 2, 5]) }, () => kvEvent(next));
    const fields = {
      watchId: pick(next, [0n, 1n, 7n, -1n, HLC_REVISION]),
      created: next() < 0.3,
      canceled: next() < 0.3,
      compactRevision: pick(next, INT64_SAMPLES),
      cancelReason: pick(next, ["", "mvcc: required revision has been compacted", "überlastet ✓"]),
      fragment: next() < 0.3,
    };
    const expected = toBinary(
      WatchResponseSchema,
      create(WatchResponseSchema, {
        header: create(ResponseHeaderSchema, header),
        ...fields,
        events: events.map(protoEvent),
      }),
    );
    const actual = encodeWatchResponse({
      header: new HeaderFieldCache().field(header),
      ...fields,
      events: events.map(eventField),
    });
    assert.deepEqual(actual, expected, `seed ${seed}`);
    for (const event of events)
      assert.deepEqual(encodeEvent(event), toBinary(EventSchema, protoEvent(event)));
  }
});

test("fields left out default to zero values, as toBinary leaves them out", () => {
  const header = { clusterId: 5n, memberId: 2n, revision: 9n, raftTerm: 3n };
  const actual = encodeWatchResponse({ header: new HeaderFieldCache().field(header), watchId: -1n });
  const expected = toBinary(
    WatchResponseSchema,
    create(WatchResponseSchema, { header: create(ResponseHeaderSchema, header), watchId: -1n }),
  );
  assert.deepEqual(actual, expected);
});

test("the encoded bytes are toBinary's and decode to the fields", () => {
  const next = random(42);
  const event = kvEvent(next);
  const header = { clusterId: 0xabcn, memberId: 1n, revision: HLC_REVISION, raftTerm: 4n };
  const encoded = encodeWatchResponse({
    header: new HeaderFieldCache().field(header),
    watchId: 3n,
    fragment: true,
    events: [eventField(event)],
  });
  const decoded = fromBinary(WatchResponseSchema, encoded);
  assert.deepEqual(toBinary(WatchResponseSchema, decoded), encoded);
  assert.equal(decoded.watchId, 3n);
  assert.equal(decoded.fragment, true);
  assert.equal(decoded.header?.revision, HLC_REVISION);
  assert.deepEqual(toBinary(EventSchema, decoded.events[0]!), toBinary(EventSchema, protoEvent(event)));
});

test("an event is encoded once and shared by the watches with and without prev_kv", () => {
  const next = random(7);
  const published: KvEvent = { type: "put", kv: keyValue(next), prevKv: keyValue(next) };
  // What kv/watcher.ts hands a watch that did not ask for prev_kv: a copy without it.
  const stripped: KvEvent = { ...published, prevKv: null };
  const withPrev = eventField(published);
  const withoutPrev = eventField(stripped);
  assert.equal(eventField(published), withPrev, "the prev_kv form is cached");
  assert.equal(eventField({ ...published, prevKv: null }), withoutPrev, "the plain form is shared by copies");
  assert.notDeepEqual(withPrev, withoutPrev);
  const expectedPlain = toBinary(
    WatchResponseSchema,
    create(WatchResponseSchema, { events: [protoEvent(stripped)] }),
  );
  assert.deepEqual(withoutPrev, expectedPlain);
});

test("an event the cache was not made for is encoded afresh, never answered from the cache", () => {
  const next = random(8);
  const kv = keyValue(next);
  const first: KvEvent = { type: "put", kv, prevKv: keyValue(next) };
  eventField(first);
  const otherPrev: KvEvent = { type: "put", kv, prevKv: keyValue(next) };
  const asDelete: KvEvent = { type: "delete", kv, prevKv: null };
  for (const event of [otherPrev, asDelete, first]) {
    const expected = toBinary(
      WatchResponseSchema,
      create(WatchResponseSchema, { events: [protoEvent(event)] }),
    );
    assert.deepEqual(eventField(event), expected);
  }
});

test("the header field is reused while the header stays the same and re-encoded when it changes", () => {
  const cache = new HeaderFieldCache();
  const header = { clusterId: 1n, memberId: 2n, revision: 10n, raftTerm: 3n };
  const first = cache.field(header);
  assert.equal(cache.field({ ...header }), first);
  for (const changed of [
    { ...header, revision: 11n },
    { ...header, raftTerm: 4n },
    { ...header, memberId: 5n },
    { ...header, clusterId: 6n },
  ]) {
    const bytes = cache.field(changed);
    assert.notEqual(bytes, first);
    const expected = toBinary(
      WatchResponseSchema,
      create(WatchResponseSchema, { header: create(ResponseHeaderSchema, changed) }),
    );
    assert.deepEqual(bytes, expected);
  }
});

test("the Watch definition writes the encoded bytes as they are", () => {
  const generic = grpcServiceDefinition(Watch).Watch!;
  const definition = watchServiceDefinition();
  const method = definition.Watch!;
  assert.deepEqual(Object.keys(definition), ["Watch"]);
  assert.equal(method.path, generic.path);
  assert.equal(method.requestStream, true);
  assert.equal(method.responseStream, true);
  const request = create(WatchRequestSchema, {
    requestUnion: { case: "cancelRequest", value: create(WatchCancelRequestSchema, { watchId: 3n }) },
  });
  assert.deepEqual(method.requestDeserialize(generic.requestSerialize(request)), request);

  const header = { clusterId: 9n, memberId: 1n, revision: HLC_REVISION, raftTerm: 2n };
  const encoded = encodeWatchResponse({
    header: new HeaderFieldCache().field(header),
    watchId: 4n,
    events: [eventField(kvEvent(random(99)))],
  });
  const written = method.responseSerialize(encoded);
  assert.deepEqual(new Uint8Array(written), encoded);
  assert.equal(written.buffer, encoded.buffer, "the bytes are not copied or encoded again");
});
