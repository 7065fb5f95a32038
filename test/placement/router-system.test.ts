// The reserved system keyspace: its prefix and spans, the catalog's keys under it, split keys
// above it; and through the RangeRouter, system keys hidden from user reads (and counts),
// left alone by user deletes, and refused for user writes (SystemKeyError, nothing sent).
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareBytes, concatBytes } from "../../src/kv/bytes.js";
import { deleteRangeRequest, putRequest, rangeRequest, txnRequest } from "../../src/kv/commands.js";
import {
  SYSTEM_PREFIX,
  SYSTEM_SPAN,
  SystemKeyError,
  catalogKeys,
  isAllowedSplitKey,
  isSystemKey,
  minSplitKey,
  userSpans,
} from "../../src/placement/router/system-keys.js";
import { RangeRouter } from "../../src/placement/router/router.js";
import { RouteTable } from "../../src/placement/routes/table.js";
import { b, split } from "./arbitraries.js";
import { fakeRanges } from "./router-fakes.js";

const ALL = Uint8Array.of(0);
const sys = (suffix: string) => concatBytes(SYSTEM_PREFIX, b(suffix));
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

test("the system prefix, its span, the catalog keys and the smallest split key", () => {
  assert.deepEqual([...SYSTEM_PREFIX], [0, 0, ...b("concord/")]);
  assert.deepEqual([...SYSTEM_SPAN.start], [...SYSTEM_PREFIX]);
  assert.deepEqual([...SYSTEM_SPAN.end!], [0, 0, ...b("concord0")]);
  assert.deepEqual([...catalogKeys().prefix], [...sys("catalog/")]);
  assert.ok(isSystemKey(catalogKeys().version));
  assert.ok(isSystemKey(SYSTEM_PREFIX));
  assert.ok(!isSystemKey(b("concord/x")));
  assert.ok(!isSystemKey(Uint8Array.of(0, 0)));
  assert.ok(!isSystemKey(SYSTEM_SPAN.end!));
  assert.ok(compareBytes(minSplitKey, SYSTEM_SPAN.end!) > 0);
  assert.ok(!isAllowedSplitKey(SYSTEM_SPAN.end!));
  assert.ok(!isAllowedSplitKey(sys("catalog/route/")));
  assert.ok(isAllowedSplitKey(minSplitKey));
  assert.ok(isAllowedSplitKey(b("a")));
  assert.match(new SystemKeyError(sys("x")).message, /key is reserved for Concord's system data/);
});

test("userSpans: a span minus the system span", () => {
  const show = (start: Uint8Array, end: Uint8Array | null) =>
    userSpans({ start, end }).map((span) => [text(span.start), span.end === null ? null : text(span.end)]);
  const [pre, post] = [text(SYSTEM_PREFIX), text(SYSTEM_SPAN.end!)];
  assert.deepEqual(show(b("a"), b("z")), [["a", "z"]]);
  assert.deepEqual(show(b("a"), null), [["a", null]]);
  assert.deepEqual(show(Uint8Array.of(0), Uint8Array.of(1)), [
    ["\0", pre],
    [post, "\x01"],
  ]);
  assert.deepEqual(show(Uint8Array.of(0), null), [
    ["\0", pre],
    [post, null],
  ]);
  assert.deepEqual(show(sys("catalog/"), sys("catalog0")), []);
  assert.deepEqual(show(sys("x"), b("b")), [[post, "b"]]);
  assert.deepEqual(show(Uint8Array.of(0), sys("m")), [["\0", pre]]);
  assert.deepEqual(show(Uint8Array.of(0), SYSTEM_PREFIX), [["\0", pre]], "the end is exclusive");
  assert.deepEqual(show(b("b"), b("a")), [], "an empty span");
});

function world(userKeysOnly = true) {
  const routes = split(["m"]);
  const table = new RouteTable();
  table.applySnapshot(1, routes);
  const directory = fakeRanges(routes);
  const router = new RangeRouter({
    table,
    replicas: directory,
    reload: () => Promise.resolve(),
    sleep: () => Promise.resolve(),
    userKeysOnly,
  });
  const range1 = directory.replica(1)!;
  range1.write(putRequest({ key: catalogKeys().version, value: b("v") }));
  range1.write(putRequest({ key: sys("other"), value: b("o") }));
  return { router, directory, range1 };
}

test("system keys are hidden from user reads and counts", async () => {
  const { router } = world();
  for (const key of [Uint8Array.of(0, 0, 1), b("a"), b("x")]) {
    assert.equal((await router.propose(putRequest({ key, value: b("u") }))).response.kind, "put");
  }
  const all = await router.range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: ALL }));
  assert.deepEqual(
    all.kvs.map((kv) => [...kv.key]),
    [[0, 0, 1], [...b("a")], [...b("x")]],
  );
  assert.equal(all.count, 3);
  const counted = await router.range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: ALL, countOnly: true }));
  assert.equal(counted.count, 3);
  const limited = await router.range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: ALL, limit: 1 }));
  assert.equal(limited.kvs.length, 1);
  assert.equal(limited.more, true);
  assert.equal(limited.count, 3);
  for (const consistency of ["linearizable", "serializable"] as const) {
    const single = await router.range(rangeRequest({ key: catalogKeys().version }), consistency);
    assert.equal(single.count, 0);
    assert.deepEqual(single.kvs, []);
    const prefix = await router.range(
      rangeRequest({ key: SYSTEM_PREFIX, rangeEnd: SYSTEM_SPAN.end! }),
      consistency,
    );
    assert.equal(prefix.count, 0);
  }
});

