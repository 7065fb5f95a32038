/**
 * Invariant assertions for the consensus core. A failed assertion is a bug in Concord, never a
 * recoverable condition: it throws RaftInvariantError so the process (or simulator) stops loudly.
 */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
    this.name = "RaftInvariantError";
  }
}

export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new RaftInvariantError(typeof message === "string" ? message : message());
}

/** n + 1 for terms and indexes, refusing to leave the safe-integer range. */
export function checkedIncrement(n: number): number {
  invariant(Number.isSafeInteger(n) && n >= 0 && n < Number.MAX_SAFE_INTEGER, `cannot increment ${n}`);
  return n + 1;
}

export function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}
