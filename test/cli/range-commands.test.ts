// `concord range list|split|merge` through runCli against a real EtcdServer with a fake RangeAdmin
// (test/api/etcd/range-service-fake.ts): the simple, table and json output, readable keys,
// --hex, and the exit codes (1 refused, 2 usage with nothing sent, 3 busy or unreachable).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { displayKey, parseRouteId, parseSplitKey } from "../../src/cli/client/range-commands.js";
import { FakeRangeAdmin, serveRanges, type ServedRanges } from "../api/etcd/range-service-fake.js";
import { freePort } from "../free-port.js";
import { clientCli, type CliResult } from "./client/scenario.js";

const bytes = (text: string) => new TextEncoder().encode(text);

let served: ServedRanges;
let admin: FakeRangeAdmin;
let cli: (argv: readonly string[]) => Promise<CliResult>;

before(async () => {
  admin = new FakeRangeAdmin();
  served = await serveRanges(admin);
  cli = clientCli(served.endpoint, "/tmp");
});

after(async () => {
  await served.close();
});

/** The cells of a bordered table, row by row (borders dropped, cells trimmed). */
function tableCells(table: string): string[][] {
  return table
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .map((line) =>
      line
        .slice(1, -1)
        .split(" | ")
        .map((cell) => cell.trim()),
    );
}

function ok(result: CliResult): string {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  return result.stdout;
}

test("keys print readably: plain text, else quoted with escapes", () => {
  assert.equal(displayKey(bytes("user/m")), "user/m");
  assert.equal(displayKey(new Uint8Array(0)), '""');
  assert.equal(displayKey(bytes("\x00\x00concord/")), '"\\x00\\x00concord/"');
  assert.equal(displayKey(bytes('a "b"\\')), '"a \\"b\\"\\\\"');
  assert.equal(displayKey(Uint8Array.of(0xc3, 0xa9)), '"\\xc3\\xa9"');
  assert.equal(displayKey(bytes("+inf")), '"+inf"');
  assert.deepEqual(parseSplitKey("00ff", true), Uint8Array.of(0x00, 0xff));
  assert.deepEqual(parseSplitKey("é", false), Uint8Array.of(0xc3, 0xa9));
});

test("range list and split in table, simple and json", async () => {
  assert.equal(
    ok(await cli(["range", "list", "-w", "table"])),
    [
      "+----+-------+------+-------+--------+----------+--------+--------+------+",
      "| ID | START | END  | GROUP | STATE  | REPLICAS | LEADER |  SIZE  | LOAD |",
      "+----+-------+------+-------+--------+----------+--------+--------+------+",
      '|  1 |    "" | +inf |     1 | active |    1,2,3 |      2 | 1.5 MB | 12.3 |',
      "+----+-------+------+-------+--------+----------+--------+--------+------+",
      "",
    ].join("\n"),
  );

  assert.equal(
    ok(await cli(["range", "split", "user/m"])),
    '1, "", user/m, 1, active, 1,2,3, 2, 750 kB, 12.3\n2, user/m, +inf, 2, active, 1,2,3, 2, 750 kB, 12.3\n',
  );
  assert.deepEqual(admin.splitCalls.at(-1), bytes("user/m"));

  // A key with bytes that are not text, given in hex, prints escaped.
  const hexSplit = ok(await cli(["range", "split", "757365722f7a00ff", "--hex", "-w", "table"]));
  assert.deepEqual(tableCells(hexSplit), [
    ["ID", "START", "END", "GROUP", "STATE", "REPLICAS", "LEADER", "SIZE", "LOAD"],
    ["2", "user/m", '"user/z\\x00\\xff"', "2", "active", "1,2,3", "2", "375 kB", "12.3"],
    ["3", '"user/z\\x00\\xff"', "+inf", "3", "active", "1,2,3", "2", "375 kB", "12.3"],
  ]);

  assert.equal(
    ok(await cli(["range", "list"])),
    [
      '1, "", user/m, 1, active, 1,2,3, 2, 750 kB, 12.3',
      '2, user/m, "user/z\\x00\\xff", 2, active, 1,2,3, 2, 375 kB, 12.3',
      '3, "user/z\\x00\\xff", +inf, 3, active, 1,2,3, 2, 375 kB, 12.3',
      "",
    ].join("\n"),
  );

  const listed = JSON.parse(ok(await cli(["range", "list", "-w", "json"]))) as {
    header: { member_id: number };
    ranges: Record<string, unknown>[];
  };
  assert.equal(listed.header.member_id, served.member.nodeId);
  assert.equal(listed.ranges.length, 3);
  assert.deepEqual(listed.ranges[1], {
    route_id: 2,
    group_id: 2,
    start: Buffer.from("user/m").toString("base64"),
    end: Buffer.from("user/z\x00\xff", "latin1").toString("base64"),
    state: "active",
    replicas: [1, 2, 3],
    leader: 2,
    size_bytes: 375_000,
    ops_per_second: 12.25,
    catalog_version: 9,
  });
  // The first range starts at the empty key and the last has no end: both left out, as omitempty does.
  assert.equal(listed.ranges[0]!["start"], undefined);
  assert.equal(listed.ranges[2]!["end"], undefined);

  const split = JSON.parse(ok(await cli(["range", "split", "a", "-w", "json"]))) as {
    left: { route_id: number; end: string };
    right: { route_id: number; start: string };
  };
  assert.equal(split.left.route_id, 1);
  assert.equal(split.right.route_id, 4);
  assert.equal(Buffer.from(split.right.start, "base64").toString(), "a");
});

