/**
 * `npm run bench -- <workload> [flags]`: runs a named workload (`apply`, `embedded`, `etcd-compare`,
 * `idle-ranges`, `layout-writes`, `split-apply`, `split-throughput`),
 * prints the machine, the date and a table of results, and writes the same figures as JSON to
 * bench/results/<YYYY-MM-DD>-<workload>.json (etcd-compare also draws an SVG chart beside it).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runApplyBench } from "./apply.js";
import { DEFAULT_BUDGET, runEmbeddedBench, VALUE_BYTES, type Machine } from "./embedded.js";
import { runEtcdCompareCommand } from "./etcd-compare/command.js";
import { runIdleRangesBench, type IdleRangesReport } from "./idle-ranges.js";
import { runLayoutWritesBench } from "./layout-writes.js";
import type { RowBudget } from "./load.js";
import { runSplitApplyBench } from "./split-apply.js";
import { runSplitThroughputCommand } from "./split-throughput.js";
import { formatTable, renderTable } from "./stats.js";

const USAGE = [
  "usage: npm run bench -- <workload> [flags]   (--help: this text)",
  "       npm run bench -- apply [--ops <puts per row, default 60000>]",
  "       npm run bench -- embedded [--ops <per row, default 3000>] [--seconds <per row, default 20>]",
  "       npm run bench -- etcd-compare [--seconds <per row, default 4>] [--reps <default 3>]",
  "                                     [--only put,get,txn,watch,perf] [--systems concord,etcd]",
  "                                     [--both-running]",
  "       npm run bench -- idle-ranges [--ranges <default 1000>] [--seconds <idle window, default 10>]",
  "       npm run bench -- layout-writes",
  "       npm run bench -- split-apply",
  "       npm run bench -- split-throughput [--ranges <default 16>] [--seconds <per phase, default 15>]",
].join("\n");
const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));

/** The flags each workload takes; any other flag, or a word after the workload, is a usage error. */
const WORKLOAD_FLAGS: ReadonlyMap<string, readonly string[]> = new Map([
  ["apply", ["ops"]],
  ["embedded", ["ops", "seconds"]],
  ["etcd-compare", ["seconds", "reps", "only", "systems", "both-running"]],
  ["idle-ranges", ["ranges", "seconds"]],
  ["layout-writes", []],
  ["split-apply", []],
  ["split-throughput", ["ranges", "seconds"]],
]);

function positiveNumber(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${flag} must be a positive number, not "${text}"`);
  return value;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isInteger(value) ? Math.round(value * 100) / 100 : value;
}

/** Prints the date, machine and Node version of a report, before its table. */
function printReportHeader(report: { readonly date: string; readonly machine: Machine }): void {
  const { machine } = report;
  console.log(`\ndate: ${report.date}`);
  console.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.platform}`,
  );
  console.log(`node: ${machine.node}\n`);
}

