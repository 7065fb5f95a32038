// Automatic load splits across real processes: three `bin/concord start` members on 127.0.0.1
// with low split thresholds, an etcd3 client writing a bounded workload concentrated on 64 keys
// under one prefix (a single hot key cannot split; a hot narrow range can). The test waits,
// bounded, for the catalog to list at least two ranges, keeps writing while later splits
// happen, then checks that every acknowledged write is readable with its latest acknowledged
// value through every member, that `bin/concord range list -w json` lists contiguous
// ranges covering the keyspace, and that `bin/concord range merge` merges the last range back
// with every acknowledged write still readable. It prints how many ranges there were and how long into the
// load the first split was seen; it asserts nothing about durations.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Etcd3 } from "etcd3";
import { makeTempRoot, withTimeout } from "../../bench/cluster.js";
import {
  isRunning,
  planMembers,
  spawnMember,
  stopMember,
  type MemberProcess,
} from "../../bench/member-process.js";
import { listRanges, type ListedRange } from "../../bench/split-throughput.js";
import { freePort } from "../free-port.js";

const execFileAsync = promisify(execFile);
const BIN = fileURLToPath(new URL("../../bin/concord", import.meta.url));
/** Low enough that the load this machine takes (~100 writes/s) splits the hot range more than once. */
const SPLIT_FLAGS = ["--split-load-ops", "40", "--split-load-windows", "3", "--split-cooldown", "2000"];
const HOT_KEYS = 64;
const WRITERS = 16;
/** The workload's bounds: it stops at whichever it reaches first. */
const MAX_WRITES = 40_000;
const MAX_LOAD_MS = 150_000;
/** How long writing goes on after the first split was seen, so later splits happen under load. */
const WRITE_AFTER_FIRST_SPLIT_MS = 15_000;
/** A writer whose put failed waits this long (the etcd3 client's breaker fails fast meanwhile). */
const FAILED_WRITE_PAUSE_MS = 250;
/** How long reads after the load retry a member that answers unavailable. */
const READ_RETRY_MS = 30_000;
const READY_WAIT_MS = 120_000;
const RANGE_POLL_MS = 250;
const REQUEST_TIMEOUT_MS = 15_000;

function hotKey(index: number): string {
  return `hot/${String(index).padStart(3, "0")}`;
}

/**
 * What the client knows about one key: its latest acknowledged value, and every value whose
 * put failed. A failed put's outcome is unknown and it may still take effect at any later
 * moment (a resend or a proposal in flight), so each of those is an allowed final value too.
 */
