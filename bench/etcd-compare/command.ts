/**
 * `npm run bench -- etcd-compare [--seconds S] [--reps N] [--only put,get,txn,watch,perf]
 * [--systems concord,etcd] [--both-running]`: the flags (parsed and checked before anything
 * starts), the printed report, and the two result files,
 * bench/results/<YYYY-MM-DD>-etcd-compare.json and .svg (a later run on the same day
 * replaces them).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { formatCheckPerf } from "./check-perf.js";
import {
  CLIENT_DESCRIPTION,
  DEFAULT_REPS,
  DEFAULT_SECONDS,
  ROW_GROUPS,
  runEtcdCompare,
  type CompareOptions,
  type CompareReport,
  type RowGroup,
} from "./compare.js";
import type { ServerKind } from "./servers.js";
import { formatComparisonTable, SYSTEMS } from "./stats.js";
import { renderComparisonSvg } from "./svg.js";

/** The most a row may run: keeps a mistyped --seconds from holding the machine for hours. */
const MAX_SECONDS = 600;
const MAX_REPS = 50;

export interface CompareFlags {
  readonly seconds?: string | undefined;
  readonly reps?: string | undefined;
  readonly only?: string | undefined;
  readonly systems?: string | undefined;
  readonly "both-running"?: boolean | undefined;
}

function listFlag<T extends string>(text: string | undefined, allowed: readonly T[], flag: string): Set<T> {
  if (text === undefined) return new Set(allowed);
  const items = text.split(",").map((item) => item.trim());
  const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
  if (unknown.length > 0 || items.length === 0)
    throw new RangeError(`${flag} takes a comma-separated list of ${allowed.join(", ")}; not "${text}"`);
  return new Set(items as T[]);
}

/** The run's settings from its flags; a RangeError names the first bad flag. */
export function parseCompareFlags(flags: CompareFlags): Omit<CompareOptions, "progress"> {
  const seconds = flags.seconds === undefined ? DEFAULT_SECONDS : Number(flags.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SECONDS)
    throw new RangeError(`--seconds must be a number in (0, ${MAX_SECONDS}], not "${flags.seconds}"`);
  const reps = flags.reps === undefined ? DEFAULT_REPS : Number(flags.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > MAX_REPS)
    throw new RangeError(`--reps must be a whole number from 1 to ${MAX_REPS}, not "${flags.reps}"`);
  return {
    seconds,
    reps,
    only: listFlag<RowGroup>(flags.only, ROW_GROUPS, "--only"),
    systems: listFlag<ServerKind>(flags.systems, SYSTEMS, "--systems"),
    bothRunning: flags["both-running"] === true,
  };
}

/** Rounds fractions to two decimals in the JSON file (integers and ratios' NaN stay readable). */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value !== "number" || Number.isInteger(value)) return value;
  return Number.isFinite(value) ? Math.round(value * 100) / 100 : null;
}

function printReport(report: CompareReport): void {
  const { machine, settings } = report;
  console.log(`\ndate: ${report.date}`);
  console.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.platform}`,
  );
  console.log(`node: ${machine.node}`);
  console.log(`client: ${report.client}`);
  console.log(
    `load average (1 min): ${report.loadAverage.before.toFixed(1)} before, ${report.loadAverage.after.toFixed(1)} after`,
  );
  console.log(
    `medians of ${settings.reps} repetitions of ${settings.seconds} s; server CPU = all members summed; ` +
      `ratio below 1 = Concord has less of it; ` +
      (settings.othersPaused
        ? "the other cluster paused while one is measured\n"
        : "both clusters running throughout\n"),
  );
  for (const [system, reason] of Object.entries(report.skipped)) console.log(`skipped ${system}: ${reason}`);
  if (report.rows.length > 0) console.log(formatComparisonTable(report.rows));
  const perfRuns = Object.entries(report.checkPerf);
  if (perfRuns.length > 0) {
    console.log("\netcdctl check perf --load=s (50 clients, 150 writes/s, 60 s):");
    for (const [system, run] of perfRuns) console.log(`  ${formatCheckPerf(system, run)}`);
  }
  const { afterWarmUp, afterReps, afterCheckPerf } = report.concordRanges;
  const counts = [
    afterWarmUp === null ? null : `${afterWarmUp} after the warm-up`,
    afterReps.length === 0
      ? null
      : `${afterReps.map(({ ranges }) => ranges ?? "?").join(" / ")} after each repetition`,
    afterCheckPerf === null ? null : `${afterCheckPerf} after check perf`,
  ].filter((part) => part !== null);
  if (counts.length > 0)
    console.log(`
concord ranges (load splits the keyspace; etcd has one): ${counts.join(", ")}`);
}

/** Runs the comparison from its flags; the process exit code. */
export async function runEtcdCompareCommand(flags: CompareFlags, resultsDir: string): Promise<number> {
  let settings: Omit<CompareOptions, "progress">;
  try {
    settings = parseCompareFlags(flags);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    console.error(error.message);
    return 2;
  }
  console.log(
    `concord bench etcd-compare: 3-member clusters on loopback, fsync on; ${CLIENT_DESCRIPTION}; ` +
      `${settings.reps} reps x ${settings.seconds} s per row; rows: ${[...settings.only].join(",")}`,
  );
  const report = await runEtcdCompare({ ...settings, progress: (line) => console.log(line) });
  printReport(report);
  mkdirSync(resultsDir, { recursive: true });
  const stem = `${resultsDir}${report.date.slice(0, 10)}-${report.workload}`;
  writeFileSync(`${stem}.json`, `${JSON.stringify(report, jsonReplacer, 2)}\n`);
  const title = `Concord vs etcd, 3 members, fsync on — ${report.date.slice(0, 10)}, ${report.machine.cores} cores`;
  writeFileSync(`${stem}.svg`, renderComparisonSvg(report.rows, title));
  console.log(`\nwritten to ${stem}.json and ${stem}.svg`);
  return 0;
}
