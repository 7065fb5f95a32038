// Debian's etcdctl 3.4 (a client nobody on this team wrote) against three real `concord`
// processes: key-value commands, txn, watch, leases, lock, elect, members (a fourth joins and
// leaves), endpoint status/health, compaction, snapshot, move-leader, and a SIGKILLed leader.
// Assertions are on exactly what etcdctl prints (as etcd 3.4 prints it) and its exit codes.
// Skipped only when etcdctl is missing outside CI. One cluster for the whole file.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  base64,
  big,
  EtcdctlChild,
  etcdctl,
  etcdctlOk,
  etcdctlSkipReason,
  explain,
  field,
  parseEtcdJson,
  type EtcdctlResult,
} from "./etcdctl.js";
import { CONCORD_BIN } from "../process/process-cluster.js";
import { ClientCluster, clientUrl, eventually, FOUNDERS, peerUrl, TARGET } from "./harness.js";

const execFileAsync = promisify(execFile);

const SHORT_WAIT_MS = 30_000;
const LONG_WAIT_MS = 90_000;
/** The bound on any one test, so a hung call fails the test instead of the suite. */
const TEST_TIMEOUT_MS = 300_000;
const TXN_PROMPTS = "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n";

const skip = etcdctlSkipReason();

describe(`etcdctl against three ${TARGET} processes`, { skip }, () => {
  let cluster: ClientCluster;
  let failed = false;
  let started = false;

  /** Runs etcdctl on every running member's endpoint. */
  const run = (args: readonly string[], stdin?: string, endpoints?: readonly string[]) =>
    etcdctl(args, { endpoints: endpoints ?? cluster.endpoints, ...(stdin === undefined ? {} : { stdin }) });
  const ok = (args: readonly string[], stdin?: string, endpoints?: readonly string[]) =>
    etcdctlOk(args, { endpoints: endpoints ?? cluster.endpoints, ...(stdin === undefined ? {} : { stdin }) });
  const spawn = (args: readonly string[], endpoints?: readonly string[]) =>
    EtcdctlChild.spawn(args, endpoints ?? cluster.endpoints);

  function assertFails(args: readonly string[], result: EtcdctlResult, code: number, stderr: string): void {
    assert.equal(result.code, code, explain(args, result));
    assert.ok(result.stderr.includes(stderr), `stderr should contain "${stderr}": ${explain(args, result)}`);
  }

  /** The revision a write made, from `put -w json`'s header. */
  async function putRevision(key: string, value: string): Promise<bigint> {
    return big(field(parseEtcdJson(await ok(["put", key, value, "-w", "json"])), "header", "revision"));
  }

  async function keyCount(prefix: string): Promise<number> {
    // etcd's JSON leaves out a zero count.
    const count = field(
      parseEtcdJson(await ok(["get", prefix, "--prefix", "--keys-only", "-w", "json"])),
      "count",
    );
    return count === undefined ? 0 : Number(big(count));
  }

  /**
   * Removes every member but the founders (bounded). Whatever failed in a membership test, no
   * member it added stays a voter: with four voters, one dead, the SIGKILL test would leave two
   * of them and no quorum.
   */
  async function removeAllButFounders(): Promise<void> {
    const founders = FOUNDERS.map((name) => cluster.idOf(name));
    const n1 = [cluster.endpoint("n1")];
    await eventually("only the founders to be members", LONG_WAIT_MS, async () => {
      const listed = await run(["member", "list", "-w", "json"], undefined, n1);
      if (listed.code !== 0) return undefined;
      const members = field(parseEtcdJson(listed.stdout), "members");
      if (!Array.isArray(members)) return undefined;
      const others = members.map((m: unknown) => big(field(m, "ID"))).filter((id) => !founders.includes(id));
      for (const id of others) await run(["member", "remove", id.toString(16)], undefined, n1);
      return others.length === 0 ? true : undefined;
    });
  }

  before(async () => {
    cluster = await ClientCluster.start("etcdctl");
    started = true;
  });

  after(() => {
    // A cluster that failed to start has already been stopped and cleaned up.
    if (!started) return;
    if (failed) console.error(`member logs:\n${cluster.logs()}`);
    cluster.close();
  });

  /** A test whose failure also prints the members' logs when the file ends. */
  const check = (name: string, body: () => Promise<void>): void => {
    void test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
      try {
        await body();
      } catch (error) {
        failed = true;
        throw error;
      }
    });
  };

  check(
    "put and get: prefix, range end, limit, sort, rev, print-value-only, keys-only, -w json",
    async () => {
      for (const [key, value] of [
        ["p/k1", "v1"],
        ["p/k2", "v2"],
        ["p/k3", "v3"],
      ] as const) {
        assert.equal(await ok(["put", key, value]), "OK\n");
      }
      assert.equal(await ok(["get", "p/k1"]), "p/k1\nv1\n");
      assert.equal(await ok(["get", "p/none"]), "");
      assert.equal(await ok(["get", "p/", "--prefix"]), "p/k1\nv1\np/k2\nv2\np/k3\nv3\n");
      assert.equal(await ok(["get", "p/k1", "p/k3"]), "p/k1\nv1\np/k2\nv2\n");
      assert.equal(await ok(["get", "p/k2", "--from-key", "--limit", "2"]), "p/k2\nv2\np/k3\nv3\n");
      assert.equal(
        await ok(["get", "p/", "--prefix", "--sort-by=KEY", "--order=DESCEND"]),
        "p/k3\nv3\np/k2\nv2\np/k1\nv1\n",
      );
      assert.equal(
        await ok(["get", "p/", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--limit", "1"]),
        "p/k3\nv3\n",
      );
      assert.equal(await ok(["get", "p/", "--prefix", "--print-value-only"]), "v1\nv2\nv3\n");
      assert.equal(await ok(["get", "p/", "--prefix", "--keys-only"]), "p/k1\n\np/k2\n\np/k3\n\n");

      const limited = parseEtcdJson(await ok(["get", "p/", "--prefix", "--limit", "2", "-w", "json"]));
      const kvs = field(limited, "kvs") as unknown[];
      assert.deepEqual(
        kvs.map((kv) => [field(kv, "key"), field(kv, "value"), field(kv, "version")]),
        [
          [base64("p/k1"), base64("v1"), 1],
          [base64("p/k2"), base64("v2"), 1],
        ],
      );
      assert.equal(field(limited, "count"), 3);
      assert.equal(field(limited, "more"), true);
      const k3 = parseEtcdJson(await ok(["get", "p/k3", "-w", "json"]));
      const k3Revision = big(field(k3, "kvs", 0, "mod_revision"));
      assert.ok(
        big(field(limited, "header", "revision")) >= k3Revision,
        "the header revision covers every write",
      );
      assert.equal(field(k3, "more"), undefined, "more is omitted when false, as etcd's JSON omits it");

      const first = parseEtcdJson(await ok(["get", "p/k1", "-w", "json"]));
      const firstRevision = big(field(first, "kvs", 0, "mod_revision"));
      const rewrite = await putRevision("p/k1", "v1b");
      assert.ok(rewrite > k3Revision, "revisions increase");
      assert.equal(await ok(["get", "p/k1"]), "p/k1\nv1b\n");
      assert.equal(await ok(["get", "p/k1", `--rev=${firstRevision}`]), "p/k1\nv1\n");
      const rewritten = parseEtcdJson(await ok(["get", "p/k1", "-w", "json"]));
      assert.equal(field(rewritten, "kvs", 0, "version"), 2);
      assert.equal(big(field(rewritten, "kvs", 0, "create_revision")), firstRevision);
      assert.equal(big(field(rewritten, "kvs", 0, "mod_revision")), rewrite);

      for (const endpoint of cluster.endpoints) {
        await eventually(`a serializable get on ${endpoint} to see p/k1=v1b`, SHORT_WAIT_MS, async () => {
          const out = await ok(["get", "p/k1", "--consistency=s"], undefined, [endpoint]);
          return out === "p/k1\nv1b\n" ? true : undefined;
        });
        assert.equal(
          await ok(["get", "p/k1"], undefined, [endpoint]),
          "p/k1\nv1b\n",
          `linearizable on ${endpoint}`,
        );
      }
    },
  );

  check("del: one key, a prefix with --prev-kv, a missing key", async () => {
    for (const key of ["d/a", "d/b", "d/c"]) await ok(["put", key, `${key}-value`]);
    assert.equal(await ok(["del", "d/a"]), "1\n");
    assert.equal(await ok(["del", "d/a"]), "0\n");
    assert.equal(await ok(["del", "d/", "--prefix", "--prev-kv"]), "2\nd/b\nd/b-value\nd/c\nd/c-value\n");
    assert.equal(await ok(["get", "d/", "--prefix"]), "");
  });

  check("txn -i: the success branch, the failure branch, -w json", async () => {
    await ok(["put", "t/a", "1"]);
    const success = await ok(["txn", "-i"], 'value("t/a") = "1"\n\nput t/b yes\nget t/a\n\nput t/b no\n\n');
    assert.equal(success, `${TXN_PROMPTS}SUCCESS\n\nOK\n\nt/a\n1\n`);
    assert.equal(await ok(["get", "t/b"]), "t/b\nyes\n");

    const failure = await ok(["txn", "-i"], 'mod("t/a") = "0"\n\nput t/c x\n\nput t/c y\ndel t/b\n\n');
    assert.equal(failure, `${TXN_PROMPTS}FAILURE\n\nOK\n\n1\n`);
    assert.equal(await ok(["get", "t/", "--prefix"]), "t/a\n1\nt/c\ny\n");

    const json = await ok(
      ["txn", "-i", "-w", "json"],
      'create("t/none") = "0"\nversion("t/a") = "1"\n\nput t/d z\n\n\n',
    );
    assert.ok(json.startsWith(TXN_PROMPTS), json);
    const parsed = parseEtcdJson(json.slice(TXN_PROMPTS.length));
    assert.equal(field(parsed, "succeeded"), true);
    const putHeader = field(parsed, "responses", 0, "Response", "ResponsePut", "header");
    const written = parseEtcdJson(await ok(["get", "t/d", "-w", "json"]));
    assert.equal(big(field(putHeader, "revision")), big(field(written, "kvs", 0, "mod_revision")));
    assert.equal(big(field(parsed, "header", "revision")), big(field(written, "kvs", 0, "mod_revision")));
  });

  check("watch --rev --prev-kv replays history, then follows live writes", async () => {
    const start = await putRevision("w/start", "0");
    await ok(["put", "w/a", "1"]);
    await ok(["put", "w/a", "2"]);
    await ok(["del", "w/a"]);
    const watcher = spawn(["watch", "w/a", "--prefix", "--prev-kv", `--rev=${start + 1n}`]);
    try {
      const history = "PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\nDELETE\nw/a\n2\nw/a\n\n";
      await watcher.waitFor("the replayed events", (out) => out.length >= history.length, SHORT_WAIT_MS);
      assert.equal(watcher.stdout, history);
      await ok(["put", "w/a", "live"]);
      await watcher.waitFor("the live event", (out) => out.length > history.length + 8, SHORT_WAIT_MS);
      assert.equal(watcher.stdout, `${history}PUT\nw/a\nlive\n`);
    } finally {
      watcher.kill();
    }
    const json = spawn(["watch", "w/start", `--rev=${start}`, "-w", "json"]);
    try {
      await json.waitFor("a JSON watch response", (out) => out.includes("\n"), SHORT_WAIT_MS);
      const response = parseEtcdJson(json.lines[0] ?? "");
      assert.equal(field(response, "Events", 0, "kv", "key"), base64("w/start"));
      assert.equal(big(field(response, "Events", 0, "kv", "mod_revision")), start);
    } finally {
      json.kill();
    }
  });

  /** `concord range <args> -w json --endpoints ...` (Concord only): what it printed, parsed. */
  async function concordRange(args: readonly string[]): Promise<unknown> {
    const { stdout } = await execFileAsync(
      CONCORD_BIN,
      ["range", ...args, "-w", "json", "--endpoints", cluster.endpoints.join(",")],
      { timeout: SHORT_WAIT_MS },
    );
    return JSON.parse(stdout);
  }

  check("lease: grant, attach, timetolive --keys, list, keep-alive, revoke, expiry", async () => {
    const granted = await ok(["lease", "grant", "60"]);
    const id = /^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$/.exec(granted)?.[1];
    assert.ok(id !== undefined, granted);
    // On Concord the two keys land in two ranges, each with its own copy of the lease.
    const split =
      TARGET === "concord"
        ? ((await concordRange(["split", "l/m"])) as { right: { route_id: number } })
        : null;
    try {
      assert.equal(await ok(["put", "l/k", "v", `--lease=${id}`]), "OK\n");
      assert.equal(await ok(["put", "l/z", "v", `--lease=${id}`]), "OK\n");
      const ttl = await ok(["lease", "timetolive", id, "--keys"]);
      assert.match(
        ttl,
        new RegExp(
          `^lease ${id} granted with TTL\\(60s\\), remaining\\((\\d+)s\\), attached keys\\(\\[l/k l/z\\]\\)\n$`,
        ),
      );
      const ttlJson = parseEtcdJson(await ok(["lease", "timetolive", id, "--keys", "-w", "json"]));
      assert.equal(big(field(ttlJson, "id")), BigInt(`0x${id}`));
      assert.equal(field(ttlJson, "granted-ttl"), 60);
      assert.deepEqual(field(ttlJson, "keys"), [base64("l/k"), base64("l/z")]);
      assert.ok(big(field(ttlJson, "revision")) > 0n);
    } finally {
      if (split !== null) await concordRange(["merge", String(split.right.route_id)]);
    }
    assert.ok((await ok(["lease", "list"])).split("\n").includes(id), "lease list names the lease");

    // TTL 3: etcdctl refreshes every second; five refreshes outlast the TTL, and the key stays.
    const short = /lease ([0-9a-f]{16}) granted/.exec(await ok(["lease", "grant", "3"]))?.[1];
    assert.ok(short !== undefined);
    await ok(["put", "l/kept", "alive", `--lease=${short}`]);
    const keeper = spawn(["lease", "keep-alive", short]);
    try {
      const line = `lease ${short} keepalived with TTL(3)`;
      await keeper.waitFor(
        "five keep-alives",
        () => keeper.lines.filter((l) => l === line).length >= 5,
        LONG_WAIT_MS,
      );
      assert.deepEqual(new Set(keeper.lines), new Set([line]), keeper.stdout);
      assert.equal(await ok(["get", "l/kept", "--print-value-only"]), "alive\n");
    } finally {
      keeper.kill();
    }
    await eventually("the unrefreshed lease to expire and take its key", LONG_WAIT_MS, async () =>
      (await ok(["get", "l/kept"])) === "" ? true : undefined,
    );
    assert.equal(await ok(["lease", "timetolive", short]), `lease ${short} already expired\n`);

    assert.equal(await ok(["lease", "revoke", id]), `lease ${id} revoked\n`);
    assert.equal(await ok(["get", "l/", "--prefix", "--keys-only"]), "", "l/k and l/z went with the lease");
    assert.equal(await ok(["lease", "timetolive", id]), `lease ${id} already expired\n`);
    const again = ["lease", "revoke", id];
    assertFails(
      again,
      await run(again),
      1,
      "Error: failed to revoke lease (etcdserver: requested lease not found)",
    );
  });

  check("lock: a second etcdctl lock waits until the first exits; lock runs a command", async () => {
    const first = spawn(["lock", "lk"]);
    const children = [first];
    try {
      await first.waitFor("the first lock", () => first.lines.length >= 1, SHORT_WAIT_MS);
      assert.match(first.lines[0] ?? "", /^lk\/[0-9a-f]+$/);
      const second = spawn(["lock", "lk"]);
      children.push(second);
      await eventually("the second contender's key", SHORT_WAIT_MS, async () =>
        (await keyCount("lk/")) === 2 ? true : undefined,
      );
      assert.equal(second.stdout, "", "the second waits while the first holds the lock");
      await first.stop("SIGINT");
      await second.waitFor("the second lock", () => second.lines.length >= 1, SHORT_WAIT_MS);
      assert.match(second.lines[0] ?? "", /^lk\/[0-9a-f]+$/);
      assert.notEqual(second.lines[0], first.lines[0]);
    } finally {
      for (const child of children) child.kill();
    }
    assert.equal(await ok(["lock", "lk2", "echo", "held"]), "held\n");
    await eventually("the lock keys to be gone", SHORT_WAIT_MS, async () =>
      (await keyCount("lk")) === 0 ? true : undefined,
    );
  });

  check("elect: one leader, an observer, the next proposal wins when the leader quits", async () => {
    const leader = spawn(["elect", "el", "p1"]);
    const children = [leader];
    try {
      await leader.waitFor("p1 elected", () => leader.lines.length >= 2, SHORT_WAIT_MS);
      assert.match(leader.lines[0] ?? "", /^el\/[0-9a-f]+$/);
      assert.equal(leader.lines[1], "p1");
      const observer = spawn(["elect", "-l", "el"]);
      const next = spawn(["elect", "el", "p2"]);
      children.push(observer, next);
      await observer.waitFor("the observer to see p1", () => observer.lines.includes("p1"), SHORT_WAIT_MS);
      await eventually("p2's candidacy key", SHORT_WAIT_MS, async () =>
        (await keyCount("el/")) === 2 ? true : undefined,
      );
      assert.equal(next.stdout, "", "p2 waits while p1 leads");
      await leader.stop("SIGINT");
      await next.waitFor("p2 elected", () => next.lines.length >= 2, SHORT_WAIT_MS);
      assert.equal(next.lines[1], "p2");
      await observer.waitFor("the observer to see p2", () => observer.lines.includes("p2"), SHORT_WAIT_MS);
      assert.match(observer.stdout, /^el\/[0-9a-f]+\np1\n(el\/[0-9a-f]+\n)?p2\n$/);
    } finally {
      for (const child of children) child.kill();
    }
  });

  check("compaction: older revisions fail with etcd's errors; a watch from them is cancelled", async () => {
    const r1 = await putRevision("c/k", "v1");
    const r2 = await putRevision("c/k", "v2");
    const r3 = await putRevision("c/k", "v3");
    assert.equal(await ok(["compaction", String(r2)]), `compacted revision ${r2}\n`);
    const old = ["get", "c/k", `--rev=${r1}`];
    assertFails(old, await run(old), 1, "Error: etcdserver: mvcc: required revision has been compacted");
    assert.equal(await ok(["get", "c/k", `--rev=${r2}`]), "c/k\nv2\n");
    const future = ["get", "c/k", `--rev=${r3 + 10n ** 15n}`];
    assertFails(
      future,
      await run(future),
      1,
      "Error: etcdserver: mvcc: required revision is a future revision",
    );
    const again = ["compaction", String(r1)];
    assertFails(again, await run(again), 1, "Error: etcdserver: mvcc: required revision has been compacted");
    const watch = ["watch", "c/k", `--rev=${r1}`];
    const cancelled = await run(watch);
    assertFails(
      watch,
      cancelled,
      5,
      "watch was canceled (etcdserver: mvcc: required revision has been compacted)",
    );
    assert.equal(await ok(["compaction", "--physical", String(r3)]), `compacted revision ${r3}\n`);
    assert.equal(await ok(["get", "c/k"]), "c/k\nv3\n");
  });

  check("endpoint status and health on each endpoint", async () => {
    const leader = await cluster.leaderByEndpointStatus();
    const table = await ok(["endpoint", "status"]);
    const rows = table.trimEnd().split("\n");
    assert.equal(rows.length, 3, table);
    for (const name of FOUNDERS) {
      const row = rows.find((r) => r.startsWith(`${cluster.endpoint(name)},`));
      assert.ok(row !== undefined, `a row for ${name}: ${table}`);
      const cells = row.split(", ");
      assert.equal(cells[1], cluster.hexId(name), row);
      assert.equal(cells[4], String(name === leader), `${name}'s is-leader: ${row}`);
      assert.equal(cells[5], "false", `${name} is no learner: ${row}`);
      assert.match(cells[6] ?? "", /^[1-9][0-9]*$/, `raft term: ${row}`);
    }
    const health = await run(["endpoint", "health"]);
    assert.equal(health.code, 0, explain(["endpoint", "health"], health));
    const healthLines = (health.stdout + health.stderr).trimEnd().split("\n").sort();
    assert.equal(healthLines.length, 3, health.stdout + health.stderr);
    for (const [index, name] of [...FOUNDERS]
      .sort((a, b) => cluster.endpoint(a).localeCompare(cluster.endpoint(b)))
      .entries()) {
      assert.match(
        healthLines[index] ?? "",
        new RegExp(`^${cluster.endpoint(name)} is healthy: successfully committed proposal: took = `),
      );
    }
  });

  // --cluster dials the client URLs of member list, as grpc-go's passthrough target (the
  // :authority is the whole URL, http:// included, which the client port must accept).
  check("endpoint status and health --cluster reach every member by its advertised client URL", async () => {
    const clusterRows = (await ok(["endpoint", "status", "--cluster"])).trimEnd().split("\n");
    assert.deepEqual(
      clusterRows.map((r) => r.split(", ")[0]).sort(),
      FOUNDERS.map((n) => `http://${cluster.endpoint(n)}`).sort(),
    );
    const clusterHealth = await run(["endpoint", "health", "--cluster"]);
    assert.equal(clusterHealth.code, 0, explain(["endpoint", "health", "--cluster"], clusterHealth));
    assert.equal((clusterHealth.stdout + clusterHealth.stderr).match(/ is healthy: /g)?.length, 3);
  });

  check(
    "member list, add a fourth member that joins with --initial-cluster-state existing, remove it",
    async () => {
      const expectedRow = (name: string) => {
        const member = cluster.member(name);
        return `${cluster.hexId(name)}, started, ${name}, ${peerUrl(member)}, ${clientUrl(member)}, false`;
      };
      const listed = await ok(["member", "list"]);
      assert.deepEqual(listed.trimEnd().split("\n").sort(), FOUNDERS.map(expectedRow).sort());
      const listJson = parseEtcdJson(await ok(["member", "list", "-w", "json"]));
      const clusterId = big(field(listJson, "header", "cluster_id")).toString(16);

      const joiner = await cluster.addJoiner("n4");
      try {
        const joinerPeerUrl = peerUrl(joiner);
        const added = await ok(["member", "add", "n4", `--peer-urls=${joinerPeerUrl}`]);
        const match = new RegExp(
          `^Member +([0-9a-f]+) added to cluster +${clusterId}\n\nETCD_NAME="n4"\nETCD_INITIAL_CLUSTER="([^"]*)"\n` +
            `ETCD_INITIAL_ADVERTISE_PEER_URLS="${joinerPeerUrl}"\nETCD_INITIAL_CLUSTER_STATE="existing"\n$`,
        ).exec(added);
        assert.ok(match !== null, added);
        const [, newId = "", initialCluster = ""] = match;
        assert.deepEqual(
          initialCluster.split(",").sort(),
          cluster.members.map((m) => `${m.name}=${peerUrl(m)}`).sort(),
        );
        // MemberList answers from the member's applied state, as etcd 3.4's does: a member the
        // add's quorum did not wait for may list the new member a moment later.
        await eventually("the added member to be listed as unstarted", LONG_WAIT_MS, async () =>
          (await ok(["member", "list"]))
            .split("\n")
            .includes(`${newId}, unstarted, , ${joinerPeerUrl}, , false`)
            ? true
            : undefined,
        );
        await cluster.startMember("n4");
        assert.equal(cluster.hexId("n4"), newId, "the joiner runs under the id member add gave it");
        await eventually("n4 to be listed as started", LONG_WAIT_MS, async () =>
          (await ok(["member", "list"])).split("\n").includes(expectedRow("n4")) ? true : undefined,
        );
        const n4 = [cluster.endpoint("n4")];
        assert.equal(await ok(["put", "m/k", "via-n4"], undefined, n4), "OK\n");
        assert.equal(await ok(["get", "m/k"], undefined, n4), "m/k\nvia-n4\n");
        assert.equal(
          await ok(["get", "p/k1"], undefined, n4),
          "p/k1\nv1b\n",
          "the joiner caught up on older data",
        );

        const removed = await ok(
          ["member", "remove", newId],
          undefined,
          FOUNDERS.map((n) => cluster.endpoint(n)),
        );
        assert.match(removed, new RegExp(`^Member +${newId} removed from cluster +${clusterId}\n$`));
        const missing = ["member", "remove", newId];
        assertFails(
          missing,
          await run(missing, undefined, [cluster.endpoint("n1")]),
          1,
          "etcdserver: member not found",
        );
      } finally {
        if (cluster.member("n4").running) await cluster.killMember("n4");
        cluster.forget("n4");
        await removeAllButFounders();
      }
      assert.deepEqual(
        (await ok(["member", "list"])).trimEnd().split("\n").sort(),
        FOUNDERS.map(expectedRow).sort(),
      );
      assert.equal(await ok(["put", "m/k", "after-removal"]), "OK\n");
    },
  );

  check("snapshot save writes a non-empty file from one endpoint", async () => {
    const path = cluster.scratchPath("snapshot.db");
    const args = ["snapshot", "save", path];
    const saved = await run(args, undefined, [cluster.endpoint("n1")]);
    assert.equal(saved.code, 0, explain(args, saved));
    assert.equal(saved.stdout, `Snapshot saved at ${path}\n`);
    assert.ok(statSync(path).size > 0, "the snapshot file is not empty");
    const many = await run(args);
    assertFails(args, many, 5, "snapshot must be requested to one selected node, not multiple");
  });

  check("move-leader hands leadership to the named member", async () => {
    const leader = await cluster.leaderByEndpointStatus();
    const target = FOUNDERS.find((n) => n !== leader) ?? "";
    const moved = await ok(["move-leader", cluster.hexId(target)]);
    assert.equal(moved, `Leadership transferred from ${cluster.hexId(leader)} to ${cluster.hexId(target)}\n`);
    assert.equal(await cluster.leaderByEndpointStatus(), target);
  });

  check(
    "after the leader is SIGKILLed, puts, gets and a watch go on; it restarts and catches up",
    async () => {
      const leader = await cluster.leaderByEndpointStatus();
      const survivor = FOUNDERS.find((n) => n !== leader) ?? "";
      const start = await putRevision("k/before", "1");
      const watcher = spawn(["watch", "k/", "--prefix", `--rev=${start}`], [cluster.endpoint(survivor)]);
      try {
        await watcher.waitFor("the first event", (out) => out === "PUT\nk/before\n1\n", SHORT_WAIT_MS);
        const killed = await cluster.killLeader();
        assert.equal(killed, leader);
        const allEndpoints = cluster.allEndpoints;
        await eventually("a put after the kill", LONG_WAIT_MS, async () => {
          const result = await run(["put", "k/after", "2"]);
          return result.code === 0 ? true : undefined;
        });
        assert.equal(await ok(["put", "k/failover", "3"], undefined, allEndpoints), "OK\n");
        assert.equal(await ok(["get", "k/", "--prefix"]), "k/after\n2\nk/before\n1\nk/failover\n3\n");
        assert.equal(
          await ok(["get", "k/", "--prefix", "--print-value-only"], undefined, allEndpoints),
          "2\n1\n3\n",
        );
        const newLeader = await cluster.leaderByEndpointStatus();
        assert.notEqual(newLeader, leader);
        await watcher.waitFor("the events after the kill", (out) => out.includes("k/failover"), LONG_WAIT_MS);
        assert.equal(watcher.stdout, "PUT\nk/before\n1\nPUT\nk/after\n2\nPUT\nk/failover\n3\n");

        await cluster.restart(leader);
        await eventually(`${leader} to catch up (serializable read)`, LONG_WAIT_MS, async () => {
          const out = await ok(["get", "k/failover", "--consistency=s"], undefined, [
            cluster.endpoint(leader),
          ]);
          return out === "k/failover\n3\n" ? true : undefined;
        });
        assert.equal(await ok(["put", "k/restarted", "4"], undefined, [cluster.endpoint(leader)]), "OK\n");
        await watcher.waitFor(
          "the event after the restart",
          (out) => out.includes("k/restarted"),
          SHORT_WAIT_MS,
        );
        assert.equal((await ok(["endpoint", "status"])).trimEnd().split("\n").length, 3);
      } finally {
        watcher.kill();
      }
    },
  );
});
