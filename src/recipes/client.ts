/**
 * What the recipes need from the world, as narrow structural interfaces: `RecipeClient`, the
 * subset of the client handle they call (`ConcordDb` satisfies it as is; recipes sit below
 * `src/api` and must not import it), and `RecipeRuntime`, the clock and timers, injected so the
 * simulator can run the same code on virtual time. Also the small byte helpers the recipes share
 * and the test for a write whose outcome is unknown.
 */
import { prefixRangeEnd } from "../kv/bytes.js";
import type { Compare, TxnOp } from "../kv/commands.js";
import type { KeyValue, OpResponse, RangeResult } from "../kv/results.js";
import type { WatchResponse } from "../kv/watch.js";
import { AmbiguousResultError } from "../node/errors.js";

/** Keys and values: bytes, or strings stored as UTF-8 (as the client handle takes them). */
export type RecipeBytes = Uint8Array | string;

export interface RecipeRangeOptions {
  readonly revision?: bigint;
  /** End of the range, exclusive; or `prefix` for every key starting with the key. */
  readonly rangeEnd?: RecipeBytes;
  readonly prefix?: boolean;
}

export interface RecipeWatchOptions {
  readonly rangeEnd?: RecipeBytes;
  readonly prefix?: boolean;
  /** The first revision to report (default: changes after the current revision). */
  readonly startRevision?: bigint;
  readonly prevKv?: boolean;
}

/** A watch as the client returns it: its responses in revision order, and a way to stop it. */
export interface RecipeWatch extends AsyncIterable<WatchResponse> {
  cancel(): Promise<void> | void;
}

/** The client calls the recipes make. `ConcordDb` (src/api/db.ts) satisfies it structurally. */
export interface RecipeClient {
  get(key: RecipeBytes, options?: { readonly revision?: bigint }): Promise<KeyValue | null>;
  range(key: RecipeBytes, options?: RecipeRangeOptions): Promise<RangeResult>;
  txn(spec: {
    readonly compares?: readonly Compare[];
    readonly success?: readonly TxnOp[];
    readonly failure?: readonly TxnOp[];
  }): Promise<{
    readonly revision: bigint;
    readonly succeeded: boolean;
    readonly responses: readonly OpResponse[];
  }>;
  leaseGrant(
    ttlSeconds: number,
  ): Promise<{ readonly id: bigint; readonly ttlSeconds: number; readonly revision: bigint }>;
  /** The lease's TTL in seconds, renewed; null when the lease is gone. */
  leaseKeepAlive(id: bigint): Promise<number | null>;
  leaseRevoke(id: bigint): Promise<{ readonly revision: bigint }>;
  watch(key: RecipeBytes, options?: RecipeWatchOptions): Promise<RecipeWatch>;
}

export interface RecipeTimer {
  /** Stops the callback from running; harmless if it already ran or was cancelled. */
  cancel(): void;
}

/** Time as the recipes see it: a monotonic clock in milliseconds and one-shot timers. */
export interface RecipeRuntime {
  monotonicNow(): number;
  setTimeout(callback: () => void, delayMs: number): RecipeTimer;
}

/** The process's monotonic clock and Node's timers. */
export const systemRuntime: RecipeRuntime = {
  monotonicNow: () => performance.now(),
  setTimeout(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Whether `error` says a write may or may not have applied. The client handle throws
 * `AmbiguousWriteError` (src/api), a subclass of the node's `AmbiguousResultError`; other
 * clients (the simulator's) are matched by name.
 */
export function isAmbiguousWrite(error: unknown): boolean {
  if (error instanceof AmbiguousResultError) return true;
  return (
    error instanceof Error && (error.name === "AmbiguousWriteError" || error.name === "AmbiguousResultError")
  );
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function bytesOf(value: RecipeBytes): Uint8Array {
  return typeof value === "string" ? utf8Encoder.encode(value) : value;
}

export function textOf(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** The smallest key above every key starting with `prefix` (etcd's prefix range end). */
export const prefixEnd = prefixRangeEnd;

/** Resolves after `delayMs` on the runtime's clock. */
export function sleep(runtime: RecipeRuntime, delayMs: number): Promise<void> {
  return new Promise((resolve) => runtime.setTimeout(resolve, delayMs));
}
