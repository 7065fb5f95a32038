/**
 * The `embedded` workload: write throughput and latency of a 3-replica cluster with fsync on,
 * (a) as three `Concord.open` members in this process and (b) as three `bin/concord`
 * processes reached with `Concord.connect`. Per cluster: 256-byte puts at concurrency 1, 16
 * and 64 (one handle per concurrent client, since a handle sends one write at a time), then
 * linearizable gets at concurrency 16 of keys the puts wrote.
 */
import { cpus, platform, release, totalmem } from "node:os";
import { startInProcessCluster } from "./in-process-cluster.js";
import { runRow, type Operation, type RowBudget } from "./load.js";
import { startProcessCluster } from "./process-cluster.js";
import type { BenchCluster } from "./cluster.js";
import type { ConcordDb } from "../src/api/index.js";
import type { RowResult } from "./stats.js";

export const DEFAULT_BUDGET: RowBudget = { maxOps: 3_000, maxMs: 20_000 };
export const VALUE_BYTES = 256;
const PUT_CONCURRENCIES = [1, 16, 64] as const;
const GET_CONCURRENCY = 16;
/** Puts cycle over this many keys, so the store's size stays the same between runs. */
const KEYSPACE = 1_000;

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly memoryGiB: number;
}

export interface EmbeddedReport {
  readonly workload: "embedded";
  readonly date: string;
  readonly machine: Machine;
  readonly budget: RowBudget;
  readonly valueBytes: number;
  readonly rows: readonly RowResult[];
}

export function describeMachine(): Machine {
  const processors = cpus();
  return {
    cores: processors.length,
    cpuModel: processors[0]?.model.trim() ?? "unknown",
    node: process.version,
    platform: `${platform()} ${release()}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  };
}

function keyOf(index: number): string {
  return `bench/key/${String(index % KEYSPACE).padStart(6, "0")}`;
}

/** Runs one row on fresh handles, connected (one status call each) before the clock starts. */
async function measure(
  cluster: BenchCluster,
  operation: RowResult["operation"],
  concurrency: number,
  run: Operation<ConcordDb>,
  budget: RowBudget,
): Promise<RowResult> {
  const handles = cluster.handles(concurrency);
  try {
    await Promise.all(handles.map((db) => db.status()));
    return await runRow({ setup: cluster.setup, operation }, handles, run, budget);
  } finally {
    await Promise.all(handles.map((db) => db.close()));
  }
}

async function benchCluster(
  cluster: BenchCluster,
  budget: RowBudget,
  onRow: (row: RowResult) => void,
): Promise<RowResult[]> {
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  const rows: RowResult[] = [];
  const put: Operation<ConcordDb> = (db, index) => db.put(keyOf(index), value);
  for (const concurrency of PUT_CONCURRENCIES) {
    const row = await measure(cluster, "put", concurrency, put, budget);
    rows.push(row);
    onRow(row);
  }
  // Every put row wrote keys 0, 1, … from its first op on, so these keys all exist.
  const keysWritten = Math.min(KEYSPACE, ...rows.map((row) => row.ops));
  const get: Operation<ConcordDb> = async (db, index) => {
    const key = keyOf(index % keysWritten);
    if ((await db.get(key)) === null) throw new Error(`${key} was written but reads as missing`);
  };
  const getRow = await measure(cluster, "get", GET_CONCURRENCY, get, budget);
  rows.push(getRow);
  onRow(getRow);
  return rows;
}

/** Runs both clusters one after the other, reporting each row as it finishes. */
export async function runEmbeddedBench(
  budget: RowBudget,
  onRow: (row: RowResult) => void,
): Promise<EmbeddedReport> {
  const date = new Date().toISOString();
  const rows: RowResult[] = [];
  for (const start of [startInProcessCluster, startProcessCluster]) {
    const cluster = await start();
    try {
      rows.push(...(await benchCluster(cluster, budget, onRow)));
    } finally {
      await cluster.close();
    }
  }
  return { workload: "embedded", date, machine: describeMachine(), budget, valueBytes: VALUE_BYTES, rows };
}
