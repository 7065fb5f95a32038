/**
 * The `split-throughput` workload: what splitting a keyspace into many ranges does to a
 * uniform write load. Three `bin/concord start` processes (automatic splits off, fsync on)
 * take closed-loop puts of random keys over a fixed keyspace at a fixed concurrency from one
 * etcd3 client spread over all three endpoints; the run measures throughput, latency and the
 * servers' CPU (every member's process tree) with one range, then splits the keyspace into N
 * ranges at evenly spaced keys through `concord range split` (in this process, over the
 * Ranges admin API), waits until every range has a leader, and measures again. Prints a table
 * with both rows and their ratio; writes bench/results/<YYYY-MM-DD>-split-throughput.json.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { runCli } from "../src/cli/program.js";
import { makeTempRoot, withTimeout } from "./cluster.js";
import { describeMachine, type Machine } from "./embedded.js";
import { clientCpuMicros, serverCpuMicros } from "./etcd-compare/cpu.js";
import { isRunning, planMembers, spawnMember, stopMember, type MemberProcess } from "./member-process.js";
import { percentile, renderTable } from "./stats.js";

const BIN = fileURLToPath(new URL("../bin/concord", import.meta.url));
export const DEFAULT_RANGES = 16;
export const DEFAULT_SECONDS = 15;
const MAX_RANGES = 256;
const MAX_SECONDS = 600;
const CONCURRENCY = 32;
const KEY_COUNT = 10_000;
const VALUE_BYTES = 256;
const KEY_PREFIX = "bench/split/";
/** No phase issues more puts than this, however fast the servers are. */
const MAX_OPS_PER_PHASE = 500_000;
/** Unmeasured load before each measured phase: connections open, leaders settle. */
const WARM_UP_MS = 3_000;
const READY_LIMIT_MS = 90_000;
const LEADERS_LIMIT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** A client loop whose put failed waits this long before its next one. */
const FAILED_PUT_PAUSE_MS = 100;
const OUTPUT_KEPT_CHARS = 8_000;

export interface SplitThroughputOptions {
  readonly ranges: number;
  readonly seconds: number;
}

export interface PhaseRow {
  readonly ranges: number;
  readonly ops: number;
  readonly failed: number;
  readonly elapsedMs: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU (3 member process trees) per wall-clock second, in ms. */
  readonly serverCpuMsPerS: number;
  /** Server CPU per acknowledged put, in microseconds. */
  readonly serverCpuUsPerOp: number;
  readonly clientCpuUsPerOp: number;
  /** How many ranges each member led when the phase ended, by client endpoint. */
  readonly leadersByMember: Record<string, number>;
}

export interface SplitThroughputReport {
  readonly workload: "split-throughput";
  readonly date: string;
  readonly machine: Machine;
  readonly setup: string;
  readonly concurrency: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly seconds: number;
  readonly rows: readonly PhaseRow[];
  /** Many ranges over one range: throughput and server CPU per op. */
  readonly ratio: { readonly opsPerSecond: number; readonly serverCpuPerOp: number };
}

/** Runs one `concord` client command in this process; its stdout, or an error with its stderr. */
export async function concordCli(argv: readonly string[]): Promise<string> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd: process.cwd(),
    startNode: () => Promise.reject(new Error("a client command starts no node")),
    waitForSignal: () => ({ received: new Promise(() => {}), dispose: () => {} }),
  });
  if (code !== 0) throw new Error(`concord ${argv.join(" ")} exited ${code}: ${stderr.trim()}`);
  return stdout;
}

/** One range as `concord range list -w json` prints it (keys base64; absent = empty). */
export interface ListedRange {
  readonly route_id: number;
  readonly start?: string;
  readonly end?: string;
  readonly state: string;
  readonly leader?: number;
}

export async function listRanges(endpoints: readonly string[]): Promise<ListedRange[]> {
  const json = await concordCli(["range", "list", "-w", "json", "--endpoints", endpoints.join(",")]);
  return (JSON.parse(json) as { ranges: ListedRange[] }).ranges;
}

function keyName(index: number): string {
  return `${KEY_PREFIX}${String(index).padStart(5, "0")}`;
}

interface Cluster {
  readonly members: readonly MemberProcess[];
  readonly endpoints: readonly string[];
  readonly client: Etcd3;
}