test("user writes naming system keys are refused before anything is sent", async () => {
  const { router, directory, range1 } = world();
  const before = range1.store.revision;
  const refused = [
    putRequest({ key: catalogKeys().version, value: b("evil") }),
    deleteRangeRequest({ key: catalogKeys().version }),
    deleteRangeRequest({ key: SYSTEM_PREFIX, rangeEnd: ALL }),
    txnRequest({ success: [putRequest({ key: sys("x"), value: b("") })] }),
    txnRequest({ success: [rangeRequest({ key: Uint8Array.of(0), rangeEnd: b("a") })] }),
  ];
  for (const command of refused) {
    await assert.rejects(router.propose(command), SystemKeyError, command.kind);
  }
  assert.equal(range1.store.revision, before);
  for (const replica of directory.replicas.values()) {
    assert.equal(replica.calls.filter((call) => call.kind === "propose").length, 0);
  }
});

test("a user delete over everything leaves the system keys alone", async () => {
  const { router, range1 } = world();
  for (const key of [Uint8Array.of(0, 0, 1), b("a"), b("x")]) {
    await router.propose(putRequest({ key, value: b("u") }));
  }
  const result = await router.propose(
    deleteRangeRequest({ key: Uint8Array.of(0), rangeEnd: ALL, prevKv: true }),
  );
  assert.equal(result.response.kind, "deleteRange");
  if (result.response.kind !== "deleteRange") return;
  assert.equal(result.response.deleted, 3);
  assert.deepEqual(
    result.response.prevKvs.map((kv) => [...kv.key]),
    [[0, 0, 1], [...b("a")], [...b("x")]],
  );
  const system = range1.store.range(rangeRequest({ key: SYSTEM_PREFIX, rangeEnd: SYSTEM_SPAN.end! }));
  assert.equal(system.count, 2, "the catalog keys are still there");
});

test("with userKeysOnly false the system keys are ordinary keys", async () => {
  const { router } = world(false);
  const all = await router.range(rangeRequest({ key: Uint8Array.of(0), rangeEnd: ALL }));
  assert.equal(all.count, 2);
  const put = await router.propose(putRequest({ key: sys("z"), value: b("1") }));
  assert.equal(put.response.kind, "put");
});