test("a refused split exits 1 with the server's reason and changes nothing", async () => {
  const before = admin.ranges.length;
  const boundary = await cli(["range", "split", "user/m"]);
  assert.equal(boundary.code, 1);
  assert.equal(boundary.stdout, "");
  assert.equal(
    boundary.stderr,
    "Error: concord: split key is already the start of range 2; nothing to split\n",
  );
  const system = await cli(["range", "split", "0000636f6e636f72642f78", "--hex"]);
  assert.equal(system.code, 1);
  assert.equal(system.stderr, "Error: concord: split key lies in the system span\n");
  assert.equal(admin.ranges.length, before);
});

test("a busy range exits 3 (unavailable: try again)", async () => {
  admin.busy = true;
  try {
    const busy = await cli(["range", "split", "user/q"]);
    assert.equal(busy.code, 3);
    assert.match(busy.stderr, /^Error: 127\.0\.0\.1:\d+: concord: range 2 is busy; retry\n$/);
  } finally {
    admin.busy = false;
  }
});

test("range merge prints the grown range; refusals exit 1; a bad id is a usage error", async () => {
  ok(await cli(["range", "split", "user/w"]));
  const [left, right] = admin.ranges.slice(-2);
  const merged = JSON.parse(ok(await cli(["range", "merge", String(right!.routeId), "-w", "json"]))) as {
    merged: { route_id: number; end?: string };
  };
  assert.equal(merged.merged.route_id, left!.routeId);
  assert.equal(
    merged.merged.end,
    right!.end === null ? undefined : Buffer.from(right!.end).toString("base64"),
  );
  assert.equal(admin.mergeCalls.at(-1), right!.routeId);
  const first = await cli(["range", "merge", "1"]);
  assert.equal(first.code, 1);
  assert.equal(first.stderr, "Error: merge of route 1 refused: first-route: no left neighbour\n");
  const calls = admin.mergeCalls.length;
  for (const bad of ["0", "-3", "x", "1.5", "99999999999999999"]) {
    const result = await cli(["range", "merge", bad]);
    assert.equal(result.code, 2, bad);
    assert.match(result.stderr, /bad range id/, bad);
  }
  assert.equal(admin.mergeCalls.length, calls);
  assert.equal(parseRouteId("42"), 42n);
});

test("usage errors exit 2 and send nothing", async () => {
  const calls = admin.splitCalls.length;
  const cases: [string[], RegExp][] = [
    [["range", "split", "zz", "--hex"], /bad split key "zz" for --hex/],
    [["range", "split", "abc", "--hex"], /even number of hex digits/],
    [["range", "split", ""], /must not be empty/],
    [["range", "split"], /missing required argument 'key'/],
    [["range", "split", "a", "b"], /too many arguments/],
    [["range", "list", "-w", "yaml"], /bad --write-out/],
  ];
  for (const [argv, expected] of cases) {
    const result = await cli(argv);
    assert.equal(result.code, 2, argv.join(" "));
    assert.match(result.stderr, expected, argv.join(" "));
  }
  assert.equal(admin.splitCalls.length, calls);
});

test("help of every range command shows examples and exit codes; the group alone exits 2", async () => {
  for (const command of [
    ["range", "list"],
    ["range", "split"],
    ["range", "merge"],
  ]) {
    const result = await cli([...command, "--help"]);
    assert.equal(result.code, 0, command.join(" "));
    assert.match(result.stdout, /Examples:\n {2}\$ concord range /);
    assert.match(result.stdout, /Exit codes: 0 ok; 1 /);
  }
  const group = await clientCli("127.0.0.1:1", "/tmp", { appendEndpoints: false })(["range"]);
  assert.equal(group.code, 2);
  assert.match(group.stderr, /Usage: concord range/);
});

test("no endpoint answering exits 3; a server without the ranges API exits 1", async () => {
  const unreachable = await clientCli(`127.0.0.1:${await freePort()}`, "/tmp")(["range", "list"]);
  assert.equal(unreachable.code, 3);
  assert.match(unreachable.stderr, /no endpoint answered/);

  const bare = await serveRanges(undefined);
  try {
    const refused = await clientCli(bare.endpoint, "/tmp")(["range", "list"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /does not serve Concord's ranges admin API/);
  } finally {
    await bare.close();
  }
});

test("range list fails over to the next endpoint", async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const result = await clientCli(dead, "/tmp", { appendEndpoints: false })([
    "range",
    "list",
    "--endpoints",
    `${dead},${served.endpoint}`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^1, "", /);
});
