/**
 * Plain-text rendering of operations and histories, for violation explanations and for the
 * simulator's trace of a failing seed. Pure functions; output is stable for a given history.
 */
import { compareByCall, isPending } from "./history.js";
import type { Operation, RegisterValue } from "./history.js";

export function formatValue(value: RegisterValue): string {
  return value === null ? "absent" : JSON.stringify(value);
}

/** One operation on one line, e.g. `#7 c2 cas(key "k", absent -> "b") -> swapped`. */
export function formatOperation(operation: Operation): string {
  const head = `#${operation.id} c${operation.clientId}`;
  const key = `key ${JSON.stringify(operation.key)}`;
  switch (operation.kind) {
    case "put": {
      const result = operation.output === undefined ? "pending" : "ok";
      return `${head} put(${key}, ${formatValue(operation.value)}) -> ${result}`;
    }
    case "get": {
      const result = operation.output === undefined ? "pending" : formatValue(operation.output.value);
      return `${head} get(${key}) -> ${result}`;
    }
    case "cas": {
      const swap = `${formatValue(operation.expected)} -> ${formatValue(operation.next)}`;
      const result =
        operation.output === undefined ? "pending" : operation.output.swapped ? "swapped" : "not swapped";
      return `${head} cas(${key}, ${swap}) -> ${result}`;
    }
  }
}

function formatRet(operation: Operation): string {
  return isPending(operation) ? "pending" : String(operation.ret);
}

function widest(texts: readonly string[]): number {
  return texts.reduce((width, text) => Math.max(width, text.length), 0);
}

/**
 * The operations grouped by key (keys in sorted order), each group sorted by call time, one
 * line per operation with its [call, ret] interval:
 *
 *     key "k" (3 operations)
 *       [ 10,      25] #1 c1 put(key "k", "a") -> ok
 *       [ 12, pending] #2 c2 cas(key "k", absent -> "b") -> pending
 *       [ 30,      31] #3 c1 get(key "k") -> "a"
 */
export function renderTimeline(operations: readonly Operation[]): string {
  const byKey = new Map<string, Operation[]>();
  for (const operation of operations) {
    const group = byKey.get(operation.key);
    if (group === undefined) byKey.set(operation.key, [operation]);
    else group.push(operation);
  }
  const callWidth = widest(operations.map((op) => String(op.call)));
  const retWidth = widest(operations.map(formatRet));
  const lines: string[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const group = (byKey.get(key) ?? []).slice().sort(compareByCall);
    const noun = group.length === 1 ? "operation" : "operations";
    lines.push(`key ${JSON.stringify(key)} (${group.length} ${noun})`);
    for (const operation of group) {
      const call = String(operation.call).padStart(callWidth);
      const ret = formatRet(operation).padStart(retWidth);
      lines.push(`  [${call}, ${ret}] ${formatOperation(operation)}`);
    }
  }
  return lines.join("\n");
}
