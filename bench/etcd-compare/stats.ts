/**
 * The arithmetic and the printed table of the etcd comparison: what a row is, what one
 * repetition of a row measured, medians over repetitions, the Concord/etcd ratio of every
 * metric, and the text table. Pure functions (tested in test/bench/etcd-compare-stats.test.ts).
 */
import { percentile, renderTable } from "../stats.js";
import type { ServerKind } from "./servers.js";

/** Table and chart order. */
export const SYSTEMS: readonly ServerKind[] = ["concord", "etcd"];

/** One row of the comparison: which workload, at which concurrency or offered rate. */
export type RowSpec =
  | {
      readonly id: string;
      readonly workload: "closed-put" | "closed-get" | "cas";
      readonly concurrency: number;
    }
  | { readonly id: string; readonly workload: "open-put" | "open-get"; readonly offeredPerSecond: number }
  | { readonly id: string; readonly workload: "watch" };

/** The `--only` group a row belongs to. */
export function rowGroup(spec: RowSpec): "put" | "get" | "txn" | "watch" {
  switch (spec.workload) {
    case "closed-put":
    case "open-put":
      return "put";
    case "closed-get":
    case "open-get":
      return "get";
    case "cas":
      return "txn";
    case "watch":
      return "watch";
  }
}

/** What one repetition of one row measured on one system. */
export interface Measurement {
  readonly ops: number;
  readonly elapsedMs: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of all members (their process trees, summed) per completed operation. */
  readonly serverCpuUsPerOp: number;
  /** CPU of the bench process (the client) per completed operation. */
  readonly clientCpuUsPerOp: number;
}

/** The metrics that are reported, compared and charted, in table order. */
export const METRICS = ["opsPerSecond", "p50Ms", "p99Ms", "serverCpuUsPerOp", "clientCpuUsPerOp"] as const;
export type Metric = (typeof METRICS)[number];
export type Metrics = Readonly<Record<Metric, number>>;

export const METRIC_TITLES: Readonly<Record<Metric, string>> = {
  opsPerSecond: "ops/s",
  p50Ms: "p50 ms",
  p99Ms: "p99 ms",
  serverCpuUsPerOp: "server CPU µs/op",
  clientCpuUsPerOp: "client CPU µs/op",
};

/** One repetition's figures from its latencies (ms), wall time and CPU deltas (µs). */
export function measurementOf(
  latenciesMs: readonly number[],
  elapsedMs: number,
  serverCpuMicros: number,
  clientCpuMicros: number,
): Measurement {
  if (latenciesMs.length === 0) throw new RangeError("a row that completed no operation measured nothing");
  if (!(elapsedMs > 0)) throw new RangeError(`a row must take some time, not ${elapsedMs} ms`);
  if (serverCpuMicros < 0 || clientCpuMicros < 0) throw new RangeError("CPU time cannot go backwards");
  const ops = latenciesMs.length;
  return {
    ops,
    elapsedMs,
    opsPerSecond: (ops * 1000) / elapsedMs,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    serverCpuUsPerOp: serverCpuMicros / ops,
    clientCpuUsPerOp: clientCpuMicros / ops,
  };
}

/** The median of `values`: the middle one, or the mean of the two middle ones. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("the median of nothing is undefined");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const upper = sorted[middle] ?? NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? NaN) + upper) / 2;
}

/** Each metric's median over repetitions, taken metric by metric. */
export function medianMetrics(reps: readonly Measurement[]): Metrics {
  const entries = METRICS.map((metric) => [metric, median(reps.map((rep) => rep[metric]))] as const);
  return Object.fromEntries(entries) as Record<Metric, number>;
}

/** Concord's figure over etcd's, per metric; NaN where etcd's is 0 (no meaningful ratio). */
export function ratios(concord: Metrics, etcd: Metrics): Metrics {
  const entries = METRICS.map((metric) => [
    metric,
    etcd[metric] === 0 ? NaN : concord[metric] / etcd[metric],
  ]);
  return Object.fromEntries(entries) as Record<Metric, number>;
}

/** A row's result: every repetition on each system, their medians, and the ratio. */
export interface RowSummary {
  readonly id: string;
  readonly group: ReturnType<typeof rowGroup>;
  readonly offeredPerSecond?: number;
  readonly reps: Readonly<Partial<Record<ServerKind, readonly Measurement[]>>>;
  readonly median: Readonly<Partial<Record<ServerKind, Metrics>>>;
  readonly concordOverEtcd?: Metrics;
}

export function summarizeRow(
  spec: RowSpec,
  reps: Readonly<Partial<Record<ServerKind, readonly Measurement[]>>>,
): RowSummary {
  const medians: Partial<Record<ServerKind, Metrics>> = {};
  for (const system of SYSTEMS) {
    const measured = reps[system];
    if (measured !== undefined && measured.length > 0) medians[system] = medianMetrics(measured);
  }
  const { concord, etcd } = medians;
  return {
    id: spec.id,
    group: rowGroup(spec),
    ...("offeredPerSecond" in spec ? { offeredPerSecond: spec.offeredPerSecond } : {}),
    reps,
    median: medians,
    ...(concord !== undefined && etcd !== undefined ? { concordOverEtcd: ratios(concord, etcd) } : {}),
  };
}

/** A figure with as many decimals as its size deserves. */
export function formatFigure(value: number): string {
  if (!Number.isFinite(value)) return "-";
  const size = Math.abs(value);
  return value.toFixed(size >= 100 ? 0 : size >= 10 ? 1 : 2);
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : "-";
}

const TABLE_HEAD = ["row", "system", ...METRICS.map((metric) => METRIC_TITLES[metric])];

/**
 * The rows as an aligned text table: for each row a line per system that ran it, then a
 * "concord/etcd" line with the ratio of each metric (below 1 is less of it for Concord).
 */
export function formatComparisonTable(rows: readonly RowSummary[]): string {
  const lines: string[][] = [];
  for (const row of rows) {
    let first = true;
    const label = (): string => {
      const text = first ? row.id : "";
      first = false;
      return text;
    };
    for (const system of SYSTEMS) {
      const metrics = row.median[system];
      if (metrics !== undefined)
        lines.push([label(), system, ...METRICS.map((metric) => formatFigure(metrics[metric]))]);
    }
    const ratio = row.concordOverEtcd;
    if (ratio !== undefined)
      lines.push([label(), "concord/etcd", ...METRICS.map((metric) => formatRatio(ratio[metric]))]);
  }
  return renderTable(TABLE_HEAD, lines);
}
