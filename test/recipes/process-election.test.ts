// The fenced election across real processes: three `bin/concord` members on 127.0.0.1 and five
// contender processes (contender.ts, the election recipe over Concord.connect) campaigning in
// one subspace. The elected contender is paused with SIGSTOP past its lease; another one must
// be elected with a higher term. After SIGCONT the paused one must learn that it lost (it
// prints `lost`), and every write it tries under its old term must be rejected by the fencing
// guard. Finally the committed writes are read back: each term was written by one contender
// only, and no write of the old term committed after the new term's first write. Every wait
// is bounded; nothing asserts on durations.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Concord } from "../../src/api/concord.js";
import { ProcessCluster, within } from "../process/process-cluster.js";

const NAMES = ["n1", "n2", "n3"] as const;
const CONTENDERS = 5;
const SUBSPACE = "proc/leader";
const LOG = "proc/log";
const CONTENDER_SCRIPT = fileURLToPath(new URL("./contender.ts", import.meta.url));
/** tsx start-up of five processes on a loaded two-core machine can take long. */
const READY_WAIT_MS = 120_000;
const ELECTION_WAIT_MS = 90_000;
const LINE_POLL_MS = 50;

interface Contender {
  readonly id: string;
  readonly child: ChildProcess;
  readonly lines: string[];
  stderr: string;
}

function startContender(id: string, endpoints: readonly string[]): Contender {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      CONTENDER_SCRIPT,
      "--id",
      id,
      "--endpoints",
      endpoints.join(","),
      "--subspace",
      SUBSPACE,
      "--log",
      LOG,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const contender: Contender = { id, child, lines: [], stderr: "" };
  let partial = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() ?? "";
    contender.lines.push(...parts);
  });
  child.stderr?.on("data", (chunk: Buffer) => (contender.stderr += chunk.toString()));
  return contender;
}

/** Waits (bounded) until `find` returns something. */
async function waitUntil<T>(find: () => T | undefined, ms: number, what: string): Promise<T> {
  const poll = async (): Promise<T> => {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, LINE_POLL_MS));
    }
  };
  return within(poll(), ms, what);
}

function electedTerm(contender: Contender, from = 0): bigint | undefined {
  const line = contender.lines.slice(from).find((l) => l.startsWith("elected term="));
  return line === undefined ? undefined : BigInt(line.slice("elected term=".length));
}

function describe(contenders: readonly Contender[]): string {
  return contenders.map((c) => `--- ${c.id}\n${c.lines.join("\n")}\n${c.stderr}`).join("\n");
}

