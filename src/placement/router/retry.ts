/**
 * How the router retries a request that reached the wrong range: which failures mean "the
 * routes moved under you" (a KeyOutsideRange or RangeFenced answer, a RangeMovedError, no
 * routes loaded, no local replica of the group; and a range without a leader yet), and the retry policy (bounded attempts,
 * capped exponential backoff on an injected sleep so tests run on virtual time).
 */
import { KvError, KvErrorCode } from "../../kv/errors.js";
import type { CommandResult } from "../../kv/results.js";
import { NotLeaderError } from "../../node/errors.js";
import { RangeMovedError, RoutesUnavailableError } from "../routes/moved.js";
import { positiveInteger } from "../option-checks.js";

export interface RetryPolicy {
  /** Attempts in all, the first included (default 40: about 7.1 s of backoff in all). */
  readonly attempts: number;
  /** Wait before the second attempt (default 10 ms); doubled for each further attempt. */
  readonly baseDelayMs: number;
  /** Longest wait between two attempts (default 200 ms). */
  readonly maxDelayMs: number;
}

/**
 * The defaults ride out an election, like etcd: a request that finds no leader waits there up
 * to its request timeout (5 s + two election timeouts: 7 s at the defaults) rather than
 * failing. With 1.1 s of backoff in all, a request that arrived as a leader died failed with
 * "no leader" while the election (one to two election timeouts, then the vote) was still on.
 * Waits are capped at 200 ms so that a write refused by a split's fence is retried at most
 * 200 ms after the split applies.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  attempts: 40,
  baseDelayMs: 10,
  maxDelayMs: 200,
});

/** The policy with `overrides`, checked: attempts >= 1, delays >= 0. Throws RangeError. */
export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...overrides };
  positiveInteger("retry attempts", policy.attempts);
  for (const [name, value] of [
    ["baseDelayMs", policy.baseDelayMs],
    ["maxDelayMs", policy.maxDelayMs],
  ] as const) {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`retry ${name} must be a non-negative number, got ${value}`);
    }
  }
  return policy;
}

/** The wait after failed attempt number `attempt` (1-based): base * 2^(attempt-1), capped. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
}

/** This node hosts no replica of the group a route names (not created yet, or moved away). */
export class ReplicaNotHostedError extends Error {
  readonly retryable = true;
  constructor(readonly rangeId: number) {
    super(`this node hosts no replica of range ${rangeId}; reload routes and retry`);
    this.name = "ReplicaNotHostedError";
  }
}

const ROUTING_CODES: ReadonlySet<KvErrorCode> = new Set([
  KvErrorCode.KeyOutsideRange,
  KvErrorCode.RangeFenced,
]);

/** Whether a command's result says it was refused because of stale routing (nothing was written). */
export function isRoutingRefusal(result: CommandResult): boolean {
  return result.response.kind === "error" && ROUTING_CODES.has(result.response.code);
}

/**
 * Whether a thrown error means stale routing — reload the routes and try again — or a range
 * with no leader yet (NotLeaderError: nothing was proposed; typically a split's new range
 * electing its first leader), which the same bounded backoff rides out.
 */
export function isRoutingError(error: unknown): boolean {
  return (
    (error instanceof KvError && ROUTING_CODES.has(error.code)) ||
    error instanceof NotLeaderError ||
    error instanceof RangeMovedError ||
    error instanceof RoutesUnavailableError ||
    error instanceof ReplicaNotHostedError
  );
}

/** A routing refusal carried as a throw through the retry loop; unwrapped when retries run out. */
export class RefusedResult extends Error {
  constructor(readonly result: CommandResult) {
    super(result.response.kind === "error" ? result.response.message : "refused");
    this.name = "RefusedResult";
  }
}
