// Help and usage errors of the client commands: every command's --help has examples and the
// exit codes; bad command lines exit 2 before anything is sent (the endpoint is never dialed).
import assert from "node:assert/strict";
import { test } from "node:test";
import { clientCli } from "./scenario.js";

// Nothing listens here; a command that dialed it would exit 3, not 2.
const cli = clientCli("127.0.0.1:1", "/tmp");

const COMMANDS = [
  ["put"],
  ["get"],
  ["del"],
  ["txn"],
  ["watch"],
  ["compaction"],
  ["lease", "grant"],
  ["lease", "revoke"],
  ["lease", "timetolive"],
  ["lease", "list"],
  ["lease", "keep-alive"],
  ["member", "list"],
  ["member", "add"],
  ["member", "remove"],
  ["member", "update"],
  ["member", "promote"],
  ["endpoint", "status"],
  ["endpoint", "health"],
  ["move-leader"],
  ["status"],
  ["snapshot", "save"],
  ["snapshot", "restore"],
  ["range", "list"],
  ["range", "split"],
];

test("every client command's --help shows examples, the global flags and the exit codes", async () => {
  for (const command of COMMANDS) {
    const result = await cli([...command, "--help"]);
    assert.equal(result.code, 0, command.join(" "));
    assert.match(result.stdout, /Examples:\n {2}\$ \S/, command.join(" "));
    assert.match(result.stdout, /--endpoints/, command.join(" "));
    assert.match(result.stdout, /Exit codes: 0 ok; 1 .*\n2 usage error.*; 3 unavailable/, command.join(" "));
  }
});

test("a command group without its subcommand prints the group's usage and exits 2", async () => {
  for (const group of ["lease", "member", "endpoint", "snapshot", "range"]) {
    const result = await clientCli("127.0.0.1:1", "/tmp", { appendEndpoints: false })([group]);
    assert.equal(result.code, 2, group);
    assert.match(result.stderr, new RegExp(`Usage: concord ${group}`), group);
  }
});

test("bad command lines exit 2 and dial nothing", async () => {
  const cases: [string[], RegExp][] = [
    [["get"], /missing required argument 'key'/],
    [["put", "k"], /missing required argument 'value'/],
    [["get", "a", "b", "c"], /too many arguments/],
    [["get", "a", "--prefix", "--from-key"], /cannot be set at the same time/],
    [["get", "a", "--sort-by", "SIZE"], /bad --sort-by/],
    [["get", "a", "-w", "yaml"], /bad --write-out/],
    [["get", "a", "--dial-timeout", "soon"], /bad --dial-timeout/],
    [["put", "k", "v", "--lease", "zz"], /bad lease ID/],
    [["lease", "grant", "ten"], /bad TTL/],
    [["lease", "timetolive", "xyz"], /bad lease ID/],
    [["member", "remove", "not-hex"], /bad member ID/],
    [["member", "add", "n4"], /--peer-urls is required/],
    [["member", "add", "n4", "--peer-urls", "10.0.0.4:2380"], /bad peer URL/],
    [["watch"], /watch needs a key/],
    [["watch", "k", "--max-events", "0"], /must be above 0/],
    [["compaction", "0"], /above 0/],
    [["put", "k", "v", "-w", "table"], /table is not a supported output format for put/],
  ];
  for (const [argv, message] of cases) {
    const result = await cli(argv);
    assert.equal(result.code, 2, `${argv.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message, argv.join(" "));
  }
  const badEndpoint = await clientCli("nohost", "/tmp", { appendEndpoints: false })([
    "get",
    "k",
    "--endpoints",
    "nohost",
  ]);
  assert.equal(badEndpoint.code, 2);
  assert.match(badEndpoint.stderr, /bad endpoint "nohost"/);
  const twoNodes = await clientCli("", "/tmp", { appendEndpoints: false })([
    "snapshot",
    "save",
    "x.snap",
    "--endpoints",
    "127.0.0.1:1,127.0.0.1:2",
  ]);
  assert.equal(twoNodes.code, 2);
  assert.match(twoNodes.stderr, /one selected node/);
});