test("a contender paused past its lease is replaced, learns it lost, and its fenced writes fail", async () => {
  const root = mkdtempSync(join(tmpdir(), "concord-process-election-"));
  const cluster = await ProcessCluster.create(root, NAMES, "process-election");
  const contenders: Contender[] = [];
  let paused: Contender | undefined;
  try {
    for (const name of NAMES) await cluster.start(name);
    await cluster.waitForLeader();
    for (let i = 1; i <= CONTENDERS; i++) contenders.push(startContender(`c${i}`, cluster.clientEndpoints));
    await waitUntil(
      () => (contenders.every((c) => c.lines.includes("ready")) ? true : undefined),
      READY_WAIT_MS,
      "every contender to be ready",
    );
    for (const c of contenders) assert.ok(!c.lines.some((l) => l.startsWith("error")), describe(contenders));

    const first = await waitUntil(
      () => contenders.find((c) => electedTerm(c) !== undefined),
      ELECTION_WAIT_MS,
      "a first leader",
    );
    paused = first;
    const oldTerm = electedTerm(first)!;
    await waitUntil(
      () =>
        first.lines.some((l) => l.startsWith(`write term=${oldTerm}`) && l.endsWith(" ok"))
          ? true
          : undefined,
      ELECTION_WAIT_MS,
      "the first leader's first fenced write",
    );
    assert.equal(contenders.filter((c) => electedTerm(c) !== undefined).length, 1, describe(contenders));

    first.child.kill("SIGSTOP");
    const seenAtPause = new Map(contenders.map((c) => [c.id, c.lines.length]));
    const second = await waitUntil(
      () => contenders.find((c) => c !== first && electedTerm(c, seenAtPause.get(c.id)) !== undefined),
      ELECTION_WAIT_MS,
      "another contender to be elected while the leader is paused",
    );
    const newTerm = electedTerm(second)!;
    assert.ok(newTerm > oldTerm, `term ${newTerm} follows ${oldTerm}`);
    await waitUntil(
      () => (second.lines.some((l) => l === `write term=${newTerm} n=0 ok`) ? true : undefined),
      ELECTION_WAIT_MS,
      "the new leader's first fenced write",
    );

    const seenAtResume = first.lines.length;
    first.child.kill("SIGCONT");
    paused = undefined;
    const lost = await waitUntil(
      () => first.lines.slice(seenAtResume).find((l) => l.startsWith(`lost term=${oldTerm}`)),
      ELECTION_WAIT_MS,
      "the paused leader to learn that it lost",
    );
    const stale = await waitUntil(
      () => first.lines.slice(seenAtResume).find((l) => l.startsWith(`stale-write term=${oldTerm}`)),
      ELECTION_WAIT_MS,
      "the paused leader's write under its old term",
    );
    assert.match(lost, /reason=(deadline-passed|lease-gone|records-gone|leader-changed|term-changed)/);
    assert.equal(stale, `stale-write term=${oldTerm} rejected`, describe(contenders));
    // A write sent before the pause may be answered after it (it committed before the lease
    // ran out); one started after the resume must be refused. Commit order is checked below.
    const afterResume = first.lines.slice(seenAtResume);
    const startedAfterResume = afterResume
      .filter((l) => l.startsWith(`write-start term=${oldTerm} `))
      .map((l) => l.slice("write-start ".length));
    for (const write of startedAfterResume) {
      assert.ok(
        !afterResume.includes(`write ${write} ok`),
        `a write of term ${oldTerm} started after the pause succeeded:\n${afterResume.join("\n")}`,
      );
    }

    const db = Concord.connect({ endpoints: cluster.clientEndpoints });
    try {
      const logged = await within(db.range(`${LOG}/`, { prefix: true }), 30_000, "the fenced writes");
      const writersByTerm = new Map<string, Set<string>>();
      const revisions = { oldLast: 0n, newFirst: -1n };
      for (const kv of logged.kvs) {
        const [term, writer] = new TextDecoder()
          .decode(kv.key)
          .slice(LOG.length + 1)
          .split("/");
        assert.ok(term !== undefined && writer !== undefined);
        writersByTerm.set(term, (writersByTerm.get(term) ?? new Set()).add(writer));
        if (BigInt(term) === oldTerm && kv.modRevision > revisions.oldLast)
          revisions.oldLast = kv.modRevision;
        if (BigInt(term) === newTerm && (revisions.newFirst < 0n || kv.modRevision < revisions.newFirst)) {
          revisions.newFirst = kv.modRevision;
        }
      }
      for (const [term, writers] of writersByTerm) {
        assert.equal(writers.size, 1, `term ${term} was written by ${[...writers].join(", ")}`);
      }
      assert.deepEqual([...(writersByTerm.get(oldTerm.toString()) ?? [])], [first.id]);
      assert.deepEqual([...(writersByTerm.get(newTerm.toString()) ?? [])], [second.id]);
      assert.ok(
        revisions.newFirst > revisions.oldLast,
        "no write of the old term committed after the new term's first",
      );
    } finally {
      await db.close();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n${describe(contenders)}`, { cause: error });
  } finally {
    if (paused !== undefined) paused.child.kill("SIGCONT");
    for (const c of contenders)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    cluster.killAll();
    rmSync(root, { recursive: true, force: true });
  }
});