async function startCluster(root: string, members: MemberProcess[]): Promise<Cluster> {
  const plans = await planMembers(root, ["b1", "b2", "b3"], "bench-split-throughput");
  for (const plan of plans)
    members.push(
      spawnMember(
        BIN,
        ["start", ...plan.flags, "--auto-split=false"],
        plan.clientEndpoint,
        OUTPUT_KEPT_CHARS,
      ),
    );
  const endpoints = plans.map((plan) => plan.clientEndpoint);
  const client = new Etcd3({ hosts: endpoints.map((endpoint) => `http://${endpoint}`) });
  const deadline = performance.now() + READY_LIMIT_MS;
  for (;;) {
    const died = members.find((member) => !isRunning(member));
    if (died !== undefined) throw new Error(`a concord member exited before it was ready:\n${died.output}`);
    try {
      await withTimeout(client.put("bench/ready").value("yes").exec(), 5_000, "the ready put");
      return { members, endpoints, client };
    } catch (error) {
      if (performance.now() > deadline)
        throw new Error(`the cluster took no put within ${READY_LIMIT_MS} ms`, { cause: error });
    }
    await sleep(250);
  }
}

/** Closed-loop random puts for `ms`; the latencies of the acknowledged ones and the failures. */
async function putLoad(client: Etcd3, ms: number): Promise<{ latenciesMs: number[]; failed: number }> {
  const latenciesMs: number[] = [];
  let failed = 0;
  let issued = 0;
  const value = Buffer.alloc(VALUE_BYTES, "v");
  const deadline = performance.now() + ms;
  const loop = async (): Promise<void> => {
    while (issued < MAX_OPS_PER_PHASE && performance.now() < deadline) {
      issued++;
      const key = keyName(Math.floor(Math.random() * KEY_COUNT));
      const sent = performance.now();
      try {
        await withTimeout(client.put(key).value(value).exec(), REQUEST_TIMEOUT_MS, "a put");
        latenciesMs.push(performance.now() - sent);
      } catch {
        failed++;
        await sleep(FAILED_PUT_PAUSE_MS);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return { latenciesMs, failed };
}

async function measurePhase(cluster: Cluster, seconds: number): Promise<PhaseRow> {
  await putLoad(cluster.client, WARM_UP_MS);
  const pids = cluster.members.map((member) => member.child.pid ?? 0);
  const serverBefore = serverCpuMicros(pids);
  const clientBefore = clientCpuMicros();
  const started = performance.now();
  const { latenciesMs, failed } = await putLoad(cluster.client, seconds * 1000);
  const elapsedMs = performance.now() - started;
  const serverMicros = serverCpuMicros(pids) - serverBefore;
  const clientMicros = clientCpuMicros() - clientBefore;
  if (latenciesMs.length === 0) throw new Error(`no put was acknowledged in ${seconds} s (${failed} failed)`);
  const ranges = await listRanges(cluster.endpoints);
  return {
    ranges: ranges.length,
    ops: latenciesMs.length,
    failed,
    elapsedMs,
    opsPerSecond: (latenciesMs.length * 1000) / elapsedMs,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    serverCpuMsPerS: serverMicros / elapsedMs,
    serverCpuUsPerOp: serverMicros / latenciesMs.length,
    clientCpuUsPerOp: clientMicros / latenciesMs.length,
    leadersByMember: await leadersByMember(cluster.endpoints, ranges),
  };
}

/** Ranges led by each member, by the member id each endpoint's `range list` header names. */
async function leadersByMember(
  endpoints: readonly string[],
  ranges: readonly ListedRange[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const endpoint of endpoints) {
    const json = await concordCli(["range", "list", "-w", "json", "--endpoints", endpoint]);
    const memberId = (JSON.parse(json) as { header: { member_id: number } }).header.member_id;
    counts[endpoint] = ranges.filter((range) => range.leader === memberId).length;
  }
  return counts;
}

/** Splits at N-1 evenly spaced keys of the keyspace, then waits until every range has a leader. */
async function splitInto(
  endpoints: readonly string[],
  ranges: number,
  progress: (line: string) => void,
): Promise<void> {
  for (let i = 1; i < ranges; i++) {
    const key = keyName(Math.floor((i * KEY_COUNT) / ranges));
    await concordCli(["range", "split", key, "--endpoints", endpoints.join(",")]);
  }
  progress(`split into ${ranges} ranges; waiting for a leader of each`);
  const deadline = performance.now() + LEADERS_LIMIT_MS;
  for (;;) {
    const listed = await listRanges(endpoints).catch(() => []);
    const led = listed.filter((range) => range.state === "active" && (range.leader ?? 0) !== 0).length;
    if (listed.length === ranges && led === ranges) return;
    if (performance.now() > deadline)
      throw new Error(`${led} of ${listed.length} ranges had an active leader after ${LEADERS_LIMIT_MS} ms`);
    await sleep(250);
  }
}

export async function runSplitThroughputBench(
  options: SplitThroughputOptions,
  progress: (line: string) => void,
): Promise<SplitThroughputReport> {
  const root = makeTempRoot();
  const members: MemberProcess[] = [];
  let client: Etcd3 | undefined;
  try {
    const cluster = await startCluster(root, members);
    client = cluster.client;
    progress(`cluster ready (${cluster.endpoints.join(", ")}); measuring with 1 range`);
    const before = await measurePhase(cluster, options.seconds);
    progress(`1 range: ${before.opsPerSecond.toFixed(0)} ops/s; splitting into ${options.ranges}`);
    await splitInto(cluster.endpoints, options.ranges, progress);
    const after = await measurePhase(cluster, options.seconds);
    progress(`${after.ranges} ranges: ${after.opsPerSecond.toFixed(0)} ops/s`);
    return {
      workload: "split-throughput",
      date: new Date().toISOString(),
      machine: describeMachine(),
      setup:
        "3 processes (bin/concord start, fsync on, --auto-split=false), one etcd3 client over all endpoints",
      concurrency: CONCURRENCY,
      keys: KEY_COUNT,
      valueBytes: VALUE_BYTES,
      seconds: options.seconds,
      rows: [before, after],
      ratio: {
        opsPerSecond: after.opsPerSecond / before.opsPerSecond,
        serverCpuPerOp: after.serverCpuUsPerOp / before.serverCpuUsPerOp,
      },
    };
  } catch (error) {
    for (const member of members) progress(`--- ${member.clientEndpoint} (last output):\n${member.output}`);
    throw error;
  } finally {
    client?.close();
    await Promise.all(members.map(stopMember));
    rmSync(root, { recursive: true, force: true });
  }
}

/** The flag's number in (0, max] (whole when `whole`), its fallback when absent, or a RangeError naming it. */
function flagNumber(
  text: string | undefined,
  fallback: number,
  flag: string,
  max: number,
  whole: boolean,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > max || (whole && !Number.isInteger(value)))
    throw new RangeError(
      `${flag} must be ${whole ? "a whole number" : "a number"} in (0, ${max}], not "${text}"`,
    );
  return value;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isInteger(value) ? Math.round(value * 100) / 100 : value;
}

/** `npm run bench -- split-throughput [--ranges N] [--seconds S]`: the run, its table and its JSON file. */
export async function runSplitThroughputCommand(
  flags: { readonly ranges?: string | undefined; readonly seconds?: string | undefined },
  resultsDir: string,
): Promise<number> {
  const ranges = flagNumber(flags.ranges, DEFAULT_RANGES, "--ranges", MAX_RANGES, true);
  if (ranges < 2)
    throw new RangeError(`--ranges must be at least 2 to split anything, not "${flags.ranges}"`);
  const seconds = flagNumber(flags.seconds, DEFAULT_SECONDS, "--seconds", MAX_SECONDS, false);
  console.log(
    `concord bench split-throughput: 3 processes, uniform puts over ${KEY_COUNT} keys at concurrency ` +
      `${CONCURRENCY}, ${seconds} s with 1 range, then ${seconds} s with ${ranges} ranges`,
  );
  const report = await runSplitThroughputBench({ ranges, seconds }, (line) => console.log(`  ${line}`));
  const { machine } = report;
  console.log(`\ndate: ${report.date}`);
  console.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.platform}`,
  );
  console.log(`node: ${machine.node}\n`);
  const rows = report.rows.map((row) => [
    String(row.ranges),
    String(row.ops),
    String(row.failed),
    row.opsPerSecond.toFixed(0),
    row.p50Ms.toFixed(1),
    row.p99Ms.toFixed(1),
    row.serverCpuMsPerS.toFixed(0),
    row.serverCpuUsPerOp.toFixed(0),
    row.clientCpuUsPerOp.toFixed(0),
    Object.values(row.leadersByMember).join("/"),
  ]);
  rows.push([
    "ratio",
    "",
    "",
    report.ratio.opsPerSecond.toFixed(2),
    "",
    "",
    "",
    report.ratio.serverCpuPerOp.toFixed(2),
    "",
    "",
  ]);
  console.log(
    renderTable(
      [
        "ranges",
        "ops",
        "failed",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/s",
        "server CPU us/op",
        "client CPU us/op",
        "leaders per member",
      ],
      rows,
    ),
  );
  mkdirSync(resultsDir, { recursive: true });
  const file = `${resultsDir}${report.date.slice(0, 10)}-${report.workload}.json`;
  writeFileSync(file, `${JSON.stringify(report, jsonReplacer, 2)}\n`);
  console.log(`\nwritten to ${file}`);
  return 0;
}
