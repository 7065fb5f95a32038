// Output formatting of representative responses in simple, table and json, checked against
// what etcdctl 3.4 prints for the same responses (the expected texts were taken from it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Event_EventType } from "../../../src/api/etcd/gen/kv_pb.js";
import {
  DeleteRangeResponseSchema,
  LeaseGrantResponseSchema,
  LeaseLeasesResponseSchema,
  LeaseTimeToLiveResponseSchema,
  MemberListResponseSchema,
  PutResponseSchema,
  RangeResponseSchema,
  StatusResponseSchema,
  TxnResponseSchema,
  WatchResponseSchema,
} from "../../../src/api/etcd/gen/rpc_pb.js";
import {
  goDuration,
  printDelete,
  printEndpointHealth,
  printEndpointStatus,
  printGet,
  printLeaseGrant,
  printLeaseList,
  printMemberList,
  printPut,
  printTimeToLive,
  printTxn,
  printWatch,
  requireFormat,
} from "../../../src/cli/client/printers.js";
import { humanBytes, jsonText } from "../../../src/cli/client/render.js";

const enc = (text: string) => new TextEncoder().encode(text);
const header = {
  clusterId: 15118495548433857066n,
  memberId: 13668033151171901709n,
  revision: 5n,
  raftTerm: 2n,
};
const HEADER_JSON =
  '"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":5,"raft_term":2}';
const fooKv = { key: enc("foo"), createRevision: 2n, modRevision: 3n, version: 2n, value: enc("bar2") };

test("get: key/value lines, values only, json with base64 and exact 64-bit numbers, a table", () => {
  const response = create(RangeResponseSchema, {
    header,
    kvs: [fooKv, { ...fooKv, key: enc("a"), value: enc("1") }],
    count: 2n,
  });
  assert.equal(printGet("simple", response), "foo\nbar2\na\n1\n");
  assert.equal(printGet("simple", response, { printValueOnly: true }), "bar2\n1\n");
  assert.equal(
    printGet("simple", create(RangeResponseSchema, { header, count: 7n }), { countOnly: true }),
    "7\n",
  );
  const single = create(RangeResponseSchema, { header, kvs: [fooKv], count: 1n });
  assert.equal(
    printGet("json", single),
    `{${HEADER_JSON},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"YmFyMg=="}],"count":1}\n`,
  );
  assert.equal(printGet("json", create(RangeResponseSchema, { header })), `{${HEADER_JSON}}\n`);
  assert.equal(
    printGet("table", single),
    [
      "+-----+-------+-----------------+--------------+---------+-------+",
      "| KEY | VALUE | CREATE REVISION | MOD REVISION | VERSION | LEASE |",
      "+-----+-------+-----------------+--------------+---------+-------+",
      "| foo |  bar2 |               2 |            3 |       2 |       |",
      "+-----+-------+-----------------+--------------+---------+-------+",
      "",
    ].join("\n"),
  );
});

test("put and del: OK, the deleted count, previous pairs, json", () => {
  assert.equal(printPut("simple", create(PutResponseSchema, { header })), "OK\n");
  assert.equal(printPut("simple", create(PutResponseSchema, { header, prevKv: fooKv })), "OK\nfoo\nbar2\n");
  assert.equal(printPut("json", create(PutResponseSchema, { header })), `{${HEADER_JSON}}\n`);
  assert.equal(
    printDelete("simple", create(DeleteRangeResponseSchema, { header, deleted: 1n, prevKvs: [fooKv] })),
    "1\nfoo\nbar2\n",
  );
  assert.equal(printDelete("simple", create(DeleteRangeResponseSchema, { header })), "0\n");
  assert.equal(
    printDelete("json", create(DeleteRangeResponseSchema, { header, deleted: 1n })),
    `{${HEADER_JSON},"deleted":1}\n`,
  );
});

