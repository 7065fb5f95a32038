/**
 * Latency statistics and the printed table of a benchmark: nearest-rank percentiles over
 * recorded per-operation latencies, a row's throughput, and fixed-width text formatting.
 * Pure functions, so they are tested on their own (test/bench/stats.test.ts).
 */

/** One measured row: how many operations finished, how long the row ran, and their latencies. */
export interface RowResult {
  readonly setup: string;
  readonly operation: "put" | "get";
  readonly concurrency: number;
  readonly ops: number;
  readonly elapsedMs: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * The nearest-rank percentile `p` (0 < p ≤ 100) of `samples`: the smallest sample such that
 * at least p% of the samples are at or below it.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError("a percentile of no samples is undefined");
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in (0, 100]`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  const value = sorted[rank - 1];
  if (value === undefined) throw new Error(`rank ${rank} is outside ${sorted.length} samples`);
  return value;
}

/** Summarizes one row's latencies (milliseconds) measured over `elapsedMs` of wall time. */
export function summarize(
  row: Pick<RowResult, "setup" | "operation" | "concurrency">,
  latenciesMs: readonly number[],
  elapsedMs: number,
): RowResult {
  if (!(elapsedMs > 0)) throw new RangeError(`a row must take some time, not ${elapsedMs} ms`);
  return {
    ...row,
    ops: latenciesMs.length,
    elapsedMs,
    opsPerSecond: (latenciesMs.length * 1000) / elapsedMs,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
  };
}

const COLUMNS = ["setup", "op", "conc", "ops", "ops/s", "p50 ms", "p99 ms"] as const;

/** The rows as an aligned text table: a header, a rule, then one line per row. */
export function formatTable(rows: readonly RowResult[]): string {
  const cells = rows.map((row) => [
    row.setup,
    row.operation,
    String(row.concurrency),
    String(row.ops),
    row.opsPerSecond.toFixed(0),
    row.p50Ms.toFixed(2),
    row.p99Ms.toFixed(2),
  ]);
  return renderTable(COLUMNS, cells);
}

/**
 * A plain-text table: a head, a rule, the lines; every column as wide as its widest cell. The
 * first two columns are text and read left-aligned, the rest are numbers, right-aligned.
 */
export function renderTable(head: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = head.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => line[column]?.length ?? 0)),
  );
  const render = (line: readonly string[]): string =>
    line
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return column < 2 ? cell.padEnd(width) : cell.padStart(width);
      })
      .join("  ")
      .trimEnd();
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  return [render(head), rule, ...lines.map(render)].join("\n");
}
