/**
 * `etcdctl check perf --load=s` (etcd's own Go load generator: 50 clients writing at 150/s
 * for 60 s) against a cluster, and the parsing of its verdict lines: the throughput,
 * slowest-request and standard-deviation checks, each passed or failed, and the overall
 * PASS/FAIL. Also reads the members' CPU across the run. The parser is pure (tested in
 * test/bench/etcd-compare-check-perf.test.ts).
 */
import { execFile } from "node:child_process";
import { serverCpuMicros } from "./cpu.js";
import type { ServerCluster } from "./servers.js";

/** check perf runs for 60 s; this bounds the whole command, dialing and clean-up included. */
const CHECK_PERF_LIMIT_MS = 150_000;
const CHECK_PERF_SECONDS = 60;

export interface CheckPerfLine {
  readonly passed: boolean;
  readonly value: number;
}

/** What `etcdctl check perf` reported. */
export interface CheckPerfResult {
  readonly passed: boolean;
  readonly throughputWritesPerSecond?: CheckPerfLine;
  readonly slowestRequestSeconds?: CheckPerfLine;
  readonly stddevSeconds?: CheckPerfLine;
}

/** One check-perf run on one system, with its members' CPU per write. */
export interface CheckPerfRun {
  readonly load: string;
  readonly result?: CheckPerfResult;
  /** Members' CPU over the run divided by throughput × 60 s (the writes it made). */
  readonly serverCpuUsPerWrite?: number;
  /** Why there is no result, when the command failed without a verdict. */
  readonly error?: string;
}

/**
 * Parses check perf's output. Its check lines read "PASS: Throughput is 150 writes/s" or
 * "FAIL: Throughput too low: 90 writes/s", "PASS: Slowest request took 0.06s" or "Slowest
 * request took too long: 0.8s", "PASS: Stddev is 0.002s" or "FAIL: Stddev too high: 0.2s";
 * the verdict is a last line of just PASS or FAIL. The progress bar before them is ignored.
 * Undefined when there is no verdict line (the check did not finish).
 */
export function parseCheckPerf(output: string): CheckPerfResult | undefined {
  const lines = output.split(/\r?\n|\r/).map((line) => line.trim());
  const verdict = lines.filter((line) => line === "PASS" || line === "FAIL").at(-1);
  if (verdict === undefined) return undefined;
  const check = (pattern: RegExp): CheckPerfLine | undefined => {
    for (const line of lines) {
      const match = pattern.exec(line);
      if (match?.[1] === undefined) continue;
      const failed = line.startsWith("FAIL") || /too (low|long|high)/.test(line);
      return { passed: !failed, value: Number(match[1]) };
    }
    return undefined;
  };
  const throughput = check(/Throughput\D*?(\d+(?:\.\d+)?) writes\/s/);
  const slowest = check(/Slowest request took\D*?(\d+(?:\.\d+)?)s/);
  const stddev = check(/Stddev\D*?(\d+(?:\.\d+)?)s/);
  return {
    passed: verdict === "PASS",
    ...(throughput === undefined ? {} : { throughputWritesPerSecond: throughput }),
    ...(slowest === undefined ? {} : { slowestRequestSeconds: slowest }),
    ...(stddev === undefined ? {} : { stddevSeconds: stddev }),
  };
}

/** Runs check perf against every endpoint of `cluster`. A FAIL verdict exits non-zero and is still a result. */
export async function runCheckPerf(cluster: ServerCluster, load = "s"): Promise<CheckPerfRun> {
  const before = serverCpuMicros(cluster.pids);
  const { output, failure } = await new Promise<{ output: string; failure?: string }>((resolve) => {
    execFile(
      "etcdctl",
      [`--endpoints=${cluster.endpoints.join(",")}`, "check", "perf", `--load=${load}`],
      {
        timeout: CHECK_PERF_LIMIT_MS,
        env: { ...process.env, ETCDCTL_API: "3" },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        resolve({
          output: `${stdout}\n${stderr}`,
          ...(error === null
            ? {}
            : { failure: `${error.message.split("\n")[0]}: ${stderr.trim().slice(-500)}` }),
        }),
    );
  });
  const serverMicros = serverCpuMicros(cluster.pids) - before;
  const result = parseCheckPerf(output);
  if (result === undefined) return { load, error: failure ?? "check perf printed no verdict" };
  const writes = (result.throughputWritesPerSecond?.value ?? 0) * CHECK_PERF_SECONDS;
  return { load, result, ...(writes > 0 ? { serverCpuUsPerWrite: serverMicros / writes } : {}) };
}

/** One line per system: the verdict and each check's figure. */
export function formatCheckPerf(kind: string, run: CheckPerfRun): string {
  const result = run.result;
  if (result === undefined) return `${kind}: no verdict (${run.error ?? "unknown"})`;
  const mark = (line: CheckPerfLine | undefined, unit: string): string =>
    line === undefined ? "-" : `${line.value}${unit}${line.passed ? "" : " (fail)"}`;
  const cpu = run.serverCpuUsPerWrite === undefined ? "-" : `${run.serverCpuUsPerWrite.toFixed(0)} µs`;
  return (
    `${kind}: ${result.passed ? "PASS" : "FAIL"}  throughput ${mark(result.throughputWritesPerSecond, " writes/s")}` +
    `  slowest ${mark(result.slowestRequestSeconds, " s")}  stddev ${mark(result.stddevSeconds, " s")}` +
    `  server CPU/write ${cpu}`
  );
}
