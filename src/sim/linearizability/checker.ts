/**
 * Entry point of the linearizability checker: validates a history, splits it per key (a
 * register-per-key store is linearizable iff each key's sub-history is: P-compositionality),
 * runs the search on each key and turns a failure into a readable explanation.
 */
import { compareByCall, isPending, validateHistory } from "./history.js";
import type { Operation } from "./history.js";
import { ABSENT, ILLEGAL, RegisterModel } from "./register-model.js";
import type { CompiledOperation, RegisterState } from "./register-model.js";
import { searchLinearization } from "./search.js";
import { formatOperation, formatValue } from "./timeline.js";

export type LinearizabilityResult =
  | { readonly outcome: "ok" }
  | {
      readonly outcome: "violation";
      readonly key: string;
      /** Every operation on the key, pending gets included, sorted by call time. */
      readonly operations: Operation[];
      readonly explanation: string;
    }
  /** The search hit its budget: linearizability was neither proved nor refuted. */
  | { readonly outcome: "unknown"; readonly key: string; readonly reason: string };

export interface CheckOptions {
  /** Distinct search configurations to explore per key before answering "unknown". */
  readonly maxStatesPerKey?: number;
}

export const DEFAULT_MAX_STATES_PER_KEY = 200_000;

/** The most prefix operations an explanation lists; the rest is in the result's operations. */
const MAX_PREFIX_LINES = 20;

/**
 * Decides whether `history` is linearizable with respect to a register per key, all keys
 * initially absent. Keys are checked in sorted order; the first violation is returned, else the
 * first key whose search ran out of budget, else ok. Throws if the history is malformed.
 */
export function checkLinearizability(
  history: readonly Operation[],
  options: CheckOptions = {},
): LinearizabilityResult {
  const maxStates = options.maxStatesPerKey ?? DEFAULT_MAX_STATES_PER_KEY;
  if (!(maxStates > 0)) throw new Error(`maxStatesPerKey must be positive, got ${maxStates}`);
  validateHistory(history);
  const byKey = new Map<string, Operation[]>();
  for (const operation of history) {
    const group = byKey.get(operation.key);
    if (group === undefined) byKey.set(operation.key, [operation]);
    else group.push(operation);
  }
  let firstUnknown: LinearizabilityResult | null = null;
  for (const key of [...byKey.keys()].sort()) {
    const result = checkKey(key, byKey.get(key) ?? [], maxStates);
    if (result.outcome === "violation") return result;
    if (result.outcome === "unknown") firstUnknown ??= result;
  }
  return firstUnknown ?? { outcome: "ok" };
}

function checkKey(key: string, operations: Operation[], maxStates: number): LinearizabilityResult {
  const sorted = operations.slice().sort(compareByCall);
  // A pending get returned nothing to anyone, so it constrains nothing.
  const considered = sorted.filter((op) => !(op.kind === "get" && isPending(op)));
  const violation = (explanation: string): LinearizabilityResult => ({
    outcome: "violation",
    key,
    operations: sorted,
    explanation,
  });

  const phantomRead = findPhantomRead(considered);
  if (phantomRead !== null) return violation(phantomRead);

  const model = new RegisterModel();
  const compiled = considered.map((op) => model.compile(op));
  const outcome = searchLinearization(
    considered.map((op, index) => {
      const { step, overwrites, effectKey } = compiledAt(compiled, index);
      return { step, overwrites, effectKey, call: op.call, ret: op.ret };
    }),
    maxStates,
  );
  switch (outcome.kind) {
    case "linearizable":
      return { outcome: "ok" };
    case "budget-exceeded":
      return {
        outcome: "unknown",
        key,
        reason:
          `gave up on key ${JSON.stringify(key)} after exploring ${outcome.statesExplored} search states ` +
          `(maxStatesPerKey = ${maxStates}) without finding a linearization or proving there is none`,
      };
    case "not-linearizable":
      return violation(explainDeadEnd(key, considered, compiled, model, outcome.longestPrefix));
  }
}

function compiledAt(compiled: readonly CompiledOperation[], index: number): CompiledOperation {
  const operation = compiled[index];
  if (operation === undefined) throw new Error(`no compiled operation at index ${index}`);
  return operation;
}

function operationAt(operations: readonly Operation[], index: number): Operation {
  const operation = operations[index];
  if (operation === undefined) throw new Error(`no operation at index ${index}`);
  return operation;
}

/**
 * A quick refutation with a precise message, and a guard against a hopeless search: a get that
 * returned a value no put or cas invoked before the get returned could have written.
 */