interface KeyRecord {
  acked: string | null;
  unknown: string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Retries `read` while it fails (a member just after a split may not know a leader yet), bounded. */
async function readWithRetry<T>(read: () => Promise<T>, what: string): Promise<T> {
  const deadline = performance.now() + READ_RETRY_MS;
  for (;;) {
    try {
      return await withTimeout(read(), REQUEST_TIMEOUT_MS, what);
    } catch (error) {
      if (performance.now() > deadline) throw error;
    }
    await sleep(500);
  }
}

async function waitUntilServing(members: readonly MemberProcess[], client: Etcd3): Promise<void> {
  const deadline = performance.now() + READY_WAIT_MS;
  for (;;) {
    const died = members.find((member) => !isRunning(member));
    if (died !== undefined) throw new Error(`a member exited before it served:\n${died.output}`);
    try {
      await withTimeout(client.put("probe/ready").value("yes").exec(), 5_000, "the probe put");
      return;
    } catch (error) {
      if (performance.now() > deadline)
        throw new Error(`the cluster did not take a put in time: ${String(error)}`, { cause: error });
    }
    await sleep(250);
  }
}

test(
  "a hot narrow range splits on its own under load; no acknowledged write is lost",
  { timeout: 600_000 },
  async () => {
    const root = makeTempRoot();
    const members: MemberProcess[] = [];
    const clients: Etcd3[] = [];
    try {
      // Ports no parallel test file is handed (EADDRINUSE here once, 2026-11-25: bench's
      // freePort draws from the kernel's ephemeral range, which outgoing connections share).
      const plans = await planMembers(root, ["s1", "s2", "s3"], "process-split", freePort);
      for (const plan of plans)
        members.push(spawnMember(BIN, ["start", ...plan.flags, ...SPLIT_FLAGS], plan.clientEndpoint));
      const endpoints = plans.map((plan) => plan.clientEndpoint);
      const writer = new Etcd3({ hosts: endpoints.map((endpoint) => `http://${endpoint}`) });
      clients.push(writer);
      await waitUntilServing(members, writer);
      assert.equal((await listRanges(endpoints)).length, 1, "the cluster starts with one range");

      const records: KeyRecord[] = Array.from({ length: HOT_KEYS }, () => ({
        acked: null,
        unknown: [],
      }));
      let issued = 0;
      let acknowledged = 0;
      let failed = 0;
      let acknowledgedAfterFirstSplit = 0;
      const failureKinds = new Map<string, number>();
      let firstSplitAtMs: number | null = null;
      let rangesSeen = 1;
      const loadStarted = performance.now();
      const loadDeadline = loadStarted + MAX_LOAD_MS;
      const loading = (): boolean =>
        issued < MAX_WRITES &&
        performance.now() < loadDeadline &&
        (firstSplitAtMs === null ||
          performance.now() < loadStarted + firstSplitAtMs + WRITE_AFTER_FIRST_SPLIT_MS);
      // Writer w alone writes keys w, w + WRITERS, ...: each key's writes are ordered, so its
      // latest acknowledged value is well defined.
      const writeLoop = async (writerIndex: number): Promise<void> => {
        for (let round = 0; loading(); round++) {
          const keyIndex = writerIndex + WRITERS * (round % (HOT_KEYS / WRITERS));
          const record = records[keyIndex]!;
          const value = `w${writerIndex}-r${round}`;
          issued++;
          try {
            await withTimeout(writer.put(hotKey(keyIndex)).value(value).exec(), REQUEST_TIMEOUT_MS, "a put");
            record.acked = value;
            acknowledged++;
            if (firstSplitAtMs !== null) acknowledgedAfterFirstSplit++;
          } catch (error) {
            record.unknown.push(value);
            failed++;
            const kind = error instanceof Error ? error.message : String(error);
            failureKinds.set(kind, (failureKinds.get(kind) ?? 0) + 1);
            await sleep(FAILED_WRITE_PAUSE_MS);
          }
        }
      };
      const watchRanges = async (): Promise<void> => {
        while (loading()) {
          try {
            rangesSeen = Math.max(rangesSeen, (await listRanges(endpoints)).length);
            if (rangesSeen >= 2 && firstSplitAtMs === null) firstSplitAtMs = performance.now() - loadStarted;
          } catch {
            // A listing during a cutover may fail; the next poll tries again.
          }
          await sleep(RANGE_POLL_MS);
        }
      };
      await Promise.all([...Array.from({ length: WRITERS }, (_, w) => writeLoop(w)), watchRanges()]);

      const listed = await listRanges(endpoints);
      console.log(
        `ranges=${listed.length} first split after ${firstSplitAtMs === null ? "-" : Math.round(firstSplitAtMs)} ms of load ` +
          `(writes: ${acknowledged} acknowledged, ${acknowledgedAfterFirstSplit} of them after the first split, ` +
          `${failed} failed: ${JSON.stringify([...failureKinds])})`,
      );
      assert.ok(firstSplitAtMs !== null, `no split within the load bounds (${issued} writes issued)`);
      assert.ok(listed.length >= 2, `the catalog lists ${listed.length} ranges`);
      assert.ok(acknowledgedAfterFirstSplit > 0, "writes were acknowledged after the first split");

      // Every acknowledged write is readable, with its latest acknowledged value (or a later
      // write whose outcome the client never learned), through every member.
      for (const endpoint of endpoints) {
        const reader = new Etcd3({ hosts: `http://${endpoint}` });
        clients.push(reader);
        const all = await readWithRetry(() => reader.getAll().prefix("hot/").strings(), "a prefix read");
        for (const [index, record] of records.entries()) {
          if (record.acked === null && record.unknown.length === 0) continue;
          const single = await readWithRetry(() => reader.get(hotKey(index)).string(), "a get");
          const allowed = [...(record.acked === null ? [] : [record.acked]), ...record.unknown];
          for (const [how, seen] of [
            ["get", single],
            ["prefix read", all[hotKey(index)] ?? null],
          ] as const) {
            if (record.acked === null && seen === null) continue;
            assert.ok(
              seen !== null && allowed.includes(seen),
              `${endpoint} ${how} of ${hotKey(index)}: ${seen} is none of ${allowed.join(", ")}`,
            );
          }
        }
      }

      // Splits the load planned may still be carried out after it stops: the merge below
      // counts ranges, so the layout must first hold still (two listings 2 s apart agree on the
      // routes and their states).
      const layout = async () =>
        JSON.stringify((await listRanges(endpoints)).map((r) => [r.route_id, r.state]));
      let stable = await layout();
      for (let attempt = 0; attempt < 30; attempt++) {
        await sleep(2_000);
        const again = await layout();
        if (again === stable) break;
        stable = again;
      }

      // The operator's view through the real executable: contiguous ranges covering the keyspace.
      const { stdout } = await execFileAsync(
        BIN,
        ["range", "list", "-w", "json", "--endpoints", endpoints.join(",")],
        {
          timeout: 120_000,
        },
      );
      const ranges = (JSON.parse(stdout) as { ranges: ListedRange[] }).ranges;
      assert.ok(ranges.length >= 2, `bin/concord range list shows ${ranges.length} ranges`);
      assert.equal(ranges[0]?.start, undefined, "the first range starts at the empty key");
      assert.equal(ranges.at(-1)?.end, undefined, "the last range has no end");
      for (let i = 1; i < ranges.length; i++) {
        assert.equal(ranges[i]?.start, ranges[i - 1]?.end, `range ${i} starts where range ${i - 1} ends`);
        const start = Buffer.from(ranges[i]!.start ?? "", "base64");
        const previous = Buffer.from(ranges[i - 1]!.start ?? "", "base64");
        assert.ok(Buffer.compare(previous, start) < 0, "ranges are listed in key order");
      }
      const hotBoundaries = ranges.slice(1).filter((range) =>
        Buffer.from(range.start ?? "", "base64")
          .toString()
          .startsWith("hot/"),
      );
      assert.ok(hotBoundaries.length >= 1, "a split fell inside the hot prefix");

      // An operator merges the last range back through the real executable: one range fewer,
      // and every acknowledged write still reads back (the merged keys now in its neighbour).
      const last = ranges.at(-1)!;
      await execFileAsync(
        BIN,
        ["range", "merge", String(last.route_id), "--endpoints", endpoints.join(",")],
        { timeout: 120_000 },
      );
      const afterMerge = await listRanges(endpoints);
      assert.equal(afterMerge.length, ranges.length - 1, "the merge removed one range");
      assert.ok(!afterMerge.some((range) => range.route_id === last.route_id), "the merged range is gone");
      assert.equal(afterMerge.at(-1)?.end, undefined, "the last range has no end again");
      const reader = new Etcd3({ hosts: endpoints.map((endpoint) => `http://${endpoint}`) });
      clients.push(reader);
      const merged = await readWithRetry(() => reader.getAll().prefix("hot/").strings(), "a prefix read");
      for (const [index, record] of records.entries()) {
        if (record.acked === null) continue;
        const allowed = [record.acked, ...record.unknown];
        const seen = merged[hotKey(index)] ?? null;
        assert.ok(seen !== null && allowed.includes(seen), `after the merge ${hotKey(index)}: ${seen}`);
      }
    } catch (error) {
      for (const member of members)
        console.log(`--- ${member.clientEndpoint}:\n${member.output.slice(-4_000)}`);
      throw error;
    } finally {
      for (const client of clients) client.close();
      await Promise.all(members.map(stopMember));
      rmSync(root, { recursive: true, force: true });
    }
  },
);
