// The end-to-end scenario of the client commands, driven through runCli with injected stdout
// and stdin against one endpoint: put/get/del, txn, watch --max-events, leases, member list,
// endpoint status/health, snapshot save, exit codes. Run against etcd and against Concord.
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { runCli, type CliDeps } from "../../../src/cli/program.js";
import { EXIT_UNAVAILABLE } from "../../../src/cli/client/errors.js";

async function* toAsync(lines: readonly string[]): AsyncGenerator<string> {
  for (const line of lines) yield await Promise.resolve(line);
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `concord <argv> --endpoints <endpoint>` with `stdin` as standard input. */
export function clientCli(endpoint: string, cwd: string, options = { appendEndpoints: true }) {
  return async (argv: readonly string[], stdin = ""): Promise<CliResult> => {
    let stdout = "";
    let stderr = "";
    const deps: CliDeps = {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      cwd,
      startNode: () => Promise.reject(new Error("no node in client tests")),
      waitForSignal: () => ({ received: new Promise(() => {}), dispose: () => {} }),
      client: {
        env: {},
        stderrIsTTY: false,
        stdinLines: () => toAsync(stdin.split("\n")),
        interrupt: () => ({ signal: new AbortController().signal, dispose: () => {} }),
      },
    };
    const globals = options.appendEndpoints ? ["--endpoints", endpoint, "--command-timeout", "20s"] : [];
    const code = await runCli([...argv, ...globals], deps);
    return { code, stdout, stderr };
  };
}

function ok(result: CliResult): string {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** The header revision of a `-w json` answer (digits kept exact). */
function revisionOf(json: string): bigint {
  const match = /"revision":(\d+)/.exec(json);
  assert.ok(match !== null, `no revision in ${json}`);
  return BigInt(match[1]!);
}

export async function runClientScenario(endpoint: string, dir: string): Promise<void> {
  const cli = clientCli(endpoint, dir);

  // put / get / del, in each format.
  assert.equal(ok(await cli(["put", "e2e/a", "1"])), "OK\n");
  const firstRevision = revisionOf(ok(await cli(["put", "e2e/b", "2", "-w", "json"])));
  assert.equal(ok(await cli(["put", "e2e/a", "3", "--prev-kv"])), "OK\ne2e/a\n1\n");
  assert.equal(ok(await cli(["get", "e2e/a"])), "e2e/a\n3\n");
  assert.equal(ok(await cli(["get", "e2e/", "--prefix", "--print-value-only"])), "3\n2\n");
  assert.equal(ok(await cli(["get", "e2e/", "--prefix", "--keys-only", "--limit", "1"])), "e2e/a\n\n");
  assert.equal(
    ok(
      await cli([
        "get",
        "e2e/",
        "--prefix",
        "--sort-by",
        "VALUE",
        "--order",
        "DESCEND",
        "--print-value-only",
      ]),
    ),
    "3\n2\n",
  );
  const json = ok(await cli(["get", "e2e/a", "-w", "json"]));
  assert.match(
    json,
    /"kvs":\[\{"key":"ZTJlL2E=","create_revision":\d+,"mod_revision":\d+,"version":2,"value":"Mw=="\}\],"count":1\}/,
  );
  assert.match(ok(await cli(["get", "e2e/a", "-w", "table"])), /\| e2e\/a \| {5}3 \|/);
  assert.equal(ok(await cli(["get", "e2e/b", "--rev", String(firstRevision)])), "e2e/b\n2\n");
  assert.equal(ok(await cli(["get", "e2e/nothing"])), "");

  // txn from stdin: the compare holds, so the success ops run.
  const txn = ok(await cli(["txn"], 'value("e2e/a") = "3"\n\nput e2e/c 4\nget e2e/b\n\nput e2e/c 5\n\n'));
  assert.equal(txn, "SUCCESS\n\nOK\n\ne2e/b\n2\n");
  assert.equal(
    ok(await cli(["txn"], 'value("e2e/a") = "9"\n\nput e2e/c 6\n\nget e2e/c\n\n')),
    "FAILURE\n\ne2e/c\n4\n",
  );

  // watch from a past revision: exactly --max-events events, then exit 0.
  const watched = ok(
    await cli(["watch", "e2e/", "--prefix", "--rev", String(firstRevision), "--max-events", "2"]),
  );
  assert.equal(watched, "PUT\ne2e/b\n2\nPUT\ne2e/a\n3\n");

  // del with previous pairs, and a prefix.
  assert.equal(ok(await cli(["del", "e2e/c", "--prev-kv"])), "1\ne2e/c\n4\n");
  assert.equal(ok(await cli(["del", "e2e/", "--prefix"])), "2\n");

  // leases: grant, attach, time-to-live with keys, list, keep-alive once, revoke.
  const granted = ok(await cli(["lease", "grant", "60"]));
  const leaseMatch = /^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$/.exec(granted);
  assert.ok(leaseMatch !== null, granted);
  const lease = leaseMatch[1]!;
  ok(await cli(["put", "e2e/leased", "x", "--lease", lease]));
  assert.match(
    ok(await cli(["lease", "timetolive", lease, "--keys"])),
    new RegExp(
      `^lease ${lease} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[e2e/leased\\]\\)\\n$`,
    ),
  );
  assert.match(ok(await cli(["lease", "list"])), new RegExp(`^found \\d+ leases\\n(.*\\n)*${lease}\\n`));
  assert.match(
    ok(await cli(["lease", "keep-alive", "--once", lease])),
    new RegExp(`^lease ${lease} keepalived with TTL\\(\\d+\\)\\n$`),
  );
  assert.equal(ok(await cli(["lease", "revoke", lease])), `lease ${lease} revoked\n`);
  assert.equal(ok(await cli(["get", "e2e/leased"])), "");
  const revokedAgain = await cli(["lease", "revoke", lease]);
  assert.equal(revokedAgain.code, 1);
  assert.match(revokedAgain.stderr, /^Error: etcdserver: requested lease not found\n$/);

  // cluster views.
  assert.match(
    ok(await cli(["member", "list"])),
    /^[0-9a-f]+, started, \S+, http:\/\/\S+, http:\/\/\S+, false\n$/,
  );
  assert.match(
    ok(await cli(["endpoint", "status"])),
    new RegExp(
      `^${endpoint.replace(/\./g, "\\.")}, [0-9a-f]+, [\\d.]+, \\d+(\\.\\d)? [kMG]?B, true, false, \\d+, \\d+, \\d+, \\n$`,
    ),
  );
  assert.match(ok(await cli(["endpoint", "health"])), /is healthy: successfully committed proposal: took = /);
  assert.match(ok(await cli(["status", "-w", "table"])), /leader/);

  // snapshot save: the whole file appears, atomically (no part file left behind).
  assert.equal(ok(await cli(["snapshot", "save", "e2e.snap"])), "Snapshot saved at e2e.snap\n");
  assert.ok(statSync(join(dir, "e2e.snap")).size > 0);
  assert.equal(existsSync(join(dir, "e2e.snap.part")), false);

  // exit codes: server refusal 1, usage 2, and nothing is sent for bad input.
  const future = await cli(["get", "e2e/a", "--rev", "9223372036854775807"]);
  assert.equal(future.code, 1);
  assert.match(future.stderr, /^Error: etcdserver: mvcc: required revision is a future revision\n$/);
  const usage = await cli(["put", "e2e/never", "x", "-w", "table"]);
  assert.equal(usage.code, 2);
  assert.equal(ok(await cli(["get", "e2e/never"])), "");
  const badTxn = await cli(["txn"], 'mod(k) > "0"\n\n');
  assert.equal(badTxn.code, 2);
  assert.match(badTxn.stderr, /malformed comparison/);

  // compaction: history below it is gone for reads and watches (exit 1).
  const compactAt = revisionOf(ok(await cli(["put", "e2e/compact", "1", "-w", "json"])));
  assert.equal(ok(await cli(["compaction", String(compactAt)])), `compacted revision ${compactAt}\n`);
  const old = await cli(["get", "e2e/compact", "--rev", String(firstRevision)]);
  assert.equal(old.code, 1);
  assert.match(old.stderr, /^Error: etcdserver: mvcc: required revision has been compacted\n$/);
  const oldWatch = await cli([
    "watch",
    "e2e/",
    "--prefix",
    "--rev",
    String(firstRevision),
    "--max-events",
    "1",
  ]);
  assert.equal(oldWatch.code, 1);
  assert.match(oldWatch.stderr, /^Error: watch was canceled \(.*compacted.*\)\n$/);
}

/** Nobody listens at `deadEndpoint`: exit 3, and a read fails over to `liveEndpoint`. */
export async function runFailoverScenario(
  liveEndpoint: string,
  deadEndpoint: string,
  dir: string,
): Promise<void> {
  const dead = await clientCli(deadEndpoint, dir)(["get", "k", "--dial-timeout", "1s"]);
  assert.equal(dead.code, EXIT_UNAVAILABLE, dead.stderr);
  assert.match(dead.stderr, /^Error: no endpoint answered/);
  const both = await clientCli(
    `${deadEndpoint},${liveEndpoint}`,
    dir,
  )(["put", "failover", "yes", "--dial-timeout", "1s"]);
  assert.equal(both.code, 0, both.stderr);
  const read = await clientCli(
    `${deadEndpoint},${liveEndpoint}`,
    dir,
  )(["get", "failover", "--dial-timeout", "1s"]);
  assert.equal(read.stdout, "failover\nyes\n");
}