function findPhantomRead(operations: readonly Operation[]): string | null {
  const earliestWrite = new Map<string, number>();
  const noteWrite = (value: string, call: number): void => {
    earliestWrite.set(value, Math.min(call, earliestWrite.get(value) ?? Infinity));
  };
  for (const op of operations) {
    if (op.kind === "put") noteWrite(op.value, op.call);
    else if (op.kind === "cas" && op.output?.swapped !== false) noteWrite(op.next, op.call);
  }
  for (const op of operations) {
    if (op.kind !== "get" || op.output === undefined || op.output.value === null) continue;
    const written = earliestWrite.get(op.output.value);
    if (written === undefined || written > op.ret)
      return (
        `${formatOperation(op)} (returned at t=${op.ret}) read a value that no put or swapping cas ` +
        `invoked by then could have written.`
      );
  }
  return null;
}

/** Why an operation cannot take effect when the key holds `holds`. */
function whyIllegal(operation: Operation, holds: RegisterState, model: RegisterModel): string {
  const current = formatValue(model.valueOf(holds));
  switch (operation.kind) {
    case "get":
      return `the key holds ${current}`;
    case "cas":
      return operation.output?.swapped === true
        ? `it swapped, but the key holds ${current}`
        : `it did not swap, but the key holds ${current}, which it expected`;
    case "put":
      throw new Error(`a put can always take effect, yet #${operation.id} was reported as illegal`);
  }
}

/**
 * Explains an exhausted search from its longest linearizable prefix: what the key holds after
 * it, which operation's return forces the next step, and why every candidate for that step
 * fails. At the longest prefix every completed candidate must be illegal (a legal one would
 * have made a longer prefix), which is asserted.
 */
function explainDeadEnd(
  key: string,
  operations: readonly Operation[],
  compiled: readonly CompiledOperation[],
  model: RegisterModel,
  prefix: readonly number[],
): string {
  let state: RegisterState = ABSENT;
  for (const index of prefix) {
    state = compiledAt(compiled, index).step(state);
    if (state === ILLEGAL) throw new Error(`the search reported a prefix that is not legal at #${index}`);
  }
  const placed = new Set(prefix);
  const unplaced = operations.map((_, index) => index).filter((index) => !placed.has(index));
  const completedUnplaced = unplaced.filter((index) => !isPending(operationAt(operations, index)));
  const firstUnplaced = completedUnplaced[0];
  if (firstUnplaced === undefined)
    throw new Error("an exhausted search left no completed operation unplaced");
  const blockingIndex = completedUnplaced.reduce(
    (best, index) => (operationAt(operations, index).ret < operationAt(operations, best).ret ? index : best),
    firstUnplaced,
  );
  const blocking = operationAt(operations, blockingIndex);
  const candidates = unplaced.filter((index) => operationAt(operations, index).call <= blocking.ret);

  const completedTotal = operations.filter((op) => !isPending(op)).length;
  const lines = [
    `No linearization exists for key ${JSON.stringify(key)} ` +
      `(${operations.length} operations, pending gets not counted).`,
    `Longest linearizable prefix found: ${completedTotal - completedUnplaced.length} of ` +
      `${completedTotal} completed operations, in this order:`,
  ];
  if (prefix.length === 0) lines.push("  (none)");
  if (prefix.length > MAX_PREFIX_LINES)
    lines.push(`  ... ${prefix.length - MAX_PREFIX_LINES} earlier operations ...`);
  for (const index of prefix.slice(-MAX_PREFIX_LINES)) {
    const op = operationAt(operations, index);
    lines.push(`  ${formatOperation(op)}${isPending(op) ? " (taken to have taken effect here)" : ""}`);
  }
  lines.push(
    `Then the key holds ${formatValue(model.valueOf(state))}. ${formatOperation(blocking)} returned at ` +
      `t=${blocking.ret}, so it must take effect before anything invoked later; of the operations ` +
      `that may take effect next, none fits:`,
  );
  const pendingCandidates: Operation[] = [];
  for (const index of candidates) {
    const op = operationAt(operations, index);
    if (isPending(op)) {
      pendingCandidates.push(op);
      continue;
    }
    if (compiledAt(compiled, index).step(state) !== ILLEGAL)
      throw new Error(`${formatOperation(op)} could extend the longest prefix the search reported`);
    lines.push(`  ${formatOperation(op)}: ${whyIllegal(op, state, model)}`);
  }
  if (pendingCandidates.length > 0)
    lines.push(
      `Letting pending operations take effect here does not help either (every order was searched): ` +
        pendingCandidates.map((op) => `#${op.id}`).join(", "),
    );
  return lines.join("\n");
}
