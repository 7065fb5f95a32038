/**
 * The time and randomness the TCP transport is handed instead of reaching for globals, so
 * tests and the simulator can drive them: a `setTimeout`-like scheduler, the system
 * implementations of it and of `RandomSource`, and the reconnect backoff computed from both.
 */
import type { RandomSource } from "../raft/types.js";

export interface TimerHandle {
  /** Stops the callback from running; harmless if it already ran or was cancelled. */
  cancel(): void;
}

export interface Timers {
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
}

export const systemTimers: Timers = {
  setTimeout(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** Randomness for production use (reconnect jitter); nothing here needs to be reproducible. */
export const systemRandom: RandomSource = {
  nextInt(bound) {
    if (!Number.isSafeInteger(bound) || bound <= 0)
      throw new Error(`bound must be a positive integer, got ${bound}`);
    return Math.floor(Math.random() * bound);
  },
};

export interface BackoffPolicy {
  /** Upper bound of the first retry delay. */
  readonly initialMs: number;
  /** Cap on the delay, however many attempts failed. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5_000 };

/**
 * The delay before the next dial after `failures` consecutive failures: the ceiling doubles per
 * failure up to `maxMs`, and the delay is drawn from [ceiling/2, ceiling] ("equal jitter") so
 * that nodes restarted together do not redial in lockstep, yet never retry in a busy loop.
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: RandomSource): number {
  if (!(policy.initialMs > 0 && policy.maxMs >= policy.initialMs)) {
    throw new Error(`invalid backoff policy ${JSON.stringify(policy)}`);
  }
  const ceiling = Math.floor(Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures, 32)));
  const floor = Math.floor(ceiling / 2);
  return floor + random.nextInt(ceiling - floor + 1);
}