test("txn: SUCCESS or FAILURE, then each response after a blank line; json nests oneofs as Go does", () => {
  const response = create(TxnResponseSchema, {
    header,
    succeeded: true,
    responses: [
      { response: { case: "responsePut", value: { header: { revision: 12n } } } },
      { response: { case: "responseRange", value: { header: { revision: 12n }, kvs: [fooKv], count: 1n } } },
      { response: { case: "responseDeleteRange", value: { header: { revision: 12n }, deleted: 1n } } },
    ],
  });
  assert.equal(printTxn("simple", response), "SUCCESS\n\nOK\n\nfoo\nbar2\n\n1\n");
  assert.equal(printTxn("simple", create(TxnResponseSchema, { header })), "FAILURE\n");
  assert.equal(
    printTxn(
      "json",
      create(TxnResponseSchema, { header, responses: [response.responses[0]!, response.responses[2]!] }),
    ),
    `{${HEADER_JSON},"responses":[{"Response":{"ResponsePut":{"header":{"revision":12}}}},` +
      `{"Response":{"ResponseDeleteRange":{"header":{"revision":12},"deleted":1}}}]}\n`,
  );
});

test("watch: event type, previous pair, pair; json as etcdctl's WatchResponse", () => {
  const response = create(WatchResponseSchema, {
    header,
    events: [
      {
        type: Event_EventType.Put,
        kv: { key: enc("w1"), value: enc("b") },
        prevKv: { key: enc("w1"), value: enc("a") },
      },
      { type: Event_EventType.Delete, kv: { key: enc("w1"), modRevision: 15n } },
    ],
  });
  assert.equal(printWatch("simple", response), "PUT\nw1\na\nw1\nb\nDELETE\nw1\n\n");
  const deleteOnly = create(WatchResponseSchema, { header, events: [response.events[1]!] });
  assert.equal(
    printWatch("json", deleteOnly),
    `{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":5,"raft_term":2},` +
      `"Events":[{"type":1,"kv":{"key":"dzE=","mod_revision":15}}],"CompactRevision":0,"Canceled":false,"Created":false}\n`,
  );
});

test("leases: etcdctl's sentences, hex ids, flattened json", () => {
  const id = 0x390da200e4e28f16n;
  assert.equal(
    printLeaseGrant("simple", create(LeaseGrantResponseSchema, { header, ID: id, TTL: 100n })),
    "lease 390da200e4e28f16 granted with TTL(100s)\n",
  );
  assert.equal(
    printLeaseGrant("json", create(LeaseGrantResponseSchema, { header, ID: id, TTL: 100n })),
    '{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":5,"raft_term":2,"ID":4111120159582883606,"TTL":100,"Error":""}\n',
  );
  const ttl = create(LeaseTimeToLiveResponseSchema, {
    header,
    ID: id,
    TTL: 99n,
    grantedTTL: 100n,
    keys: [enc("lk")],
  });
  assert.equal(
    printTimeToLive("simple", ttl, true),
    "lease 390da200e4e28f16 granted with TTL(100s), remaining(99s), attached keys([lk])\n",
  );
  assert.equal(
    printTimeToLive("simple", ttl, false),
    "lease 390da200e4e28f16 granted with TTL(100s), remaining(99s)\n",
  );
  assert.equal(
    printTimeToLive("simple", create(LeaseTimeToLiveResponseSchema, { header, ID: id, TTL: -1n }), false),
    "lease 390da200e4e28f16 already expired\n",
  );
  assert.equal(
    printTimeToLive("json", ttl, true),
    '{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":5,"raft_term":2,"id":4111120159582883606,"ttl":99,"granted-ttl":100,"keys":["bGs="]}\n',
  );
  const list = create(LeaseLeasesResponseSchema, { header, leases: [{ ID: id }, { ID: 0x1fn }] });
  assert.equal(printLeaseList("simple", list), "found 2 leases\n390da200e4e28f16\n000000000000001f\n");
});

