// Pure parsing of the client commands' input: txn scripts, key ranges and flags, global
// options (durations, endpoints, ETCDCTL_ENDPOINTS), and global flags given before the command.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import { parseDuration, parseEndpoints, resolveGlobals } from "../../../src/cli/client/context.js";
import { UsageError } from "../../../src/cli/client/errors.js";
import { grpcTarget } from "../../../src/cli/client/rpc.js";
import {
  keyRange,
  parseLeaseId,
  prefixEnd,
  putRequest,
  rangeRequest,
} from "../../../src/cli/client/requests.js";
import { parseCompare, parseOp, parseTxnScript, splitWords } from "../../../src/cli/client/txn-script.js";
import { normalizeArgv } from "../../../src/cli/program.js";

const enc = (text: string) => new TextEncoder().encode(text);
const dec = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

test("a txn script: compares, success ops and failure ops, with quoting and flags", () => {
  const script = [
    'mod("counter") > "0"',
    'value("greeting") = "hello world"',
    'ver("v") != "3"',
    'c("c") < "10"',
    'lease("l") = "694d7a3d9b7f9e0a"',
    "",
    'put counter "two words"',
    "get config/ --prefix --limit=5",
    "del old --prev-kv",
    "",
    "put counter 1 --lease=1f",
    "",
  ].join("\n");
  const txn = parseTxnScript(script);
  assert.equal(txn.compare.length, 5);
  const [mod, value, version, createRev, lease] = txn.compare;
  assert.equal(mod?.target, Compare_CompareTarget.Mod);
  assert.equal(mod?.result, Compare_CompareResult.Greater);
  assert.deepEqual(mod?.targetUnion, { case: "modRevision", value: 0n });
  assert.equal(dec(mod?.key), "counter");
  assert.deepEqual(value?.targetUnion, { case: "value", value: enc("hello world") });
  assert.equal(version?.result, Compare_CompareResult.NotEqual);
  assert.deepEqual(version?.targetUnion, { case: "version", value: 3n });
  assert.equal(createRev?.result, Compare_CompareResult.Less);
  assert.deepEqual(lease?.targetUnion, { case: "lease", value: 0x694d7a3d9b7f9e0an });

  assert.equal(txn.success.length, 3);
  const [put, get, del] = txn.success;
  assert.equal(put?.request?.case, "requestPut");
  assert.equal(dec(put?.request?.case === "requestPut" ? put.request.value.value : undefined), "two words");
  assert.equal(get?.request?.case, "requestRange");
  if (get?.request?.case === "requestRange") {
    assert.equal(dec(get.request.value.rangeEnd), "config0");
    assert.equal(get.request.value.limit, 5n);
  }
  assert.equal(del?.request?.case === "requestDeleteRange" && del.request.value.prevKv, true);
  assert.equal(txn.failure.length, 1);
  const [failurePut] = txn.failure;
  assert.equal(failurePut?.request?.case === "requestPut" && failurePut.request.value.lease, 0x1fn);
});

test("a script may have empty sections and may end without a blank line", () => {
  const onlyOps = parseTxnScript("\nput a 1\n");
  assert.equal(onlyOps.compare.length, 0);
  assert.equal(onlyOps.success.length, 1);
  assert.equal(onlyOps.failure.length, 0);
  const empty = parseTxnScript("");
  assert.deepEqual([empty.compare.length, empty.success.length, empty.failure.length], [0, 0, 0]);
});

test("malformed txn lines are usage errors naming the line", () => {
  assert.throws(() => parseCompare('mod(counter) > "0"'), /malformed comparison: mod\(counter\)/);
  assert.throws(() => parseCompare('size("k") = "1"'), /unknown target size/);
  assert.throws(() => parseCompare('mod("k") >= "1"'), UsageError);
  assert.throws(() => parseCompare('mod("k") > "x"'), /non-negative integer/);
  assert.throws(() => parseOp("put onlykey"), /put needs <key> <value>/);
  assert.throws(() => parseOp("watch k"), /expected put, get or del/);
  assert.throws(() => parseOp("get k --bogus"), /unknown flag --bogus/);
  assert.throws(() => parseOp("put k v --lease"), /needs a value/);
  assert.throws(() => parseTxnScript('mod("k") > "0"\n\nput k\n'), /put needs/);
});

test("words split on spaces; quoted words take escapes", () => {
  assert.deepEqual(splitWords('put "a b" "c\\"d" e'), ["put", "a b", 'c"d', "e"]);
  assert.deepEqual(splitWords('put k "line\\nbreak"'), ["put", "k", "line\nbreak"]);
});

