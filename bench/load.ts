/**
 * The closed-loop load driver: N client handles, each sending its next operation as soon as
 * the previous one answered, until the row's operation budget or its time budget is spent.
 * Latency is measured per operation on the monotonic clock (performance.now).
 */
import { summarize, type RowResult } from "./stats.js";

/** How much one row may do: it stops at whichever limit it reaches first. */
export interface RowBudget {
  readonly maxOps: number;
  readonly maxMs: number;
}

/** One operation on a client handle; `index` counts the row's operations from 0. */
export type Operation<Handle> = (handle: Handle, index: number) => Promise<unknown>;

/**
 * Runs `operation` on every handle in `handles` concurrently (one outstanding operation per
 * handle) within `budget`, and summarizes the row. An operation that fails fails the row: a
 * benchmark that hides errors measures something else.
 */
export async function runRow<Handle>(
  row: Pick<RowResult, "setup" | "operation">,
  handles: readonly Handle[],
  operation: Operation<Handle>,
  budget: RowBudget,
): Promise<RowResult> {
  if (handles.length === 0) throw new RangeError("a row needs at least one handle");
  const latenciesMs: number[] = [];
  let issued = 0;
  const started = performance.now();
  const deadline = started + budget.maxMs;
  const client = async (handle: Handle): Promise<void> => {
    while (issued < budget.maxOps && performance.now() < deadline) {
      const index = issued++;
      const sent = performance.now();
      await operation(handle, index);
      latenciesMs.push(performance.now() - sent);
    }
  };
  await Promise.all(handles.map(client));
  const elapsedMs = performance.now() - started;
  return summarize({ ...row, concurrency: handles.length }, latenciesMs, elapsedMs);
}