test("members: simple lines, etcdctl's table, json with the proto's field names", () => {
  const response = create(MemberListResponseSchema, {
    header: { ...header, revision: 0n },
    members: [
      {
        ID: 0xbdae9bbc11dd390dn,
        name: "ref",
        peerURLs: ["http://127.0.0.1:23801"],
        clientURLs: ["http://127.0.0.1:23791"],
      },
    ],
  });
  assert.equal(
    printMemberList("simple", response),
    "bdae9bbc11dd390d, started, ref, http://127.0.0.1:23801, http://127.0.0.1:23791, false\n",
  );
  assert.equal(
    printMemberList("table", response),
    [
      "+------------------+---------+------+------------------------+------------------------+------------+",
      "|        ID        | STATUS  | NAME |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |",
      "+------------------+---------+------+------------------------+------------------------+------------+",
      "| bdae9bbc11dd390d | started |  ref | http://127.0.0.1:23801 | http://127.0.0.1:23791 |      false |",
      "+------------------+---------+------+------------------------+------------------------+------------+",
      "",
    ].join("\n"),
  );
  assert.equal(
    printMemberList("json", response),
    '{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"raft_term":2},"members":[{"ID":13668033151171901709,"name":"ref","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23791"]}]}\n',
  );
});

test("endpoint status and health as etcdctl prints them", () => {
  const status = create(StatusResponseSchema, {
    header: { ...header, memberId: 0xbdae9bbc11dd390dn },
    version: "3.4.23",
    dbSize: 20480n,
    leader: 0xbdae9bbc11dd390dn,
    raftIndex: 19n,
    raftTerm: 2n,
    raftAppliedIndex: 19n,
  });
  const statuses = [{ endpoint: "127.0.0.1:23791", status }];
  assert.equal(
    printEndpointStatus("simple", statuses),
    "127.0.0.1:23791, bdae9bbc11dd390d, 3.4.23, 20 kB, true, false, 2, 19, 19, \n",
  );
  assert.equal(
    printEndpointStatus("table", statuses),
    [
      "+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+",
      "|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |",
      "+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+",
      "| 127.0.0.1:23791 | bdae9bbc11dd390d |  3.4.23 |   20 kB |      true |      false |         2 |         19 |                 19 |        |",
      "+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+",
      "",
    ].join("\n"),
  );
  assert.match(
    printEndpointStatus("json", statuses),
    /^\[\{"Endpoint":"127.0.0.1:23791","Status":\{"header":\{.*\},"version":"3.4.23","dbSize":20480,"leader":13668033151171901709,"raftIndex":19,"raftTerm":2,"raftAppliedIndex":19\}\}\]\n$/,
  );
  const health = [
    { endpoint: "a:1", health: true, tookMs: 1.659535 },
    { endpoint: "b:2", health: false, tookMs: 2000, error: "context deadline exceeded" },
  ];
  assert.equal(
    printEndpointHealth("simple", health),
    "a:1 is healthy: successfully committed proposal: took = 1.659535ms\nb:2 is unhealthy: failed to commit proposal: context deadline exceeded\n",
  );
  assert.equal(
    printEndpointHealth("json", health),
    '[{"endpoint":"a:1","health":true,"took":"1.659535ms"},{"endpoint":"b:2","health":false,"took":"2s","error":"context deadline exceeded"}]\n',
  );
});

test("helpers: Go durations, go-humanize sizes, JSON bigints, unsupported formats", () => {
  assert.equal(goDuration(1.5), "1.5ms");
  assert.equal(goDuration(0.25), "250µs");
  assert.equal(goDuration(2500), "2.5s");
  assert.equal(humanBytes(20480), "20 kB");
  assert.equal(humanBytes(1_500_000), "1.5 MB");
  assert.equal(humanBytes(5), "5 B");
  assert.equal(
    jsonText({ big: 2n ** 64n - 1n, list: [1, "x"], gone: undefined }),
    '{"big":18446744073709551615,"list":[1,"x"]}',
  );
  assert.throws(
    () => requireFormat("table", ["simple", "json"], "put"),
    /table is not a supported output format for put/,
  );
});