/** Writes a report to bench/results/<date>-<workload>.json (replacing that day's). */
function writeReport(report: { readonly date: string; readonly workload: string }): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}${report.date.slice(0, 10)}-${report.workload}.json`;
  writeFileSync(file, `${JSON.stringify(report, jsonReplacer, 2)}\n`);
  console.log(`\nwritten to ${file}`);
}

/** The idle-ranges workload: quiescence on and off, one table, one JSON file. */
async function runIdleRanges(
  rangesText: string | undefined,
  secondsText: string | undefined,
): Promise<number> {
  const ranges = positiveNumber(rangesText, 1_000, "--ranges");
  if (!Number.isSafeInteger(ranges))
    throw new RangeError(`--ranges must be a whole number, not "${rangesText}"`);
  const seconds = positiveNumber(secondsText, 10, "--seconds");
  console.log(
    `concord bench idle-ranges: 3 nodes in this process (lmdb, TCP on 127.0.0.1), ${ranges} ranges, ` +
      `CPU over ${seconds} s idle, quiescence on then off`,
  );
  const report: IdleRangesReport = await runIdleRangesBench({ ranges, seconds }, (line) =>
    console.log(`  ${line}`),
  );
  printReportHeader(report);
  console.log(
    renderTable(
      [
        "quiesce",
        "ranges",
        "CPU ms/s (3 nodes)",
        "per node",
        "raft msgs/s",
        "liveness msgs/s",
        "dormant",
        "wake-ups",
        "ticks/s per node",
      ],
      report.rows.map((row) => [
        row.quiesce ? "on" : "off",
        String(row.ranges),
        row.cpuMsPerS.toFixed(1),
        row.cpuMsPerSPerNode.toFixed(1),
        row.raftMessagesPerS.toFixed(0),
        row.livenessMessagesPerS.toFixed(0),
        `${row.dormantReplicas}/${row.ranges * 3}`,
        String(row.wakeUps),
        row.ticksPerSPerNode.toFixed(1),
      ]),
    ),
  );
  writeReport(report);
  return 0;
}

/** The apply workload: one table, one JSON file. */
async function runApply(opsText: string | undefined): Promise<number> {
  const puts = positiveNumber(opsText, 60_000, "--ops");
  if (!Number.isSafeInteger(puts)) throw new RangeError(`--ops must be a whole number, not "${opsText}"`);
  console.log(
    `concord bench apply: MvccStore.applyEntries over lmdb (no Raft; its background commits counted), ${puts} puts per row ` +
      `after a warm-up; reference: bare lmdb transactions of the same rows`,
  );
  const report = await runApplyBench(puts, (line) => console.log(`  ${line}`));
  printReportHeader(report);
  console.log(
    renderTable(
      ["entries per apply", "puts", "apply CPU us/put", "lmdb alone CPU us/put", "apply/lmdb"],
      report.rows.map((row) => [
        String(row.batch),
        String(row.puts),
        row.applyCpuUsPerPut.toFixed(1),
        row.engineCpuUsPerPut.toFixed(1),
        `${(row.applyCpuUsPerPut / row.engineCpuUsPerPut).toFixed(2)}x`,
      ]),
    ),
  );
  writeReport(report);
  return 0;
}

/** The layout-writes workload: one table, one JSON file. */
async function runLayoutWrites(): Promise<number> {
  console.log(
    "concord bench layout-writes: device bytes and time per lmdb commit of N puts (1,000 keys, 200,000 " +
      "versions of history first): Concord's MvccStore; reference: bare lmdb, versions keyed " +
      "key-major (Concord's order) and revision-major (etcd's)",
  );
  const report = await runLayoutWritesBench((line) => console.log(`  ${line}`));
  printReportHeader(report);
  console.log(`device: ${report.device}\n`);
  console.log(
    renderTable(
      ["layout", "puts per commit", "MB per commit", "KiB per put", "ms per commit"],
      report.rows.map((row) => [
        row.layout,
        String(row.putsPerCommit),
        (row.deviceBytesPerCommit / 1e6).toFixed(2),
        (row.deviceBytesPerPut / 1024).toFixed(2),
        row.commitMs.toFixed(1),
      ]),
    ),
  );
  writeReport(report);
  return 0;
}

/** The split-apply workload: one table, one JSON file. */
async function runSplitApply(): Promise<number> {
  console.log(
    "concord bench split-apply: one split applied to an MvccStore over lmdb holding N versions " +
      "(1,000 keys, half of them moved), then the removal steps it leaves and a compaction's; " +
      "reference: one bare lmdb transaction moving the same rows",
  );
  const report = await runSplitApplyBench((line) => console.log(`  ${line}`));
  printReportHeader(report);
  console.log(
    renderTable(
      [
        "versions",
        "moved",
        "apply ms (main thread)",
        "commit ms",
        "lmdb alone ms",
        "apply/lmdb",
        "removal: longest step / all ms",
        "compact apply ms",
        "its longest step ms",
      ],
      report.rows.map((row) => [
        String(row.versions),
        String(row.moved),
        row.applyMs.toFixed(1),
        row.commitMs.toFixed(1),
        row.engineMs.toFixed(1),
        `${(row.applyMs / row.engineMs).toFixed(2)}x`,
        `${row.removalStepMaxMs.toFixed(1)} / ${row.removalMs.toFixed(1)}`,
        row.compactApplyMs.toFixed(2),
        row.compactStepMaxMs.toFixed(1),
      ]),
    ),
  );
  writeReport(report);
  return 0;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        help: { type: "boolean", short: "h" },
        ops: { type: "string" },
        seconds: { type: "string" },
        reps: { type: "string" },
        only: { type: "string" },
        systems: { type: "string" },
        ranges: { type: "string" },
        "both-running": { type: "boolean" },
      },
    });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  const { positionals, values: flags } = parsed;
  const { help, ...values } = flags;
  if (help === true) {
    console.log(USAGE);
    return 0;
  }
  const [workload, ...extra] = positionals;
  const accepted = workload === undefined ? undefined : WORKLOAD_FLAGS.get(workload);
  const given = Object.entries(values)
    .filter(([, value]) => value !== undefined)
    .map(([flag]) => flag);
  if (accepted === undefined || extra.length > 0 || given.some((flag) => !accepted.includes(flag))) {
    console.error(
      workload === undefined ? USAGE : `unknown workload or flag for "${positionals.join(" ")}"\n${USAGE}`,
    );
    return 2;
  }
  if (workload === "apply") return runApply(values.ops);
  if (workload === "idle-ranges") return runIdleRanges(values.ranges, values.seconds);
  if (workload === "layout-writes") return runLayoutWrites();
  if (workload === "split-apply") return runSplitApply();
  if (workload === "split-throughput") return runSplitThroughputCommand(values, RESULTS_DIR);
  if (workload === "etcd-compare") return runEtcdCompareCommand(values, RESULTS_DIR);
  const budget: RowBudget = {
    maxOps: Math.floor(positiveNumber(values.ops, DEFAULT_BUDGET.maxOps, "--ops")),
    maxMs: positiveNumber(values.seconds, DEFAULT_BUDGET.maxMs / 1000, "--seconds") * 1000,
  };
  console.log(
    `concord bench embedded: 3 replicas, fsync on, ${VALUE_BYTES}-byte values, ` +
      `each row ${budget.maxOps} ops or ${budget.maxMs / 1000} s, whichever comes first`,
  );
  const report = await runEmbeddedBench(budget, (row) => {
    console.log(`  done: ${row.setup} ${row.operation} x${row.concurrency} (${row.ops} ops)`);
  });
  printReportHeader(report);
  console.log(formatTable(report.rows));
  writeReport(report);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