test("key ranges: range end, --prefix (empty = everything), --from-key, and their conflicts", () => {
  assert.deepEqual(prefixEnd(enc("a")), enc("b"));
  assert.deepEqual(prefixEnd(Uint8Array.of(0x61, 0xff)), enc("b"));
  assert.deepEqual(prefixEnd(Uint8Array.of(0xff, 0xff)), Uint8Array.of(0));
  assert.deepEqual(keyRange("a", "c", {}), { key: enc("a"), rangeEnd: enc("c") });
  assert.deepEqual(keyRange("", undefined, { prefix: true }), {
    key: Uint8Array.of(0),
    rangeEnd: Uint8Array.of(0),
  });
  assert.deepEqual(keyRange("k", undefined, { fromKey: true }), {
    key: enc("k"),
    rangeEnd: Uint8Array.of(0),
  });
  assert.throws(
    () => keyRange("a", undefined, { prefix: true, fromKey: true }),
    /cannot be set at the same time/,
  );
  assert.throws(() => keyRange("a", "b", { prefix: true }), /only accept one argument/);
});

test("get flags: sort, order, limit, revision, consistency; bad values are refused", () => {
  const request = rangeRequest("a", "z", {
    sortBy: "modify",
    order: "DESCEND",
    limit: "10",
    rev: "42",
    consistency: "s",
  });
  assert.equal(request.sortTarget, RangeRequest_SortTarget.Mod);
  assert.equal(request.sortOrder, RangeRequest_SortOrder.Descend);
  assert.equal(request.limit, 10n);
  assert.equal(request.revision, 42n);
  assert.equal(request.serializable, true);
  assert.equal(rangeRequest("a", undefined, { sortBy: "KEY" }).sortOrder, RangeRequest_SortOrder.Ascend);
  assert.throws(() => rangeRequest("a", undefined, { sortBy: "SIZE" }), /bad --sort-by/);
  assert.throws(() => rangeRequest("a", undefined, { order: "UP" }), /bad --order/);
  assert.throws(() => rangeRequest("a", undefined, { limit: "-1" }), /bad --limit/);
  assert.throws(() => rangeRequest("a", undefined, { consistency: "x" }), /unknown consistency/);
});

test("lease ids are hex, up to 64 bits, carried as the API's signed int64", () => {
  assert.equal(parseLeaseId("694d7a3d9b7f9e0a"), 0x694d7a3d9b7f9e0an);
  assert.equal(parseLeaseId("ffffffffffffffff"), -1n);
  assert.throws(() => parseLeaseId("xyz"), /bad lease ID/);
  assert.throws(() => parseLeaseId("1".repeat(17)), /bad lease ID/);
  assert.equal(putRequest("k", "v", { lease: "0" }).lease, 0n);
});

test("global options: Go durations, endpoints, write-out and ETCDCTL_ENDPOINTS", () => {
  assert.equal(parseDuration("2s", "--dial-timeout"), 2000);
  assert.equal(parseDuration("1m30s", "--dial-timeout"), 90_000);
  assert.equal(parseDuration("250ms", "--dial-timeout"), 250);
  for (const bad of ["", "2", "0s", "s", "2x", "-1s"])
    assert.throws(() => parseDuration(bad, "--dial-timeout"), UsageError);
  assert.deepEqual(parseEndpoints("127.0.0.1:2379, http://h:1,[::1]:3"), [
    "127.0.0.1:2379",
    "http://h:1",
    "[::1]:3",
  ]);
  assert.throws(() => parseEndpoints("nohost"), /bad endpoint/);
  assert.throws(() => parseEndpoints("https://h:1"), /TLS/);
  assert.equal(grpcTarget("http://127.0.0.1:2379"), "127.0.0.1:2379");
  const flags = { dialTimeout: "2s", commandTimeout: "5s", writeOut: "simple" };
  assert.deepEqual(resolveGlobals(flags, {}).endpoints, ["127.0.0.1:2379"]);
  assert.deepEqual(resolveGlobals(flags, { ETCDCTL_ENDPOINTS: "a:1,b:2" }).endpoints, ["a:1", "b:2"]);
  assert.deepEqual(resolveGlobals({ ...flags, endpoints: "c:3" }, { ETCDCTL_ENDPOINTS: "a:1" }).endpoints, [
    "c:3",
  ]);
  assert.throws(() => resolveGlobals({ ...flags, writeOut: "yaml" }, {}), /bad --write-out/);
});

test("global flags before the command move behind the command words", () => {
  assert.deepEqual(normalizeArgv(["--endpoints", "a:1", "-w", "json", "get", "k"]), [
    "get",
    "--endpoints",
    "a:1",
    "-w",
    "json",
    "k",
  ]);
  assert.deepEqual(normalizeArgv(["--endpoints=a:1", "lease", "grant", "10"]), [
    "lease",
    "grant",
    "--endpoints=a:1",
    "10",
  ]);
  assert.deepEqual(normalizeArgv(["get", "k", "--endpoints", "a:1"]), ["get", "k", "--endpoints", "a:1"]);
  // Start's etcd-style single-dash flags still mean start.
  assert.deepEqual(normalizeArgv(["-name", "n1"]), ["start", "--name", "n1"]);
});
